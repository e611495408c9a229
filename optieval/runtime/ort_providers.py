"""Whether an ONNX Runtime execution provider really runs here: onnxruntime silently builds a
CPU-only session when the CUDA or TensorRT provider fails to load (docs/facts.md), so its shared
library is loaded the way ORT would (naming a missing CUDA library) and a one-node session is
probed with CPU fallback disabled."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from optieval.errors import BackendUnavailable
from optieval.runtime.base import Availability

__all__ = [
    "import_ort",
    "missing_library_hint",
    "preload_cuda_libraries",
    "provider_availability",
    "provider_library_error",
]


def import_ort() -> Any:
    """Import ``onnxruntime``; BackendUnavailable (exit 3) when it cannot be imported."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency of optieval
        raise BackendUnavailable(
            f"onnxruntime cannot be imported ({exc})", hint="pip install onnxruntime-gpu"
        ) from exc
    return onnxruntime


_PROVIDER_LIBRARIES = {
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
}


def provider_availability(provider: str, package_hint: str) -> Availability:
    """Whether ``provider`` runs here: listed by onnxruntime, its library loads, and a probe
    session runs on it; else the reason, with ``package_hint`` as the hint."""
    try:
        ort = import_ort()
    except BackendUnavailable as exc:
        return Availability(False, str(exc))
    available = ort.get_available_providers()
    if provider not in available:
        return Availability(
            False,
            f"onnxruntime {ort.__version__} has no {provider} (providers: {', '.join(available)})",
            {"hint": package_hint},
        )
    missing = provider_library_error(ort, provider)
    if missing:
        return Availability(
            False,
            f"onnxruntime-gpu {ort.__version__} is installed but its {provider} cannot load: "
            f"{missing}",
            {"hint": missing_library_hint(missing) or package_hint},
        )
    return _probe_provider(ort, provider)


def provider_library_error(ort: Any, provider: str) -> str | None:
    """Load the provider's shared library the way ORT would; return the loader's error (which
    names the missing CUDA library) or None. ORT itself only logs this and falls back. CUDA and
    cuDNN from NVIDIA's pip packages are preloaded first (:func:`preload_cuda_libraries`)."""
    import ctypes
    import sys

    library = _PROVIDER_LIBRARIES.get(provider)
    if library is None:
        return None
    preload_cuda_libraries(ort)
    if not sys.platform.startswith("linux"):
        return None
    capi = Path(ort.__file__).parent / "capi"
    if not (capi / library).is_file():
        return None
    try:
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / library))
    except OSError as exc:
        return str(exc)
    return None


_PRELOAD: dict[str, str] = {}


def preload_cuda_libraries(ort: Any) -> str:
    """Load CUDA and cuDNN from NVIDIA's pip packages through ``onnxruntime.preload_dlls()``
    (ORT >= 1.21; the ``nvidia-*`` wheels that ``onnxruntime-gpu[cuda,cudnn]`` or a CUDA build
    of torch install), once per process, before any CUDA or TensorRT session: a machine with
    those wheels and no system CUDA then runs ``ort-cuda``. Returns what happened, for the
    doctor: ``preloaded``, ``not offered by onnxruntime X`` or ``failed: ...``. Best effort: a
    library still missing is named by the provider check that follows."""
    version = str(getattr(ort, "__version__", "?"))
    if version in _PRELOAD:
        return _PRELOAD[version]
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        state = f"not offered by onnxruntime {version} (needs 1.21+)"
    else:
        try:
            # It prints its findings; the doctor reports instead.
            with open(os.devnull, "w") as devnull, _redirect_stdout(devnull):
                preload(directory="")  # "": the nvidia-* site packages, then the default paths
            state = "preloaded"
        except Exception as exc:  # a failed preload leaves ORT's own loading to try
            state = f"failed: {exc}"
    _PRELOAD[version] = state
    return state


_CUDA_SONAME = re.compile(
    r"lib(cublasLt|cublas|cudart|cufft|curand|cusparse|nvrtc|nvJitLink)\.so\.(\d+)"
)
_CUDNN_SONAME = re.compile(r"libcudnn\w*\.so\.(\d+)")
_TRT_SONAME = re.compile(r"libnv(infer|onnxparser)\w*\.so\.(\d+)")


def missing_library_hint(error: str) -> str | None:
    """The install that provides the library a provider's loader error names
    (``libcublasLt.so.12: cannot open shared object file``), or None for another error."""
    cuda = _CUDA_SONAME.search(error)
    if cuda is not None:
        major = cuda.group(2)
        suffix = "-cu12" if major == "12" else ""  # CUDA 13 wheels dropped the suffix
        return (
            f"lib{cuda.group(1)}.so.{major} is CUDA {major}'s: `pip install "
            f"'onnxruntime-gpu[cuda,cudnn]'` installs it from NVIDIA's wheels (ORT 1.21+, loaded "
            f"by onnxruntime.preload_dlls(), which optieval calls), or install "
            f"nvidia-cublas{suffix} nvidia-cuda-runtime{suffix} "
            f"nvidia-cudnn-cu{major} beside torch (a CUDA {major} build of torch already has them)"
        )
    cudnn = _CUDNN_SONAME.search(error)
    if cudnn is not None:
        return (
            f"cuDNN {cudnn.group(1)} is missing: `pip install 'onnxruntime-gpu[cuda,cudnn]'`, "
            "or nvidia-cudnn-cu12 / nvidia-cudnn-cu13 matching the CUDA major of your "
            "onnxruntime-gpu build (ORT 1.21+ loads it through onnxruntime.preload_dlls())"
        )
    trt = _TRT_SONAME.search(error)
    if trt is not None:
        return (
            f"ORT's TensorRT EP links TensorRT {trt.group(2)} (libnv{trt.group(1)}.so."
            f"{trt.group(2)}): install those libraries (e.g. tensorrt-cu12-libs of that major) "
            "and put their folder on LD_LIBRARY_PATH"
        )
    return None


def _redirect_stdout(target: Any) -> Any:
    import contextlib

    return contextlib.redirect_stdout(target)


def _probe_provider(ort: Any, provider: str) -> Availability:
    """Create a one-node session on ``provider`` with CPU fallback disabled: the way to learn
    whether the provider really runs."""
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), sess_options=so, providers=[provider]
        )
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Availability(False, f"{provider} failed to create a session: {message}")
    if session.get_providers()[0] != provider:
        return Availability(False, f"{provider} fell back to {session.get_providers()[0]}")
    return Availability(True)
