"""PyTorch -> ONNX: export, check, prove equal to the source, and write the manifest.

:func:`export_model` resolves the spec (:mod:`optieval.source.specs`), runs the model once on the
example inputs, exports it with the dynamo exporter (or the legacy TorchScript one, or dynamo
then TorchScript with ``auto``; :mod:`optieval.export.exporters`), saves it into a staging folder
beside the output (one file, or the file plus ``NAME.data`` external data for large models),
runs ``onnx.checker`` (full check, by path) and shape inference, compares ONNX Runtime CPU with
PyTorch on fresh seeded inputs (:mod:`optieval.export.verify`), then renames the files into
place (:func:`optieval.core.publish_onnx`) and writes the manifest (``NAME.json``,
:mod:`optieval.export.provenance`). An interrupted export leaves no half-written model.

A parity failure still writes the model (for debugging) and its manifest, marked
``parity.passed: false``, then raises :class:`ExportCheckFailed` (exit 1) carrying the result.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optieval.core import (
    check_onnx,
    manifest_path,
    publish_onnx,
    save_onnx,
    signature_from_onnx,
    write_manifest,
)
from optieval.errors import InputError
from optieval.export.exporters import EXPORTERS, export_any
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
from optieval.export.provenance import (
    ExportCheckFailed,
    ExportResult,
    export_provenance,
    tool_versions,
)
from optieval.export.verify import ParityReport, case_sizes, run_parity, specs_at
from optieval.source import LoadedModel, flatten_outputs, load_model, one_line

__all__ = ["export_model"]

# Above this many bytes of weights the model keeps its weights in NAME.data (ONNX files stop
# at 2 GB; the margin leaves room for the graph).
EXTERNAL_DATA_THRESHOLD = 1 << 30


def _check_options(exporter: str, opset: int | None, atol: float, rtol: float) -> None:
    import onnx

    if exporter not in EXPORTERS:
        raise InputError(
            f"unknown exporter {exporter!r}",
            where="exporter",
            hint=f"choose one of {', '.join(EXPORTERS)}",
        )
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not 7 <= opset <= newest:
        raise InputError(
            f"opset {opset} is outside 7..{newest} (what this onnx knows)", where="opset"
        )
    for name, value in (("atol", atol), ("rtol", rtol)):
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
                    where="inputs",
                    hint=f"forward's inputs are {', '.join(loaded.forward_params) or 'none'}",
                )
        dup = sorted({s.name for s in given if [g.name for g in given].count(s.name) > 1})
        if dup:
            raise InputError(f"input {', '.join(dup)} given more than once", where="inputs")
        if loaded.example_inputs:
            notes.append("`inputs` replace the example inputs the factory returned")
        specs, examples = list(given), None
    elif loaded.example_inputs:
        specs = [spec_from_tensor(n, t) for n, t in loaded.example_inputs.items()]
        examples = dict(loaded.example_inputs)
    else:
        params = ", ".join(loaded.forward_params or ()) or "?"
        raise InputError(
            "the model comes without example inputs",
            where=loaded.spec,
            hint=f"pass `inputs` NAME:SHAPE[:DTYPE] for forward's inputs ({params}), "
            "e.g. `inputs` x:2x3x224x224",
        )
    names = {s.name for s in specs}
    unknown = [n for n in ranges if n not in names]
    if unknown:
        raise InputError(
            f"no input {', '.join(map(repr, unknown))}",
            where="input_ranges",
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
    cannot vary is a bad ``dynamic`` request (exit 2), not a parity failure found later."""
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
            where="dynamic",
            hint="mark only the dimensions the model accepts at any size",
        ) from exc


def _initializer_bytes(model: Any) -> int:
    return sum(t.ByteSize() for t in model.graph.initializer)


def _check(path: Path, notes: list[str]) -> str | None:
    """onnx.checker (full, by path: external data is found), then shape inference written into
    the file. Returns the checker's error text, or None; a shape-inference failure on a model
    the checker accepted only adds a note (ONNX Runtime and TensorRT infer shapes themselves)."""
    import onnx

    problem = check_onnx(path, full_check=True)
    if problem is not None:
        return f"onnx.checker: {one_line(problem, 300)}"
    try:
        onnx.shape_inference.infer_shapes_path(str(path), str(path))
    except Exception as exc:
        notes.append(f"shape inference could not complete: {one_line(str(exc), 200)}")
    return None


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
                    where="dynamic",
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
                hint="check the shapes and dtypes of `inputs` against the model",
            ) from exc
        _check_alternate_sizes(loaded, specs, dims, seed)
        out_names = [name for name, _ in flatten_outputs(reference)]
        if not out_names:
            raise InputError("forward returned no tensors", where=spec)
        if len(set(out_names)) != len(out_names):
            raise InputError(f"output names collide after flattening: {out_names}", where=spec)

        started = time.perf_counter()
        model, info = export_any(exporter, loaded, examples, dims, out_names, opset, stage, notes)
        export_s = time.perf_counter() - started
        shutil.rmtree(stage / "raw", ignore_errors=True)

        external = (
            _initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
            if external_data is None
            else bool(external_data)
        )
        staged = stage / output.name
        save_onnx(model, staged, external=external)
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

        files = publish_onnx(staged, output)
        provenance = export_provenance(spec, loaded, specs, dims, seed)
        result = ExportResult(
            model_path=output,
            manifest_path=manifest_path(output),
            files=files,
            signature=signature,
            opset=opset_used,
            exporter=info,
            external_data=external,
            versions=tool_versions(),
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
            "parity failed; try the other `exporter`, or loosen `atol`/`rtol` if expected",
        )
    return result
