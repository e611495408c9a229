"""The ``optieval`` command line: parse options, call the Python API, render, map errors to exit
codes (DESIGN.md). No logic of its own lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from optieval.errors import InputError, OptievalError

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class _OptievalGroup(TyperGroup):
    """Maps :class:`OptievalError` to one line on stderr and its exit code (traceback with
    ``--debug``)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, vendored or not by typer
        try:
            return super().invoke(ctx)
        except OptievalError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_OptievalGroup,
    name="optieval",
    help="Export, convert, benchmark, compare and gate ML models for release.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


def split_list(values: list[str] | None, option: str) -> list[str]:
    """Split repeated and comma-separated option values (``--batch 1,8 --batch 32``)."""
    items: list[str] = []
    for value in values or []:
        items.extend(v.strip() for v in value.split(",") if v.strip())
    return items


def parse_int_list(values: list[str] | None, option: str) -> list[int]:
    """Parse ``--batch 1,8,32`` into ints > 0, InputError naming the option otherwise."""
    result = []
    for item in split_list(values, option):
        try:
            number = int(item)
        except ValueError:
            raise InputError(f"{item!r} is not an integer", where=option) from None
        if number < 1:
            raise InputError(f"{number} must be at least 1", where=option)
        result.append(number)
    return result


def write_json_output(path: Path | None, payload: dict[str, Any]) -> None:
    """Write a result's JSON to ``--json FILE`` atomically (no-op without the option)."""
    if path is not None:
        from optieval.files import write_json_atomic

        write_json_atomic(path, payload)
        err_console.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def doctor(
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")
    ] = None,
) -> None:
    """Show this machine's fingerprint and which backends are usable here, and why not."""
    from optieval.bench.render import doctor_table, environment_table
    from optieval.doctor import diagnose

    report = diagnose()
    console.print(environment_table(report.env))
    console.print(doctor_table(report))
    write_json_output(json_file, report.to_json())


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="ONNX model (or a prebuilt engine).")],
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="Backends, comma-separated.")
    ] = None,
    precision: Annotated[
        list[str] | None,
        typer.Option("--precision", "-p", help="fp32, fp16, int8; comma-separated."),
    ] = None,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="Batch sizes, comma-separated.")
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option("--shape", help="NAME:D0xD1x... full shape (batch first); repeatable."),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for CPU backends.")] = None,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds (discarded).")] = 0.5,
    duration: Annotated[float, typer.Option(help="Measure at least this many seconds.")] = 3.0,
    min_samples: Annotated[
        int | None, typer.Option(help="Measure at least this many iterations.")
    ] = None,
    max_duration: Annotated[
        float, typer.Option(help="Stop measuring after this many seconds.")
    ] = 30.0,
    target_percentile: Annotated[
        float, typer.Option(help="Highest percentile that must get a 95% interval.")
    ] = 99.0,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write results JSON here.")
    ] = None,
) -> None:
    """Measure latency and throughput of MODEL on each backend x precision x batch cell."""
    from optieval.bench.inputs import parse_shape_option
    from optieval.bench.latency import MeasureSettings
    from optieval.bench.render import bench_table, cell_footnotes
    from optieval.bench.runner import benchmark
    from optieval.errors import BackendUnavailable, combined_exit_code

    shapes: dict[str, list[tuple[int, ...]]] = {}
    for item in shape or []:
        name, parsed = parse_shape_option(item)
        shapes.setdefault(name, []).extend(parsed)
    backends = split_list(backend, "--backend") or ["ort-cpu"]
    settings = MeasureSettings(
        warmup_s=warmup,
        duration_s=duration,
        min_samples=min_samples,
        max_duration_s=max_duration,
        target_percentile=target_percentile,
    )
    report = benchmark(
        model,
        backends=backends,
        precisions=split_list(precision, "--precision") or ["fp32"],
        batches=parse_int_list(batch, "--batch"),
        shapes=shapes,
        threads=threads,
        settings=settings,
    )
    write_json_output(json_file, report.to_json())
    if len(backends) == 1 and all(c.status == "skipped" for c in report.results):
        reason = report.results[0].reason if report.results else "unusable"
        raise BackendUnavailable(reason or "unusable", where=backends[0])
    console.print(bench_table(report))
    for line in cell_footnotes(report):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)
    codes = [3 if c.status == "error" else 0 for c in report.results]
    code = combined_exit_code(codes)
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Seconds to measure each cell.")] = 2.0,
) -> None:
    """Run optieval's main job on the bundled digits CNN: benchmark it on ONNX Runtime CPU."""
    from optieval.assets import DIGITS_ONNX
    from optieval.bench.latency import MeasureSettings
    from optieval.bench.render import bench_table, cell_footnotes
    from optieval.bench.runner import benchmark

    report = benchmark(
        DIGITS_ONNX,
        backends=["ort-cpu"],
        batches=[1, 8],
        settings=MeasureSettings(duration_s=duration, max_duration_s=max(duration, 10.0)),
    )
    console.print(bench_table(report))
    for line in cell_footnotes(report):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)


# -- export (issue 3) ----------------------------------------------------------------------------


@app.command("export")
def export_command(
    spec: Annotated[
        str,
        typer.Argument(
            help="package.module:factory, path/to/file.py:factory, model.pt/.ts (TorchScript) "
            "or model.pt2 (ExportedProgram)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="State dict to load (torch.load weights_only=True, or .safetensors)."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="Example input NAME:SHAPE[:DTYPE], e.g. x:2x3x224x224; repeatable."
        ),
    ] = None,
    input_ranges: Annotated[
        list[str] | None,
        typer.Option("--input-range", help="Value range NAME:LO:HI (HI excluded); repeatable."),
    ] = None,
    dynamic: Annotated[
        list[str] | None,
        typer.Option(
            "--dynamic",
            help="'batch' (dim 0 of every input) or NAME:AXIS[:LABEL][:MIN..MAX]; repeatable.",
        ),
    ] = None,
    exporter: Annotated[
        str, typer.Option(help="dynamo, torchscript, or auto (dynamo, then torchscript).")
    ] = "dynamo",
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    atol: Annotated[float, typer.Option(help="Parity absolute tolerance.")] = 1e-4,
    rtol: Annotated[float, typer.Option(help="Parity relative tolerance.")] = 1e-3,
    external_data: Annotated[
        bool | None,
        typer.Option(
            "--external-data/--single-file",
            help="Weights in NAME.data beside the file, or in it (default: by size).",
        ),
    ] = None,
    base_dir: Annotated[
        Path | None, typer.Option(help="Folder the spec is resolved from (default: here).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON (the manifest) here.")
    ] = None,
) -> None:
    """Export a PyTorch model to ONNX, check it and prove it equal to the source (parity)."""
    import warnings

    from optieval.export.render import export_renderables
    from optieval.export.torch_export import ExportCheckFailed, export_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
            result = export_model(
                spec, output, inputs=inputs, input_ranges=input_ranges, dynamic=dynamic,
                exporter=exporter, opset=opset, checkpoint=checkpoint, atol=atol, rtol=rtol,
                external_data=external_data, base_dir=base_dir,
            )  # fmt: skip
    except ExportCheckFailed as failed:
        result = failed.result
        for renderable in export_renderables(result):
            console.print(renderable)
        write_json_output(json_file, result.to_json())
        raise
    for line in result.warnings:
        err_console.print(f"WARNING: {line}", highlight=False, soft_wrap=True, markup=False)
    for renderable in export_renderables(result):
        console.print(renderable)
    write_json_output(json_file, result.to_json())


# -- precision artifacts (issue 4): convert, inspect ----------------------------------------------


@app.command()
def convert(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX model.")],
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp16 or int8.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Artifact path (default MODEL.<precision>.onnx)."),
    ] = None,
    calib: Annotated[
        str | None,
        typer.Option(
            help="INT8 calibration data: .npz, directory of .npy/.npz, module:function, "
            "or 'random' (smoke tests only)."
        ),
    ] = None,
    calib_method: Annotated[
        str, typer.Option(help="minmax, entropy or percentile.")
    ] = "minmax",
    calib_samples: Annotated[
        int | None, typer.Option(help="Calibrate on the first N samples (default all).")
    ] = None,
    calib_repeats: Annotated[
        int, typer.Option(help="Calibrate K times on resampled subsets; report the spread.")
    ] = 1,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Node name or op type kept in float; repeatable."),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here.")
    ] = None,
) -> None:
    """Convert an FP32 ONNX model into an FP16 or calibrated INT8 (QDQ) artifact + census."""
    import warnings

    from optieval.export.inspect import conversion_renderables
    from optieval.export.precision import convert as convert_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
        result = convert_model(
            model,
            precision,
            output=output,
            calib=calib,
            calib_method=calib_method,
            calib_samples=calib_samples,
            calib_repeats=calib_repeats,
            exclude=split_list(exclude, "--exclude"),
        )
    for line in result.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {line}", highlight=False, soft_wrap=True)
    for renderable in conversion_renderables(result):
        console.print(renderable)
    for line in result.notes:
        err_console.print(f"note: {line}", highlight=False, soft_wrap=True, markup=False)
    write_json_output(json_file, result.to_json())


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="ONNX model or artifact.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the description JSON here.")
    ] = None,
) -> None:
    """Show an ONNX file's I/O, opset, size, precision census and provenance."""
    from optieval.export.inspect import info_renderables, inspect_model

    info = inspect_model(model)
    for renderable in info_renderables(info):
        console.print(renderable)
    write_json_output(json_file, info.to_json())


def main() -> None:
    """Console-script entry point."""
    app(prog_name="optieval")


if __name__ == "__main__":  # pragma: no cover
    main()
