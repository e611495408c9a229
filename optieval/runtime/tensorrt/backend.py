"""Native TensorRT: the ``tensorrt`` backend (:class:`TensorrtBackend`) and its run path.

Written against the TensorRT 10.12+ / 11.x Python API (docs/facts.md). The phases live beside
it: :mod:`~optieval.runtime.tensorrt.library` (import, availability, GPU identity),
:mod:`~optieval.runtime.tensorrt.build` (builder, profiles, timing cache, ``optieval build``),
:mod:`~optieval.runtime.tensorrt.readback` (layer precisions from the EngineInspector),
:mod:`~optieval.runtime.tensorrt.manifest` (engine manifests, cache keys and their checks) and
:mod:`~optieval.runtime.tensorrt.allocator` (data-dependent outputs). Profile shapes live in
:mod:`optieval.runtime.profiles`.

Engines: built engines are cached in the optieval cache (``tensorrt/<key>/engine.plan`` with its
manifest), keyed by the artifact's hash, TensorRT version, GPU, compute capability and build
options, and verified (hash of the plan bytes) on load. The backend loads a ``model.plan`` from
``optieval build`` and refuses one built for another TensorRT version or GPU unless it was built
version- or hardware-compatible.

Timing: :meth:`TensorrtBackend.runner` (``io="device"``: each runner's inputs are copied once,
outside the timed call, to device buffers of its own (one runner per ``--data`` batch, so each
batch is timed on its own data); each call binds them when another runner ran last, enqueues
``execute_async_v3`` on the backend's non-default stream, or replays the CUDA graph captured on
those buffers, and synchronizes). Device memory, the stream, events and graphs come from
:mod:`~optieval.runtime.tensorrt.device` (torch.cuda);
:meth:`TensorrtBackend.device_runner` returns device milliseconds per call from CUDA events on
that stream; :meth:`TensorrtBackend.infer_timed` returns ``(outputs, device_ms)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core import TENSORRT_PRECISIONS, Signature, TensorSpec
from optieval.errors import BackendFailed, InputError
from optieval.runtime.base import IO_MODES, Availability, Backend
from optieval.runtime.profiles import ProfileShape, check_in_profiles, compute_profiles
from optieval.runtime.tensorrt.allocator import OutputSlot, make_output_allocator, read_output
from optieval.runtime.tensorrt.build import build_engine, timing_cache_path
from optieval.runtime.tensorrt.device import open_device
from optieval.runtime.tensorrt.library import (
    TrtLogger,
    engine_signature,
    import_trt,
    init_plugins,
    trt_availability,
    trt_versions,
)
from optieval.runtime.tensorrt.manifest import (
    PLAN_SUFFIXES,
    check_engine_manifest,
    engine_cache_key,
    engine_manifest,
)

__all__ = ["TensorrtBackend"]


@dataclass
class _Staged:
    """One batch's own device buffers (inputs, fixed-shape outputs), its input shapes and,
    with a CUDA graph, the replay of the graph captured on their addresses."""

    inputs: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    outputs: dict[str, Any]
    replay: Callable[[], None] | None = None


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
    precisions = TENSORRT_PRECISIONS

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
                f"unknown I/O mode {io!r}", where="io", hint=f"choose {' or '.join(IO_MODES)}"
            )
        if precision is not None and precision not in TENSORRT_PRECISIONS:
            raise InputError(f"unknown precision {precision!r}", where="precision")
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
        self._device: Any = None  # TorchCuda: buffers, stream, events, graphs
        self._log: TrtLogger | None = None
        self._reused: dict[tuple[Any, ...], _Staged] = {}  # host feeds' buffers, by shape
        self._active: _Staged | None = None  # whose buffers the context points at
        self._shapes_set: dict[str, tuple[int, ...]] = {}
        # Data-dependent outputs: name -> (OutputSlot, its trt.IOutputAllocator).
        self._allocators: dict[str, tuple[OutputSlot, Any]] = {}
        self._runtime: Any = None
        self._pending = False
        self._onnx_signature: Signature | None = None
        self._identity: tuple[str, str, str] = ("", "", "")
        self._plan_source: Path | None = None  # the engine cache's plan file, once chosen

    @classmethod
    def availability(cls) -> Availability:
        return trt_availability()

    # -- load ----------------------------------------------------------------------------------
    def _load(self) -> Signature:
        from optieval.core import read_json, sha256_bytes

        device_id = int(self.options["device_id"])
        # The engine is built, cached and checked for the device it runs on: the identity
        # (name, compute capability) is that device's, not device 0's, and it is made current
        # before anything is built or deserialized.
        trt, version, gpu_name, cc = trt_versions(device_id)
        self._identity = (version, gpu_name, cc)
        self._device = open_device(device_id)
        if self.model.suffix in PLAN_SUFFIXES:
            plan = self._read_plan(read_json, sha256_bytes, version, gpu_name, cc)
            self._deserialize(
                trt,
                plan,
                host_code=bool(self.options.get("version_compatible")),
                where=self.model,
            )
            return engine_signature(trt, self._engine)
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
        self._plan_source = plan_path
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
            timing_cache=timing_cache_path(version, cc, gpu_name),
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
                build_notes=built.warnings,
            ),
        )
        self.warnings.extend(built.warnings)
        self.options["read_back"] = built.readback.to_json()
        self.options["engine_cache_hit"] = False
        return built.plan

    def _deserialize(
        self, trt: Any, plan: bytes, *, host_code: bool = False, where: Path | None = None
    ) -> None:
        """Deserialize ``plan`` (read from ``where``: the prebuilt plan, or the engine cache)
        into the engine and its execution context; plugins are registered first."""
        log = self._log = TrtLogger(trt)
        if not init_plugins(trt, log.logger):
            self.warnings.append(
                f"TensorRT {trt.__version__} could not register its plugins "
                f"({log.tail() or 'no message'}); plans using them will not load"
            )
        runtime = trt.Runtime(log.logger)
        if host_code:
            # Version-compatible plans carry their own lean runtime: only for plans whose
            # manifest says they were built so.
            runtime.engine_host_code_allowed = True
        self._runtime = runtime  # the engine must not outlive its runtime
        self._engine = runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            source = where or self._plan_source or self.model
            raise BackendFailed(
                f"TensorRT {trt.__version__} could not deserialize the engine {source} "
                f"({log.tail() or 'no message'})",
                where=str(source),
                hint="rebuild it with `optieval build` on this TensorRT version and GPU",
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
        self._deserialize(import_trt(), self._engine_plan(self.profiles))
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

    def _stage(self, feeds: Mapping[str, np.ndarray]) -> _Staged:
        """Copy ``feeds`` into new device buffers of their own and allocate the outputs of fixed
        shape beside them (data-dependent outputs get an output allocator): one batch's
        buffers, which no other batch overwrites. The context is bound to them."""
        self._ensure_engine(feeds)
        device = self._device
        staged = _Staged({k: device.upload(v) for k, v in feeds.items()}, {}, {})
        staged.shapes = {k: tuple(int(d) for d in v.shape) for k, v in feeds.items()}
        self._set_shapes(staged.shapes)
        for spec in self.signature.outputs:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                self._bind_allocator(spec)
            else:
                staged.outputs[spec.name] = device.empty(shape, spec.dtype)
        device.synchronize()
        self._active = None
        self._activate(staged)
        return staged

    def _set_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        for name, shape in shapes.items():
            if self._shapes_set.get(name) == shape:
                continue
            # False when the shape is outside the profile or the network's dims (Polygraphy's
            # runner checks it too)
            if not self._context.set_input_shape(name, shape):
                raise InputError(
                    f"TensorRT refused shape {shape} for input {name!r} "
                    f"({self._log_tail() or 'no message'})",
                    where=self.name,
                )
            self._shapes_set[name] = shape

    def _activate(self, staged: _Staged) -> None:
        """Point the context at ``staged``'s buffers (shapes and addresses), unless it already
        is. With several batches this runs inside each timed call: a few host calls, no copy."""
        if self._active is staged:
            return
        self._set_shapes(staged.shapes)
        for name, buffer in (*staged.inputs.items(), *staged.outputs.items()):
            if not self._context.set_tensor_address(name, self._device.address(buffer)):
                raise BackendFailed(
                    f"TensorRT refused the device address of {name!r} "
                    f"({self._log_tail() or 'no message'})",
                    where=self.name,
                )
        self._active = staged

    def _bind_allocator(self, spec: TensorSpec) -> None:
        """Register an output allocator for a data-dependent output (its size is known only
        after the run); its memory lives in ``self._allocators``."""
        if self.options["cuda_graph"]:
            raise BackendFailed(
                f"output {spec.name!r} has a data-dependent size, which a CUDA graph cannot "
                "capture (TensorRT allocates it during the run)",
                where=self.name,
                hint="run without `cuda_graph`",
            )
        held = self._allocators.get(spec.name)
        if held is None:
            slot = OutputSlot(spec.name, spec.dtype)
            allocator = make_output_allocator(import_trt(), slot, self._device, self._device.handle)
            held = (slot, allocator)
            self._allocators[spec.name] = held
        slot, allocator = held
        slot.shape = None
        if not self._context.set_output_allocator(spec.name, allocator):
            raise BackendFailed(
                f"TensorRT refused an output allocator for {spec.name!r}", where=self.name
            )

    def _log_tail(self) -> str:
        return self._log.tail() if self._log is not None else ""

    def _execute(self) -> None:
        """``execute_async_v3`` on the backend's stream; its False is BackendFailed naming the
        output allocator's exception when one raised (TensorRT only sees a null pointer)."""
        if self._context.execute_async_v3(self._device.handle):
            return
        for name, (slot, _) in self._allocators.items():
            if slot.error is not None:
                error, slot.error = slot.error, None
                raise BackendFailed(
                    f"the output allocator for {name!r} failed: {error}", where=self.name
                ) from error
        raise BackendFailed(
            f"execute_async_v3 failed ({self._log_tail() or 'no message'})", where=self.name
        )

    def _enqueue_fn(self, staged: _Staged) -> Callable[[], None]:
        """The call that runs the engine once on ``staged``'s buffers: bind them (when another
        batch was bound) and enqueue, or replay the CUDA graph captured on their addresses."""
        if not self.options["cuda_graph"]:

            def enqueue() -> None:
                self._activate(staged)
                self._execute()

            return enqueue
        if staged.replay is None:
            start = time.perf_counter()
            self._activate(staged)
            # Run once first so initialization is not captured (trtexec does the same), then
            # capture on the same stream with the addresses now bound.
            self._execute()
            self._device.synchronize()
            try:
                staged.replay = self._device.capture(self._execute)
            except BackendFailed as exc:
                raise BackendFailed(
                    f"TensorRT could not be captured in a CUDA graph ({exc.message})",
                    where=self.name,
                    hint="run without `cuda_graph`",
                ) from exc
            self._add_capture_ms((time.perf_counter() - start) * 1e3)
        return staged.replay

    def _add_capture_ms(self, ms: float) -> None:
        """CUDA-graph capture (with its warm-up run) counts in cold start, the first capture
        only, as for ``ort-cuda`` (docs/guides/gpu.md); every capture is listed."""
        captures = self.options.setdefault("graph_capture_ms", [])
        if not captures:
            self.cold_start_ms = (self.cold_start_ms or 0.0) + ms
        captures.append(round(ms, 3))

    def _host_outputs(self, staged: _Staged) -> dict[str, np.ndarray]:
        """Every output on the host, in the signature's order: staged buffers and the
        allocator-held (data-dependent) ones."""
        result: dict[str, np.ndarray] = {}
        for spec in self.signature.outputs:
            if spec.name in staged.outputs:
                result[spec.name] = self._device.download(staged.outputs[spec.name])
            elif spec.name in self._allocators:
                slot, allocator = self._allocators[spec.name]
                result[spec.name] = read_output(self._device, allocator.buffer, slot, self.name)
        return result

    def _host_staged(self, feeds: Mapping[str, np.ndarray]) -> _Staged:
        """Buffers reused for host feeds of one shape (``infer``, ``io="host"``): the feeds are
        copied into them, so a CUDA graph captured on them stays valid."""
        key = tuple(sorted((k, tuple(v.shape), str(v.dtype)) for k, v in feeds.items()))
        staged = self._reused.get(key)
        if staged is None:
            staged = self._reused[key] = self._stage(feeds)
        else:
            for name, array in feeds.items():
                self._device.write(staged.inputs[name], array)
        return staged

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        staged = self._host_staged(feeds)
        self._enqueue_fn(staged)()
        self._device.synchronize()
        return self._host_outputs(staged)

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """``io="device"``: the feeds are staged here in device buffers of this runner's own
        (one runner per batch never reads another's data); each call binds them when another
        runner ran last (host calls, no copy), enqueues or replays its CUDA graph, and
        synchronizes. ``io="host"``: each call copies inputs in and outputs out."""
        self.check_feeds(feeds)
        if self.options["io"] == "host":
            bound = dict(feeds)
            return lambda: self._infer(bound)
        staged = self._stage(feeds)
        enqueue = self._enqueue_fn(staged)
        synchronize = self._device.synchronize

        def call() -> None:
            enqueue()
            synchronize()

        call.staged = staged  # type: ignore[attr-defined]  # its buffers, for reading back
        return call

    def device_runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], float]:
        """A callable that runs once on device-resident buffers of its own and returns device
        milliseconds from CUDA events recorded on the engine's stream."""
        self.check_feeds(feeds)
        enqueue = self._enqueue_fn(self._stage(feeds))
        timed = self._device.timed
        return lambda: timed(enqueue)

    def infer_timed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run once on host feeds; return outputs and device ms (copies excluded)."""
        self.check_feeds(feeds)
        staged = self._host_staged(feeds)
        device_ms = self._device.timed(self._enqueue_fn(staged))
        return self._host_outputs(staged), device_ms

    def _close(self) -> None:
        self._reused = {}
        self._active = None
        self._shapes_set = {}
        self._allocators = {}
        self._context = None
        self._engine = None
        self._runtime = None
        self._log = None
        self._device = None
        self._pending = False
