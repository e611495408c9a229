"""``optieval.benchmark``: a matrix of backend x precision x batch x shape cells over one model,
each measured with the protocol in :mod:`optieval.bench.latency` and summarised with the
statistics in :mod:`optieval.stats`."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optieval.bench.blocks import block_settings, check_blocks, pool_blocks
from optieval.bench.cell import (
    IO_MODES,
    CellRequest,
    listify,
    resolve_artifact,
    run_cell,
)
from optieval.bench.latency import MeasureSettings
from optieval.bench.results import STATUS_ERROR, STATUS_SKIPPED, BenchReport, Cell
from optieval.bench.scenarios.spec import ScenarioSpec, check_scenario_support
from optieval.core import (
    ONNX_PRECISIONS,
    PRECISIONS,
    Dataset,
    ShapeSet,
    Signature,
    expand_shape_sets,
    fingerprint,
    read_manifest,
    resolve_shapes,
    sha256_file,
    shape_set_label,
    validity_warnings,
    zip_shape_sweep,
)
from optieval.errors import InputError
from optieval.execution import CellFunctions
from optieval.precision import is_engine, model_signature
from optieval.runtime import availability, check_backend_name
from optieval.stats import INTERVAL_METHOD, POINT_METHOD, THROUGHPUT_METHOD


def benchmark(
    model: str | os.PathLike[str],
    *,
    backends: Sequence[str] = ("ort-cpu",),
    precisions: Sequence[str] = ("fp32",),
    batches: Sequence[int] = (1,),
    shapes: Mapping[str, Sequence[tuple[int, ...]]] | None = None,
    shape_sets: Sequence[Mapping[str, tuple[int, ...]]] | None = None,
    threads: int | None = None,
    settings: MeasureSettings | None = None,
    data: str | os.PathLike[str] | None = None,
    calib: str | os.PathLike[str] | None = None,
    seed: int = 0,
    isolate: bool = True,
    cell_timeout_s: float | None = None,
    profile_ops: bool = False,
    io: str = "device",
    cuda_graph: bool = False,
    on_cell: Callable[[Cell], None] | None = None,
    scenarios: Sequence[ScenarioSpec] | None = None,
    executor: Any = None,
    hardware: str | None = None,
    on_start: Callable[[int], None] | None = None,
    blocks: int = 1,
    baseline_model: str | os.PathLike[str] | None = None,
) -> BenchReport:
    """Benchmark ``model`` on every backend x precision x batch x shape cell.

    Args:
        model: path to an ONNX file (the FP32 source; fp16/int8 artifacts are made from it, or
            it is used as is when it already carries that precision).
        backends: backend names (docs/design.md); default ``("ort-cpu",)``.
        precisions: ``fp32``, ``fp16``, ``int8`` (``bf16`` on torch-cuda); default ``fp32``.
        batches: batch sizes; default ``(1,)`` (empty with ``shapes``: each set's own batch).
        shapes: per input, one or more full shapes (batch included) to sweep: the ``i``-th
            shape of each input run together as one cell (never a product); an input left
            out follows the inputs whose dimension names it shares (``attention_mask`` follows
            ``input_ids``). Each cell is labelled by its set (``seq=64``).
        shape_sets: the same sweep given set by set (``[{"input_ids": (1, 16)}, ...]``);
            exclusive with ``shapes``.
        threads: intra-op threads for CPU backends (None: the runtime's default).
        settings: warm-up and measurement settings (defaults as in :class:`MeasureSettings`).
        data: real inputs (``.npz``, a folder, or ``module:function``), cycled through; every
            dynamic dimension comes from it (samples whose lengths vary are batched by length,
            one cell per batch size mixing the lengths as the data does); default: generated,
            seeded inputs.
        calib: calibration data for int8 artifacts (``random`` for random calibration).
        seed: seed of the generated inputs.
        isolate: run each cell in its own spawned subprocess (a crash or hang becomes an
            ``error`` cell; thread pools and memory do not leak between cells); on by default,
            as in ``optieval bench``. False measures in this process (a backend registered or
            patched in this process is seen, at the cost of that protection).
        cell_timeout_s: the limit of one isolated cell (default: ``max_duration`` + 120 s).
        profile_ops: after each timed cell, a separate profiled run giving time per op type and
            the slowest nodes (``Cell.op_profile``).
        io: on GPU backends, ``device`` keeps inputs and outputs resident on the device
            (default); ``host`` includes the host-device copies in every timed iteration.
        cuda_graph: capture the run in a CUDA graph (ort-cuda, ort-trt, tensorrt).
        on_cell: called with each cell as it finishes (progress display).
        on_start: called once, before the first cell, with the number of cells (the fixed
            total of a progress display).
        scenarios: load scenarios (:mod:`optieval.bench.scenarios`), one cell each per backend x
            precision x batch x shape; default single-stream.
        executor: an :class:`optieval.execution.Executor` that runs the usable cells
            (e.g. on a Ray cluster); None runs them here, one after another.
        hardware: with ``executor``, the accelerator type the cells are promised for.
        blocks: measure each single-stream cell in this many processes one after another
            (``isolate``; otherwise runs), each with ``1/blocks`` of ``duration_s`` and
            ``max_duration_s``, pooled into one cell that records each block's median
            (``Cell.block_medians_ms``): what a baseline comparison needs to see variation
            between processes (:mod:`optieval.bench.blocks`). Default 1.
        baseline_model: a previous version of ``model`` (same inputs and outputs) to measure
            beside it: each blocked cell's blocks alternate between the two models (new, old,
            old, new, ...), so that both see the same machine and a baseline comparison judges
            the pairs (:func:`optieval.stats.interleaved_ratio_ci`). Its cells are
            ``report.baseline_results``. Needs ``blocks >= 2`` and no ``executor``; load
            scenario cells are not measured for it.

    Returns:
        A :class:`BenchReport`; unusable backends appear as ``skipped`` cells with the reason and
        cells that fail as ``error`` cells.

    Raises:
        InputError: a missing or malformed model, unknown backend or precision, shapes the model
            does not accept (a set whose inputs disagree on a tied dimension, inputs with
            different numbers of shapes), ``shapes`` with ``data``, or bad data (exit 2); a
            ``baseline_model`` with other inputs or outputs, with fewer than two blocks or
            with an executor.
    """
    settings = (settings or MeasureSettings()).validate()
    check_blocks(blocks)
    path = Path(model)
    signature = model_signature(path)
    old_path = None if baseline_model is None else Path(baseline_model)
    if old_path is not None:
        _check_baseline_model(old_path, signature, blocks, executor)
    for name in backends:
        check_backend_name(name)
        if is_engine(path) and name != "tensorrt":
            raise InputError(
                f"{path.name} is a prebuilt TensorRT engine; only the tensorrt backend runs it",
                where="backends",
                hint="bench the ONNX model for other backends",
            )
    for precision in precisions:
        if precision not in PRECISIONS:
            raise InputError(
                f"unknown precision {precision!r}",
                where="precisions",
                hint=f"choose from {', '.join(ONNX_PRECISIONS)}",
            )
    if threads is not None and threads < 1:
        raise InputError("thread count must be at least 1", where="threads")
    scenario_list = list(scenarios or [ScenarioSpec()])
    for spec in scenario_list:
        spec.validate()
        for name in backends:
            check_scenario_support(name, spec)
    if io not in IO_MODES:
        raise InputError(f"unknown I/O mode {io!r}", where="io", hint="choose device or host")
    if shapes and shape_sets:
        raise InputError("give `shapes` or `shape_sets`, not both", where="shapes")
    sets = list(shape_sets or []) or zip_shape_sweep(shapes or {})
    if data is not None:
        # Fail on bad data before any cell runs, naming the file; its shapes make the cells.
        from optieval.core import load_dataset

        if sets:
            raise InputError(
                "`shapes` and `data` exclude each other: every dimension comes from the data",
                where="shapes",
                hint="drop `shapes` (choose batch sizes with `batches`), or drop `data`",
            )
        dataset = load_dataset(str(data), signature, ragged=True)
        cell_sets = _data_shape_sets(signature, batches, dataset)
    else:
        cell_sets = expand_shape_sets(signature, batches, sets)
    warnings = []
    manifest = read_manifest(path)
    if manifest and manifest.get("parity", {}).get("passed") is False:
        warnings.append(
            f"{path.name}: its export parity check failed; these numbers describe a model that "
            "does not match its PyTorch source"
        )

    if on_start is not None:
        on_start(len(backends) * len(precisions) * len(cell_sets) * len(scenario_list))
    cells: list[Cell] = []
    deferred: list[tuple[int, CellRequest]] = []  # (slot in cells, request) for the executor
    rounds: list[_BlockRound] = []  # cells measured in blocks
    for backend in backends:
        state = availability(backend)
        for precision in precisions:
            for shape_set, spec in itertools.product(cell_sets, scenario_list):
                batch, cell_shapes = shape_set.batch, shape_set.shapes
                if not state.usable and (executor is None or executor.checks_here):
                    cell = Cell(
                        backend,
                        precision,
                        batch,
                        listify(cell_shapes),
                        STATUS_SKIPPED,
                        reason=state.reason,
                        scenario=spec.kind,
                        scenario_params=spec.params(),
                        shape_set=shape_set.label,
                    )
                else:
                    # Blocks for plain single-stream cells; a load scenario is one run.
                    count = blocks if spec.is_default else 1
                    request = CellRequest(
                        str(path),
                        backend,
                        precision,
                        batch,
                        cell_shapes,
                        block_settings(settings, count),
                        threads,
                        seed,
                        None if data is None else str(data),
                        None if calib is None else str(calib),
                        profile_ops=profile_ops,
                        io=io,
                        cuda_graph=cuda_graph,
                        scenario=spec,
                        shape_set=shape_set.label,
                    )
                    if executor is not None:
                        deferred.extend((len(cells), request) for _ in range(count))
                        cells.append(Cell(backend, precision, batch, {}, "pending"))
                        continue
                    if count > 1:
                        beside = None
                        if old_path is not None:
                            beside = dataclasses.replace(request, model=str(old_path))
                        rounds.append(_BlockRound(len(cells), request, count, beside))
                        cells.append(Cell(backend, precision, batch, {}, "pending"))
                        continue
                    cell = run_cell_request(request, isolate, cell_timeout_s)
                cells.append(cell)
                if on_cell is not None:
                    on_cell(cell)
    baseline_cells: list[Cell] = []
    if rounds:
        baseline_cells = _run_block_rounds(
            rounds, cells, settings, isolate, cell_timeout_s, on_cell
        )
    if deferred:
        blocked = len(deferred) > len({slot for slot, _ in deferred})
        ran = executor.run_cells(
            [r for _, r in deferred],
            bench_cells(),
            hardware=hardware,
            isolate=isolate,
            timeout_s=cell_timeout_s,
            on_cell=None if blocked else on_cell,  # blocks: shown once pooled, below
        )
        by_slot: dict[int, list[Cell]] = {}
        for (slot, _), cell in zip(deferred, ran, strict=True):
            by_slot.setdefault(slot, []).append(cell)
        for slot, parts in by_slot.items():
            cells[slot] = pool_blocks(parts, settings)
            if blocked and on_cell is not None:
                on_cell(cells[slot])

    env = fingerprint()
    warnings.extend(validity_warnings(env))
    return BenchReport(
        env=env,
        model={"path": str(path), "sha256": sha256_file(path), "io": signature.to_json()},
        settings={
            "warmup_s": settings.warmup_s,
            "warmup_iters": settings.warmup_iters,
            "duration_s": settings.duration_s,
            "min_samples": settings.required_samples(),
            "max_duration_s": settings.max_duration_s,
            "target_percentile": settings.target_percentile,
            "percentile_method": POINT_METHOD,
            "interval_method": INTERVAL_METHOD,
            "throughput_method": THROUGHPUT_METHOD,
            "clock": "host monotonic perf_counter_ns around each iteration",
            "inputs": "data: " + str(data) if data else f"generated, seed {seed}",
            "isolated": isolate,
            "executor": "local" if executor is None else executor.name,
            "scenarios": [spec.to_json() for spec in scenario_list],
            "io": io,
            "cuda_graph": cuda_graph,
            "blocks": blocks,
        },
        results=tuple(cells),
        warnings=tuple(warnings),
        baseline_model=None
        if old_path is None
        else {"path": str(old_path), "sha256": sha256_file(old_path)},
        baseline_results=tuple(baseline_cells),
    )


def _check_baseline_model(old_path: Path, signature: Signature, blocks: int, executor: Any) -> None:
    where = "baseline_model"
    if blocks < 2:
        raise InputError(
            "measuring the baseline's model beside this one needs two or more blocks",
            where=where,
            hint="pass blocks=3 (the default with a baseline)",
        )
    if executor is not None:
        raise InputError(
            "the baseline's model is measured beside this one only on this machine",
            where=where,
            hint="drop the executor, or compare with the baseline's recorded samples",
        )
    old_signature = model_signature(old_path)
    if old_signature.to_json() != signature.to_json():
        raise InputError(
            f"{old_path.name} has other inputs or outputs than this model",
            where=where,
            hint=f"baseline: {old_signature.to_json()}; now: {signature.to_json()}",
        )


@dataclasses.dataclass(frozen=True)
class _BlockRound:
    """A cell measured in blocks: its slot in the report, its request, how many blocks, and
    the baseline model's request measured beside it (None without one)."""

    slot: int
    request: CellRequest
    count: int
    beside: CellRequest | None = None


def _run_block_rounds(
    rounds: list[_BlockRound],
    cells: list[Cell],
    settings: MeasureSettings,
    isolate: bool,
    timeout_s: float | None,
    on_cell: Callable[[Cell], None] | None,
) -> list[Cell]:
    """Measure cells in blocks round by round (block 1 of every cell, then block 2, ...), so a
    cell's blocks are spread over the whole run and see slower changes of the machine's load
    than back-to-back blocks would; each cell is pooled and shown after its last block.

    A round with a baseline request measures it next to each block, the order alternating
    (new, old, then old, new, ...) so that neither model always runs first; returns the
    baseline's pooled cells in the order of ``rounds``."""
    parts: dict[int, list[Cell]] = {r.slot: [] for r in rounds}
    beside: dict[int, list[Cell]] = {r.slot: [] for r in rounds if r.beside is not None}
    for block in range(max(r.count for r in rounds)):
        for r in rounds:
            if block >= r.count:
                continue
            order = [r.request] if r.beside is None else [r.request, r.beside]
            for request in order if block % 2 == 0 else order[::-1]:
                measured = run_cell_request(request, isolate, timeout_s)
                (parts if request is r.request else beside)[r.slot].append(measured)
            if len(parts[r.slot]) == r.count:
                cells[r.slot] = pool_blocks(parts[r.slot], settings)
                if on_cell is not None:
                    on_cell(cells[r.slot])
    return [pool_blocks(beside[r.slot], settings) for r in rounds if r.beside is not None]


def run_cell_request(
    request: CellRequest, isolate: bool = True, timeout_s: float | None = None
) -> Cell:
    """Run one cell on this machine: in its own spawned subprocess when ``isolate`` (a crash, a
    hang past ``timeout_s`` (default: :func:`cell_timeout_s`) or an error becomes an ``error``
    cell), else in this process. What an executor's :attr:`CellFunctions.run` is for bench.

    Raises:
        InputError: the cell found its input bad (exit 2).
    """
    if not isolate:
        return run_cell(request)
    from optieval.execution import run_isolated

    limit = timeout_s or cell_timeout_s(request)
    outcome = run_isolated(
        "optieval.bench.runner:run_cell_payload", request.to_json(), timeout_s=limit
    )
    if outcome.ok:
        return Cell.from_json(outcome.value)
    if outcome.exit_code == 2:
        raise InputError(outcome.reason)
    reason = outcome.reason
    if outcome.stderr_tail.strip():
        reason = f"{reason}; stderr: {outcome.stderr_tail.strip()[-500:]}"
    return Cell(
        request.backend,
        request.precision,
        request.batch,
        listify(request.shapes),
        STATUS_ERROR,
        reason=f"{outcome.status}: {reason}",
        shape_set=request.shape_set,
    )


def cell_timeout_s(request: CellRequest) -> float:
    """The limit of one isolated cell when none is given: ``max_duration`` + warm-up + 120 s."""
    return float(request.settings.max_duration_s + request.settings.warmup_s + 120.0)


def failed_cell(request: CellRequest, reason: str) -> Cell:
    """The ``error`` cell of ``request`` when it could not run (missing hardware, a lost
    worker, a timeout on a cluster), saying why."""
    return Cell(
        request.backend,
        request.precision,
        request.batch,
        listify(request.shapes),
        STATUS_ERROR,
        reason=reason,
        scenario=request.scenario.kind if request.scenario is not None else None,
        shape_set=request.shape_set,
    )


def worker_payload(request: CellRequest) -> tuple[dict[str, Any], dict[str, Path]]:
    """``request`` for a worker of another machine: its plain data with the artifact it
    measures (built or found here, so no calibration is left to do there) and a data file,
    named as the files that travel by content (``model``, ``data``)."""
    artifact, _ = resolve_artifact(
        Path(request.model), request.backend, request.precision, request.calib
    )
    files = {"model": artifact}
    if request.data is not None and Path(request.data).is_file():
        files["data"] = Path(request.data)  # a folder or module:function must be shared
    return {**request.to_json(), "calib": None}, files


def run_cell_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Entry point of an isolated cell: plain data in, plain data out."""
    return run_cell(CellRequest.from_json(payload)).to_json()


def bench_cells() -> CellFunctions:
    """The functions an executor runs bench cells with (:class:`CellRequest` in, :class:`Cell`
    out)."""
    return CellFunctions(
        run=run_cell_request,
        payload=run_cell_payload,
        to_payload=worker_payload,
        from_payload=Cell.from_json,
        failed=failed_cell,
        timeout_s=cell_timeout_s,
    )


def _data_shape_sets(
    signature: Signature, batches: Sequence[int], dataset: Dataset
) -> list[ShapeSet]:
    """One cell per batch size, its shapes from the data: every dynamic dimension but the
    batch as the samples have it (checked against the model like `shapes`); data whose lengths
    vary is labelled by their range (``data seq=7..33``)."""
    groups = dataset.shape_groups()
    out = []
    for batch in batches or [1]:
        if batch < 1:
            raise InputError(f"batch {batch} must be at least 1", where="batches")
        resolved = [
            resolve_shapes(
                signature, batch, {k: (batch, *v.shape[1:]) for k, v in group.inputs.items()}
            )
            for group in groups
        ]
        label = shape_set_label(signature, resolved[0])
        if len(resolved) > 1:
            label = "data " + _ranges(signature, resolved)
        out.append(ShapeSet(batch, resolved[0], label))
    return out


def _ranges(signature: Signature, sets: list[dict[str, tuple[int, ...]]]) -> str:
    """``seq=7..33`` for the named dimensions that vary across ``sets``."""
    sizes: dict[str, set[int]] = {}
    for shapes in sets:
        for spec in signature.inputs:
            for axis, dim in enumerate(spec.shape):
                if axis and not isinstance(dim, int):
                    name = dim or f"{spec.name}[{axis}]"
                    sizes.setdefault(name, set()).add(shapes[spec.name][axis])
    return " ".join(
        f"{name}={min(v)}..{max(v)}" if len(v) > 1 else f"{name}={min(v)}"
        for name, v in sizes.items()
    )


def check_against_baseline(
    report: BenchReport, baseline: str | os.PathLike[str], *, threshold: float = 0.05
) -> Any:
    """Pair ``report``'s cells with a baseline's (a bench JSON or a gate report) and judge each
    pair by the ratio of medians (:func:`optieval.bench.baseline.compare_to_baseline`); cells
    whose baseline model was measured beside them in this run (``report.baseline_results``)
    are judged on those paired blocks.

    Raises:
        InputError (where ``baseline``): an unreadable baseline or one of another schema
            version; a model with other inputs and outputs; no shared cell.
    """
    from optieval.bench.baseline import compare_to_baseline
    from optieval.bench.results import load_baseline

    old_cells, old_env, old_model = load_baseline(Path(baseline))
    old_io, new_io = old_model.get("io"), report.model.get("io")
    if old_io and new_io and old_io != new_io:
        raise InputError(
            "the baseline's model has other inputs or outputs than this one",
            where="baseline",
            hint=f"baseline: {old_io}; now: {new_io}",
        )
    return compare_to_baseline(
        [c.to_json() for c in report.results],
        old_cells,
        new_env=report.env,
        old_env=old_env,
        threshold=threshold,
        interleaved=[c.to_json() for c in report.baseline_results],
    )
