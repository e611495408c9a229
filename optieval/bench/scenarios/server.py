"""The server scenario's cell: an open loop of Poisson arrivals at one rate, the generator's
issue lag, and the rule that marks a run invalid when the generator could not keep its
schedule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from optieval.bench.latency import MeasureSettings
from optieval.bench.scenarios.generators import (
    Instances,
    OpenLoopRun,
    open_loop,
    rate_estimate,
    warm_up_runners,
)
from optieval.bench.scenarios.results import IssueLag, ScenarioResult
from optieval.bench.scenarios.spec import DEFAULT_SERVER_WORKERS, ScenarioSpec
from optieval.stats import mean_ci_batch_means, quantile_ci, summarize

ISSUE_LAG_BEHIND_FLOOR_MS = 0.5
ISSUE_LAG_FLOOR_MS = 5.0
ISSUE_LAG_TAIL_SHARE = 0.5
ISSUE_LAG_GAP_FRACTION = 0.1
NOISY_LAG_MS = 1.0
"""A server run is **invalid** when the generator could not keep its schedule:

* planned queries were never issued; or
* the median issue lag, over the run or over its last tenth, exceeds max(0.5 ms, 10% of the mean
  gap between arrivals): the generator fell behind the offered rate, which would flatter the
  latency (less load than asked); or
* the p99 issue lag exceeds max(5 ms, 10% of the gap) *and* half the p99 latency: the tail
  measured is the generator's, not the backend's.

Otherwise a p99 lag over 1 ms is called **noisy** in the notes: a busy machine delays a sleeping
thread's wake-up by milliseconds now and then; such queries count their lateness in their latency
(measured from the scheduled arrival), so jitter makes the numbers pessimistic, never
flattering."""


def _issue_lag(run: OpenLoopRun, qps: float, spec: ScenarioSpec, p99_latency_ms: float) -> IssueLag:
    gap_ms = 1e3 / qps
    limit = spec.max_issue_lag_ms or max(ISSUE_LAG_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * gap_ms)
    behind_limit = max(ISSUE_LAG_BEHIND_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * gap_ms)
    lags_ms = (run.issued - run.sched).astype(np.float64) / 1e6
    if lags_ms.size == 0:
        return IssueLag(
            0.0,
            0.0,
            0.0,
            0.0,
            limit,
            behind_limit,
            0,
            run.planned,
            False,
            "invalid: nothing was issued",
        )
    lags_ms = np.maximum(lags_ms, 0.0)
    p50 = quantile_ci(lags_ms, 0.5).point
    p99 = quantile_ci(lags_ms, 0.99).point
    tail = lags_ms[-max(1, lags_ms.size // 10) :]
    p50_last = quantile_ci(tail, 0.5).point
    problems = []
    if run.behind:
        problems.append(f"{run.behind} of {run.planned} planned queries were never issued")
    if max(p50, p50_last) > behind_limit:
        problems.append(
            f"median issue lag {max(p50, p50_last):.3g} ms (over the run or its last tenth) "
            f"exceeds {behind_limit:.3g} ms: it fell behind the offered rate"
        )
    if p99 > limit and p99 > ISSUE_LAG_TAIL_SHARE * p99_latency_ms:
        problems.append(
            f"p99 issue lag {p99:.3g} ms exceeds {limit:.3g} ms and is over "
            f"{ISSUE_LAG_TAIL_SHARE:.0%} of the p99 latency ({p99_latency_ms:.3g} ms): the tail "
            "is the generator's"
        )
    valid = not problems
    reason = (
        f"the generator kept its schedule (issue lag p50 {p50:.3g} ms, p99 {p99:.3g} ms)"
        if valid
        else f"invalid: the load generator could not keep its schedule at {qps:g} qps: "
        f"{'; '.join(problems)}; the numbers describe the generator, not the backend"
    )
    return IssueLag(
        p50,
        p99,
        float(lags_ms.max()),
        float(lags_ms.mean()),
        limit,
        behind_limit,
        int(lags_ms.size),
        run.planned,
        valid,
        reason,
    )


def _server_result(
    spec: ScenarioSpec,
    run: OpenLoopRun,
    batch: int,
    qps: float,
    inst: Instances,
    workers: int,
    first_ms: float,
    warm: int,
) -> ScenarioResult:
    latency_ms = (run.ends - run.sched).astype(np.float64) / 1e6
    latency_ms = np.maximum(latency_ms, 0.0)
    summary = summarize(latency_ms, batch=batch)
    done = ~run.censored
    last_issue = int(run.issued.max()) if run.issued.size else run.t0
    throughput = rate_estimate(run.ends[done], run.t0, max(last_issue, run.t0 + 1), batch)
    waits = (run.starts[done] - run.sched[done]).astype(np.float64) / 1e6
    service = (run.ends[done] - run.starts[done]).astype(np.float64) / 1e6
    wait_ci = mean_ci_batch_means(waits) if waits.size else None
    queue_wait = {
        "mean": float(waits.mean()) if waits.size else None,
        "ci": None if wait_ci is None else [wait_ci[0], wait_ci[1]],
        "service_mean_ms": float(service.mean()) if service.size else None,
    }
    lag = _issue_lag(run, qps, spec, summary.percentile(99).point)
    notes = []
    if not lag.valid:
        notes.append(lag.reason)
    elif lag.p99_ms > NOISY_LAG_MS:
        notes.append(
            f"noisy: the generator issued 1% of queries over {lag.p99_ms:.3g} ms late "
            "(a busy machine?); their latency includes it"
        )
    if run.stopped_early:
        notes.append(
            f"stopped early: {run.stopped_early}; {int(run.censored.sum())} queued "
            "queries counted at their age then (lower bounds)"
        )
    elapsed_s = (max(int(run.ends.max()), run.t0) - run.t0) / 1e9 if run.ends.size else 0.0
    return ScenarioResult(
        spec=spec,
        batch=batch,
        times_ms=tuple(float(t) for t in latency_ms),
        summary=summary,
        throughput=throughput,
        elapsed_s=elapsed_s,
        first_inference_ms=first_ms,
        cold_start_ms=None if inst.cold_load_ms is None else inst.cold_load_ms + first_ms,
        warmup_iterations=warm,
        instances=len(inst.runners),
        workers=workers,
        issue_lag=lag,
        queue_wait_ms=queue_wait,
        reached_minimums=run.met,
        stopped_early=run.stopped_early,
        options=inst.options,
        notes=tuple(notes),
    )


def server_cell(
    spec: ScenarioSpec,
    inst: Instances,
    settings: MeasureSettings,
    batch: int,
    qps: float,
    *,
    warm_up: bool = True,
    budget_ms: float | None = None,
    warm: tuple[float, int] = (0.0, 0),
) -> ScenarioResult:
    """Run the server scenario at ``qps`` on loaded instances: warm up (unless ``warm_up`` is
    False, when ``warm`` gives the first call's ms and the warm-up count already made), run the
    open loop (stopping early once ``budget_ms`` is proven exceeded) and build the result."""
    if warm_up:
        warm = warm_up_runners(inst.runners, settings)
    workers = spec.workers or DEFAULT_SERVER_WORKERS
    lag_ms = spec.max_issue_lag_ms or max(ISSUE_LAG_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * 1e3 / qps)
    run = open_loop(
        inst.runners,
        qps,
        settings,
        workers=workers,
        seed=spec.seed,
        lag_limit_ns=int(lag_ms * 1e6),
        budget_ms=budget_ms,
    )
    return _server_result(replace(spec, qps=qps), run, batch, qps, inst, workers, *warm)


__all__ = [
    "ISSUE_LAG_BEHIND_FLOOR_MS",
    "ISSUE_LAG_FLOOR_MS",
    "ISSUE_LAG_GAP_FRACTION",
    "ISSUE_LAG_TAIL_SHARE",
    "NOISY_LAG_MS",
    "server_cell",
]
