"""``optieval bench``: latency and throughput of a model on each backend x precision x batch
cell, under a load scenario, optionally against a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console, err_console
from optieval.cli.flags import to_flags
from optieval.cli.options import (
    ExecutorOption,
    RayAddressOption,
    ShapeOption,
    cell_executor,
    check_outputs,
    parse_int_list,
    parse_shape_sweep,
    split_list,
    write_json_output,
)
from optieval.errors import InputError


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
    shape: ShapeOption = None,
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
        bool,
        typer.Option(
            "--cuda-graph", help="Capture ort-cuda/ort-trt/tensorrt runs in a CUDA graph."
        ),
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(help="A previous bench JSON or gate report to check for regressions."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Slowdown that counts as a regression (with --baseline).")
    ] = 0.05,
    blocks: Annotated[
        int | None,
        typer.Option(
            help="Measure each cell in this many processes, splitting the duration (default: "
            "3 with --baseline, else 1); their spread widens the baseline ratio interval."
        ),
    ] = None,
    interleave: Annotated[
        bool | None,
        typer.Option(
            "--interleave/--no-interleave",
            help="With --baseline: measure the baseline's model again, in blocks alternating "
            "with this one's (default: when its file is unchanged and the software and "
            "hardware match); --no-interleave compares with its recorded samples.",
        ),
    ] = None,
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
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Measure latency and throughput of MODEL on each backend x precision x batch cell."""
    check_outputs(json_file=json_file)
    from optieval.bench import MeasureSettings, benchmark, check_against_baseline
    from optieval.cli.render.bench import baseline_table, bench_table, cell_footnotes, op_tables
    from optieval.errors import BackendUnavailable, combined_exit_code

    shapes = parse_shape_sweep(shape)
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
    block_count = blocks if blocks is not None else (3 if baseline is not None else 1)
    baseline_model = _baseline_model(baseline, interleave, block_count, executor)
    from optieval.cli.progress import cell_progress

    with cell_progress("bench") as shown, cell_executor(executor, ray_address) as cells_on:
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
            on_cell=shown.on_cell,
            on_start=shown.on_start,
            scenarios=scenarios,
            executor=cells_on,
            blocks=block_count,
            baseline_model=baseline_model,
        )
    comparison = None
    if baseline is not None:
        comparison = check_against_baseline(report, baseline, threshold=threshold)
    payload = report.to_json()
    if comparison is not None:
        payload["baseline"] = {
            "path": str(baseline),
            "interleaved": baseline_model is not None,
            **comparison.to_json(),
        }
    write_json_output(json_file, payload)
    if len(backends) == 1 and all(c.status == "skipped" for c in report.results):
        reason = report.results[0].reason if report.results else "unusable"
        raise BackendUnavailable(reason or "unusable", where=backends[0])
    console.print(bench_table(report))
    from optieval.cli.render.scenarios import scenario_tables

    for table in scenario_tables(report):
        console.print(table)
    for table in op_tables(report):
        console.print(table)
    if comparison is not None:
        console.print(baseline_table(comparison))
    for line in cell_footnotes(report):
        err_console.print(to_flags(line), highlight=False, soft_wrap=True, markup=False)
    codes = [3 if c.status == "error" else 0 for c in report.results]
    if comparison is not None and comparison.any_slower:
        codes.append(1)
    code = combined_exit_code(codes)
    if code:
        raise typer.Exit(code)


def _baseline_model(
    baseline: Path | None, interleave: bool | None, blocks: int, executor: str
) -> Path | None:
    """The baseline's model to measure beside this one, or None; says on stderr which
    comparison the run makes. ``--interleave`` that cannot be honoured is an error."""
    if baseline is None or interleave is False:
        if interleave and baseline is None:
            raise InputError("--interleave needs --baseline", where="--interleave")
        return None
    from optieval.bench import baseline_model_at_hand
    from optieval.core import fingerprint

    path, why = baseline_model_at_hand(baseline, fingerprint(), blocks=blocks,
                                       local=executor == "local", required=bool(interleave),
                                       where="--interleave")  # fmt: skip
    if path is not None:
        why += " (--no-interleave: compare with its recorded samples)"
    err_console.print(f"baseline: {why}", highlight=False, soft_wrap=True, markup=False)
    return path
