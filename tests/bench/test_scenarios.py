"""Load scenarios against queueing theory, with a fake backend whose service time is fixed.

Every run is short and seeded. Tolerances are generous on purpose and each says why: these tests
share 2 busy cores with other jobs, so ``time.sleep`` overshoots by ~0.1 ms and thread wake-ups
are late by up to a few ms now and then.
"""

from __future__ import annotations

import math

import pytest

from optieval.bench.latency import MeasureSettings
from optieval.bench.scenarios import (
    CONCURRENCY,
    OFFLINE,
    SERVER,
    SINGLE_STREAM,
    MaxQpsResult,
    ScenarioSpec,
    find_max_qps,
    max_qps_from_cell,
    run_scenario,
)
from optieval.stats import Verdict
from tests.bench.scenario_fakes import FEEDS, SleepBackend, measured_service_s


def _settings(duration_s: float, min_samples: int | None = None) -> MeasureSettings:
    return MeasureSettings(
        warmup_s=0.05,
        warmup_iters=5,
        duration_s=duration_s,
        min_samples=min_samples,
        max_duration_s=duration_s + 3.0,
    )


def test_server_mean_wait_matches_md1() -> None:
    """M/D/1 at utilisation 0.5: mean wait rho / (2 mu (1 - rho))."""
    service_s, qps = 0.002, 250.0
    result = run_scenario(
        lambda: SleepBackend(service_s, capacity=1),
        FEEDS,
        ScenarioSpec(SERVER, qps=qps, workers=1, seed=3),
        _settings(2.0),
    )
    # Not asserted valid: on a heavily loaded machine a wake-up stall can make the tail the
    # generator's; the mean wait below is what queueing theory predicts either way.
    assert result.issue_lag is not None
    wait = result.queue_wait_ms
    assert wait is not None
    # The service time is what sleep really took (it overshoots), so rho is measured too.
    service = wait["service_mean_ms"] / 1e3
    rho = qps * service
    expected_ms = rho / (2 * (1 / service) * (1 - rho)) * 1e3
    # Queue waits are strongly autocorrelated: with too few autocorrelation times in the run
    # the batch-means interval is withheld (issue 15), and the mean alone is compared.
    low, high = wait["ci"] or (wait["mean"] - 0.6, wait["mean"] + 0.6)
    # 0.4 ms: a thread hand-off per query (queue wake-up, ~0.05-0.1 ms) and wake-up jitter
    # on a busy machine; the interval covers the sampling noise of the queue itself.
    tolerance = 0.4
    assert low - tolerance <= expected_ms <= high + tolerance, (expected_ms, wait)
    # Latency counts from the scheduled arrival, so it holds the wait plus the service.
    assert result.summary.mean_ms == pytest.approx(wait["mean"] + wait["service_mean_ms"], abs=0.2)
    assert len(result.times_ms) >= 299  # enough for a p99 interval
    assert result.summary.percentile(99).supported


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_concurrency_throughput_is_n_over_s_until_saturation(concurrency: int) -> None:
    """A device of 2 slots serving 5 ms requests: throughput min(N, 2) / S."""
    service_s, slots = 0.005, 2
    result = run_scenario(
        lambda: SleepBackend(service_s, capacity=slots),
        FEEDS,
        ScenarioSpec(CONCURRENCY, concurrency=concurrency),
        _settings(0.6, 30),
    )
    real_s = measured_service_s(service_s, 20)
    expected = min(concurrency, slots) / real_s
    # 15%: sleep overshoot varies run to run on a busy machine (the 20-call probe above and
    # the run can see different overshoots), and a wake-up stall costs a whole slot's time.
    assert result.throughput.items_per_s == pytest.approx(expected, rel=0.15)
    assert result.throughput.interval is not None
    low, high = result.throughput.interval
    assert low <= result.throughput.items_per_s <= high
    # Past saturation the extra requests queue: latency grows by N / slots.
    assert result.summary.mean_ms == pytest.approx(
        max(1.0, concurrency / slots) * real_s * 1e3, rel=0.2
    )
    fields = result.cell_fields()
    assert fields["scenario"] == CONCURRENCY
    assert fields["scenario_params"]["concurrency"] == concurrency


def test_offline_streams_use_one_instance_each() -> None:
    made: list[SleepBackend] = []

    def factory() -> SleepBackend:
        made.append(SleepBackend(0.004, capacity=1))
        return made[-1]

    result = run_scenario(factory, FEEDS, ScenarioSpec(OFFLINE, streams=3), _settings(0.5, 30))
    assert len(made) == 3 and result.instances == 3
    # Three independent 4 ms devices: ~750 items/s (20%: sleep overshoot, busy machine).
    assert result.throughput.items_per_s == pytest.approx(
        3 / measured_service_s(0.004, 20), rel=0.2
    )
    assert all(not b.is_loaded for b in made)  # closed after the run


def test_single_stream_idle_pauses_between_requests() -> None:
    result = run_scenario(
        lambda: SleepBackend(0.001),
        FEEDS,
        ScenarioSpec(SINGLE_STREAM, idle_ms=4.0),
        _settings(0.3, 20),
    )
    # Each request takes ~1 ms and is followed by 4 ms idle: about 5 ms per request.
    assert result.elapsed_s / len(result.times_ms) == pytest.approx(0.005, rel=0.3)
    assert result.summary.mean_ms < 3.0  # the idle time is not part of the latency
    assert result.cell_fields()["scenario_params"]["idle_ms"] == 4.0


def test_overloaded_generator_is_invalid() -> None:
    """Asking for ten million queries a second: Python cannot issue that (a quiet machine here
    enqueues about three million a second; one million was within reach); the run says so."""
    settings = MeasureSettings(
        warmup_s=0.0, warmup_iters=2, duration_s=0.2, min_samples=50, max_duration_s=0.4
    )
    result = run_scenario(
        lambda: SleepBackend(0.0, capacity=64), FEEDS, ScenarioSpec(SERVER, qps=1e7), settings
    )
    assert not result.valid
    lag = result.cell_fields()["issue_lag_ms"]
    assert lag["valid"] is False and "could not keep its schedule" in lag["reason"]
    assert any("invalid" in note for note in result.notes)


def _md1_wait_cdf(t: float, lam: float, d: float) -> float:
    """Erlang's M/D/1 waiting-time distribution P(W <= t) (service time d, FIFO)."""
    rho = lam * d
    total = sum(
        (lam * (k * d - t)) ** k / math.factorial(k) * math.exp(-lam * (k * d - t))
        for k in range(int(t // d) + 1)
    )
    return (1 - rho) * total


def _md1_max_rate(budget_s: float, d: float, q: float = 0.99) -> float:
    """The arrival rate at which the q-quantile of the response time (wait + d) equals the
    budget, by bisection on the rate."""
    lo, hi = 0.01 / d, 0.999 / d
    for _ in range(60):
        mid = (lo + hi) / 2
        if _md1_wait_cdf(budget_s - d, mid, d) >= q:
            lo = mid
        else:
            hi = mid
    return lo


def test_max_qps_search_lands_near_the_md1_answer() -> None:
    # A 2 ms service and a 16 ms budget put the answer at utilisation ~0.7, where queueing,
    # not a busy machine's wake-up jitter (a few ms), sets the tail.
    service_s, budget_ms = 0.002, 16.0
    real_s = measured_service_s(service_s, 50)
    analytic = _md1_max_rate(budget_ms / 1e3, real_s)
    result = find_max_qps(
        lambda: SleepBackend(service_s, capacity=1),
        FEEDS,
        budget_ms,
        MeasureSettings(warmup_s=0.05, warmup_iters=5, duration_s=0.3, max_duration_s=3.0),
        start_qps=0.75 * analytic,
        workers=1,
        seed=1,
    )
    assert result.answer_qps is not None, result.evidence
    # The answer is the highest rate whose whole p99 interval (a few hundred queries) is under
    # the budget, so it sits below the rate where the true p99 meets it; the bisection stops
    # within 10%. Wake-up jitter on a busy machine lengthens the tail, lowering it further;
    # the service time measured before the search can overstate the one during it (it ran
    # 1.16x the analytic answer once under load), hence the upper margin.
    assert 0.45 * analytic <= result.answer_qps <= 1.3 * analytic, (analytic, result.evidence)
    rates = [t.qps for t in result.tried]
    assert result.answer_qps in rates and len(rates) >= 3
    assert all(t.verdict in {"PASS", "FAIL", "INCONCLUSIVE", "INVALID"} for t in result.tried)
    # The gate's max_qps_min: judged on the answer and the lowest failing rate.
    assert result.check(result.answer_qps / 2).verdict is Verdict.PASS
    if result.lowest_failing_qps is not None:
        assert result.check(result.lowest_failing_qps * 1.5).verdict is Verdict.FAIL
    # Round trip through a cell's JSON.
    again = max_qps_from_cell({"search": result.to_json()})
    assert again == MaxQpsResult.from_json(result.to_json())
    assert again.answer_qps == result.answer_qps


def test_a_rate_interval_of_zero_width_holds_its_point() -> None:
    # Completions exactly one period apart fill every slice alike: the slices' mean is the
    # point up to rounding, which put the point just outside [low, high] on a quiet CI machine.
    import numpy as np

    from optieval.bench.scenarios.generators import RATE_SLICES, rate_estimate

    count, period, t0 = RATE_SLICES * 20, 2_823_576, 10**9
    ends = t0 + period // 2 + np.arange(count, dtype=np.int64) * period
    est = rate_estimate(ends, t0, t0 + count * period, batch=1)
    assert est.low is not None and est.high is not None
    assert est.low <= est.items_per_s <= est.high
