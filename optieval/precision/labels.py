"""Which precision an ONNX artifact really computes in, before any number is labelled with it.

The precision step writes its label and census into the artifact's manifest; when there is no
manifest (a model that arrived already quantized, say) the census is taken from the graph
(:func:`optieval.precision.census`, its dominant precision); a graph without compute nodes
falls back to its types: Q/DQ or integer ops mean int8, FP16 weights or casts fp16, else fp32
(docs/design.md, decisions 1 and 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optieval.core import PRECISIONS, read_manifest
from optieval.errors import InputError

_INT8_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
}
_FLOAT16 = 10
_BFLOAT16 = 16


def check_precision_name(precision: str, *, where: str = "precision") -> str:
    """Return ``precision`` if known; InputError listing the known ones otherwise."""
    if precision not in PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}", where=where, hint=f"choose {', '.join(PRECISIONS)}"
        )
    return precision


def _manifest_precision(manifest: dict[str, Any] | None) -> str | None:
    """The label the precision step wrote (it verified it against the census), else the
    census's dominant precision."""
    if not manifest:
        return None
    value = manifest.get("precision")
    if isinstance(value, str) and value in PRECISIONS:
        return value
    census = manifest.get("census")
    if isinstance(census, dict):
        dominant = census.get("dominant_precision")
        if isinstance(dominant, str) and dominant in PRECISIONS:
            return dominant
    return None


def graph_precision(model: Any) -> str:
    """Read the compute precision from an ONNX graph (``onnx.ModelProto``): int8 when it holds
    Q/DQ or integer ops, fp16/bf16 when weights or casts are in that type, else fp32."""
    ops = {node.op_type for node in model.graph.node}
    if ops & _INT8_OPS:
        return "int8"
    types = {init.data_type for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Cast":
            types.update(a.i for a in node.attribute if a.name == "to")
    if _FLOAT16 in types:
        return "fp16"
    if _BFLOAT16 in types:
        return "bf16"
    return "fp32"


def artifact_precision(path: str | os.PathLike[str]) -> str:
    """Return the precision an ONNX artifact computes in: its manifest's census when present,
    else read from the graph. InputError when the file is missing or not ONNX."""
    from optieval.core import load_onnx

    manifest_value = _manifest_precision(read_manifest(path))
    if manifest_value is not None:
        return manifest_value
    model = load_onnx(Path(path), load_external_data=False)
    from optieval.precision.graph_census import census

    dominant = census(model).dominant_precision
    if dominant in PRECISIONS:
        return str(dominant)
    return graph_precision(model)  # no compute nodes: fall back to the graph's types


def require_precision(path: str | os.PathLike[str], requested: str | None, *, where: str) -> str:
    """Return the artifact's precision, or InputError (exit 2) when ``requested`` is given and
    the artifact's census says otherwise: a label must be true."""
    actual = artifact_precision(path)
    if requested is not None and check_precision_name(requested) != actual:
        raise InputError(
            f"requested precision {requested} but the artifact computes in {actual} (census)",
            where=where,
            hint=f"pass the {requested} artifact made by `optieval convert`, or ask for {actual}",
        )
    return actual


def artifact_int8_format(path: str | os.PathLike[str]) -> str | None:
    """The INT8 format of an artifact (``symmetric``, ``u8s8``, ``dynamic``, ...): its manifest's
    when present, else read from the graph by the census; None without int8 compute."""
    manifest = read_manifest(path) or {}
    value = manifest.get("int8_format")
    if isinstance(value, str):
        return value
    from optieval.core import load_onnx
    from optieval.precision.graph_census import census

    return census(load_onnx(Path(path), load_external_data=False)).int8_format


def artifact_session_options(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ONNX Runtime session settings an artifact's manifest says it needs:
    ``{"config_entries": {key: value}, "disabled_optimizers": [name]}`` (both empty when there is
    no manifest or it names none). Every optieval ONNX Runtime backend applies them, so a
    measurement uses exactly what the deployment is told to set. InputError when malformed."""
    manifest = read_manifest(path) or {}
    raw = manifest.get("session_options") or {}
    entries = raw.get("config_entries") or {} if isinstance(raw, dict) else None
    disabled = raw.get("disabled_optimizers") or [] if isinstance(raw, dict) else None
    if (
        not isinstance(entries, dict)
        or not isinstance(disabled, list)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items())
        or not all(isinstance(d, str) for d in disabled)
    ):
        raise InputError(
            "the manifest's session_options is malformed (want config_entries: {str: str}, "
            "disabled_optimizers: [str])",
            where=str(path) + ".json",
            hint="re-create the artifact with `optieval convert`",
        )
    return {"config_entries": dict(entries), "disabled_optimizers": list(disabled)}


ENGINE_SUFFIXES = (".plan", ".engine")


def is_engine(path: str | os.PathLike[str]) -> bool:
    """True for a prebuilt TensorRT engine (``.plan`` / ``.engine``), which only the
    ``tensorrt`` backend runs."""
    return Path(path).suffix in ENGINE_SUFFIXES


def model_signature(path: str | os.PathLike[str]) -> Any:
    """The I/O :class:`~optieval.core.signature.Signature` of an ONNX file or of a prebuilt engine
    (read from its ``.plan.json`` manifest, written by ``optieval build``), so that bench,
    compare and gate can take either. InputError when the file or the engine's manifest is
    missing or malformed."""
    from optieval.core import Signature, load_onnx, signature_from_onnx

    if not is_engine(path):
        return signature_from_onnx(load_onnx(path, load_external_data=False))
    from optieval.core import manifest_path

    if not Path(path).is_file():
        raise InputError("engine file not found", where=str(path))
    manifest = read_manifest(path)
    io = (manifest or {}).get("io")
    if not isinstance(io, dict):
        raise InputError(
            "engine has no manifest with its I/O beside it",
            where=str(manifest_path(path)),
            hint="build engines with `optieval build`, which writes model.plan.json",
        )
    try:
        return Signature.from_json(io)
    except (KeyError, TypeError) as exc:
        raise InputError(f"engine manifest's io is malformed ({exc})", where=str(path)) from exc
