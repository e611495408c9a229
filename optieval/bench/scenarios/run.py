"""The entry points: run one scenario cell (:func:`run_scenario`), search for the highest rate
under a p99 budget (:func:`find_max_qps`), and the bench runner's scenario cell
(:func:`scenario_cell`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.bench.latency import MeasureSettings, measure
from optieval.bench.scenarios.generators import (
    ClosedLoopRun,
    Instances,
    closed_loop,
    rate_estimate,
    single_stream_idle,
    warm_up_runners,
)
from optieval.bench.scenarios.results import MaxQpsResult, ScenarioResult
from optieval.bench.scenarios.search import run_search
from optieval.bench.scenarios.server import server_cell
from optieval.bench.scenarios.spec import (
    CONCURRENCY,
    DEFAULT_SERVER_WORKERS,
    OFFLINE,
    SERVER,
    SINGLE_STREAM,
    BackendFactory,
    ScenarioSpec,
    backend_traits,
    check_scenario_support,
)
from optieval.runtime import Backend
from optieval.stats import summarize


def _infer_batch(feeds: Mapping[str, np.ndarray]) -> int:
    for array in feeds.values():
        if array.ndim:
            return int(array.shape[0])
    return 1


def run_scenario(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    scenario: ScenarioSpec,
    settings: MeasureSettings | None = None,
    *,
    batch: int | None = None,
) -> ScenarioResult:
    """Run one scenario cell.

    Args:
        backend_factory: returns a new (unloaded or loaded) backend each call; the parallel
            scenarios call it once per stream or worker that needs its own instance.
        feeds: one request's inputs (checked once by the backend).
        scenario: what to run (validated here).
        settings: warm-up and stopping rule (defaults as :class:`MeasureSettings`); the server
            scenario schedules max(required samples, qps x duration) arrivals, capped to fit
            in ``max_duration_s``.
        batch: items per request (default: the first input's leading dimension).

    Returns:
        A :class:`ScenarioResult`; ``valid`` is False when the generator could not keep its
        schedule.

    Raises:
        InputError: a bad scenario or settings, or a scenario the backend cannot run.
        BackendError: from the backend.
    """
    scenario.validate()
    settings = (settings or MeasureSettings()).validate()
    batch = batch or _infer_batch(feeds)
    if scenario.find_max_qps:
        return run_search(backend_factory, feeds, scenario, settings, batch)
    first = backend_factory()
    check_scenario_support(first, scenario)
    _, _, shared = backend_traits(first)
    kind = scenario.kind
    idle_ns = int(scenario.idle_ms * 1e6)
    if kind == SINGLE_STREAM:
        count = 1
    elif kind == OFFLINE:
        count = scenario.streams or 1
    elif kind == CONCURRENCY:
        count = 1 if shared else (scenario.concurrency or 1)
    else:
        count = 1 if shared else (scenario.workers or DEFAULT_SERVER_WORKERS)
    pending = [first]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    with Instances(factory, feeds, count) as inst:
        if kind == SERVER:
            return server_cell(scenario, inst, settings, batch, float(scenario.qps or 0.0))
        if kind == SINGLE_STREAM and not idle_ns:
            m = measure(inst.runners, settings)
            return _closed_result(
                scenario,
                m.times_ns,
                None,
                batch,
                m.elapsed_s,
                m.first_inference_ms,
                m.warmup_iterations,
                inst,
                1,
                m.reached_minimums,
            )
        first_ms, warm = warm_up_runners(inst.runners, settings, idle_ns)
        if kind == SINGLE_STREAM:
            times, elapsed_s, met = single_stream_idle(inst.runners[0], settings, idle_ns)
            return _closed_result(
                scenario, times, None, batch, elapsed_s, first_ms, warm, inst, 1, met
            )
        threads = (scenario.streams or 1) if kind == OFFLINE else (scenario.concurrency or 1)
        runners = [inst.runners[k % len(inst.runners)] for k in range(threads)]
        loop = closed_loop(runners, settings, idle_ns)
        return _closed_result(
            scenario,
            loop.ends - loop.starts,
            loop,
            batch,
            (loop.t_stop - loop.t0) / 1e9,
            first_ms,
            warm,
            inst,
            threads,
            loop.met,
        )


def _closed_result(
    spec: ScenarioSpec,
    times_ns: npt.NDArray[np.int64],
    loop: ClosedLoopRun | None,
    batch: int,
    elapsed_s: float,
    first_ms: float,
    warm: int,
    inst: Instances,
    workers: int,
    met: bool,
) -> ScenarioResult:
    times_ms = times_ns.astype(np.float64) / 1e6
    summary = summarize(times_ms, batch=batch)
    throughput = (
        summary.throughput
        if loop is None
        else rate_estimate(loop.ends, loop.t0, loop.t_stop, batch)
    )
    notes = []
    if not met:
        notes.append(
            f"stopped at `max_duration_s` with {len(times_ms)} samples, "
            "fewer than the minimums asked"
        )
    return ScenarioResult(
        spec=spec,
        batch=batch,
        times_ms=tuple(float(t) for t in times_ms),
        summary=summary,
        throughput=throughput,
        elapsed_s=elapsed_s,
        first_inference_ms=first_ms,
        cold_start_ms=None if inst.cold_load_ms is None else inst.cold_load_ms + first_ms,
        warmup_iterations=warm,
        instances=len(inst.runners),
        workers=workers,
        reached_minimums=met,
        options=inst.options,
        notes=tuple(notes),
    )


def find_max_qps(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    p99_ms_max: float,
    settings: MeasureSettings | None = None,
    *,
    start_qps: float | None = None,
    workers: int | None = None,
    seed: int = 0,
    batch: int | None = None,
) -> MaxQpsResult:
    """Search for the highest Poisson arrival rate whose p99 latency interval (from scheduled
    arrival) lies wholly under ``p99_ms_max``; the gate's ``max_qps_min`` judges the answer with
    :meth:`MaxQpsResult.check`.

    Args:
        backend_factory, feeds, settings, batch: as :func:`run_scenario`.
        p99_ms_max: the budget in milliseconds (> 0).
        start_qps: the first rate (default: half of one server's rate, 0.5 / median service
            time of a short probe).
        workers: server threads (default :data:`DEFAULT_SERVER_WORKERS`).
        seed: seed of the arrivals.

    Returns:
        A :class:`MaxQpsResult` with the answer and every rate tried.

    Raises:
        InputError: a non-positive budget or rate (naming ``p99_ms_max`` / ``qps``).
    """
    spec = ScenarioSpec(
        SERVER, qps=start_qps, workers=workers, seed=seed, find_max_qps=True, p99_ms_max=p99_ms_max
    )
    result = run_scenario(backend_factory, feeds, spec, settings, batch=batch)
    assert result.search is not None
    return result.search


def scenario_cell(
    request: Any,
    backend: Backend,
    feeds: Mapping[str, np.ndarray],
    backend_factory: BackendFactory,
    *,
    shapes: dict[str, list[int]],
    artifact: dict[str, Any],
    artifact_bytes: int | None,
    notes: Sequence[str] = (),
) -> Any:
    """Run ``request.scenario`` for the bench runner and return its ``ok`` cell.

    Args:
        request: the runner's ``CellRequest`` (backend, precision, batch, settings, scenario).
        backend: the runner's loaded instance, used as the first instance.
        feeds: one request's inputs.
        backend_factory: makes further instances with the cell's options.
        shapes, artifact, artifact_bytes, notes: the cell fields the runner resolved.
    """
    import resource
    import sys

    from optieval.bench.results import STATUS_OK, Cell

    pending = [backend]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    result = run_scenario(factory, feeds, request.scenario, request.settings, batch=request.batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    peak_mb = round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)
    return Cell(
        backend=request.backend,
        precision=request.precision,
        batch=request.batch,
        shapes=shapes,
        status=STATUS_OK,
        cold_start_ms=result.cold_start_ms,
        memory={"peak_rss_mb": peak_mb},
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        options={**result.options, "warmup_iterations": result.warmup_iterations},
        notes=[*notes, *result.notes],
        **result.cell_fields(),
    )


__all__ = [
    "find_max_qps",
    "run_scenario",
    "scenario_cell",
]
