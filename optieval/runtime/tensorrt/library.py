"""The TensorRT library itself: importing it, whether it can run here (version, CUDA, a
builder), the GPU's identity, the logger that quotes TensorRT's messages, and the engine's I/O
signature. Everything here that does not touch the library is a pure function the CPU tests
cover."""

from __future__ import annotations

import functools
from typing import Any

from optieval.core import Signature, TensorSpec
from optieval.errors import BackendUnavailable, InputError
from optieval.runtime.base import Availability

__all__ = [
    "MIN_TRT_VERSION",
    "TRT_INSTALL_HINT",
    "TrtLogger",
    "check_device_id",
    "cuda_reason",
    "device_cache_key",
    "engine_signature",
    "gpu_identity",
    "import_trt",
    "init_plugins",
    "numpy_dtype_name",
    "parse_version",
    "select_device",
    "trt_availability",
    "trt_versions",
    "unusable_reason",
]

MIN_TRT_VERSION = (10, 12)
TRT_INSTALL_HINT = (
    "on a CUDA machine, install optieval's tensorrt extra (TensorRT >= 10.12, from NVIDIA's "
    "package index)"
)

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


def numpy_dtype_name(trt_dtype: Any) -> str:
    """``trt.DataType.HALF`` (or its name) -> ``"float16"``."""
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1].upper()
    return _TRT_TO_NUMPY.get(name, name.lower())


def import_trt() -> Any:
    """Import ``tensorrt``; BackendUnavailable (exit 3) with the install hint when missing."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(
            unusable_reason(import_error=str(exc), trt_version=None, cuda_reason=None) or "",
            where="tensorrt",
            hint=TRT_INSTALL_HINT,
        ) from exc
    return tensorrt


def cuda_reason() -> str | None:
    """Why torch.cuda cannot run here (None when it can): TensorRT's device buffers and
    streams come from torch."""
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
    reason = unusable_reason(import_error=None, trt_version=version, cuda_reason=cuda_reason())
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


def check_device_id(device_id: int, count: int | None = None) -> None:
    """InputError (exit 2) for a CUDA device index below 0, or not below ``count`` (the devices
    this machine has, when known)."""
    if device_id < 0 or (count is not None and device_id >= count):
        have = "" if count is None else f"; this machine has {count} CUDA device(s)"
        raise InputError(
            f"no CUDA device {device_id}{have}",
            where="device_id",
            hint="give a device index from 0 (`nvidia-smi -L` lists them)",
        )


def gpu_identity(device_id: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability ``"9.0"``) of a CUDA device, through torch; InputError
    for a device this machine does not have."""
    import torch

    check_device_id(device_id, torch.cuda.device_count())
    major, minor = torch.cuda.get_device_capability(device_id)
    return str(torch.cuda.get_device_name(device_id)), f"{major}.{minor}"


class TrtLogger:
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
        """The last ``n`` messages on one line."""
        return " | ".join(self.messages[-n:])


def init_plugins(trt: Any, logger: Any) -> bool:
    """Register TensorRT's bundled plugins (``init_libnvinfer_plugins(logger, "")``): needed
    before deserializing a plan whose layers use them. False when TensorRT reports failure."""
    return bool(trt.init_libnvinfer_plugins(logger, ""))


def engine_signature(trt: Any, engine: Any) -> Signature:
    """The I/O signature of a deserialized engine (dynamic dimensions as None)."""
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


def trt_versions(device_id: int = 0) -> tuple[Any, str, str, str]:
    """(trt module, version, name and compute capability of CUDA device ``device_id``: the one
    the engine is built and run on); BackendUnavailable with the reason when TensorRT cannot
    run here."""
    state = trt_availability()
    if not state.usable:
        raise BackendUnavailable(state.reason, where="tensorrt", hint=state.detail.get("hint"))
    trt = import_trt()
    name, cc = gpu_identity(device_id)
    return trt, str(trt.__version__), name, cc


def select_device(device_id: int) -> None:
    """Make CUDA device ``device_id`` current (TensorRT builds and deserializes on the current
    device); nothing where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(device_id)


def device_cache_key(*, trt_version: str, compute_capability: str, gpu_name: str) -> str:
    """The key of a cache that only one TensorRT version on one GPU model may read back: the
    timing cache of ``tensorrt`` builds and the engine/timing caches of ``ort-trt`` (TensorRT
    rejects timing caches from other device properties, and engines are not portable across
    GPU models; tactic timings differ between GPUs of one compute capability)."""
    from optieval.core import cache_key

    return cache_key({"tensorrt": trt_version, "cc": compute_capability, "gpu": gpu_name})
