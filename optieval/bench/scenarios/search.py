"""The max-QPS search: run the server scenario at a sequence of rates (doubling or halving from a
start, then geometric bisection) and keep the highest rate whose p99 interval lies wholly under
the budget, with every rate tried."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from optieval.bench.latency import MeasureSettings
from optieval.bench.scenarios.generators import PROVEN_FAIL, Instances, warm_up_runners
from optieval.bench.scenarios.results import MaxQpsResult, RateTrial, ScenarioResult
from optieval.bench.scenarios.server import server_cell
from optieval.bench.scenarios.spec import (
    DEFAULT_SERVER_WORKERS,
    SEARCH_PERCENTILE,
    SEARCH_RESOLUTION,
    BackendFactory,
    ScenarioSpec,
    backend_traits,
    check_scenario_support,
)
from optieval.runtime import Backend
from optieval.stats import Verdict, judge_max

SEARCH_MAX_RUNS = 10

SEARCH_MAX_QPS = 1e6

SEARCH_START_MAX_QPS = 1000.0
"""Without a start rate the search starts at half of one server's rate, at most this: a Python
generator keeps a schedule up to some thousands of queries per second; doubling goes on from
here when the rate passes."""


def _trial(result: ScenarioResult, budget_ms: float) -> RateTrial:
    qps = float(result.spec.qps or 0.0)
    p99 = result.summary.percentile(SEARCH_PERCENTILE)
    lag = result.issue_lag
    if not result.valid:
        verdict = "INVALID"
        evidence = lag.reason if lag else "invalid run"
    elif result.stopped_early and result.stopped_early.startswith(PROVEN_FAIL):
        verdict = Verdict.FAIL.value
        evidence = f"{qps:.4g} qps: FAIL, {result.stopped_early}"
    else:
        verdict = judge_max(p99.low, p99.high, budget_ms).value
        interval = "no interval" if p99.interval is None else f"[{p99.low:.4g}, {p99.high:.4g}]"
        evidence = (
            f"{qps:.4g} qps: p99 {p99.point:.4g} ms {interval} ({p99.n} queries), "
            f"budget {budget_ms:g} ms: {verdict}"
        )
    return RateTrial(
        qps=qps,
        verdict=verdict,
        p99_ms=p99.point,
        low=p99.low,
        high=p99.high,
        samples=p99.n,
        achieved_qps=result.throughput.items_per_s / result.batch,
        issue_lag_p99_ms=None if lag is None else lag.p99_ms,
        stopped_early=result.stopped_early,
        evidence=evidence,
    )


def run_search(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    spec: ScenarioSpec,
    settings: MeasureSettings,
    batch: int,
) -> ScenarioResult:
    """Run the max-QPS search of ``spec`` (validated; ``spec.p99_ms_max`` is the budget) and
    return the result at the answer (or the lowest rate tried) with its ``search`` block."""
    budget = float(spec.p99_ms_max or 0.0)
    first = backend_factory()
    check_scenario_support(first, spec)
    _, _, shared = backend_traits(first)
    workers = spec.workers or DEFAULT_SERVER_WORKERS
    pending = [first]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    with Instances(factory, feeds, 1 if shared else workers) as inst:
        first_ms, warm = warm_up_runners(inst.runners, settings)
        # Start at half the rate one server would sustain, from a short single-stream probe.
        probe = []
        for _ in range(20):
            a = time.perf_counter_ns()
            inst.runners[0]()
            probe.append(time.perf_counter_ns() - a)
        service_s = max(float(np.median(probe)) / 1e9, 1e-6)
        rate = spec.qps or min(SEARCH_START_MAX_QPS, 0.5 / service_s)
        results: dict[float, ScenarioResult] = {}
        trials: list[RateTrial] = []

        def attempt(qps: float) -> bool:
            result = server_cell(
                spec,
                inst,
                settings,
                batch,
                qps,
                warm_up=False,
                budget_ms=budget,
                warm=(first_ms, warm),
            )
            results[qps] = result
            trials.append(_trial(result, budget))
            return trials[-1].passed

        lo: float | None = None
        hi: float | None = None
        if attempt(rate):
            lo = rate
            while len(trials) < SEARCH_MAX_RUNS and rate * 2 <= SEARCH_MAX_QPS:
                rate *= 2
                if not attempt(rate):
                    hi = rate
                    break
                lo = rate
        else:
            hi = rate
            floor = rate / 64
            # Lower rates fit fewer queries into max_duration_s: once a rate had too few for a
            # p99 interval, halving again cannot pass.
            while (
                len(trials) < SEARCH_MAX_RUNS
                and rate / 2 >= floor
                and not _too_few_queries(trials[-1])
            ):
                rate /= 2
                if attempt(rate):
                    lo = rate
                    break
                hi = rate
        while (
            lo is not None
            and hi is not None
            and hi / lo > 1 + SEARCH_RESOLUTION
            and len(trials) < SEARCH_MAX_RUNS
        ):
            mid = math.sqrt(lo * hi)
            if attempt(mid):
                lo = mid
            else:
                hi = mid
    search = _search_result(budget, lo, trials)
    shown = results[lo] if lo is not None else results[min(results)]
    notes = [*shown.notes]
    if lo is None:
        notes.append(
            f"no rate tried kept p99 under {budget:g} ms; the latency fields describe "
            f"the lowest rate tried ({min(results):.4g} qps)"
        )
    return replace(shown, spec=replace(spec, qps=shown.spec.qps), search=search, notes=tuple(notes))


def _too_few_queries(trial: RateTrial) -> bool:
    """A valid, complete run that could not support a p99 interval: lower rates fit even fewer
    queries into max_duration_s."""
    return trial.verdict == Verdict.INCONCLUSIVE.value and trial.low is None


def _search_result(budget: float, answer: float | None, trials: list[RateTrial]) -> MaxQpsResult:
    above = sorted((t for t in trials if answer is None or t.qps > answer), key=lambda t: t.qps)
    if answer is None:
        evidence = f"no rate kept the p99 interval under {budget:g} ms; rates tried: " + "; ".join(
            t.evidence for t in trials
        )
    else:
        best = next(t for t in trials if t.qps == answer)
        evidence = f"highest rate with the p99 interval under {budget:g} ms: {best.evidence}"
        if above:
            evidence += f"; next rate up: {above[0].evidence}"
    if any(t.verdict == "INVALID" for t in trials):
        evidence += (
            "; some rates were invalid (the generator could not keep the schedule), "
            "so the answer may be limited by the generator"
        )
    return MaxQpsResult(budget, answer, tuple(trials), SEARCH_RESOLUTION, evidence)


__all__ = [
    "SEARCH_MAX_QPS",
    "SEARCH_MAX_RUNS",
    "SEARCH_START_MAX_QPS",
    "run_search",
]
