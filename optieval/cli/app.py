"""The ``optieval`` command line: parse options, call the Python API, render, map errors to exit
codes (docs/design.md). No logic of its own lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from optieval.cli.flags import error_line
from optieval.errors import InputError, InternalError, OptievalError
from optieval.version import __version__

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_error(exc: OptievalError) -> None:
    """One line on stderr: what, where (as the flag the user typed), and a hint."""
    err_console.print(
        f"[bold red]error:[/] {escape(error_line(exc))}",
        highlight=False,
        soft_wrap=True,
        emoji=False,  # "x:one:..." in a message must not become an emoji
    )


def save_traceback(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to the cache folder (or a temporary one)
    for the bug report; None when neither can be written."""
    import tempfile
    import time
    import traceback

    from optieval.core import cache_root

    text = "".join(traceback.format_exception(exc))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{id(exc):x}.txt"
    for folder in (lambda: cache_root() / "crashes", lambda: Path(tempfile.gettempdir())):
        try:
            path = folder() / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"optieval {__version__}\n{' '.join(sys.argv)}\n\n{text}")
            return path
        except Exception:
            continue
    return None


class _OptievalGroup(TyperGroup):
    """Maps :class:`OptievalError` to one line on stderr and its exit code, and any other
    exception (a bug) to exit 4 with its traceback saved to a file (``--debug`` re-raises)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, vendored or not by typer
        import click

        try:
            return super().invoke(ctx)
        except OptievalError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (
            typer.Exit,
            typer.Abort,
            click.exceptions.Exit,
            click.exceptions.ClickException,
            click.exceptions.Abort,
        ):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            saved = save_traceback(exc)
            internal = InternalError(
                f"{type(exc).__name__}: {exc}", report=str(saved) if saved else None
            )
            print_error(internal)
            raise typer.Exit(internal.exit_code) from None


app = typer.Typer(
    cls=_OptievalGroup,
    name="optieval",
    help="Export, convert, benchmark, compare and gate ML models for release.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"optieval {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print optieval's version and exit.",
        ),
    ] = False,
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
        from optieval.core import write_json_atomic

        write_json_atomic(path, payload)
        err_console.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def doctor(
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")
    ] = None,
) -> None:
    """Show this machine's fingerprint and which backends are usable here, and why not."""
    from optieval.cli.render_bench import doctor_table, environment_table
    from optieval.runtime import diagnose

    report = diagnose()
    console.print(environment_table(report.env))
    console.print(doctor_table(report))
    write_json_output(json_file, report.to_json())


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="ONNX model (the FP32 source).")],
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
        typer.Option(
            "--shape", help="NAME:D0xD1x...[,D0xD1x...] full shapes (batch first) to sweep."
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Real inputs: .npz, a folder, or module:function.")
    ] = None,
    calib: Annotated[str | None, typer.Option(help="Calibration data for int8 artifacts.")] = None,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for CPU backends.")] = None,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds (discarded).")] = 0.5,
    warmup_iters: Annotated[int, typer.Option(help="Warm-up iterations, at least.")] = 10,
    duration: Annotated[float, typer.Option(help="Measure at least this many seconds.")] = 3.0,
    min_samples: Annotated[
        int | None,
        typer.Option(help="Measure at least this many iterations (default: what p99 needs)."),
    ] = None,
    max_duration: Annotated[
        float, typer.Option(help="Stop measuring a cell after this many seconds.")
    ] = 30.0,
    target_percentile: Annotated[
        float, typer.Option(help="Highest percentile that must get a 95% interval.")
    ] = 99.0,
    isolate: Annotated[
        bool, typer.Option("--isolate/--no-isolate", help="Run each cell in its own process.")
    ] = True,
    profile_ops: Annotated[
        bool, typer.Option("--profile-ops", help="Time per op type, from a separate run.")
    ] = False,
    io: Annotated[
        str,
        typer.Option(
            "--io", help="GPU backends: device (I/O stays on the GPU) or host (copies timed)."
        ),
    ] = "device",
    cuda_graph: Annotated[
        bool, typer.Option("--cuda-graph", help="Capture ort-cuda/tensorrt runs in a CUDA graph.")
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(help="A previous bench JSON or gate report to check for regressions."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Slowdown that counts as a regression (with --baseline).")
    ] = 0.05,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write results JSON here.")
    ] = None,
    # -- load scenarios (issue 11) --
    scenario: Annotated[
        str | None,
        typer.Option(help="single-stream (default), offline, concurrency or server."),
    ] = None,
    concurrency: Annotated[
        list[str] | None,
        typer.Option(help="concurrency: requests kept in flight, comma-separated (1,2,4)."),
    ] = None,
    qps: Annotated[
        list[str] | None,
        typer.Option(help="server: Poisson arrival rates in queries/s, comma-separated."),
    ] = None,
    streams: Annotated[
        list[str] | None,
        typer.Option(help="offline: parallel sessions, comma-separated."),
    ] = None,
    idle_ms: Annotated[
        float, typer.Option(help="Pause after each request, ms (single-stream, concurrency).")
    ] = 0.0,
    find_max_qps: Annotated[
        bool,
        typer.Option(
            "--find-max-qps", help="server: find the highest rate whose p99 is under the budget."
        ),
    ] = False,
    p99_ms_max: Annotated[
        float | None, typer.Option(help="The p99 budget (ms) of --find-max-qps.")
    ] = None,
    # -- executors (issue 10) --
    executor: Annotated[
        str, typer.Option(help="Where cells run: local (subprocesses here) or ray (a cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address with --executor ray (default: RAY_ADDRESS)."),
    ] = None,
) -> None:
    """Measure latency and throughput of MODEL on each backend x precision x batch cell."""
    from optieval.bench import MeasureSettings, benchmark, check_against_baseline
    from optieval.cli.render_bench import baseline_table, bench_table, cell_footnotes, op_tables
    from optieval.core import parse_shape_option
    from optieval.errors import BackendUnavailable, combined_exit_code

    shapes: dict[str, list[tuple[int, ...]]] = {}
    for item in shape or []:
        name, parsed = parse_shape_option(item)
        shapes.setdefault(name, []).extend(parsed)
    backends = split_list(backend, "--backend") or ["ort-cpu"]
    settings = MeasureSettings(
        warmup_s=warmup,
        warmup_iters=warmup_iters,
        duration_s=duration,
        min_samples=min_samples,
        max_duration_s=max_duration,
        target_percentile=target_percentile,
    ).validate()
    if baseline is not None and not baseline.is_file():
        raise InputError("baseline file not found", where=f"--baseline {baseline}")
    from optieval.bench import parse_rate_list, scenario_specs

    scenarios = scenario_specs(
        scenario,
        concurrency=parse_int_list(concurrency, "--concurrency"),
        qps=parse_rate_list(qps, "--qps"),
        streams=parse_int_list(streams, "--streams"),
        idle_ms=idle_ms,
        find_max_qps=find_max_qps,
        p99_ms_max=p99_ms_max,
    )
    with _progress("bench") as on_cell, _executor(executor, ray_address) as cell_executor:
        report = benchmark(
            model,
            backends=backends,
            precisions=split_list(precision, "--precision") or ["fp32"],
            batches=parse_int_list(batch, "--batch"),
            shapes=shapes,
            threads=threads,
            settings=settings,
            data=data,
            calib=calib,
            isolate=isolate,
            profile_ops=profile_ops,
            io=io,
            cuda_graph=cuda_graph,
            on_cell=on_cell,
            scenarios=scenarios,
            executor=cell_executor,
        )
    comparison = None
    if baseline is not None:
        comparison = check_against_baseline(report, baseline, threshold=threshold)
    payload = report.to_json()
    if comparison is not None:
        payload["baseline"] = {"path": str(baseline), **comparison.to_json()}
    write_json_output(json_file, payload)
    if len(backends) == 1 and all(c.status == "skipped" for c in report.results):
        reason = report.results[0].reason if report.results else "unusable"
        raise BackendUnavailable(reason or "unusable", where=backends[0])
    console.print(bench_table(report))
    from optieval.cli.render_scenarios import scenario_tables

    for table in scenario_tables(report):
        console.print(table)
    for table in op_tables(report):
        console.print(table)
    if comparison is not None:
        console.print(baseline_table(comparison))
    for line in cell_footnotes(report):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)
    codes = [3 if c.status == "error" else 0 for c in report.results]
    if comparison is not None and comparison.any_slower:
        codes.append(1)
    code = combined_exit_code(codes)
    if code:
        raise typer.Exit(code)


def _executor(name: str, ray_address: str | None) -> Any:
    """A context manager giving the cell executor for ``--executor`` (None for local: the
    command's own path) and closing it after."""
    import contextlib

    from optieval.execution import create_executor

    executor = create_executor(name, ray_address=ray_address)
    if executor.name == "local":
        return contextlib.nullcontext(None)
    return executor


def _progress(label: str) -> Any:
    """A rich progress display whose callback advances one step per finished cell."""
    import contextlib

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def manager() -> Any:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        with progress:
            task = progress.add_task(f"{label}: measuring", total=None)

            def on_cell(cell: Any) -> None:
                progress.update(task, description=f"{label}: {cell.label} {cell.status}")

            yield on_cell

    return manager()


# -- gate and demo (issue 8) -----------------------------------------------------------------------


@app.command()
def gate(
    config: Annotated[Path, typer.Argument(help="Release config (TOML); see README, Gate.")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the reports (created if missing).")
    ] = Path("optieval-report"),
    allow_inconclusive: Annotated[
        bool,
        typer.Option("--allow-inconclusive", help="Exit 0 when checks are only inconclusive."),
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write report.json's content here.")
    ] = None,
    # -- executors (issue 10) --
    executor: Annotated[
        str, typer.Option(help="Where cells run: local (subprocesses here) or ray (a cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address with --executor ray (default: RAY_ADDRESS)."),
    ] = None,
) -> None:
    """Gate a release: export, build artifacts, bench and compare every target, check every
    budget; write report.json, report.md, junit.xml and report.html; exit 0 only on PASS."""
    _run_gate(
        config,
        out,
        allow_inconclusive=allow_inconclusive,
        json_file=json_file,
        executor=executor,
        ray_address=ray_address,
    )


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the exported model and the reports.")
    ] = Path("optieval-demo"),
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to measure each cell (default: the demo config's 1 s)."),
    ] = None,
) -> None:
    """Run the main job on the bundled digits CNN: export it from PyTorch, build fp16 and int8
    artifacts, bench and compare them on ONNX Runtime CPU, gate them, write the reports."""
    from optieval.assets import DEMO_CONFIG

    console.print(
        f"optieval demo: gating the bundled digits CNN with {DEMO_CONFIG.name}",
        highlight=False,
        markup=False,
    )
    _run_gate(DEMO_CONFIG, out, allow_inconclusive=False, json_file=None, duration_s=duration)


def _run_gate(
    config: Path,
    out: Path,
    *,
    allow_inconclusive: bool,
    json_file: Path | None,
    duration_s: float | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> None:
    from optieval.cli.render_gate import evidence_lines, gate_progress, gate_table, verdict_line
    from optieval.release import gate as run_gate

    with gate_progress(err_console) as progress:
        report = run_gate(
            config,
            out_dir=out,
            allow_inconclusive=allow_inconclusive,
            duration_s=duration_s,
            progress=progress,
            executor=executor,
            ray_address=ray_address,
        )
    for line in report.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {escape(line)}", highlight=False,
                          soft_wrap=True)  # fmt: skip
    console.print(gate_table(report))
    for line in evidence_lines(report):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)
    write_json_output(json_file, report.to_json())
    console.print(verdict_line(report), highlight=False)
    console.print(f"reports: {report.reports.get('html')} (and report.md, junit.xml, report.json)",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    if report.exit_code:
        raise typer.Exit(report.exit_code)


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

    from optieval.cli.render_export import export_renderables
    from optieval.export import ExportCheckFailed, export_model

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
    calib_method: Annotated[str, typer.Option(help="minmax, entropy or percentile.")] = "minmax",
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

    from optieval.precision import conversion_renderables
    from optieval.precision import convert as convert_model

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
    from optieval.precision import info_renderables, inspect_model

    info = inspect_model(model)
    for renderable in info_renderables(info):
        console.print(renderable)
    write_json_output(json_file, info.to_json())


# -- parity (issue 7): compare --------------------------------------------------------------------


@app.command("compare")
def compare_command(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX model (from `optieval export`).")],
    candidate: Annotated[
        list[str],
        typer.Option("--candidate", "-c", help="BACKEND:PRECISION to check; repeatable."),
    ],
    reference: Annotated[
        str, typer.Option(help="BACKEND:PRECISION the candidates are compared with.")
    ] = "ort-cpu:fp32",
    spec: Annotated[
        str | None, typer.Option(help="Model spec for torch backends when the manifest has none.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Inputs: .npz, a folder, or module:function (default: seeded random inputs)."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Key of the labels in --data (adds accuracy).")
    ] = None,
    calib: Annotated[
        str | None, typer.Option(help="Calibration data for int8 artifacts (default: --data).")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Use at most N samples (default: all, or 64 random).")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size of the runs (default 16).")] = None,
    atol: Annotated[
        float | None,
        typer.Option(help="Absolute tolerance for every output (default: by precision)."),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option(help="Relative tolerance for every output (default: by precision)."),
    ] = None,
    tol: Annotated[
        list[str] | None, typer.Option("--tol", help="OUTPUT:ATOL:RTOL for one output; repeatable.")
    ] = None,
    max_accuracy_drop: Annotated[
        float | None, typer.Option(help="Task budget: accuracy_delta >= -DROP (needs --labels).")
    ] = None,
    min_accuracy_ratio: Annotated[
        float | None, typer.Option(help="Task budget: accuracy_ratio >= R, e.g. 0.99.")
    ] = None,
    min_top1_agreement: Annotated[
        float | None, typer.Option(help="Budget: argmax agreement with the reference >= A.")
    ] = None,
    localize: Annotated[
        bool, typer.Option("--localize", help="Name the nodes where a failing error is born.")
    ] = False,
    auto_exclude: Annotated[
        bool,
        typer.Option("--auto-exclude", help="INT8: re-quantize keeping those nodes in float."),
    ] = False,
    save_golden: Annotated[
        Path | None, typer.Option("--save-golden", help="Save reference outputs + inputs here.")
    ] = None,
    golden: Annotated[
        Path | None, typer.Option("--golden", help="Compare against saved reference outputs.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated inputs.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for CPU backends.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the parity JSON here.")
    ] = None,
    # --- detection (issue 9): --task detection and its options -------------------------------
    task: Annotated[
        str, typer.Option(help="classification (tensor parity) or detection (boxes and mAP).")
    ] = "classification",
    boxes_output: Annotated[str | None, typer.Option(help="Detection: the boxes output.")] = None,
    scores_output: Annotated[str | None, typer.Option(help="Detection: the scores output.")] = None,
    classes_output: Annotated[
        str | None, typer.Option(help="Detection: the class-index output (none for raw heads).")
    ] = None,
    batch_index_output: Annotated[
        str | None, typer.Option(help="Detection: each flat detection's image in the batch.")
    ] = None,
    num_detections_output: Annotated[
        str | None, typer.Option(help="Detection: valid detections per image (padded outputs).")
    ] = None,
    box_format: Annotated[
        str, typer.Option(help="Detection: xyxy, xywh or cxcywh[:pixels|:normalized].")
    ] = "xyxy",
    gt: Annotated[
        str | None,
        typer.Option(
            help="Detection ground truth (.npz gt_boxes/gt_classes/gt_image "
            "or COCO .json; default: --data when it has gt_boxes)."
        ),
    ] = None,
    iou: Annotated[float, typer.Option(help="Detection: IoU for a box match.")] = 0.5,
    score_threshold: Annotated[
        float, typer.Option(help="Detection: drop detections scoring below this.")
    ] = 0.05,
    nms_iou: Annotated[
        float, typer.Option(help="Detection: class-aware NMS IoU (raw heads).")
    ] = 0.5,
    top_k: Annotated[int, typer.Option(help="Detection: keep the top K per image.")] = 100,
    map_drop_max: Annotated[
        float | None, typer.Option(help="Detection budget: mAP@0.5:0.95 drop <= D.")
    ] = None,
    box_match_min: Annotated[
        float | None, typer.Option(help="Detection budget: matched reference boxes >= F.")
    ] = None,
    mean_iou_min: Annotated[
        float | None, typer.Option(help="Detection budget: mean IoU of matches >= I.")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Detection INT8: node/op type kept in float; repeatable."),
    ] = None,
) -> None:
    """Check accuracy parity of candidates (backend:precision) against a reference."""
    import warnings

    if task == "detection":
        _compare_detection(
            model, split_list(candidate, "--candidate"), reference=reference, spec=spec,
            data=data, gt=gt, calib=calib, samples=samples, batch=batch, seed=seed,
            threads=threads, localize=localize, auto_exclude=auto_exclude, json_file=json_file,
            options=dict(boxes=boxes_output, scores=scores_output, classes=classes_output,
                         batch_index=batch_index_output, num_detections=num_detections_output,
                         box_format=box_format),
            post=(score_threshold, nms_iou, top_k), iou=iou, exclude=exclude or [],
            budget=(map_drop_max, box_match_min, mean_iou_min),
        )  # fmt: skip
        return
    if task != "classification":
        raise InputError(f"unknown task {task!r}", where="--task",
                         hint="use classification or detection")  # fmt: skip
    given = [name for name, value in (
        ("--boxes-output", boxes_output), ("--scores-output", scores_output),
        ("--classes-output", classes_output), ("--gt", gt), ("--map-drop-max", map_drop_max),
        ("--box-match-min", box_match_min), ("--mean-iou-min", mean_iou_min),
        ("--exclude", exclude)) if value]  # fmt: skip
    if given:
        raise InputError(f"{', '.join(given)} need --task detection", where=given[0])

    from optieval.cli.render_parity import candidate_lines, candidate_table, report_summary
    from optieval.parity import TaskBudget, compare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # report.warnings are printed below
        report = compare(
            model, split_list(candidate, "--candidate"), reference=reference, spec=spec,
            data=data, labels_key=labels, calib=calib, samples=samples, batch=batch, atol=atol,
            rtol=rtol, tol=tol or [], budget=TaskBudget(max_accuracy_drop, min_accuracy_ratio,
                                                       min_top1_agreement),
            localize=localize, auto_exclude=auto_exclude, save_golden_dir=save_golden,
            golden=golden, seed=seed, threads=threads,
        )  # fmt: skip
    lines = list(report.warnings) + [w for r in report.results for w in r.warnings]
    for line in dict.fromkeys(lines):
        err_console.print(f"WARNING: {line}", highlight=False, soft_wrap=True, markup=False)
    for result in report.results:
        console.print(candidate_table(result))
        for line in candidate_lines(result, report.model):
            console.print(line, highlight=False, soft_wrap=True)
    console.print(report_summary(report), highlight=False)
    write_json_output(json_file, report.to_json())
    if not report.passed:
        raise typer.Exit(report.exit_code)


# --- compare --task detection (issue 9) ----------------------------------------------------


def _compare_detection(
    model: Path,
    candidates: list[str],
    *,
    options: dict[str, Any],
    post: tuple[float, float, int],
    iou: float,
    budget: tuple[float | None, float | None, float | None],
    exclude: list[str],
    json_file: Path | None,
    **kwargs: Any,
) -> None:
    """``compare --task detection``: call compare_detection, render, exit 1 on a broken budget."""
    from optieval.cli.render_detection import (
        detection_lines,
        detection_summary,
        detection_table,
    )
    from optieval.detection import DetectionBudget, DetectionOptions, PostProcess, compare_detection

    report = compare_detection(
        model, candidates,
        options=DetectionOptions(**options, postprocess=PostProcess(*post), match_iou=iou),
        budget=DetectionBudget(map_drop_max=budget[0], box_match_min=budget[1],
                               mean_iou_min=budget[2]),
        exclude=split_list(exclude, "--exclude"), **kwargs,
    )  # fmt: skip
    lines = list(report.warnings) + [w for r in report.results for w in r.warnings]
    for line in dict.fromkeys(lines):
        err_console.print(f"WARNING: {line}", highlight=False, soft_wrap=True, markup=False)
    console.print(detection_table(report))
    for result in report.results:
        for line in detection_lines(result):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    console.print(detection_summary(report), highlight=False)
    write_json_output(json_file, report.to_json())
    if not report.passed:
        raise typer.Exit(report.exit_code)


# --- build (issue 5: deployable TensorRT engines) ------------------------------------------


@app.command()
def build(
    model: Annotated[
        Path, typer.Argument(help="ONNX artifact (fp32, or from `optieval convert`).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Engine path (model.plan).")],
    backend: Annotated[
        str, typer.Option("--backend", help="Engine builder: tensorrt.")
    ] = "tensorrt",
    precision: Annotated[
        str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (the artifact's).")
    ] = "fp32",
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="NAME:MIN:OPT:MAX, e.g. x:1x4:8x4:32x4; repeatable."),
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option("--shape", help="NAME:D0xD1x... a shape to cover (min=opt=max); repeatable."),
    ] = None,
    version_compatible: Annotated[
        bool, typer.Option(help="Build a TensorRT version-compatible engine.")
    ] = False,
    hardware_compatible: Annotated[
        bool, typer.Option(help="Build an engine that runs on any Ampere+ GPU.")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here.")
    ] = None,
) -> None:
    """Build a deployable engine (model.plan + model.plan.json manifest) from an ONNX artifact."""
    from optieval.runtime import check_backend_name, parse_profile_option, parse_shape

    check_backend_name(backend)
    if backend != "tensorrt":
        raise InputError(
            f"{backend} does not build deployable engines", where="--backend", hint="use tensorrt"
        )
    profiles = [parse_profile_option(p) for p in split_list(profile, "--profile")]
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for item in shape or []:
        name, sep, dims = item.partition(":")
        if not sep or not name:
            raise InputError(f"{item!r} is not NAME:D0xD1x...", where="--shape")
        shapes.setdefault(name, []).append(parse_shape(dims, where=f"--shape {name}"))
    from optieval.runtime import build_plan

    result = build_plan(
        model,
        output,
        precision=precision,
        shapes=shapes,
        profiles=profiles,
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
    )
    data = result.manifest_data
    console.print(
        f"wrote {escape(result.plan)} (TensorRT {data['tensorrt']['version']}, "
        f"{escape(data['gpu']['name'])} sm {data['gpu']['compute_capability']}, precision "
        f"{data['precision']['requested']} read back {data['precision']['read_back']['precision']}"
        f", built in {data['build_seconds']} s)",
        highlight=False,
    )
    write_json_output(json_file, result.to_json())


def main() -> None:
    """Console-script entry point."""
    app(prog_name="optieval")


if __name__ == "__main__":  # pragma: no cover
    main()
