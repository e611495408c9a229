"""PyTorch reference backends: ``torch-cpu`` and ``torch-cuda``.

They run the PyTorch source, rebuilt from an export manifest's provenance
(:func:`optieval.source.specs.load_model_from_manifest`) or from a spec string
(:func:`optieval.source.specs.load_model`). Outputs carry the names the ONNX export gave them:
the manifest's ``io.outputs`` in order, matched against the module's outputs flattened the way
the exporter flattens them (:func:`flatten_outputs`).

Precision: fp32 on both (TF32 off on CUDA, so fp32 means fp32); fp16 and bf16 through
``torch.autocast`` on CUDA only; int8 is not a torch precision here (InputError, exit 2).

Timing on ``torch-cuda``:

* :meth:`TorchCudaBackend.runner` (the bench's timed loop) with ``io="device"`` (default) moves the
  feeds to the GPU once, outside the timed call; each call runs the module and synchronizes, so a
  host clock measures the work. ``io="host"`` includes both copies in each call.
* :meth:`TorchCudaBackend.device_runner` returns a callable that runs once and returns the
  device time in milliseconds, from CUDA events recorded on the stream around the module call.
* :meth:`TorchCudaBackend.infer_timed` runs once on host feeds and returns ``(outputs,
  device_ms)``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from optieval.core import TORCH_PRECISIONS, Signature, TensorSpec
from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime.base import IO_MODES, Availability, Backend


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable(
            f"torch cannot be imported ({exc})", hint="pip install torch"
        ) from exc
    return torch


def flatten_outputs(value: Any) -> list[tuple[str, Any]]:
    """Flatten a module's outputs into ``(name, tensor)`` pairs in the exporter's order
    (delegates to :func:`optieval.source.specs.flatten_outputs`: ``output`` for a bare tensor,
    dict keys and sequence indices joined with dots, ``logits``, ``hidden_states.0``)."""
    from optieval.source import flatten_outputs as flatten

    return flatten(value)


_TORCH_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float64": "float64",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


def _dtype_name(tensor: Any) -> str:
    return _TORCH_DTYPES.get(str(tensor.dtype).replace("torch.", ""), str(tensor.dtype))


def check_torch_precision(precision: str, *, cuda: bool) -> str:
    """Return ``precision`` if the torch backend on this device can honour it; InputError
    (exit 2) otherwise: int8 is no torch precision here, fp16/bf16 autocast runs on CUDA only."""
    if precision == "int8":
        raise InputError(
            "int8 is not a torch precision here: the PyTorch backends run the source model",
            where="precision",
            hint="run int8 on an ONNX backend (ort-cpu, ort-cuda, ort-trt, tensorrt)",
        )
    if precision not in TORCH_PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}",
            where="precision",
            hint=f"torch backends take {', '.join(TORCH_PRECISIONS)}",
        )
    if precision != "fp32" and not cuda:
        raise InputError(
            f"{precision} runs through autocast on CUDA only; torch-cpu is the fp32 reference",
            where="precision",
            hint="use torch-cuda, or fp32 on torch-cpu",
        )
    return precision


def _example_inputs(loaded: Any) -> Any:
    for attr in ("example_inputs", "inputs", "example", "example_input"):
        value = getattr(loaded, attr, None)
        if value is not None:
            return value
    return None


def _input_names(module: Any, count: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(module.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]


def _specs_from_io(entries: Any) -> tuple[TensorSpec, ...] | None:
    if not isinstance(entries, list) or not entries:
        return None
    specs = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "name" not in entry:
            return None
        specs.append(
            TensorSpec(
                str(entry["name"]),
                str(entry.get("dtype", "float32")),
                tuple(entry.get("shape", ())),
            )
        )
    return tuple(specs)


class TorchBackend(Backend):
    """Shared life cycle of the PyTorch backends.

    Args:
        model: an exported ONNX file whose manifest (``model.onnx.json``) records the PyTorch
            source's provenance, or that manifest itself; None when ``spec`` is given.
        spec: a model spec (``pkg.mod:factory``, ``file.py:factory``, ``.pt``, ``.pt2``), used
            when ``model`` is None.
        checkpoint: weights for ``spec`` (optional).
        precision: ``fp32`` (default); ``fp16`` / ``bf16`` via autocast on torch-cuda only.
        threads: torch intra-op threads (process-wide; None leaves torch's default).

    Raises (on construction): InputError for int8, for fp16/bf16 on the CPU, or with neither
    ``model`` nor ``spec``. On load: InputError when the manifest is missing or has no
    provenance, BackendFailed when the rebuilt module's outputs do not match the manifest's.
    """

    device_type: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = TORCH_PRECISIONS

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        spec: str | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        precision: str = "fp32",
        threads: int | None = None,
        loaded: Any = None,
    ) -> None:
        super().__init__()
        check_torch_precision(precision, cuda=self.device_type == "cuda")
        if model is None and spec is None and loaded is None:
            raise InputError(
                f"{self.name} needs an exported model (with its manifest) or a `spec`",
                where=self.name,
                hint="pass model.onnx from `optieval export`, or `spec` pkg.mod:factory",
            )
        if threads is not None and threads < 1:
            raise InputError("thread count must be at least 1", where="threads")
        self.model = Path(model) if model is not None else None
        self.spec = spec
        self.checkpoint = checkpoint
        self.precision = precision
        self._loaded = loaded
        self.module: Any = None
        self._order: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
        self._by_name: Callable[[list[str]], bool] | None = None
        self._output_dtypes: dict[str, str] = {}
        self.options = {"precision": precision, "threads": threads, "spec": spec, "source": None}

    # -- load ----------------------------------------------------------------------------------
    def _rebuild(self) -> tuple[Any, dict[str, Any] | None]:
        """Return (LoadedModel, manifest or None). An explicit ``spec`` wins over the manifest's
        provenance; the manifest still names the inputs and outputs."""
        manifest: dict[str, Any] | None = None
        folder = Path(".")
        if self.model is not None:
            from optieval.core import manifest_path, read_json, read_manifest

            if self.model.suffix == ".json":
                manifest = read_json(self.model, what="manifest")
                where = str(self.model)
            else:
                manifest = read_manifest(self.model)
                where = str(manifest_path(self.model))
            folder = self.model.parent
            if manifest is None and self.spec is None and self._loaded is None:
                raise InputError(
                    "no manifest beside the model, so the PyTorch source is unknown",
                    where=where,
                    hint="export with `optieval export`, or pass `spec`",
                )
        if self._loaded is not None:
            self.options["source"] = "module"
            return self._loaded, manifest
        # lazily: pulls in torch and the user's code
        from optieval.source import load_model, load_model_from_manifest

        if self.spec is not None:
            self.options["source"] = "spec"
            checkpoint = Path(self.checkpoint) if self.checkpoint is not None else None
            return load_model(self.spec, base_dir=None, checkpoint=checkpoint), manifest
        assert manifest is not None
        self.options["source"] = "manifest"
        return load_model_from_manifest(manifest, folder), manifest

    def _load(self) -> Signature:
        torch = _import_torch()
        self._prepare_device(torch)
        loaded, manifest = self._rebuild()
        self._order = getattr(loaded, "order_inputs", None)
        self._by_name = getattr(loaded, "call_by_name", None)
        module = getattr(loaded, "module", loaded)
        # An ExportedProgram's module has no train/eval switch: it is inference-only already.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            module.eval()
        self.module = module.to(self.device)
        io = (manifest or {}).get("io") or {}
        inputs = _specs_from_io(io.get("inputs"))
        outputs = _specs_from_io(io.get("outputs"))
        example = _example_inputs(loaded)
        if inputs is None:
            inputs = self._inputs_from_example(example)
        if outputs is None:
            outputs = self._outputs_from_example(inputs, example)
        self._output_dtypes = {o.name: o.dtype for o in outputs}
        return Signature(inputs, outputs)

    def _prepare_device(self, torch: Any) -> None:
        if self.options["threads"] is not None:
            torch.set_num_threads(int(self.options["threads"]))

    @property
    def device(self) -> str:
        """The torch device string the module runs on."""
        return self.device_type

    def _example_tensors(self, example: Any) -> list[tuple[str, Any]]:
        torch = _import_torch()
        if example is None:
            raise InputError(
                "the model has no manifest I/O and no example inputs",
                where=self.spec or str(self.model),
                hint="export it with `optieval export` first",
            )
        if isinstance(example, Mapping):
            return [(str(k), v) for k, v in example.items()]
        if isinstance(example, torch.Tensor):
            example = (example,)
        tensors = list(example)
        return list(zip(_input_names(self.module, len(tensors)), tensors, strict=True))

    def _inputs_from_example(self, example: Any) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(name, _dtype_name(t), ("batch", *tuple(int(d) for d in t.shape[1:])))
            if t.dim() > 0
            else TensorSpec(name, _dtype_name(t), ())
            for name, t in self._example_tensors(example)
        )

    def _outputs_from_example(
        self, inputs: Sequence[TensorSpec], example: Any
    ) -> tuple[TensorSpec, ...]:
        feeds = {name: t for name, t in self._example_tensors(example)}
        raw = self._call({k: v.to(self.device) for k, v in feeds.items()})
        return tuple(
            TensorSpec(name, _dtype_name(t), tuple(int(d) for d in t.shape))
            for name, t in flatten_outputs(raw)
        )

    # -- run -----------------------------------------------------------------------------------
    def _call(self, tensors: Mapping[str, Any]) -> Any:
        """Run the module on device tensors: by keyword when forward's parameters carry the
        input names, else positionally in forward's order (as :class:`LoadedModel` does)."""
        torch = _import_torch()
        ordered = self._order(tensors) if self._order is not None else dict(tensors)
        by_name = self._by_name is not None and self._by_name(list(ordered))
        with torch.inference_mode():
            if self.precision == "fp32":
                return self._forward(ordered, by_name)
            dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
            with torch.autocast(device_type="cuda", dtype=dtype):
                return self._forward(ordered, by_name)

    def _forward(self, ordered: dict[str, Any], by_name: bool) -> Any:
        return self.module(**ordered) if by_name else self.module(*ordered.values())

    def _to_device(self, feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
        torch = _import_torch()
        return {
            name: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
            for name, array in feeds.items()
        }

    def _named_outputs(self, raw: Any) -> list[tuple[str, Any]]:
        flat = flatten_outputs(raw)
        names = [o.name for o in self.signature.outputs]
        if len(flat) != len(names):
            raise BackendFailed(
                f"the PyTorch module returned {len(flat)} outputs, the export recorded "
                f"{len(names)} ({', '.join(names)})",
                where=self.name,
                hint="re-export the model: the source changed since the manifest was written",
            )
        return list(zip(names, (t for _, t in flat), strict=True))

    def _to_host(self, raw: Any) -> dict[str, np.ndarray]:
        torch = _import_torch()
        result: dict[str, np.ndarray] = {}
        for name, tensor in self._named_outputs(raw):
            want = self._output_dtypes.get(name)
            t = tensor.detach()
            # autocast leaves fp16/bf16 outputs; the ONNX artifacts keep fp32 I/O.
            if want in ("float32", "float16", "float64") and t.is_floating_point():
                t = t.to(getattr(torch, want))
            elif t.dtype == torch.bfloat16:
                t = t.float()
            result[name] = t.cpu().numpy()
        return result

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._to_host(self._call(self._to_device(feeds)))

    def _close(self) -> None:
        self.module = None


class TorchCpuBackend(TorchBackend):
    """The PyTorch source on the CPU: the fp32 reference every CI machine can run."""

    name = "torch-cpu"
    device_type = "cpu"
    precisions = ("fp32",)

    @classmethod
    def availability(cls) -> Availability:
        try:
            torch = _import_torch()
        except BackendUnavailable as exc:
            return Availability(False, exc.message, {"hint": exc.hint})
        return Availability(True, detail={"torch": torch.__version__})

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """Tensors are made once, outside the timed call; the callable runs the module."""
        self.check_feeds(feeds)
        tensors = self._to_device(feeds)
        return lambda: self._call(tensors)


def cuda_unusable_reason(torch: Any) -> str | None:
    """Why ``torch.cuda`` cannot run here (no CUDA build, driver error, no device), or None."""
    if getattr(torch.version, "cuda", None) is None:
        return f"torch {torch.__version__} is a CPU-only build (no CUDA)"
    try:
        if torch.cuda.is_available():
            return None
        count = torch.cuda.device_count()
    except Exception as exc:  # driver errors surface here
        return f"CUDA driver error: {exc}"
    if count == 0:
        try:
            torch.cuda.init()
        except Exception as exc:
            return f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use CUDA: {exc}"
        return "no CUDA device is visible"
    return "torch.cuda.is_available() is False"


class TorchCudaBackend(TorchBackend):
    """The PyTorch source on a CUDA device (fp32 with TF32 off; fp16/bf16 via autocast).

    Extra args: ``device_id`` (default 0); ``io``: ``device`` (default; :meth:`runner` keeps
    inputs on the GPU, moved once outside the timed call) or ``host`` (each timed call copies
    inputs in and outputs out).
    """

    name = "torch-cuda"
    device_type = "cuda"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device_id: int = 0,
        io: str = "device",
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        if io not in IO_MODES:
            raise InputError(
                f"unknown I/O mode {io!r}", where="io", hint=f"choose {' or '.join(IO_MODES)}"
            )
        self.options.update({"device_id": device_id, "io": io})

    @property
    def device(self) -> str:
        return f"cuda:{self.options['device_id']}"

    @classmethod
    def availability(cls) -> Availability:
        try:
            torch = _import_torch()
        except BackendUnavailable as exc:
            return Availability(False, exc.message, {"hint": exc.hint})
        reason = cuda_unusable_reason(torch)
        if reason is not None:
            return Availability(False, reason, {"hint": "install a CUDA build of torch on a GPU"})
        return Availability(
            True, detail={"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
        )

    def _prepare_device(self, torch: Any) -> None:
        super()._prepare_device(torch)
        reason = cuda_unusable_reason(torch)
        if reason is not None:
            raise BackendUnavailable(reason, where=self.name)
        torch.cuda.set_device(self.options["device_id"])
        if self.precision == "fp32":
            # A strict fp32 reference: TF32 would round matmul/conv inputs to 10 mantissa bits.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.options["tf32"] = False if self.precision == "fp32" else None

    def _synchronize(self) -> None:
        _import_torch().cuda.synchronize(self.device)

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """``io="device"``: inputs moved to the GPU here, once; each call runs the module and
        synchronizes. ``io="host"``: each call copies in, runs, copies out."""
        self.check_feeds(feeds)
        if self.options["io"] == "host":
            bound = dict(feeds)
            return lambda: self._infer(bound)
        tensors = self._to_device(feeds)
        self._synchronize()

        def call() -> object:
            out = self._call(tensors)
            self._synchronize()
            return out

        return call

    def device_runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], float]:
        """A callable that runs once on device-resident inputs (moved here, once) and returns
        the device time in milliseconds, from CUDA events around the module call."""
        torch = _import_torch()
        self.check_feeds(feeds)
        tensors = self._to_device(feeds)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        self._synchronize()

        def call() -> float:
            start.record()
            self._call(tensors)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return call

    def infer_timed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run once on host feeds; return the outputs and the device time (ms, CUDA events,
        copies excluded)."""
        torch = _import_torch()
        self.check_feeds(feeds)
        tensors = self._to_device(feeds)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        raw = self._call(tensors)
        end.record()
        end.synchronize()
        return self._to_host(raw), float(start.elapsed_time(end))
