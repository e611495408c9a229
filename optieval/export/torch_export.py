"""PyTorch -> ONNX: export, check, prove equal to the source, and write the manifest.

:func:`export_model` resolves the spec (:mod:`optieval.source.specs`), runs the model once on the
example inputs, exports it with the dynamo exporter (or the legacy TorchScript one, or dynamo
then TorchScript with ``auto``), saves it into a staging folder beside the output (one file, or
the file plus ``NAME.data`` external data for large models), runs ``onnx.checker`` (full check,
by path) and shape inference, compares ONNX Runtime CPU with PyTorch on fresh seeded inputs
(:mod:`optieval.export.verify`), then renames the files into place and writes the manifest
(``NAME.json``). An interrupted export leaves no half-written model.

A parity failure still writes the model (for debugging) and its manifest, marked
``parity.passed: false``, then raises :class:`ExportCheckFailed` (exit 1) carrying the result.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import (
    Signature,
    atomic_path,
    manifest_path,
    read_manifest,
    sha256_file,
    signature_from_onnx,
    write_manifest,
)
from optieval.errors import CheckFailed, InputError
from optieval.export.inputs import (
    DimInfo,
    DynamicDim,
    InputSpec,
    apply_export_sizes,
    make_tensors,
    parse_dynamic,
    parse_input,
    parse_input_range,
    parse_many,
    resolve_dynamic,
    spec_from_tensor,
)
from optieval.export.verify import ParityReport, case_sizes, run_parity, specs_at
from optieval.source import LoadedModel, flatten_outputs, load_model, one_line

__all__ = ["EXPORTERS", "ExportCheckFailed", "ExportResult", "ExporterInfo", "export_model"]

EXPORT_SCHEMA_VERSION = 1
EXPORTERS = ("dynamo", "torchscript", "auto")
# Above this many bytes of weights the model keeps its weights in NAME.data (ONNX files stop
# at 2 GB; the margin leaves room for the graph).
EXTERNAL_DATA_THRESHOLD = 1 << 30
_QUIET_LOGGERS = (
    "torch",
    "torch.onnx",
    "torch.export",
    "torch._export",
    "torch._dynamo",
    "torch.fx.experimental.symbolic_shapes",
    "onnxscript",
)


@dataclass(frozen=True)
class ExporterInfo:
    """Which exporter produced the file, which was asked for, and why they differ."""

    name: str
    requested: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (manifest ``exporter``)."""
        return {"name": self.name, "requested": self.requested, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExporterInfo:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["name"]), str(data["requested"]), data.get("reason"))


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and proved.

    Attributes:
        model_path: the ONNX file.
        manifest_path: its manifest (``model_path`` + ``.json``).
        files: ``{file name relative to the model's folder: sha256}`` (model, external data).
        signature: inputs and outputs (symbolic dims for dynamic ones).
        opset: the default-domain opset of the file.
        exporter: which exporter produced it (and why, for ``auto`` or TorchScript sources).
        external_data: whether the weights live in a separate ``.data`` file.
        versions: torch, onnx, onnxruntime, onnxscript and optieval versions.
        provenance: what is needed to rebuild the PyTorch reference (spec, base folder,
            checkpoint and hashes, example input specs, dynamic dims, seed).
        parity: ONNX Runtime CPU against PyTorch.
        warnings: what was changed or assumed on the way.
        timings: seconds spent exporting, checking and comparing.
    """

    model_path: Path
    manifest_path: Path
    files: dict[str, str]
    signature: Signature
    opset: int
    exporter: ExporterInfo
    external_data: bool
    versions: dict[str, str]
    provenance: dict[str, Any]
    parity: ParityReport
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when parity passed."""
        return self.parity.passed

    def manifest(self) -> dict[str, Any]:
        """The manifest content (without ``schema_version``, added on write)."""
        return {
            "kind": "onnx-model",
            "files": dict(self.files),
            "io": self.signature.to_json(),
            "opset": self.opset,
            "exporter": self.exporter.to_json(),
            "external_data": self.external_data,
            "versions": dict(self.versions),
            "provenance": self.provenance,
            "parity": self.parity.to_json(),
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
        }

    def to_json(self) -> dict[str, Any]:
        """The manifest content plus ``schema_version`` and the paths (``--json FILE``)."""
        return {
            "schema_version": EXPORT_SCHEMA_VERSION,
            "model": str(self.model_path),
            "manifest": str(self.manifest_path),
            **self.manifest(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportResult:
        """Inverse of :meth:`to_json`; InputError for another schema version."""
        version = data.get("schema_version")
        if version != EXPORT_SCHEMA_VERSION:
            raise InputError(
                f"export result schema_version {version!r} is not {EXPORT_SCHEMA_VERSION}",
                hint="re-run `optieval export` with this optieval version",
            )
        return cls(
            model_path=Path(data["model"]),
            manifest_path=Path(data["manifest"]),
            files=dict(data["files"]),
            signature=Signature.from_json(data["io"]),
            opset=int(data["opset"]),
            exporter=ExporterInfo.from_json(data["exporter"]),
            external_data=bool(data.get("external_data", False)),
            versions=dict(data.get("versions", {})),
            provenance=dict(data["provenance"]),
            parity=ParityReport.from_json(data["parity"]),
            warnings=tuple(data.get("warnings", ())),
            timings=dict(data.get("timings", {})),
        )


class ExportCheckFailed(CheckFailed):
    """The export was written but failed its checks (parity, or onnx.checker): exit 1.

    ``result`` holds the :class:`ExportResult`, so callers can still render it.
    """

    def __init__(
        self,
        message: str,
        *,
        result: ExportResult,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.result = result


# --- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    """Point file descriptors 1 and 2 at a scratch file: the TorchScript exporter and dynamo
    print graphs from C++ and through logging handlers bound to the original streams."""
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


@contextlib.contextmanager
def _quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Silence torch's logs and prints while exporting; collect warnings for the result."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            _silenced_fds(),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            yield caught
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _tracer_notes(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    notes: list[str] = []
    for w in caught:
        if w.category.__name__ == "TracerWarning":
            text = "trace: " + one_line(str(w.message), 200)
            if text not in notes:
                notes.append(text)
    return notes[:5]


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from optieval.version import __version__

    found = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "optieval": __version__,
    }
    with contextlib.suppress(ImportError):
        import onnxscript

        found["onnxscript"] = onnxscript.__version__
    return found


def _check_options(exporter: str, opset: int | None, atol: float, rtol: float) -> None:
    import onnx

    if exporter not in EXPORTERS:
        raise InputError(
            f"unknown exporter {exporter!r}",
            where="--exporter",
            hint=f"choose one of {', '.join(EXPORTERS)}",
        )
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not 7 <= opset <= newest:
        raise InputError(
            f"opset {opset} is outside 7..{newest} (what this onnx knows)", where="--opset"
        )
    for name, value in (("--atol", atol), ("--rtol", rtol)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{value} must be a finite number >= 0", where=name)


def _ranges(
    values: Sequence[str] | Mapping[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]]:
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return {str(k): (float(v[0]), float(v[1])) for k, v in values.items()}
    parsed = [parse_input_range(v) for v in values]
    return {name: (low, high) for name, low, high in parsed}


def _make_stage(output: Path) -> Path:
    folder = output.parent
    if output.is_dir():
        raise InputError(
            "output path is a folder", where=str(output), hint="give a file name such as model.onnx"
        )
    if not folder.is_dir():
        raise InputError(
            f"output folder {folder} does not exist", where=str(output), hint="create it first"
        )
    try:
        return Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".export", dir=folder))
    except OSError as exc:
        raise InputError(
            f"output path not writable ({exc.strerror})",
            where=str(output),
            hint="choose a writable folder",
        ) from exc


def _describe(tensors: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}: {str(v.dtype).removeprefix('torch.')}[{'x'.join(map(str, v.shape))}]"
        for k, v in tensors.items()
    )


def _example_specs(
    loaded: LoadedModel,
    given: list[InputSpec],
    ranges: dict[str, tuple[float, float]],
    notes: list[str],
) -> tuple[list[InputSpec], dict[str, Any] | None]:
    """Return (input specs, factory example tensors or None to generate them)."""
    if given:
        if loaded.forward_params is not None:
            unknown = [s.name for s in given if s.name not in loaded.forward_params]
            if unknown:
                raise InputError(
                    f"forward has no input {', '.join(map(repr, unknown))}",
                    where="--input",
                    hint=f"forward's inputs are {', '.join(loaded.forward_params) or 'none'}",
                )
        dup = sorted({s.name for s in given if [g.name for g in given].count(s.name) > 1})
        if dup:
            raise InputError(f"input {', '.join(dup)} given more than once", where="--input")
        if loaded.example_inputs:
            notes.append("--input replaces the example inputs the factory returned")
        specs, examples = list(given), None
    elif loaded.example_inputs:
        specs = [spec_from_tensor(n, t) for n, t in loaded.example_inputs.items()]
        examples = dict(loaded.example_inputs)
    else:
        params = ", ".join(loaded.forward_params or ()) or "?"
        raise InputError(
            "the model comes without example inputs",
            where=loaded.spec,
            hint=f"pass --input NAME:SHAPE[:DTYPE] for forward's inputs ({params}), "
            "e.g. --input x:2x3x224x224",
        )
    names = {s.name for s in specs}
    unknown = [n for n in ranges if n not in names]
    if unknown:
        raise InputError(
            f"no input {', '.join(map(repr, unknown))}",
            where="--input-range",
            hint=f"inputs are {', '.join(names)}",
        )
    specs = [
        InputSpec(s.name, s.shape, s.dtype, *ranges[s.name]) if s.name in ranges else s
        for s in specs
    ]
    return specs, examples


def _fit_examples(
    examples: dict[str, Any], specs: Sequence[InputSpec], notes: list[str]
) -> dict[str, Any]:
    """Repeat (or cut) factory examples along dynamic axes to their export sizes."""
    import torch

    fitted = {}
    changes = []
    for spec in specs:
        tensor = examples[spec.name]
        for axis, size in enumerate(spec.shape):
            if tensor.shape[axis] != size:
                changes.append(f"{spec.name} axis {axis}: {tensor.shape[axis]} -> {size}")
                index = torch.arange(size) % tensor.shape[axis]
                tensor = tensor.index_select(axis, index)
        fitted[spec.name] = tensor
    if changes:
        notes.append(
            f"example inputs resized along dynamic axes for export ({'; '.join(changes)}), "
            "so those dimensions stay dynamic"
        )
    return fitted


def _program_dims(program: Any, names: Sequence[str]) -> dict[str, dict[int, DimInfo]]:
    """The dynamic dims an ExportedProgram carries, per user input."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user = list(program.graph_signature.user_inputs)
    dims: dict[str, dict[int, DimInfo]] = {}
    for name, node_name in zip(names, user, strict=False):
        node = placeholders.get(node_name)
        val = node.meta.get("val") if node is not None else None
        if val is None:
            continue
        for axis, d in enumerate(val.shape):
            if isinstance(d, torch.SymInt):
                low = high = None
                bounds = program.range_constraints.get(d.node.expr)
                if bounds is not None:
                    low = int(bounds.lower) if bounds.lower.is_finite else None
                    high = int(bounds.upper) if bounds.upper.is_finite else None
                hint = d.node.hint if isinstance(d.node.hint, int) else 2
                dims.setdefault(name, {})[axis] = DimInfo(str(d), low, high, int(hint))
    return dims


def _check_alternate_sizes(
    loaded: LoadedModel,
    specs: Sequence[InputSpec],
    dims: Mapping[str, Mapping[int, DimInfo]],
    seed: int,
) -> None:
    """Run PyTorch at the second parity size before exporting: a dimension the model itself
    cannot vary is a bad --dynamic request (exit 2), not a parity failure found later."""
    if not dims or loaded.exported_program is not None:
        return
    sizes = case_sizes(dims)[1]
    feeds = make_tensors(specs_at(specs, dims, sizes), seed=seed)
    try:
        loaded.call(feeds)
    except Exception as exc:
        at = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise InputError(
            f"the model fails when the dynamic dimensions change ({at}; {_describe(feeds)}): "
            f"{one_line(f'{type(exc).__name__}: {exc}', 300)}",
            where="--dynamic",
            hint="mark only the dimensions the model accepts at any size",
        ) from exc


def _call_form(
    loaded: LoadedModel, ordered: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    names = list(ordered)
    params = loaded.forward_params
    if params is None or tuple(names) == params[: len(names)] or not loaded.call_by_name(names):
        return tuple(ordered.values()), None
    return (), dict(ordered)


def _export_dynamo(
    loaded: LoadedModel,
    examples: Mapping[str, Any],
    dims: Mapping[str, Mapping[int, DimInfo]],
    out_names: list[str],
    opset: int | None,
) -> Any:
    import torch

    ordered = loaded.order_inputs(examples)
    args, kwargs = _call_form(loaded, ordered)
    target = loaded.exported_program if loaded.exported_program is not None else loaded.module
    shapes: Any = None
    if dims and loaded.exported_program is None:
        made: dict[str, Any] = {}

        def dim(info: DimInfo) -> Any:
            if info.label not in made:
                bounds = {k: v for k, v in (("min", info.min), ("max", info.max)) if v is not None}
                made[info.label] = torch.export.Dim(info.label, **bounds)
            return made[info.label]

        per_input = {n: {a: dim(i) for a, i in dims.get(n, {}).items()} or None for n in ordered}
        shapes = per_input if kwargs is not None else tuple(per_input.values())
    program = torch.onnx.export(
        target,
        args,
        kwargs=kwargs,
        dynamo=True,
        input_names=list(ordered),
        output_names=out_names,
        opset_version=opset,
        dynamic_shapes=shapes,
        optimize=True,
        verbose=False,
    )
    assert program is not None
    return program.model_proto


def _export_torchscript(
    loaded: LoadedModel,
    examples: Mapping[str, Any],
    dims: Mapping[str, Mapping[int, DimInfo]],
    out_names: list[str],
    opset: int | None,
    raw: Path,
) -> Any:
    import onnx
    import torch

    if loaded.exported_program is not None:
        raise RuntimeError("the TorchScript exporter cannot read a .pt2 ExportedProgram")
    ordered = loaded.order_inputs(examples)
    args, kwargs = _call_form(loaded, ordered)
    axes = {n: {a: i.label for a, i in d.items()} for n, d in dims.items()}
    raw.parent.mkdir(exist_ok=True)
    torch.onnx.export(
        loaded.module,
        args,
        str(raw),
        kwargs=kwargs,
        dynamo=False,
        input_names=list(ordered),
        output_names=out_names,
        opset_version=opset,
        dynamic_axes=axes or None,
        do_constant_folding=True,
    )
    return onnx.load(str(raw))


def _summary(text: str) -> str:
    """The root cause from torch.onnx's error text (its "Exception summary" section)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    found = re.findall(
        r"<class '(?:[\w.]+\.)?(\w+)'>: (.+)", text.split("## Exception summary", 1)[-1]
    )
    if found:
        name, message = found[0]
        return f"{name}: {message.strip()}"
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


def _unsupported_op(text: str) -> str | None:
    for pattern in (
        r"OpOverload\(op='([\w.]+)'",
        r"namespace ([\w.]+::[\w.]+)",
        r"operator '([\w.]+::[\w.]+)'",
        r"\b(\w+::\w+)",
    ):
        match = re.search(pattern, text)
        if match:
            op = match.group(1).rstrip(".")
            return op.replace(".", "::", 1) if "::" not in op else op
    return None


def _export_error(exc: BaseException, exporter: str, opset: int | None, spec: str) -> InputError:
    text = str(exc)
    summary = one_line(_summary(text), 300)
    other = "torchscript (or auto)" if exporter == "dynamo" else "dynamo"
    at = f"opset {opset}" if opset else "its default opset"
    op = (
        _unsupported_op(text)
        if re.search(
            r"No ONNX function|[Uu]nsupported|not supported|"
            r"unrecognized namespace|DispatchError",
            text,
        )
        else None
    )
    if op and ("Could not guard" not in text):
        message = f"the {exporter} exporter cannot convert operator {op} at {at} ({summary})"
        hint = f"try --exporter {other}, or a higher --opset"
    elif "Constraints violated" in text or "specialized" in text:
        message = f"a --dynamic dimension is not dynamic in this model ({summary})"
        hint = "drop that --dynamic, or make the model accept any size there"
    else:
        message = f"the {exporter} exporter failed ({summary})"
        hint = f"try --exporter {other}"
    error = InputError(one_line(message, 600), where=spec, hint=hint)
    error.__cause__ = exc
    return error


def _run_exporter(
    name: str,
    loaded: LoadedModel,
    examples: Mapping[str, Any],
    dims: Mapping[str, Mapping[int, DimInfo]],
    out_names: list[str],
    opset: int | None,
    stage: Path,
    notes: list[str],
) -> Any:
    try:
        with _quiet() as caught:
            if name == "dynamo":
                model = _export_dynamo(loaded, examples, dims, out_names, opset)
            else:
                model = _export_torchscript(
                    loaded, examples, dims, out_names, opset, stage / "raw" / "model.onnx"
                )
    except Exception as exc:
        raise _export_error(exc, name, opset, loaded.spec) from exc
    notes.extend(_tracer_notes(caught))
    if loaded.exported_program is None:
        try:
            _check_dynamic(model, dims, name)
        except InputError as exc:
            exc.where = loaded.spec
            raise
    return model


def _check_dynamic(model: Any, dims: Mapping[str, Mapping[int, DimInfo]], exporter: str) -> None:
    """Raise when the exporter fixed a dimension that was asked to be dynamic (torch.onnx
    specialises silently when the model branches on a size)."""
    fixed = []
    for value in model.graph.input:
        for axis, info in dims.get(value.name, {}).items():
            shape = value.type.tensor_type.shape.dim
            if axis < len(shape) and shape[axis].HasField("dim_value"):
                fixed.append(f"{value.name} axis {axis} ({info.label}) = {shape[axis].dim_value}")
    if fixed:
        raise InputError(
            f"the {exporter} exporter fixed dynamic dimensions to constants: {', '.join(fixed)}; "
            "the model specialises them (e.g. it branches on the size)",
            hint="drop that --dynamic, make the model size-agnostic, or try --exporter auto",
        )


def _export_any(
    exporter: str,
    loaded: LoadedModel,
    examples: Mapping[str, Any],
    dims: Mapping[str, Mapping[int, DimInfo]],
    out_names: list[str],
    opset: int | None,
    stage: Path,
    notes: list[str],
) -> tuple[Any, ExporterInfo]:
    if loaded.is_torchscript and exporter != "torchscript":
        reason = "a TorchScript module can only be exported by the TorchScript exporter"
        model = _run_exporter("torchscript", loaded, examples, dims, out_names, opset, stage, notes)
        return model, ExporterInfo("torchscript", exporter, reason)
    if exporter != "auto":
        model = _run_exporter(exporter, loaded, examples, dims, out_names, opset, stage, notes)
        return model, ExporterInfo(exporter, exporter)
    try:
        model = _run_exporter("dynamo", loaded, examples, dims, out_names, opset, stage, notes)
        return model, ExporterInfo("dynamo", "auto")
    except InputError as first:
        reason = f"dynamo failed: {first.message}"
        try:
            model = _run_exporter(
                "torchscript", loaded, examples, dims, out_names, opset, stage, notes
            )
        except InputError as second:
            raise InputError(
                f"both exporters failed; dynamo: {first.message}; torchscript: {second.message}",
                where=loaded.spec,
                hint="see --debug for the tracebacks",
            ) from second
        notes.append(f"auto: {reason}; used the TorchScript exporter")
        return model, ExporterInfo("torchscript", "auto", reason)


def _initializer_bytes(model: Any) -> int:
    return sum(t.ByteSize() for t in model.graph.initializer)


def _save(model: Any, path: Path, external: bool) -> None:
    import onnx

    try:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024 if external else 0,
            convert_attribute=False,
        )
    except ValueError as exc:
        raise InputError(
            f"cannot save the model in one file ({one_line(str(exc), 200)})",
            where=str(path.name),
            hint="let it use external data (external_data=None or True)",
        ) from exc


def _check(path: Path, notes: list[str]) -> str | None:
    """onnx.checker (full, by path: external data is found), then shape inference written into
    the file. Returns the checker's error text, or None; a shape-inference failure on a model
    the checker accepted only adds a note (ONNX Runtime and TensorRT infer shapes themselves)."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        return f"onnx.checker: {one_line(str(exc), 300)}"
    try:
        onnx.shape_inference.infer_shapes_path(str(path), str(path))
    except Exception as exc:
        notes.append(f"shape inference could not complete: {one_line(str(exc), 200)}")
    return None


def _publish(stage: Path, output: Path) -> dict[str, str]:
    """Rename the staged files into place: external data first, the model last."""
    staged = [p for p in stage.iterdir() if p.is_file()]
    staged.sort(key=lambda p: p.name == output.name)
    hashes = {p.name: sha256_file(p) for p in staged}
    previous: dict[str, Any] | None = None
    with contextlib.suppress(InputError):
        previous = read_manifest(output)
    umask = os.umask(0)
    os.umask(umask)
    for src in staged:
        # Staged files may be private (0600); a model is as readable as any file written here.
        with contextlib.suppress(OSError):
            src.chmod(0o666 & ~umask)
        with atomic_path(output.parent / src.name) as tmp:
            os.replace(src, tmp)
    for stale in (previous or {}).get("files", {}):
        if stale not in hashes and "/" not in stale and "\\" not in stale:
            with contextlib.suppress(OSError):
                (output.parent / stale).unlink()
    return {output.name: hashes.pop(output.name), **hashes}


def _opset_of(model: Any) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


# --- public --------------------------------------------------------------------------------


def export_model(
    spec: str,
    output: str | os.PathLike[str],
    *,
    inputs: Sequence[str | InputSpec] | None = None,
    input_ranges: Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
    dynamic: Sequence[str | DynamicDim] | None = None,
    exporter: str = "dynamo",
    opset: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    external_data: bool | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export a PyTorch model to ONNX, check it, prove it equal to the source, write its manifest.

    Args:
        spec: ``package.module:factory``, ``path/to/file.py:factory``, a TorchScript file
            (``.pt``/``.ts``) or a saved ExportedProgram (``.pt2``).
        output: the ONNX file to write; its folder must exist. The manifest goes to
            ``output + ".json"``, external data (if any) to ``output + ".data"``.
        inputs: example inputs as ``NAME:SHAPE[:DTYPE]`` strings or :class:`InputSpec`
            (default: the examples the factory returned; required otherwise).
        input_ranges: value ranges ``NAME:LO:HI`` (HI excluded) or ``{name: (lo, hi)}``;
            integer inputs default to ``[0, 2)``.
        dynamic: ``batch`` (dim 0 of every input) and ``NAME:AXIS[:LABEL][:MIN..MAX]`` strings
            or :class:`DynamicDim`; axes sharing a label share the dimension. Dynamic sizes
            below 2 are raised to 2 for the export.
        exporter: ``dynamo`` (default), ``torchscript`` (legacy), or ``auto`` (dynamo, then
            TorchScript if dynamo fails; the manifest records why). TorchScript sources always
            use the TorchScript exporter.
        opset: default-domain opset (default: the exporter's).
        checkpoint: a state dict to load (``torch.load(weights_only=True)``; safetensors).
        atol, rtol: parity tolerances, ``|onnx - torch| <= atol + rtol * |torch|``.
        external_data: True keeps weights in ``NAME.data``, False in the file, None (default)
            decides by size (over 1 GiB of weights: external).
        base_dir: where relative spec paths start and what goes first on ``sys.path``
            (default: the current folder).
        seed: seed of the generated inputs.

    Returns:
        The :class:`ExportResult` (also written as the manifest).

    Raises:
        InputError: bad spec, options, inputs, checkpoint or output path; an operator or
            model the exporter cannot convert (exit 2).
        ExportCheckFailed: parity (or onnx.checker) failed; the files and manifest are written
            and the result is on the exception (exit 1).
    """
    output = Path(output).expanduser()
    _check_options(exporter, opset, atol, rtol)
    given: list[InputSpec] = parse_many(inputs, parse_input, InputSpec)
    ranges = _ranges(input_ranges)
    requests: list[DynamicDim] = parse_many(dynamic, parse_dynamic, DynamicDim)
    stage = _make_stage(output)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # load_model's warnings come back in .warnings
            loaded = load_model(
                spec,
                base_dir=Path(base_dir) if base_dir else None,
                checkpoint=Path(checkpoint) if checkpoint else None,
            )
        notes = list(loaded.warnings)
        specs, examples = _example_specs(loaded, given, ranges, notes)
        if loaded.exported_program is not None:
            if requests:
                raise InputError(
                    "a .pt2 ExportedProgram carries its own dynamic shapes",
                    where="--dynamic",
                    hint="export the program with "
                    "torch.export.Dim for the dims that should be dynamic",
                )
            dims = _program_dims(loaded.exported_program, [s.name for s in specs])
        else:
            dims = resolve_dynamic(requests, specs)
            specs = apply_export_sizes(specs, dims)
        if examples is None:
            examples = make_tensors(specs, seed=seed)
        elif loaded.exported_program is None:
            examples = _fit_examples(examples, specs, notes)
        try:
            reference = loaded.call(examples)
        except Exception as exc:
            raise InputError(
                f"the model fails on the example inputs ({_describe(examples)}): "
                f"{one_line(f'{type(exc).__name__}: {exc}', 400)}",
                where=spec,
                hint="check --input shapes and dtypes against the model",
            ) from exc
        _check_alternate_sizes(loaded, specs, dims, seed)
        out_names = [name for name, _ in flatten_outputs(reference)]
        if not out_names:
            raise InputError("forward returned no tensors", where=spec)
        if len(set(out_names)) != len(out_names):
            raise InputError(f"output names collide after flattening: {out_names}", where=spec)

        started = time.perf_counter()
        model, info = _export_any(exporter, loaded, examples, dims, out_names, opset, stage, notes)
        export_s = time.perf_counter() - started
        shutil.rmtree(stage / "raw", ignore_errors=True)

        external = (
            _initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
            if external_data is None
            else bool(external_data)
        )
        staged = stage / output.name
        _save(model, staged, external)
        del model
        started = time.perf_counter()
        problem = _check(staged, notes)
        check_s = time.perf_counter() - started

        import onnx

        saved = onnx.load(str(staged), load_external_data=False)
        signature = signature_from_onnx(saved)
        opset_used = _opset_of(saved)
        del saved
        started = time.perf_counter()
        if problem is None:
            parity = run_parity(loaded, staged, specs, dims, atol=atol, rtol=rtol, seed=seed)
        else:
            parity = ParityReport(False, atol, rtol, (), problem)
        parity_s = time.perf_counter() - started

        files = _publish(stage, output)
        provenance = {
            "spec": spec,
            "kind": loaded.kind,
            "base_dir": str(loaded.base_dir),
            "spec_file_sha256": loaded.spec_file_sha256,
            "checkpoint": str(loaded.checkpoint) if loaded.checkpoint else None,
            "checkpoint_sha256": loaded.checkpoint_sha256,
            "inputs": [s.to_json() for s in specs],
            "dynamic": [
                {
                    "input": n,
                    "axis": a,
                    "label": i.label,
                    "min": i.min,
                    "max": i.max,
                    "size": i.size,
                }
                for n, axes in dims.items()
                for a, i in axes.items()
            ],
            "seed": seed,
        }
        result = ExportResult(
            model_path=output,
            manifest_path=manifest_path(output),
            files=files,
            signature=signature,
            opset=opset_used,
            exporter=info,
            external_data=external,
            versions=_versions(),
            provenance=provenance,
            parity=parity,
            warnings=tuple(notes),
            timings={
                "export_s": round(export_s, 3),
                "check_s": round(check_s, 3),
                "parity_s": round(parity_s, 3),
            },
        )
        write_manifest(output, result.manifest())
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if not parity.passed:
        failures = parity.failures()
        shown = "; ".join(failures[:3]) + (
            f"; ... {len(failures) - 3} more" if len(failures) > 3 else ""
        )
        headline = (
            f"the exported model failed its check, parity not run ({parity.error})"
            if parity.error
            else f"parity check failed (atol {atol:g}, rtol {rtol:g}): {shown}"
        )
        raise ExportCheckFailed(
            headline,
            result=result,
            where=str(output),
            hint="the file is kept for debugging and its manifest marks "
            "parity failed; try the other --exporter, or loosen --atol/--rtol if expected",
        )
    return result
