"""What a built engine computes in, read back from TensorRT's EngineInspector: an engine asked
to be fp16 or int8 that came out fp32 is :class:`BackendFailed` (exit 3). Parsing the
inspector's JSON is pure and tested on CPU."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optieval.errors import BackendFailed
from optieval.runtime.profiles import ProfileShape

__all__ = [
    "PrecisionReadback",
    "check_readback",
    "classify_format",
    "compute_counts",
    "parse_inspector_json",
    "read_back_precision",
    "tensor_precision",
]

# Layer types that only move or reshape data: they say nothing about compute precision.
_BOOKKEEPING_LAYERS = {
    "reformat",
    "noop",
    "constant",
    "shuffle",
    "identity",
    "cast",
    "slice",
    "concatenation",
    "gather",
    "shape",
    "myelin_reformat",
    "copy",
}


@dataclass(frozen=True)
class PrecisionReadback:
    """Layer precisions read back from a built engine (EngineInspector, DETAILED verbosity).

    ``counts``: compute layers per precision (``fp32``, ``fp16``, ``bf16``, ``int8``, ``fp8``,
    ``other``, ``unknown``); ``layers``: (name, layer type, precision) of each compute layer;
    ``precision``: the lowest float/int precision any compute layer runs in (``int8`` beats
    ``fp8`` beats ``fp16``/``bf16`` beats ``fp32``), or ``unknown`` when no format was readable.
    """

    counts: dict[str, int]
    layers: tuple[tuple[str, str, str], ...] = ()
    precision: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        """Plain data for manifests (layer list left out: it can be long)."""
        return {"precision": self.precision, "counts": dict(self.counts)}


def classify_format(text: str) -> str:
    """Map an inspector ``Format/Datatype`` (or ``Datatype`` / ``Format``) string
    (``"Row major linear FP16 format"``, ``"Half"``, ``"Thirty-two wide channel vectorized row
    major Int8 format."``) to a precision name; ``unknown`` for ``N/A due to dynamic shapes``
    and empty strings."""
    lowered = text.lower()
    if not lowered or lowered.startswith("n/a"):
        return "unknown"
    if "int8" in lowered:
        return "int8"
    if "fp8" in lowered or "e4m3" in lowered:
        return "fp8"
    if "bf16" in lowered or "bfloat16" in lowered:
        return "bf16"
    if "fp16" in lowered or "half" in lowered:
        return "fp16"
    if "fp32" in lowered or "float" in lowered:
        return "fp32"
    return "other"  # int32, int64, bool tensors


def tensor_precision(tensor: Mapping[str, Any]) -> str:
    """A tensor's precision from the inspector's JSON, in either schema: TensorRT 10's one
    ``Format/Datatype`` string, or TensorRT 11's separate ``Datatype`` and ``Format`` (the
    data type decides; the format string is the fallback). ``unknown`` when neither reads."""
    combined = tensor.get("Format/Datatype")
    if combined is not None:
        return classify_format(str(combined))
    found = classify_format(str(tensor.get("Datatype", "")))
    if found != "unknown":
        return found
    # a layout alone ("Row major linear") says nothing; one naming its type does
    found = classify_format(str(tensor.get("Format", "")))
    return found if found in _RANK else "unknown"


_RANK = {"int8": 0, "fp8": 1, "fp16": 2, "bf16": 2, "fp32": 3}


def parse_inspector_json(info: str | Mapping[str, Any]) -> PrecisionReadback:
    """Parse ``EngineInspector.get_engine_information(LayerInformationFormat.JSON)``.

    A layer's precision is the lowest precision among its inputs' and outputs' formats;
    bookkeeping layers (Reformat, Shuffle, Constant, NoOp, ...) are left out. Layers given as
    plain strings (verbosity below DETAILED) count as ``unknown``.

    Raises BackendFailed when the text is not the inspector's JSON.
    """
    if isinstance(info, str):
        try:
            data = json.loads(info)
        except json.JSONDecodeError as exc:
            raise BackendFailed(f"the engine inspector returned no JSON ({exc})") from exc
    else:
        data = info
    layers_raw = data.get("Layers") if isinstance(data, Mapping) else None
    if not isinstance(layers_raw, list):
        raise BackendFailed("the engine inspector's JSON has no 'Layers' list")
    counts: dict[str, int] = {}
    layers: list[tuple[str, str, str]] = []
    for layer in layers_raw:
        if not isinstance(layer, Mapping):
            name, kind, precision = str(layer), "?", "unknown"
        else:
            name = str(layer.get("Name", "?"))
            kind = str(layer.get("LayerType", "?"))
            if kind.lower() in _BOOKKEEPING_LAYERS:
                continue
            tensors = [*layer.get("Inputs", ()), *layer.get("Outputs", ())]
            found = {tensor_precision(t) for t in tensors if isinstance(t, Mapping)}
            ranked = sorted((p for p in found if p in _RANK), key=lambda p: _RANK[p])
            precision = ranked[0] if ranked else ("other" if "other" in found else "unknown")
        counts[precision] = counts.get(precision, 0) + 1
        layers.append((name, kind, precision))
    present = sorted((p for p in counts if p in _RANK), key=lambda p: _RANK[p])
    return PrecisionReadback(counts, tuple(layers), present[0] if present else "unknown")


def check_readback(
    requested: str,
    readback: PrecisionReadback,
    *,
    where: str,
    trt_version: str | None = None,
) -> None:
    """BackendFailed (exit 3) when an engine requested as fp16/bf16/int8 did not come out so.

    A read-back in which no compute layer had a readable precision fails whatever the request,
    fp32 included, naming the TensorRT version (``trt_version``): the inspector's output was
    not understood, and passing would hide it. Otherwise fp32 requests pass (TF32 is cleared
    and the ONNX carries fp32); an fp16/bf16 request passes when most compute layers
    (:func:`compute_counts`: GEMM, convolution, attention, as the ONNX census counts them) run
    fp16 or lower, as the census labels an artifact by its dominant precision; int8 needs
    int8 layers.
    """
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(readback.counts.items())) or "no layers"
    if not any(p != "unknown" for p in readback.counts):
        trt = f"TensorRT {trt_version}" if trt_version else "TensorRT"
        raise BackendFailed(
            f"could not read any layer precision back from {trt}'s engine inspector "
            f"({counts}); the {requested} label cannot be verified",
            where=where,
            hint="optieval reads the inspector's JSON of TensorRT 10 ('Format/Datatype') and "
            "11 ('Format', 'Datatype') at ProfilingVerbosity.DETAILED; another schema needs "
            "support in optieval.runtime.tensorrt.readback",
        )
    if requested == "fp32":
        return
    if readback.precision == "unknown":
        raise BackendFailed(
            f"could not read the engine's layer precisions back ({counts}); "
            f"the {requested} label cannot be verified",
            where=where,
            hint="build with ProfilingVerbosity.DETAILED (optieval does) and static or "
            "profile-bound shapes",
        )
    want = _RANK["fp16"] if requested in ("fp16", "bf16") else _RANK[requested]
    if _RANK.get(readback.precision, 99) > want:
        raise BackendFailed(
            f"the engine was requested as {requested} but its layers came out "
            f"{readback.precision} ({counts})",
            where=where,
            hint=f"precision lives in the ONNX: pass the {requested} artifact from `optieval "
            f"convert` (`precision` {requested}; TensorRT 11 has no precision builder flags)",
        )
    if want == _RANK["fp16"]:
        compute = compute_counts(readback)
        low = sum(n for p, n in compute.items() if _RANK.get(p, 99) <= want)
        high = sum(n for p, n in compute.items() if _RANK.get(p, -1) > want)
        if high > low:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(compute.items()))
            raise BackendFailed(
                f"the engine was requested as {requested} but most of its compute layers came "
                f"out fp32 ({shown}; all layers: {counts})",
                where=where,
                hint=f"precision lives in the ONNX: check the {requested} artifact's census "
                "(`optieval inspect`) and the layers the build kept in fp32",
            )


# Layer types that do the heavy compute, as the ONNX census counts Conv/MatMul/Gemm/attention.
_COMPUTE_WORDS = ("gemm", "conv", "matmul", "matrixmultiply", "attention", "mha", "deconv")


def compute_counts(readback: PrecisionReadback) -> dict[str, int]:
    """Layers per precision among the compute layers (GEMM, convolution, attention: the
    layers the ONNX census counts); all read layers when none of them has such a type (a
    Myelin region hides its layers)."""
    counts: dict[str, int] = {}
    for _, kind, precision in readback.layers:
        if any(word in kind.lower() for word in _COMPUTE_WORDS):
            counts[precision] = counts.get(precision, 0) + 1
    return counts or {k: v for k, v in readback.counts.items() if k != "unknown"}


def read_back_precision(
    trt: Any, engine: Any, profiles: Sequence[ProfileShape]
) -> PrecisionReadback:
    """Ask the EngineInspector for the engine's layers, with input shapes bound to the
    profiles' opt shapes (formats are ``N/A`` while shapes are dynamic)."""
    context = engine.create_execution_context()
    for p in profiles:
        if not context.set_input_shape(p.name, p.opt):
            raise BackendFailed(
                f"TensorRT refused the opt shape {tuple(p.opt)} of input {p.name!r} of its own "
                "profile while reading precisions back",
                where=p.name,
            )
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context
    return parse_inspector_json(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
