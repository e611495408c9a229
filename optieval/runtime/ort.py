"""ONNX Runtime backends: ``ort-cpu``, ``ort-cuda`` and ``ort-trt``.

onnxruntime silently builds a CPU-only session when the CUDA or TensorRT provider fails to load
(docs/facts.md). Every GPU backend here first loads its provider library the way ORT would (so a
missing CUDA library is named), then checks that its provider is the session's first one, so a
result labelled ``ort-cuda`` never comes from the CPU. With ``strict_placement=True`` the CPU
provider is left out altogether and ``session.disable_cpu_ep_fallback`` is set, so a node the GPU
provider cannot run fails the load instead of running on the CPU. (ORT refuses that entry when the
CPU provider is listed explicitly, so the two go together.)

Device-resident timing: :meth:`OrtCudaBackend.runner` with ``io="device"`` (the default) copies the
feeds to the GPU once, outside the timed call, binds inputs and outputs on the device (I/O
binding), and returns a callable that only runs the session; ``io="host"`` includes the host to
device and device to host copies in every call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from optieval.core import Signature, signature_from_ort
from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime import ort_providers
from optieval.runtime.base import IO_MODES, Availability, Backend

_GRAPH_LEVELS = ("disable", "basic", "extended", "all")
_ORT_RUNS_TO_CAPTURE = 3  # see OrtCudaBackend._ensure_captured


class OrtBackend(Backend):
    """Shared life cycle of the ONNX Runtime backends.

    Args:
        model: path to an ONNX file (external data beside it is found by ORT).
        threads: intra-op threads (None: ORT's default).
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all`` (default).
        profile_dir: write ORT's profiler trace there (None: no profiling).
        precision: the precision the caller will label results with; checked against the
            artifact's census on load (InputError, exit 2, when they differ). None: read only.
        strict_placement: GPU providers only; leave the CPU provider out so that every node must
            run on the GPU provider (default False: ORT may place shape nodes on the CPU, but the
            session's first provider is still checked).

    After :meth:`load`, ``options`` also holds ``precision`` (from the census) and ``providers``
    (the session's providers, first one checked).
    """

    provider: ClassVar[str]

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        threads: int | None = None,
        graph_optimization: str = "all",
        profile_dir: str | None = None,
        precision: str | None = None,
        strict_placement: bool = False,
    ) -> None:
        super().__init__()
        if graph_optimization not in _GRAPH_LEVELS:
            raise InputError(
                f"unknown graph optimization level {graph_optimization!r}",
                where="graph_optimization",
                hint=f"choose one of {', '.join(_GRAPH_LEVELS)}",
            )
        if threads is not None and threads < 1:
            raise InputError("thread count must be at least 1", where="threads")
        self.model = Path(model)
        self.options = {"threads": threads, "graph_optimization": graph_optimization}
        if self.provider != "CPUExecutionProvider":
            self.options["strict_placement"] = strict_placement
        self._requested_precision = precision
        self._strict_placement = strict_placement
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
        if self.provider != "CPUExecutionProvider" and self._strict_placement:
            # Raise instead of placing any node on the CPU (docs/facts.md, ONNX Runtime).
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        if self._profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(self._profile_dir) / "ort_profile")
        return so

    def providers(self) -> list[Any]:
        """The provider list given to the session: this backend's provider first."""
        providers: list[Any] = [(self.provider, self.provider_options())]
        if self.provider == "TensorrtExecutionProvider":
            cuda_options = {"device_id": self.options.get("device_id", 0)}
            providers.append(("CUDAExecutionProvider", cuda_options))
        if self.provider != "CPUExecutionProvider" and not self._strict_placement:
            providers.append("CPUExecutionProvider")  # for the few nodes ORT keeps on the host
        return providers

    def _load(self) -> Signature:
        from optieval.precision import require_precision

        ort = ort_providers.import_ort()
        if not self.model.is_file():
            raise InputError("model file not found", where=str(self.model))
        self.options["precision"] = require_precision(
            self.model, self._requested_precision, where=str(self.model)
        )
        if self.options["precision"] == "int8":
            from optieval.precision import artifact_int8_format, check_artifact_format

            # A u8s8 or dynamic artifact on the TensorRT EP is exit 2 naming both.
            int8_format = artifact_int8_format(self.model)
            check_artifact_format(int8_format, self.name, where=str(self.model))
            self.options["int8_format"] = int8_format
        if self.provider != "CPUExecutionProvider":
            missing = ort_providers.provider_library_error(ort, self.provider)
            if missing:
                raise BackendUnavailable(
                    f"{self.provider} cannot load in onnxruntime {ort.__version__}: {missing}",
                    where=self.name,
                    hint=ort_providers.missing_library_hint(missing)
                    or "install the CUDA/cuDNN (and TensorRT) libraries onnxruntime-gpu needs, "
                    "or run `optieval doctor`",
                )
        providers = self.providers()
        # Only what the artifact's manifest tells every deployment to set (nothing, for
        # optieval's own artifacts): the bench never measures a private tweak.
        from optieval.precision import artifact_session_options

        needed = artifact_session_options(self.model)
        extra: dict[str, Any] = {}
        if needed["disabled_optimizers"]:
            extra["disabled_optimizers"] = list(needed["disabled_optimizers"])
        if needed["config_entries"] or needed["disabled_optimizers"]:
            self.options["session_options"] = needed
        sess_options = self._session_options(ort)
        for key, value in needed["config_entries"].items():
            sess_options.add_session_config_entry(key, value)
        try:
            self.session = ort.InferenceSession(
                str(self.model),
                sess_options=sess_options,
                providers=providers,
                **extra,
            )
        except Exception as exc:
            raise self._classify_load_error(exc) from exc
        active = self.session.get_providers()
        self.options["providers"] = list(active)
        if not active or active[0] != self.provider:
            self.session = None
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
        return dict(zip(names, values, strict=True))

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


class OrtCpuBackend(OrtBackend):
    """ONNX Runtime on the CPU execution provider."""

    name = "ort-cpu"
    provider = "CPUExecutionProvider"

    @classmethod
    def availability(cls) -> Availability:
        try:
            ort_providers.import_ort()
        except BackendUnavailable as exc:
            return Availability(False, str(exc))
        return Availability(True)


def cuda_provider_options(
    *, device_id: int = 0, enable_cuda_graph: bool = False, use_tf32: bool = False
) -> dict[str, Any]:
    """CUDA EP options for ``ort-cuda``: exhaustive cuDNN search, CUDA graph on request, TF32
    off so that fp32 results are fp32."""
    options: dict[str, Any] = {
        "device_id": device_id,
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "use_tf32": "1" if use_tf32 else "0",
    }
    if enable_cuda_graph:
        options["enable_cuda_graph"] = "1"
    return options


def resolve_output_shapes(
    signature: Signature, feed_shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]] | None:
    """Output shapes with symbolic dims bound from the inputs' dims of the same name (``batch``);
    None when any output dim stays unknown (then ORT must allocate the outputs)."""
    bound: dict[str, int] = {}
    for spec in signature.inputs:
        for dim, size in zip(spec.shape, feed_shapes.get(spec.name, ()), strict=False):
            if isinstance(dim, str):
                bound[dim] = int(size)
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in signature.outputs:
        dims = [
            d if isinstance(d, int) else bound.get(d) if isinstance(d, str) else None
            for d in spec.shape
        ]
        if any(d is None for d in dims):
            return None
        shapes[spec.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    return shapes


class OrtCudaBackend(OrtBackend):
    """ONNX Runtime on the CUDA execution provider, with no silent CPU fallback.

    Args (besides :class:`OrtBackend`'s):
        device_id: the CUDA device (default 0).
        io: ``device`` (default): :meth:`runner` keeps inputs and outputs resident on the GPU
            through I/O binding, the copies happen once outside the timed call; ``host``: every
            timed call includes the host to device and device to host copies.
        enable_cuda_graph: capture the session in a CUDA graph (ORT's ``enable_cuda_graph``);
            inputs and outputs are then bound to fixed device buffers, whose output shapes must
            follow from the input shapes.
    """

    name = "ort-cuda"
    provider = "CUDAExecutionProvider"
    ort_device: ClassVar[str] = "cuda"  # OrtValue device of the bound inputs and outputs

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device_id: int = 0,
        io: str = "device",
        enable_cuda_graph: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        if io not in IO_MODES:
            raise InputError(
                f"unknown I/O mode {io!r}", where="io", hint=f"choose {' or '.join(IO_MODES)}"
            )
        self.options.update(
            {"device_id": device_id, "io": io, "enable_cuda_graph": enable_cuda_graph}
        )
        self._graph_binding: tuple[Any, dict[str, Any]] | None = None
        self._graph_fed: object | None = None  # whose feeds the graph's buffers hold
        self._graph_runners = 0
        self._captured = False
        # Each runner's device inputs and outputs, kept alive with their bindings.
        self._bindings_alive: list[dict[str, Any]] = []

    def provider_options(self) -> dict[str, Any]:
        return cuda_provider_options(
            device_id=self.options["device_id"],
            enable_cuda_graph=self.options["enable_cuda_graph"],
        )

    @classmethod
    def availability(cls) -> Availability:
        return ort_providers.provider_availability(
            cls.provider, "pip install onnxruntime-gpu on a CUDA machine"
        )

    def _bind_device(self, feeds: Mapping[str, np.ndarray]) -> tuple[Any, dict[str, Any]]:
        """Copy ``feeds`` to the device and bind them with device outputs; returns the binding
        and the input OrtValues (kept alive with it, updated in place for a CUDA graph)."""
        ort = ort_providers.import_ort()
        device = self.options["device_id"]
        binding = self.session.io_binding()
        values: dict[str, Any] = {}
        for name, array in feeds.items():
            # A copy: a host OrtValue shares the array's memory, and a CUDA graph's buffers
            # are later overwritten in place with other feeds.
            values[name] = ort.OrtValue.ortvalue_from_numpy(
                np.array(array, order="C", copy=True), self.ort_device, device
            )
            binding.bind_ortvalue_input(name, values[name])
        shapes = resolve_output_shapes(self.signature, {k: v.shape for k, v in feeds.items()})
        dtypes = {o.name: o.dtype for o in self.signature.outputs}
        for out in self.signature.outputs:
            if shapes is not None:
                # Fixed output buffers: a captured CUDA graph replays into the same addresses.
                values[out.name] = ort.OrtValue.ortvalue_from_shape_and_type(
                    shapes[out.name], np.dtype(dtypes[out.name]).type, self.ort_device, device
                )
                binding.bind_ortvalue_output(out.name, values[out.name])
            elif self.options["enable_cuda_graph"]:
                raise InputError(
                    f"output {out.name!r} has a shape that does not follow from the inputs "
                    f"({out.shape_text()}); a CUDA graph needs fixed output buffers",
                    where=self.name,
                    hint="run without `cuda_graph`",
                )
            else:
                binding.bind_output(out.name, self.ort_device, device)
        return binding, values

    def _run_binding(self, binding: Any) -> dict[str, np.ndarray]:
        names = [o.name for o in self.signature.outputs]
        self.session.run_with_iobinding(binding)
        return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.options["enable_cuda_graph"]:
            return super()._infer(feeds)
        return self._graph_call(feeds)[0]()

    def _graph_call(
        self, feeds: Mapping[str, np.ndarray], *, always_copy: bool = False
    ) -> tuple[Callable[[], dict[str, np.ndarray]], Callable[[], None]]:
        """With a CUDA graph the bound addresses must not change: bind once, then copy new
        feeds into the same device buffers (``update_inplace``). Returns the call (feed, run,
        outputs to the host) and the feed step alone, which copies only when other feeds were
        copied in since (several batches share the one graph's buffers), or every time with
        ``always_copy`` (``io="host"``: the copy is part of each call)."""
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        if self._graph_binding is None or any(
            tuple(self._graph_binding[1][k].shape()) != s for k, s in shapes.items()
        ):
            if self._graph_binding is not None:
                raise InputError(
                    "a CUDA graph was captured for other input shapes",
                    where=self.name,
                    hint="load a new backend per shape when enable_cuda_graph is on",
                )
            self._graph_binding = self._bind_device(feeds)
        binding, values = self._graph_binding
        arrays = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        token = object()

        def feed() -> None:
            if always_copy or self._graph_fed is not token:
                for name, array in arrays.items():
                    values[name].update_inplace(array)
                self._graph_fed = token

        def call() -> dict[str, np.ndarray]:
            feed()
            return self._run_binding(binding)

        return call, feed

    def _ensure_captured(self, call: Callable[[], object]) -> None:
        """Run until ORT has captured its CUDA graph: the CUDA EP captures on the third run
        (cuda_execution_provider.h: ``min_num_runs_before_cuda_graph_capture_ = 2`` regular
        runs first; the TensorRT EP needs 1). The time counts in cold start, as for
        ``tensorrt`` (docs/guides/gpu.md)."""
        if self._captured:
            return
        start = time.perf_counter()
        for _ in range(_ORT_RUNS_TO_CAPTURE):
            call()
        ms = (time.perf_counter() - start) * 1e3
        self._captured = True
        self.options["graph_capture_ms"] = [round(ms, 3)]
        self.cold_start_ms = (self.cold_start_ms or 0.0) + ms

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """A callable for the timed loop. ``io="device"``: inputs copied to the GPU here, once;
        the callable runs the session on device-resident inputs and outputs (ORT synchronizes
        the outputs before returning, so a host clock around it measures the work).
        ``io="host"``: the callable includes both copies.

        With ``enable_cuda_graph`` the graph is captured here (in cold start). ORT replays one
        graph on fixed buffers, so when several runners exist (one per ``--data`` batch) each
        call first copies its batch into them whenever another batch ran last: that
        host-to-device copy is then inside the timed call (``options["graph_input_copy"]``)."""
        import functools

        self.check_feeds(feeds)
        if self.options["io"] == "host":
            if self.options["enable_cuda_graph"]:
                call, _ = self._graph_call(feeds, always_copy=True)
                self._ensure_captured(call)
                return call
            return super().runner(feeds)
        if self.options["enable_cuda_graph"]:
            call, feed = self._graph_call(feeds)
            self._ensure_captured(call)
            assert self._graph_binding is not None
            binding = self._graph_binding[0]
            run = self.session.run_with_iobinding
            self._graph_runners += 1
            if self._graph_runners > 1:
                self.options["graph_input_copy"] = (
                    "timed: each call copies its batch into the graph's input buffers when "
                    "another batch ran last"
                )

            def graph_call() -> None:
                feed()
                run(binding)

            return graph_call
        binding, values = self._bind_device(feeds)
        self._bindings_alive.append(values)
        return functools.partial(self.session.run_with_iobinding, binding)

    def _close(self) -> None:
        self._graph_binding = None
        self._graph_fed = None
        self._graph_runners = 0
        self._captured = False
        self._bindings_alive = []
        super()._close()
