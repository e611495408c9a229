"""The two PyTorch -> ONNX exporters behind :func:`~optieval.export.export_model`: dynamo
(``torch.onnx.export(dynamo=True)``, the default) and the legacy TorchScript one, and ``auto``
(dynamo, then TorchScript when dynamo fails). :func:`export_any` runs the one asked for with
torch's logs and prints silenced, turns an exporter's failure into one actionable
:class:`~optieval.errors.InputError`, and refuses a model whose dynamic dimensions the exporter
fixed to constants."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optieval.errors import InputError
from optieval.export.inputs import DimInfo
from optieval.source import LoadedModel, one_line

EXPORTERS = ("dynamo", "torchscript", "auto")
"""The ``exporter`` values :func:`~optieval.export.export_model` accepts."""
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
        hint = f"try `exporter` {other}, or a higher `opset`"
    elif "Constraints violated" in text or "specialized" in text:
        message = f"a `dynamic` dimension is not dynamic in this model ({summary})"
        hint = "drop that `dynamic` entry, or make the model accept any size there"
    else:
        message = f"the {exporter} exporter failed ({summary})"
        hint = f"try `exporter` {other}"
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
    # The exporters name outputs as asked even when an inner value already has that name
    # (torch calls an nn.Embedding's result "embedding"), which breaks SSA: export under
    # placeholder names, then rename.
    placeholders = [f"optieval_output_{i}" for i in range(len(out_names))]
    try:
        with _quiet() as caught:
            if name == "dynamo":
                model = _export_dynamo(loaded, examples, dims, placeholders, opset)
            else:
                model = _export_torchscript(
                    loaded, examples, dims, placeholders, opset, stage / "raw" / "model.onnx"
                )
    except Exception as exc:
        raise _export_error(exc, name, opset, loaded.spec) from exc
    _rename_outputs(model.graph, dict(zip(placeholders, out_names, strict=True)))
    notes.extend(_tracer_notes(caught))
    if loaded.exported_program is None:
        try:
            _check_dynamic(model, dims, name)
        except InputError as exc:
            exc.where = loaded.spec
            raise
    return model


def _rename_outputs(graph: Any, names: Mapping[str, str]) -> None:
    """Rename the graph outputs ``old -> new`` in place; an inner value (or initializer)
    already called ``new`` is renamed first (``new`` + ``_inner``), everywhere it is read."""
    taken = {v for node in graph.node for v in (*node.input, *node.output)}
    taken |= {i.name for i in graph.initializer} | {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    for old, new in names.items():
        if old not in outputs or old == new:
            continue
        if new in taken:
            inner = new + "_inner"
            while inner in taken:
                inner += "_"
            _rename_value(graph, new, inner)
            taken.add(inner)
        _rename_value(graph, old, new)
        taken.add(new)


def _rename_value(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs) if attr.HasField("g") else attr.graphs:
                _rename_value(sub, old, new)
    for info in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        if info.name == old:
            info.name = new


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
            hint="drop that `dynamic` entry, make the model size-agnostic, or try `exporter` auto",
        )


def export_any(
    exporter: str,
    loaded: LoadedModel,
    examples: Mapping[str, Any],
    dims: Mapping[str, Mapping[int, DimInfo]],
    out_names: list[str],
    opset: int | None,
    stage: Path,
    notes: list[str],
) -> tuple[Any, ExporterInfo]:
    """Export ``loaded`` with ``exporter`` (``dynamo``, ``torchscript`` or ``auto``) on the
    example inputs; return the ONNX ModelProto and which exporter made it (and why).

    ``dims`` are the dynamic dimensions (input -> axis -> :class:`DimInfo`), ``out_names``
    the output names, ``stage`` a scratch folder (the TorchScript exporter writes there), and
    ``notes`` collects tracer warnings and the reason ``auto`` fell back.

    Raises:
        InputError: the exporter failed (one line: the unsupported operator, the dimension
            that is not dynamic, or the root cause), or fixed a dynamic dimension.
    """
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
                hint="both failures are chained on this error (its __cause__)",
            ) from second
        notes.append(f"auto: {reason}; used the TorchScript exporter")
        return model, ExporterInfo("torchscript", "auto", reason)
