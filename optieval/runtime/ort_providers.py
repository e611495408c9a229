"""Whether an ONNX Runtime execution provider really runs here: onnxruntime silently builds a
CPU-only session when the CUDA or TensorRT provider fails to load (docs/facts.md), so its shared
library is loaded the way ORT would (naming a missing CUDA library) and a one-node session is
probed with CPU fallback disabled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optieval.errors import BackendUnavailable
from optieval.runtime.base import Availability

__all__ = ["import_ort", "provider_availability", "provider_library_error"]


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
            {"hint": package_hint},
        )
    return _probe_provider(ort, provider)


def provider_library_error(ort: Any, provider: str) -> str | None:
    """Load the provider's shared library the way ORT would; return the loader's error (which
    names the missing CUDA library) or None. ORT itself only logs this and falls back."""
    import ctypes
    import sys

    library = _PROVIDER_LIBRARIES.get(provider)
    if library is None or not sys.platform.startswith("linux"):
        return None
    capi = Path(ort.__file__).parent / "capi"
    if not (capi / library).is_file():
        return None
    try:
        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:  # loads CUDA libraries shipped as nvidia-* wheels, if any
            with open(os.devnull, "w") as devnull, _redirect_stdout(devnull):
                preload(directory="")
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / library))
    except OSError as exc:
        return str(exc)
    except Exception:  # preload_dlls is best effort
        return None
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
