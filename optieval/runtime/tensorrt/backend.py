"""Native TensorRT: ``tensorrt`` backend, engine builds, deployable ``.plan`` files.

Written against the TensorRT 10.12+ / 11.x Python API (docs/facts.md): networks are created
STRONGLY_TYPED (needed on 10.x, ignored on 11.x where it is always on) and precision comes from
the ONNX artifact (FP16 casts, INT8 Q/DQ), never from builder flags, which 11.0 removed. TF32 is
cleared for fp32 artifacts so the fp32 reference is fp32. After a build the engine's layer
precisions are read back through the EngineInspector: an engine asked to be fp16 or int8 that
came out fp32 is :class:`BackendFailed` (exit 3).

Everything that does not need the library is a pure function here (profile shapes live in
:mod:`optieval.runtime.profiles`): engine cache keys, engine-manifest checks, parsing the
inspector's JSON, parser-error messages, the unusable-reason message. The CPU tests cover those;
the hardware paths are thin and tested under the ``tensorrt`` marker.

Engines: built engines are cached in the optieval cache (``tensorrt/<key>/engine.plan`` with its
manifest), keyed by the artifact's hash, TensorRT version, GPU, compute capability and build
options, and verified (hash of the plan bytes) on load. ``optieval build`` writes a deployable
``model.plan`` with ``model.plan.json`` (:func:`build_plan`); the backend loads such a plan and
refuses one built for another TensorRT version or GPU unless it was built version- or
hardware-compatible.

Timing: :meth:`TensorrtBackend.runner` (``io="device"``: inputs copied to torch-allocated device
buffers once, outside the timed call; each call enqueues ``execute_async_v3`` on the backend's
non-default stream, or replays the captured CUDA graph, and synchronizes);
:meth:`TensorrtBackend.device_runner` returns device milliseconds per call from CUDA events on
that stream; :meth:`TensorrtBackend.infer_timed` returns ``(outputs, device_ms)``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core import Signature, TensorSpec
from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime.base import Availability, Backend
from optieval.runtime.profiles import ProfileShape, check_in_profiles, compute_profiles

MIN_TRT_VERSION = (10, 12)
TRT_INSTALL_HINT = (
    "on a CUDA machine, install optieval's tensorrt extra (TensorRT >= 10.12, from NVIDIA's "
    "package index)"
)
PLAN_SUFFIXES = (".plan", ".engine")
ENGINE_MANIFEST_KIND = "tensorrt-engine"
IO_MODES = ("device", "host")
TRT_PRECISIONS = ("fp32", "fp16", "bf16", "int8")

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

# TensorRT DataType names to numpy dtype names.
_TRT_TO_NUMPY = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


# ---------------------------------------------------------------------------------------------
# Pure functions (no TensorRT import)
# ---------------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.12.0.36"`` -> ``(10, 12, 0, 36)``; a part's leading digits count (``0b1`` -> 0),
    and the first part without any ends the tuple."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)


def unusable_reason(
    *,
    import_error: str | None,
    trt_version: str | None,
    cuda_reason: str | None,
    builder_error: str | None = None,
) -> str | None:
    """The one-line reason the ``tensorrt`` backend cannot run here, or None when it can.

    Args:
        import_error: the error from ``import tensorrt`` (None when it imported).
        trt_version: ``tensorrt.__version__`` when it imported.
        cuda_reason: why torch.cuda cannot run (None when it can): device buffers and streams
            come from torch (docs/design.md, decision 5).
        builder_error: the error from creating ``trt.Builder`` (a driver problem shows here).
    """
    if import_error is not None:
        return f"TensorRT is not installed (import tensorrt failed: {import_error})"
    if trt_version is not None and parse_version(trt_version)[:2] < MIN_TRT_VERSION:
        need = ".".join(map(str, MIN_TRT_VERSION))
        return f"TensorRT {trt_version} is older than {need}, the oldest optieval supports"
    if cuda_reason is not None:
        return f"TensorRT {trt_version} is installed but CUDA is not usable: {cuda_reason}"
    if builder_error is not None:
        return f"TensorRT {trt_version} cannot initialise CUDA: {builder_error}"
    return None


def engine_cache_key(
    *,
    artifact_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    options: Mapping[str, Any],
) -> str:
    """The engine cache key: artifact content hash, TensorRT version, GPU, compute capability
    and every build option that changes the engine (precision, profiles, compatibility)."""
    from optieval.core import cache_key

    return cache_key(
        {
            "kind": ENGINE_MANIFEST_KIND,
            "artifact_sha256": artifact_sha256,
            "tensorrt": trt_version,
            "gpu": gpu_name,
            "compute_capability": compute_capability,
            "options": dict(options),
        }
    )


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
    """Map an inspector ``Format/Datatype`` string (``"Row major linear FP16 format"``,
    ``"Half"``, ``"Thirty-two wide channel vectorized row major Int8 format."``) to a
    precision name; ``unknown`` for ``N/A due to dynamic shapes`` and empty strings."""
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
            found = {
                classify_format(str(t.get("Format/Datatype", "")))
                for t in tensors
                if isinstance(t, Mapping)
            }
            ranked = sorted((p for p in found if p in _RANK), key=lambda p: _RANK[p])
            precision = ranked[0] if ranked else ("other" if "other" in found else "unknown")
        counts[precision] = counts.get(precision, 0) + 1
        layers.append((name, kind, precision))
    present = sorted((p for p in counts if p in _RANK), key=lambda p: _RANK[p])
    return PrecisionReadback(counts, tuple(layers), present[0] if present else "unknown")


def check_readback(requested: str, readback: PrecisionReadback, *, where: str) -> None:
    """BackendFailed (exit 3) when an engine requested as fp16/bf16/int8 did not come out so.

    fp32 requests pass whatever the read-back (TF32 is cleared and the ONNX carries fp32). An
    fp16 request passes when some compute layer runs fp16 (or lower); int8 needs int8 layers.
    An unreadable read-back fails too: the label could not be verified.
    """
    if requested == "fp32":
        return
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(readback.counts.items())) or "no layers"
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
            hint="precision lives in the ONNX: pass the artifact from `optieval convert "
            f"--precision {requested}` (TensorRT 11 has no precision builder flags)",
        )


def parser_error_message(errors: Sequence[Mapping[str, Any]], *, model: str) -> InputError:
    """One InputError listing every ONNX parser error with its node (name, operator, index)."""
    lines = []
    for err in errors:
        node = err.get("node_name") or (
            f"#{err['node']}" if err.get("node", -1) not in (None, -1) else None
        )
        op = err.get("node_operator")
        at = f"node {node}" + (f" ({op})" if op else "") if node else "graph"
        lines.append(f"{at}: {err.get('desc', '?')}")
    return InputError(
        f"TensorRT cannot parse the model ({len(errors)} error(s)): " + "; ".join(lines),
        where=model,
        hint="check the ops against TensorRT's ONNX operator support, or simplify the graph",
    )


def check_engine_manifest(
    manifest: Mapping[str, Any],
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    where: str,
) -> list[str]:
    """Refuse an engine built for another TensorRT version or GPU.

    Returns warnings (e.g. same compute capability, different GPU model). Raises InputError when
    the manifest is not an engine manifest, BackendUnavailable (exit 3) when the engine cannot
    run here: other TensorRT version (unless built version-compatible, and then only a newer
    runtime), other compute capability (unless built hardware-compatible and both are Ampere
    or newer).
    """
    if manifest.get("kind") != ENGINE_MANIFEST_KIND:
        raise InputError(
            "not a TensorRT engine manifest", where=where, hint="build with `optieval build`"
        )
    built = manifest.get("tensorrt") or {}
    gpu = manifest.get("gpu") or {}
    compat = manifest.get("compatibility") or {}
    warnings: list[str] = []
    built_version = str(built.get("version", "?"))
    if built_version != trt_version:
        same_major = parse_version(built_version)[:1] == parse_version(trt_version)[:1]
        newer = parse_version(trt_version) >= parse_version(built_version)
        if not (compat.get("version_compatible") and same_major and newer):
            raise BackendUnavailable(
                f"engine was built with TensorRT {built_version}, this machine has {trt_version}",
                where=where,
                hint="rebuild it here with `optieval build`, or build it version-compatible",
            )
        warnings.append(f"version-compatible engine from TensorRT {built_version}")
    built_cc = str(gpu.get("compute_capability", "?"))
    if built_cc != compute_capability:
        hardware = compat.get("hardware_compatible")
        both_ampere_plus = parse_version(built_cc)[:1] >= (8,) and parse_version(
            compute_capability
        )[:1] >= (8,)
        if not (hardware and both_ampere_plus):
            raise BackendUnavailable(
                f"engine was built for {gpu.get('name', '?')} (compute capability {built_cc}), "
                f"this GPU is {gpu_name} ({compute_capability})",
                where=where,
                hint="rebuild it on this GPU, or build it hardware-compatible (Ampere+)",
            )
        warnings.append(f"hardware-compatible engine from compute capability {built_cc}")
    elif gpu.get("name") and gpu.get("name") != gpu_name:
        warnings.append(f"engine was built on {gpu['name']}, running on {gpu_name}")
    return warnings


def engine_manifest(
    *,
    source: Mapping[str, Any],
    engine_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: str,
    readback: PrecisionReadback,
    profiles: Sequence[ProfileShape],
    signature: Signature,
    build_seconds: float,
    version_compatible: bool = False,
    hardware_compatible: bool = False,
) -> dict[str, Any]:
    """The manifest written beside an engine (``model.plan.json``)."""
    return {
        "kind": ENGINE_MANIFEST_KIND,
        "engine_sha256": engine_sha256,
        "source": dict(source),
        "tensorrt": {"version": trt_version},
        "gpu": {"name": gpu_name, "compute_capability": compute_capability},
        "precision": {"requested": precision, "read_back": readback.to_json()},
        "profiles": [p.to_json() for p in profiles],
        "io": signature.to_json(),
        "compatibility": {
            "version_compatible": version_compatible,
            "hardware_compatible": hardware_compatible,
        },
        "build_seconds": round(build_seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def numpy_dtype_name(trt_dtype: Any) -> str:
    """``trt.DataType.HALF`` (or its name) -> ``"float16"``."""
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1].upper()
    return _TRT_TO_NUMPY.get(name, name.lower())


# -- outputs whose size depends on the data (NMS, NonZero) ------------------------------------

_MIN_OUTPUT_BYTES = 256


def output_capacity(requested: int, current: int) -> int:
    """Bytes to hold for a data-dependent output that needs ``requested`` bytes while ``current``
    are held: ``current`` when it is enough, else the next power of two at or above
    ``requested`` (at least 256). An output that grows from image to image is so reallocated
    O(log n) times, and an empty output (0 bytes) still gets a real address."""
    if requested < 0:
        raise ValueError(f"negative size {requested}")
    if current > 0 and requested <= current:
        return current
    return max(_MIN_OUTPUT_BYTES, 1 << max(0, (requested - 1).bit_length()))


@dataclass
class OutputSlot:
    """One data-dependent output: its dtype (numpy name), the device bytes held for it and the
    shape TensorRT reported for the last run (None until ``notify_shape``)."""

    name: str
    dtype: str
    capacity: int = 0
    shape: tuple[int, ...] | None = None
    reallocations: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the last run's output (0 before any)."""
        if self.shape is None:
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def check(self, where: str = "tensorrt") -> tuple[int, ...]:
        """The last shape; BackendFailed when TensorRT reported none or more than was held."""
        if self.shape is None or any(d < 0 for d in self.shape):
            raise BackendFailed(
                f"TensorRT reported no shape for data-dependent output {self.name!r}",
                where=where,
            )
        if self.nbytes > self.capacity:
            raise BackendFailed(
                f"output {self.name!r} of shape {self.shape} needs {self.nbytes} bytes but "
                f"{self.capacity} were allocated",
                where=where,
            )
        return self.shape


def make_output_allocator(trt: Any, slot: OutputSlot, device: str) -> Any:
    """A ``trt.IOutputAllocator`` for one data-dependent output (docs/facts.md): TensorRT asks
    it for
    memory during the run (``reallocate_output[_async]``, answered from torch's caching allocator
    on ``device``, grown by :func:`output_capacity`) and tells it the final shape
    (``notify_shape``); both land in ``slot``. ``allocator.buffer`` is the uint8 torch tensor."""
    import torch

    class _Allocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffer: Any = None

        def reallocate_output(
            self, tensor_name: str, memory: int, size: int, alignment: int
        ) -> int:
            wanted = output_capacity(int(size), slot.capacity if self.buffer is not None else 0)
            if self.buffer is None or wanted != slot.capacity:
                # torch's allocations are 512-byte aligned, beyond any alignment TensorRT asks.
                self.buffer = torch.empty(wanted, dtype=torch.uint8, device=device)
                slot.capacity = wanted
                slot.reallocations += 1
            return int(self.buffer.data_ptr())

        def reallocate_output_async(
            self, tensor_name: str, memory: int, size: int, alignment: int, stream: int
        ) -> int:
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            slot.shape = tuple(int(d) for d in shape)

    return _Allocator()


def read_output(buffer: Any, slot: OutputSlot, where: str = "tensorrt") -> np.ndarray:
    """The last run's output as a host array: the first ``slot.nbytes`` of ``buffer`` (a uint8
    torch tensor) viewed as ``slot.dtype`` in ``slot.shape``."""
    import torch

    shape = slot.check(where)
    if slot.nbytes == 0:
        return np.zeros(shape, dtype=slot.dtype)
    data = buffer[: slot.nbytes].view(getattr(torch, slot.dtype)).reshape(shape)
    return np.asarray(data.cpu().numpy())


# ---------------------------------------------------------------------------------------------
# Hardware paths (need tensorrt and torch.cuda)
# ---------------------------------------------------------------------------------------------


def _import_trt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(
            unusable_reason(import_error=str(exc), trt_version=None, cuda_reason=None) or "",
            where="tensorrt",
            hint=TRT_INSTALL_HINT,
        ) from exc
    return tensorrt


def _cuda_reason() -> str | None:
    try:
        import torch
    except ImportError as exc:
        return f"torch cannot be imported ({exc})"
    from optieval.runtime.torch_backend import cuda_unusable_reason

    return cuda_unusable_reason(torch)


@functools.cache
def trt_availability() -> Availability:
    """Whether native TensorRT can run here (import, version, CUDA, builder creation); probed
    once per process."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        reason = unusable_reason(import_error=str(exc), trt_version=None, cuda_reason=None)
        return Availability(False, reason or "", {"hint": TRT_INSTALL_HINT})
    version = str(getattr(trt, "__version__", "?"))
    reason = unusable_reason(import_error=None, trt_version=version, cuda_reason=_cuda_reason())
    if reason is None:
        try:
            trt.Builder(trt.Logger(trt.Logger.ERROR))
        except Exception as exc:  # a machine with the libraries but no driver fails here
            reason = unusable_reason(
                import_error=None, trt_version=version, cuda_reason=None, builder_error=str(exc)
            )
    if reason is not None:
        return Availability(False, reason, {"tensorrt": version})
    return Availability(True, detail={"tensorrt": version})


def gpu_identity(device_id: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability ``"9.0"``) of a CUDA device, through torch."""
    import torch

    major, minor = torch.cuda.get_device_capability(device_id)
    return str(torch.cuda.get_device_name(device_id)), f"{major}.{minor}"


class _Logger:
    """Collects TensorRT's warnings and errors so failures can quote them."""

    def __init__(self, trt: Any) -> None:
        outer = self

        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                if int(severity) <= int(trt.ILogger.Severity.WARNING):
                    outer.messages.append(str(msg))

        self.messages: list[str] = []
        self.logger = Logger()

    def tail(self, n: int = 3) -> str:
        return " | ".join(self.messages[-n:])


@dataclass(frozen=True)
class BuiltEngine:
    """A serialized engine and what was learnt building it."""

    plan: bytes
    readback: PrecisionReadback
    profiles: tuple[ProfileShape, ...]
    signature: Signature
    build_seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


def build_engine(
    onnx_path: str | os.PathLike[str],
    *,
    precision: str,
    shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    profiles: Iterable[ProfileShape] = (),
    timing_cache: str | os.PathLike[str] | None = None,
    version_compatible: bool = False,
    hardware_compatible: bool = False,
    device_id: int = 0,
) -> BuiltEngine:
    """Parse an ONNX artifact strongly typed and build a serialized engine.

    Args:
        onnx_path: the ONNX artifact (external data beside it is found by the parser).
        precision: the artifact's precision (its census), used for TF32 and the read-back.
        shapes / profiles: see :func:`optieval.runtime.profiles.compute_profiles`.
        timing_cache: file to read and update (None: no timing cache).
        version_compatible / hardware_compatible: build a portable engine.

    Raises: InputError (parser errors listed with their nodes; profile problems),
    BackendUnavailable (no TensorRT/CUDA), BackendFailed (the build failed, or the read-back
    precision is not the requested one).
    """
    from optieval.core import load_onnx, signature_from_onnx

    trt = _import_trt()
    onnx_path = Path(onnx_path)
    onnx_signature = signature_from_onnx(load_onnx(onnx_path, load_external_data=False))
    profile_list = compute_profiles(onnx_signature, shapes=shapes, explicit=profiles)
    log = _Logger(trt)
    start = time.perf_counter()
    builder = trt.Builder(log.logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            errors.append(
                {
                    "desc": err.desc(),
                    "node": err.node(),
                    "node_name": _call_or_none(err, "node_name"),
                    "node_operator": _call_or_none(err, "node_operator"),
                }
            )
        raise parser_error_message(errors, model=str(onnx_path))
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; the fp32 reference stays fp32
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    profile = builder.create_optimization_profile()
    for p in profile_list:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache is not None else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendFailed(
            f"TensorRT could not build the engine ({log.tail() or 'no message'})",
            where=str(onnx_path),
        )
    if cache_path is not None:
        from optieval.core import write_bytes_atomic

        write_bytes_atomic(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    plan_bytes = bytes(memoryview(plan))
    seconds = time.perf_counter() - start
    runtime = trt.Runtime(log.logger)
    if version_compatible:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(plan_bytes)
    readback = read_back_precision(trt, engine, profile_list)
    check_readback(precision, readback, where=str(onnx_path))
    return BuiltEngine(
        plan_bytes, readback, tuple(profile_list), _engine_signature(trt, engine), seconds
    )


def _call_or_none(obj: Any, method: str) -> Any:
    fn = getattr(obj, method, None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None


def read_back_precision(
    trt: Any, engine: Any, profiles: Sequence[ProfileShape]
) -> PrecisionReadback:
    """Ask the EngineInspector for the engine's layers, with input shapes bound to the
    profiles' opt shapes (formats are ``N/A`` while shapes are dynamic)."""
    context = engine.create_execution_context()
    for p in profiles:
        context.set_input_shape(p.name, p.opt)
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context
    return parse_inspector_json(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def _engine_signature(trt: Any, engine: Any) -> Signature:
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
        spec = TensorSpec(name, numpy_dtype_name(engine.get_tensor_dtype(name)), dims)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            inputs.append(spec)
        else:
            outputs.append(spec)
    return Signature(tuple(inputs), tuple(outputs))


@dataclass(frozen=True)
class PlanBuildResult:
    """What ``optieval build`` wrote."""

    plan: str
    manifest: str
    manifest_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "schema_version": 1,
            "plan": self.plan,
            "manifest": self.manifest,
            **{k: self.manifest_data[k] for k in ("precision", "tensorrt", "gpu")},
        }


def _versions() -> tuple[Any, str, str, str]:
    """(trt module, version, gpu name, compute capability); BackendUnavailable with the
    reason when TensorRT cannot run here."""
    state = trt_availability()
    if not state.usable:
        raise BackendUnavailable(state.reason, where="tensorrt", hint=state.detail.get("hint"))
    trt = _import_trt()
    name, cc = gpu_identity()
    return trt, str(trt.__version__), name, cc


def build_plan(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    precision: str,
    shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    profiles: Iterable[ProfileShape] = (),
    version_compatible: bool = False,
    hardware_compatible: bool = False,
) -> PlanBuildResult:
    """Build a deployable engine from an ONNX artifact: ``output`` (``model.plan``) and its
    manifest ``output + ".json"`` (TensorRT version, GPU and compute capability, profile shapes,
    precision read back, the source's hash, build time), both written atomically.

    Raises InputError (bad file, precision that the artifact's census does not carry, parser
    errors, profiles), BackendUnavailable (exit 3: no TensorRT or GPU here) and BackendFailed
    (exit 3: build failed or the engine's precision is not the requested one).
    """
    from optieval.core import sha256_file, write_bytes_atomic, write_manifest
    from optieval.precision import check_precision_name, require_precision

    check_precision_name(precision)
    model = Path(model)
    require_precision(model, precision, where=str(model))
    out = Path(output)
    if out.suffix not in PLAN_SUFFIXES:
        raise InputError(f"output must end in {' or '.join(PLAN_SUFFIXES)}", where=str(out))
    _trt, version, gpu_name, cc = _versions()
    source_hash = sha256_file(model)
    built = build_engine(
        model,
        precision=precision,
        shapes=shapes,
        profiles=profiles,
        timing_cache=_timing_cache_path(version, cc),
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
    )
    write_bytes_atomic(out, built.plan)
    from optieval.core import sha256_bytes

    manifest = engine_manifest(
        source={"path": str(model), "sha256": source_hash},
        engine_sha256=sha256_bytes(built.plan),
        trt_version=version,
        gpu_name=gpu_name,
        compute_capability=cc,
        precision=precision,
        readback=built.readback,
        profiles=built.profiles,
        signature=built.signature,
        build_seconds=built.build_seconds,
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
    )
    path = write_manifest(out, manifest)
    return PlanBuildResult(str(out), str(path), manifest)


def _timing_cache_path(version: str, cc: str) -> Path:
    from optieval.core import cache_dir, cache_key

    return cache_dir("tensorrt-timing", cache_key({"tensorrt": version, "cc": cc})) / "timing.cache"


class TensorrtBackend(Backend):
    """Native TensorRT on an ONNX artifact (engine built and cached) or a prebuilt ``.plan``.

    Args:
        model: ONNX artifact, or ``.plan`` / ``.engine`` with its ``.json`` manifest.
        precision: label to verify: checked against the artifact's census (InputError) and the
            engine's read-back (BackendFailed). None: take the census.
        shapes: per input, the shapes that will be run (they make the profile). With neither
            ``shapes`` nor ``profiles`` for a model with dynamic inputs, the engine is built on
            the first feeds (profile = their shapes) and the build time added to
            ``cold_start_ms``.
        profiles: explicit :class:`ProfileShape` per input (win over ``shapes``).
        cuda_graph: capture ``execute_async_v3`` in a CUDA graph (per input shape).
        io: ``device`` (default: :meth:`runner` times only the engine) or ``host`` (each timed
            call includes the copies).
        engine_cache: reuse cached engines (default True).
        device_id: CUDA device.
    """

    name = "tensorrt"
    precisions = TRT_PRECISIONS

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        precision: str | None = None,
        shapes: Mapping[str, Sequence[Sequence[int]]] | None = None,
        profiles: Sequence[ProfileShape] = (),
        cuda_graph: bool = False,
        io: str = "device",
        engine_cache: bool = True,
        device_id: int = 0,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        del threads  # accepted like every backend's; the engine runs on the GPU
        if io not in IO_MODES:
            raise InputError(
                f"unknown I/O mode {io!r}", where="--io", hint=f"choose {' or '.join(IO_MODES)}"
            )
        if precision is not None and precision not in TRT_PRECISIONS:
            raise InputError(f"unknown precision {precision!r}", where="--precision")
        self.model = Path(model)
        self._requested = precision
        self._shapes = shapes
        self._explicit = tuple(profiles)
        self.profiles: list[ProfileShape] = []
        self.options = {
            "precision": precision,
            "cuda_graph": cuda_graph,
            "io": io,
            "engine_cache": engine_cache,
            "device_id": device_id,
        }
        self.warnings: list[str] = []
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._buffers: dict[str, Any] = {}
        # Data-dependent outputs: name -> (OutputSlot, its trt.IOutputAllocator).
        self._allocators: dict[str, tuple[OutputSlot, Any]] = {}
        self._graphs: dict[tuple[Any, ...], Any] = {}
        self._runtime: Any = None
        self._pending = False
        self._onnx_signature: Signature | None = None
        self._identity: tuple[str, str, str] = ("", "", "")

    @classmethod
    def availability(cls) -> Availability:
        return trt_availability()

    # -- load ----------------------------------------------------------------------------------
    def _load(self) -> Signature:
        import torch

        from optieval.core import read_json, sha256_bytes

        trt, version, gpu_name, cc = _versions()
        self._identity = (version, gpu_name, cc)
        torch.cuda.set_device(self.options["device_id"])
        self._stream = torch.cuda.Stream()
        if self.model.suffix in PLAN_SUFFIXES:
            plan = self._read_plan(read_json, sha256_bytes, version, gpu_name, cc)
            self._deserialize(trt, plan, host_code=bool(self.options.get("version_compatible")))
            return _engine_signature(trt, self._engine)
        from optieval.core import load_onnx, signature_from_onnx
        from optieval.precision import require_precision

        self.options["precision"] = require_precision(
            self.model, self._requested, where=str(self.model)
        )
        onnx_signature = signature_from_onnx(load_onnx(self.model, load_external_data=False))
        self._onnx_signature = onnx_signature
        dynamic = any(s.is_dynamic for s in onnx_signature.inputs)
        if dynamic and not self._shapes and not self._explicit:
            # No shapes asked for yet: build on the first feeds (profile min=opt=max=their
            # shapes), outside any timed call; the build time is added to cold_start_ms.
            self._pending = True
            return onnx_signature
        self.profiles = compute_profiles(
            onnx_signature, shapes=self._shapes, explicit=self._explicit
        )
        self._deserialize(trt, self._engine_plan(self.profiles))
        return onnx_signature

    def _engine_plan(self, profiles: Sequence[ProfileShape]) -> bytes:
        """The engine for ``profiles``: from the cache (verified) or built and cached."""
        from optieval.core import (
            cache_dir,
            read_manifest,
            sha256_bytes,
            sha256_file,
            write_bytes_atomic,
            write_manifest,
        )

        version, gpu_name, cc = self._identity
        precision = str(self.options["precision"])
        source_hash = sha256_file(self.model)
        key = engine_cache_key(
            artifact_sha256=source_hash,
            trt_version=version,
            gpu_name=gpu_name,
            compute_capability=cc,
            options={"precision": precision, "profiles": [p.to_json() for p in profiles]},
        )
        self.options["engine_cache_key"] = key
        plan_path = cache_dir("tensorrt", key) / "engine.plan"
        if self.options["engine_cache"]:
            cached = self._cached_plan(plan_path, sha256_bytes)
            if cached is not None:
                manifest = read_manifest(plan_path) or {}
                self.options["read_back"] = manifest.get("precision", {}).get("read_back")
                self.options["engine_cache_hit"] = True
                return cached
        built = build_engine(
            self.model,
            precision=precision,
            profiles=profiles,
            timing_cache=_timing_cache_path(version, cc),
            device_id=self.options["device_id"],
        )
        write_bytes_atomic(plan_path, built.plan)
        write_manifest(
            plan_path,
            engine_manifest(
                source={"path": str(self.model), "sha256": source_hash},
                engine_sha256=sha256_bytes(built.plan),
                trt_version=version,
                gpu_name=gpu_name,
                compute_capability=cc,
                precision=precision,
                readback=built.readback,
                profiles=built.profiles,
                signature=built.signature,
                build_seconds=built.build_seconds,
            ),
        )
        self.options["read_back"] = built.readback.to_json()
        self.options["engine_cache_hit"] = False
        return built.plan

    def _deserialize(self, trt: Any, plan: bytes, *, host_code: bool = False) -> None:
        log = _Logger(trt)
        runtime = trt.Runtime(log.logger)
        if host_code:
            # Version-compatible plans carry their own lean runtime: only for plans whose
            # manifest says they were built so.
            runtime.engine_host_code_allowed = True
        self._runtime = runtime  # the engine must not outlive its runtime
        self._engine = runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise BackendFailed(
                f"TensorRT could not load the engine ({log.tail() or 'no message'})",
                where=str(self.model),
            )
        self._context = self._engine.create_execution_context()

    def _ensure_engine(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Build the deferred engine for these feeds' shapes (see :meth:`_load`)."""
        if not self._pending:
            return
        start = time.perf_counter()
        shapes = {k: [tuple(v.shape)] for k, v in feeds.items()}
        assert self._onnx_signature is not None  # set by _load when it defers
        self.profiles = compute_profiles(self._onnx_signature, shapes=shapes)
        self._deserialize(_import_trt(), self._engine_plan(self.profiles))
        self._pending = False
        build_ms = (time.perf_counter() - start) * 1e3
        self.options["deferred_build_ms"] = build_ms
        self.cold_start_ms = (self.cold_start_ms or 0.0) + build_ms

    def _read_plan(
        self, read_json: Any, sha256_bytes: Any, version: str, gpu_name: str, cc: str
    ) -> bytes:
        from optieval.core import manifest_path, read_manifest

        if not self.model.is_file():
            raise InputError("engine file not found", where=str(self.model))
        manifest = read_manifest(self.model)
        if manifest is None:
            raise InputError(
                "engine has no manifest beside it",
                where=str(manifest_path(self.model)),
                hint="build engines with `optieval build`, which writes model.plan.json",
            )
        self.warnings = check_engine_manifest(
            manifest,
            trt_version=version,
            gpu_name=gpu_name,
            compute_capability=cc,
            where=str(self.model),
        )
        plan = self.model.read_bytes()
        if sha256_bytes(plan) != manifest.get("engine_sha256"):
            raise InputError(
                "engine bytes do not match the hash in its manifest",
                where=str(self.model),
                hint="the plan was modified or truncated; rebuild it",
            )
        requested = manifest.get("precision", {}).get("requested")
        if self._requested is not None and requested != self._requested:
            raise InputError(
                f"engine was built as {requested}, {self._requested} was asked for",
                where=str(self.model),
            )
        self.options["precision"] = requested
        self.options["read_back"] = manifest.get("precision", {}).get("read_back")
        compat = manifest.get("compatibility") or {}
        self.options["version_compatible"] = bool(compat.get("version_compatible"))
        self.profiles = [ProfileShape.from_json(p) for p in manifest.get("profiles", [])]
        return plan

    @staticmethod
    def _cached_plan(path: Path, sha256_bytes: Any) -> bytes | None:
        """A cached engine, verified against its manifest's hash; None when absent or stale."""
        from optieval.core import read_manifest

        if not path.is_file():
            return None
        try:
            manifest = read_manifest(path)
        except InputError:
            return None
        plan = path.read_bytes()
        if manifest is None or sha256_bytes(plan) != manifest.get("engine_sha256"):
            return None
        return plan

    # -- run -----------------------------------------------------------------------------------
    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Also InputError naming the range when a shape lies outside the engine's profile."""
        super().check_feeds(feeds)
        if self.profiles:
            check_in_profiles(
                {k: tuple(v.shape) for k, v in feeds.items()}, self.profiles, where=self.name
            )

    def _bind(self, feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Set input shapes, copy inputs into torch device buffers, allocate outputs, set every
        tensor address. Buffers of unchanged shape are reused (same addresses), so a captured
        CUDA graph stays valid when only the data changes. Returns the output buffers."""
        import torch

        device = f"cuda:{self.options['device_id']}"
        with torch.cuda.stream(self._stream):
            for name, array in feeds.items():
                host = torch.from_numpy(np.ascontiguousarray(array))
                tensor = self._buffers.get(name)
                if tensor is None or tensor.shape != host.shape or tensor.dtype != host.dtype:
                    tensor = torch.empty(host.shape, dtype=host.dtype, device=device)
                    self._buffers[name] = tensor
                tensor.copy_(host)
                if not self._context.set_input_shape(name, tuple(array.shape)):
                    raise InputError(
                        f"TensorRT refused shape {array.shape} for input {name!r}",
                        where=self.name,
                    )
                self._context.set_tensor_address(name, tensor.data_ptr())
            outputs: dict[str, Any] = {}
            for spec in self.signature.outputs:
                shape = tuple(int(d) for d in self._context.get_tensor_shape(spec.name))
                if any(d < 0 for d in shape):
                    self._bind_allocator(spec, device)
                    continue
                out = self._buffers.get(spec.name)
                if out is None or tuple(out.shape) != shape:
                    out = torch.empty(shape, dtype=getattr(torch, spec.dtype), device=device)
                    self._buffers[spec.name] = out
                outputs[spec.name] = out
                self._context.set_tensor_address(spec.name, out.data_ptr())
        self._stream.synchronize()
        return outputs

    def _bind_allocator(self, spec: TensorSpec, device: str) -> None:
        """Register an output allocator for a data-dependent output (its size is known only
        after the run); its memory lives in ``self._allocators``, not ``self._buffers``."""
        if self.options["cuda_graph"]:
            raise BackendFailed(
                f"output {spec.name!r} has a data-dependent size, which a CUDA graph cannot "
                "capture (TensorRT allocates it during the run)",
                where=self.name,
                hint="run without --cuda-graph",
            )
        held = self._allocators.get(spec.name)
        if held is None:
            slot = OutputSlot(spec.name, spec.dtype)
            held = (slot, make_output_allocator(_import_trt(), slot, device))
            self._allocators[spec.name] = held
        slot, allocator = held
        slot.shape = None
        if not self._context.set_output_allocator(spec.name, allocator):
            raise BackendFailed(
                f"TensorRT refused an output allocator for {spec.name!r}", where=self.name
            )

    def _host_outputs(self, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Every output on the host, in the signature's order: bound buffers and the
        allocator-held (data-dependent) ones."""
        result: dict[str, np.ndarray] = {}
        for spec in self.signature.outputs:
            if spec.name in outputs:
                result[spec.name] = outputs[spec.name].cpu().numpy()
            elif spec.name in self._allocators:
                slot, allocator = self._allocators[spec.name]
                result[spec.name] = read_output(allocator.buffer, slot, self.name)
        return result

    def _enqueue_fn(self, key: tuple[Any, ...]) -> Callable[[], None]:
        """The call that runs the engine once on the bound buffers (graph replay or enqueue)."""
        import torch

        handle = self._stream.cuda_stream
        if not self.options["cuda_graph"]:

            def enqueue() -> None:
                if not self._context.execute_async_v3(handle):
                    raise BackendFailed("execute_async_v3 failed", where=self.name)

            return enqueue
        graph = self._graphs.get(key)
        if graph is None:
            # Run once first (lazy allocations), then capture on the same stream.
            self._context.execute_async_v3(handle)
            self._stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._stream):
                self._context.execute_async_v3(handle)
            self._graphs = {key: graph}  # addresses changed: older captures are stale

        def replay() -> None:
            with torch.cuda.stream(self._stream):
                graph.replay()

        return replay

    def _prepare(
        self, feeds: Mapping[str, np.ndarray]
    ) -> tuple[Callable[[], None], dict[str, Any]]:
        self._ensure_engine(feeds)
        outputs = self._bind(feeds)
        key = tuple((k, tuple(v.shape), v.data_ptr()) for k, v in sorted(self._buffers.items()))
        return self._enqueue_fn(key), outputs

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        enqueue, outputs = self._prepare(feeds)
        enqueue()
        self._stream.synchronize()
        return self._host_outputs(outputs)

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """``io="device"``: bind once here; each call enqueues (or replays) and synchronizes.
        ``io="host"``: each call copies inputs in and outputs out."""
        self.check_feeds(feeds)
        if self.options["io"] == "host":
            bound = dict(feeds)
            return lambda: self._infer(bound)
        enqueue, _ = self._prepare(feeds)
        stream = self._stream

        def call() -> None:
            enqueue()
            stream.synchronize()

        return call

    def device_runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], float]:
        """A callable that runs once on device-resident buffers and returns device
        milliseconds from CUDA events recorded on the engine's stream."""
        import torch

        self.check_feeds(feeds)
        enqueue, _ = self._prepare(feeds)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def call() -> float:
            start.record(self._stream)
            enqueue()
            end.record(self._stream)
            end.synchronize()
            return float(start.elapsed_time(end))

        return call

    def infer_timed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run once on host feeds; return outputs and device ms (copies excluded)."""
        import torch

        self.check_feeds(feeds)
        enqueue, outputs = self._prepare(feeds)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(self._stream)
        enqueue()
        end.record(self._stream)
        end.synchronize()
        return self._host_outputs(outputs), float(start.elapsed_time(end))

    def _close(self) -> None:
        self._graphs = {}
        self._buffers = {}
        self._allocators = {}
        self._context = None
        self._engine = None
        self._runtime = None
        self._stream = None
        self._pending = False
