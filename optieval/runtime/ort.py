"""ONNX Runtime backends: ``ort-cpu``, ``ort-cuda`` and ``ort-trt``.

onnxruntime silently builds a CPU-only session when the CUDA or TensorRT provider fails to load
(FACTS.md). Every GPU backend here disables the CPU fallback and checks that its provider is the
session's first one, so a result labelled ``ort-cuda`` never comes from the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime.base import Availability, Backend
from optieval.signature import Signature, signature_from_ort

_GRAPH_LEVELS = ("disable", "basic", "extended", "all")


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency of optieval
        raise BackendUnavailable(
            f"onnxruntime cannot be imported ({exc})", hint="pip install onnxruntime-gpu"
        ) from exc
    return onnxruntime


class OrtBackend(Backend):
    """Shared life cycle of the ONNX Runtime backends.

    Args:
        model: path to an ONNX file (external data beside it is found by ORT).
        threads: intra-op threads (None: ORT's default).
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all`` (default).
    """

    provider: ClassVar[str]

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        threads: int | None = None,
        graph_optimization: str = "all",
        profile_dir: str | None = None,
    ) -> None:
        super().__init__()
        if graph_optimization not in _GRAPH_LEVELS:
            raise InputError(
                f"unknown graph optimization level {graph_optimization!r}",
                where="--graph-optimization",
                hint=f"choose one of {', '.join(_GRAPH_LEVELS)}",
            )
        if threads is not None and threads < 1:
            raise InputError("thread count must be at least 1", where="--threads")
        self.model = Path(model)
        self.options = {"threads": threads, "graph_optimization": graph_optimization}
        self._profile_dir = profile_dir
        self.session: Any = None

    def provider_options(self) -> dict[str, Any]:
        """Options passed to this backend's execution provider."""
        return {}

    def _session_options(self, ort: Any) -> Any:
        so = ort.SessionOptions()
        threads = self.options["threads"]
        if threads is not None:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        level = self.options["graph_optimization"]
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
        so.log_severity_level = 3
        if self.provider != "CPUExecutionProvider":
            # Raise instead of quietly building a CPU session (FACTS.md, ONNX Runtime).
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        if self._profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(self._profile_dir) / "ort_profile")
        return so

    def _load(self) -> Signature:
        ort = _import_ort()
        if not self.model.is_file():
            raise InputError("model file not found", where=str(self.model))
        providers: list[Any] = [(self.provider, self.provider_options())]
        if self.provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")  # for ops the GPU provider lacks
        try:
            self.session = ort.InferenceSession(
                str(self.model), sess_options=self._session_options(ort), providers=providers
            )
        except Exception as exc:
            raise self._classify_load_error(exc) from exc
        active = self.session.get_providers()
        if not active or active[0] != self.provider:
            raise BackendUnavailable(
                f"onnxruntime built a session on {active} instead of {self.provider}",
                where=self.name,
                hint="run `optieval doctor` to see why the provider did not load",
            )
        return signature_from_ort(self.session)

    def _classify_load_error(self, exc: Exception) -> Exception:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lowered = text.lower()
        if any(w in lowered for w in ("protobuf", "load model", "invalid_graph", "invalid model")):
            return InputError(
                f"onnxruntime cannot parse the model ({text})",
                where=str(self.model),
                hint="check the file with `optieval inspect`",
            )
        if self.provider != "CPUExecutionProvider":
            return BackendUnavailable(
                f"{self.provider} could not create a session ({text})", where=self.name
            )
        return BackendFailed(f"onnxruntime could not create a session ({text})", where=self.name)

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.signature.outputs]
        try:
            values = self.session.run(names, dict(feeds))
        except Exception as exc:
            raise InputError(
                f"onnxruntime rejected the feeds ({str(exc).strip().splitlines()[0]})",
                where=self.name,
                hint=f"the model expects {self.signature.describe()}",
            ) from exc
        return dict(zip(names, values))

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """Bind ``session.run`` to the feeds: the timed loop then calls ORT directly."""
        import functools

        self.check_feeds(feeds)
        names = [o.name for o in self.signature.outputs]
        return functools.partial(self.session.run, names, dict(feeds))

    def end_profiling(self) -> str | None:
        """Stop ORT's profiler (when enabled) and return the trace file path."""
        if self.session is None or self._profile_dir is None:
            return None
        return str(self.session.end_profiling())

    def _close(self) -> None:
        self.session = None


_PROVIDER_LIBRARIES = {
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
}


def _provider_availability(provider: str, package_hint: str) -> Availability:
    try:
        ort = _import_ort()
    except BackendUnavailable as exc:
        return Availability(False, str(exc))
    available = ort.get_available_providers()
    if provider not in available:
        return Availability(
            False,
            f"onnxruntime {ort.__version__} has no {provider} (providers: {', '.join(available)})",
            {"hint": package_hint},
        )
    missing = _provider_library_error(ort, provider)
    if missing:
        return Availability(
            False,
            f"onnxruntime-gpu {ort.__version__} is installed but its {provider} cannot load: "
            f"{missing}",
            {"hint": package_hint},
        )
    return _probe_provider(ort, provider)


def _provider_library_error(ort: Any, provider: str) -> str | None:
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


class OrtCpuBackend(OrtBackend):
    """ONNX Runtime on the CPU execution provider."""

    name = "ort-cpu"
    provider = "CPUExecutionProvider"

    @classmethod
    def availability(cls) -> Availability:
        try:
            _import_ort()
        except BackendUnavailable as exc:
            return Availability(False, str(exc))
        return Availability(True)


class OrtCudaBackend(OrtBackend):
    """ONNX Runtime on the CUDA execution provider, with no silent CPU fallback."""

    name = "ort-cuda"
    provider = "CUDAExecutionProvider"

    def provider_options(self) -> dict[str, Any]:
        return {"device_id": 0, "cudnn_conv_algo_search": "EXHAUSTIVE"}

    @classmethod
    def availability(cls) -> Availability:
        return _provider_availability(cls.provider, "pip install onnxruntime-gpu on a CUDA machine")


class OrtTrtBackend(OrtBackend):
    """ONNX Runtime on the TensorRT execution provider (it links TensorRT 10, weakly typed)."""

    name = "ort-trt"
    provider = "TensorrtExecutionProvider"

    @classmethod
    def availability(cls) -> Availability:
        return _provider_availability(
            cls.provider, "install onnxruntime-gpu and the TensorRT 10 libraries it links"
        )
