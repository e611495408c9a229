"""Percentile intervals, throughput, stability and the stopping rule."""

from __future__ import annotations

import json
import math
import time
import zlib

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.stats import (
    LatencySummary,
    QuantileEstimate,
    StoppingRule,
    binomial_cdf,
    min_samples_for_percentiles,
    min_samples_for_quantile,
    order_statistic_ranks,
    quantile_ci,
    should_stop,
    stability_check,
    summarize,
    throughput_estimate,
)


def _exact_binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


# --------------------------------------------------------------------------- binomial / ranks


@pytest.mark.parametrize("n", [1, 7, 40, 300])
@pytest.mark.parametrize("p", [0.01, 0.5, 0.9, 0.99])
def test_binomial_cdf_matches_exact_sum(n: int, p: float) -> None:
    for k in range(-1, n + 1, max(1, n // 13)):
        assert binomial_cdf(k, n, p) == pytest.approx(_exact_binom_cdf(k, n, p), abs=1e-12)


def test_binomial_cdf_large_n_is_fast_and_centred() -> None:
    start = time.perf_counter()
    value = binomial_cdf(5_000_000, 10_000_000, 0.5)
    assert time.perf_counter() - start < 0.5
    # P(K <= n/2) for n even is 1/2 + pmf(n/2)/2; pmf(n/2) ~ sqrt(2 / (pi n))
    assert value == pytest.approx(0.5 + 0.5 * math.sqrt(2 / (math.pi * 1e7)), rel=1e-6)


@pytest.mark.parametrize(
    ("q", "expected"), [(0.5, 6), (0.9, 29), (0.95, 59), (0.99, 299), (0.999, 2995)]
)
def test_min_samples_for_quantile_is_the_least_n_with_an_interval(q: float, expected: int) -> None:
    n = min_samples_for_quantile(q, 0.95)
    assert n == expected
    # derived, not tabulated: [x(1), x(n)] reaches 95% at n and not at n - 1
    assert q**n + (1 - q) ** n <= 0.05 < q ** (n - 1) + (1 - q) ** (n - 1)
    assert order_statistic_ranks(n, q) is not None
    assert order_statistic_ranks(n - 1, q) is None


def test_min_samples_depends_on_confidence_and_takes_the_highest_percentile() -> None:
    assert min_samples_for_quantile(0.99, 0.99) > min_samples_for_quantile(0.99, 0.95)
    assert min_samples_for_percentiles([50, 99, 90]) == 299
    assert min_samples_for_percentiles([50, 99.9]) == 2995


@pytest.mark.parametrize("n", [30, 299, 300, 367, 1000, 5000])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_ranks_are_equal_tailed_and_coverage_is_exact(n: int, q: float) -> None:
    ranks = order_statistic_ranks(n, q, 0.95)
    if ranks is None:
        assert n < min_samples_for_quantile(q)
        return
    lo, hi, coverage = ranks
    assert 1 <= lo < hi <= n
    below = binomial_cdf(lo - 1, n, q)  # P(K < l)
    above = 1.0 - binomial_cdf(hi - 1, n, q)  # P(K >= u)
    assert coverage == pytest.approx(1 - below - above, abs=1e-9)
    assert coverage >= 0.95 - 1e-12
    if lo - 1 > 0 and hi < n:  # neither side clamped to an extreme: each tail <= 2.5%, maximal
        assert below <= 0.025 + 1e-12 < binomial_cdf(lo, n, q)
        assert above <= 0.025 + 1e-12 < 1.0 - binomial_cdf(hi - 2, n, q)


# --------------------------------------------------------------------------- quantile_ci


def test_point_is_nearest_rank_and_matches_numpy_inverted_cdf() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 10, 100, 299, 1001):
        x = rng.exponential(size=n)
        for q in (0.5, 0.9, 0.95, 0.99):
            est = quantile_ci(x, q)
            assert est.point == np.quantile(x, q, method="inverted_cdf")
            assert est.method == "nearest-rank"


def test_point_lies_inside_the_interval() -> None:
    rng = np.random.default_rng(4)
    for n in (299, 300, 500, 2000):
        x = rng.lognormal(size=n)
        for q in (0.5, 0.9, 0.95, 0.99):
            est = quantile_ci(x, q)
            assert est.supported and est.low is not None and est.high is not None
            assert est.low <= est.point <= est.high


def test_too_few_samples_give_no_interval_never_a_false_number() -> None:
    est = quantile_ci(np.arange(1.0, 299.0), 0.99)
    assert not est.supported
    assert est.low is None and est.high is None and est.interval is None
    assert est.coverage is None
    assert est.point == 296.0  # the point is still reported, labelled unsupported
    assert quantile_ci([5.0], 0.5).supported is False


def test_unsorted_and_sorted_input_agree() -> None:
    x = np.random.default_rng(5).normal(10, 1, 1000)
    assert quantile_ci(x, 0.95) == quantile_ci(np.sort(x), 0.95)


def test_millions_of_sorted_samples_are_fast() -> None:
    xs = np.sort(np.random.default_rng(6).lognormal(size=2_000_000))
    start = time.perf_counter()
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        est = quantile_ci(xs, q)
        assert est.supported
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -2.0], [float("inf")]])
def test_bad_samples_raise(bad: list[float]) -> None:
    with pytest.raises(InputError):
        quantile_ci(bad, 0.5)


@pytest.mark.parametrize("q", [0.0, 1.0, 99.0, -0.5])
def test_bad_quantile_raises(q: float) -> None:
    with pytest.raises(InputError):
        quantile_ci([1.0, 2.0], q)


def test_bad_confidence_raises() -> None:
    with pytest.raises(InputError):
        quantile_ci([1.0, 2.0], 0.5, confidence=1.0)


_DISTRIBUTIONS = {
    # name: (sampler, true quantile function)
    "exponential": (lambda rng, size: rng.exponential(2.0, size), lambda q: -2.0 * math.log1p(-q)),
    "uniform": (lambda rng, size: rng.uniform(1.0, 3.0, size), lambda q: 1.0 + 2.0 * q),
    "lognormal": (
        lambda rng, size: rng.lognormal(0.0, 0.5, size),
        lambda q: math.exp(0.5 * _normal_ppf(q)),
    ),
}


def _normal_ppf(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


@pytest.mark.parametrize("dist", sorted(_DISTRIBUTIONS))
@pytest.mark.parametrize(("n", "q"), [(299, 0.99), (400, 0.5), (400, 0.9), (1000, 0.99)])
def test_interval_covers_true_quantile_at_its_stated_rate(dist: str, n: int, q: float) -> None:
    sampler, ppf = _DISTRIBUTIONS[dist]
    rng = np.random.default_rng(zlib.crc32(f"{dist}-{n}-{q}".encode()))
    trials = 1500
    samples = np.sort(sampler(rng, (trials, n)), axis=1)
    ranks = order_statistic_ranks(n, q)
    assert ranks is not None
    lo, hi, coverage = ranks
    truth = ppf(q)
    covered = (samples[:, lo - 1] <= truth) & (truth <= samples[:, hi - 1])
    rate = covered.mean()
    se = math.sqrt(coverage * (1 - coverage) / trials)
    # at least the stated (exact) rate, within 3.5 standard errors of simulation noise
    assert rate >= coverage - 3.5 * se
    assert rate <= coverage + 3.5 * se + 1e-9
    # and the function agrees with the vectorised ranks on one trial
    est = quantile_ci(samples[0], q)
    assert (est.low, est.high) == (samples[0, lo - 1], samples[0, hi - 1])


def test_interval_stays_conservative_when_latencies_tie() -> None:
    # a clock with 0.1 ms resolution: many ties; closed intervals must still cover >= 95%
    rng = np.random.default_rng(11)
    n, q, trials = 400, 0.9, 1500
    truth = np.quantile(np.round(rng.lognormal(0, 0.3, 2_000_000), 1), q, method="inverted_cdf")
    samples = np.sort(np.round(rng.lognormal(0, 0.3, (trials, n)), 1), axis=1)
    ranks = order_statistic_ranks(n, q)
    assert ranks is not None
    lo, hi, _ = ranks
    rate = ((samples[:, lo - 1] <= truth) & (truth <= samples[:, hi - 1])).mean()
    assert rate >= 0.95


# --------------------------------------------------------------------------- summarize


def _run(n: int = 600, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(4.0), 0.2, n)


def test_summarize_fields_and_json_shape() -> None:
    times = _run()
    s = summarize(times, batch=8)
    assert s.n == 600 and s.batch == 8
    assert s.mean_ms == pytest.approx(times.mean())
    assert s.std_ms == pytest.approx(times.std(ddof=1))
    assert (s.min_ms, s.max_ms) == (times.min(), times.max())
    assert s.cv == pytest.approx(s.std_ms / s.mean_ms)
    assert [e.label for e in s.quantiles] == ["p50", "p90", "p95", "p99"]
    assert s.percentile(99).point == np.quantile(times, 0.99, method="inverted_cdf")
    assert s.throughput.items_per_s == pytest.approx(8 * 1000 / times.mean())
    doc = s.to_json()
    assert set(doc["latency_ms"]) == {"p50", "p90", "p95", "p99", "mean", "std", "min", "max"}
    assert set(doc["ci95_ms"]) == {"p50", "p90", "p95", "p99"}
    low, high = doc["ci95_ms"]["p99"]
    assert low <= doc["latency_ms"]["p99"] <= high
    assert doc["percentile_method"] == "nearest-rank"
    assert (
        doc["throughput"]["ci"][0] < doc["throughput"]["items_per_s"] < doc["throughput"]["ci"][1]
    )
    text = json.dumps(doc)  # plain JSON: no NaN, no numpy types
    assert LatencySummary.from_json(json.loads(text)) == s


def test_summarize_marks_unsupported_percentiles_and_round_trips_none() -> None:
    s = summarize(_run(100), batch=1, percentiles=(50, 99, 99.9))
    assert [e.label for e in s.quantiles] == ["p50", "p99", "p99.9"]
    doc = s.to_json()
    assert doc["ci95_ms"]["p99"] is None and doc["ci95_ms"]["p99.9"] is None
    assert doc["ci95_ms"]["p50"] is not None
    assert LatencySummary.from_json(json.loads(json.dumps(doc))) == s


def test_summarize_other_confidence_names_its_key() -> None:
    doc = summarize(_run(), batch=1, confidence=0.9).to_json()
    assert "ci90_ms" in doc and "ci95_ms" not in doc


@pytest.mark.parametrize(
    ("times", "kwargs"),
    [
        ([], {"batch": 1}),
        ([1.0, float("nan")], {"batch": 1}),
        ([1.0], {"batch": 0}),
        ([1.0, 2.0], {"batch": 1, "percentiles": (50, 100)}),
    ],
)
def test_summarize_bad_input(times: list[float], kwargs: dict) -> None:
    with pytest.raises(InputError):
        summarize(times, **kwargs)


def test_quantile_estimate_from_json_refuses_garbage() -> None:
    with pytest.raises(InputError):
        QuantileEstimate.from_json({"q": 0.5})
    with pytest.raises(InputError):
        LatencySummary.from_json({"samples": 3})


def test_throughput_interval_covers_the_true_rate() -> None:
    rng = np.random.default_rng(21)
    trials, n, batch, mean_ms = 600, 300, 4, 2.0
    truth = batch * 1000 / mean_ms
    hits = 0
    for _ in range(trials):
        est = throughput_estimate(rng.exponential(mean_ms, n), batch=batch)
        assert est.low is not None and est.high is not None
        hits += est.low <= truth <= est.high
    assert hits / trials >= 0.92  # nominal 95%; batch means with 30 blocks


def test_throughput_without_enough_samples_has_no_interval() -> None:
    est = throughput_estimate([1.0] * 10, batch=2)
    assert est.items_per_s == pytest.approx(2000.0)
    assert est.interval is None


# --------------------------------------------------------------------------- stability


def test_stable_run_is_stable() -> None:
    check = stability_check(_run(1000))
    assert check.assessed and not check.unstable
    assert len(check.window_medians_ms) == 5
    assert "stable" in check.reason


def test_a_step_in_the_middle_is_unstable_with_a_reason() -> None:
    times = _run(1000)
    times[600:] *= 1.3  # clocks dropped for the last 40% of the run
    check = stability_check(times)
    assert check.unstable
    assert check.relative_spread is not None and check.relative_spread > 0.2
    assert check.reason.startswith("unstable") and "threshold 10%" in check.reason
    assert summarize(times, batch=1).unstable


def test_threshold_and_windows_are_parameters() -> None:
    times = _run(1000)
    times[500:] *= 1.05
    assert not stability_check(times).unstable
    assert stability_check(times, threshold=0.02).unstable
    assert len(stability_check(times, windows=10).window_medians_ms) == 10


def test_short_run_is_not_assessed() -> None:
    check = stability_check(_run(30))
    assert not check.assessed and not check.unstable
    assert "not assessed" in check.reason


# --------------------------------------------------------------------------- stopping rule


def test_for_percentile_derives_min_samples() -> None:
    assert StoppingRule.for_percentile(99).min_samples == 299
    assert StoppingRule.for_percentile(95).min_samples == 59
    assert StoppingRule.for_percentile(99, min_samples=1000).min_samples == 1000
    assert StoppingRule.for_percentile(99, min_samples=10).min_samples == 299


def test_should_stop_needs_both_minimums_or_the_cap() -> None:
    rule = StoppingRule(min_duration_s=3.0, min_samples=299, max_duration_s=30.0)
    assert rule.stop_reason(2.99, 10_000) is None
    assert rule.stop_reason(3.0, 298) is None
    assert rule.stop_reason(3.0, 299) == "met"
    assert rule.stop_reason(29.9, 100) is None
    assert rule.stop_reason(30.0, 100) == "max_duration"
    assert should_stop(3.0, 299, min_duration_s=3.0, min_samples=299, max_duration_s=30.0)
    assert not should_stop(1.0, 299, min_duration_s=3.0, min_samples=299, max_duration_s=30.0)


@pytest.mark.parametrize(
    ("iteration_s", "expected_n", "expected_reason"),
    [
        (0.005, 600, "met"),  # fast model: the 3 s minimum decides
        (0.05, 299, "met"),  # slower: the p99 sample count decides (~15 s)
        (0.2, 150, "max_duration"),  # too slow: capped at 30 s, p99 unsupported
    ],
)
def test_simulated_loop_stops_where_it_should(
    iteration_s: float, expected_n: int, expected_reason: str
) -> None:
    rule = StoppingRule.for_percentile(99, min_duration_s=3.0, max_duration_s=30.0)
    elapsed, n = 0.0, 0
    while not rule.should_stop(elapsed, n):
        n += 1
        elapsed = n * iteration_s
    assert n == expected_n
    assert rule.stop_reason(elapsed, n) == expected_reason


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"min_duration_s": 0.0}, "min_duration_s"),
        ({"min_duration_s": -1.0}, "min_duration_s"),
        ({"min_samples": 0}, "min_samples"),
        ({"max_duration_s": 0.0}, "max_duration_s"),
        ({"min_duration_s": 5.0, "max_duration_s": 2.0}, "max_duration_s"),
    ],
)
def test_bad_stopping_settings_name_the_option(kwargs: dict, where: str) -> None:
    with pytest.raises(InputError) as info:
        StoppingRule(**kwargs)
    assert where in (info.value.where or "")
    assert info.value.exit_code == 2


def test_bad_target_percentile_names_the_option() -> None:
    with pytest.raises(InputError) as info:
        StoppingRule.for_percentile(100)
    assert info.value.where == "target_percentile"


def test_stopping_rule_round_trips() -> None:
    rule = StoppingRule.for_percentile(95, min_duration_s=1.5, max_duration_s=10.0)
    assert StoppingRule.from_json(json.loads(json.dumps(rule.to_json()))) == rule


def test_all_zero_latencies_are_refused() -> None:
    with pytest.raises(InputError, match="zero"):
        summarize([0.0] * 400, batch=1)


def test_a_zero_width_throughput_interval_still_holds_its_point() -> None:
    # Identical latencies (a quiet machine, a deterministic backend): the batch means agree
    # exactly and only rounding separates the interval from the point.
    rng = np.random.default_rng(3)
    for ms in (2.5641, 0.1 + 0.2, 1 / 3):
        for times in (np.full(1000, ms), ms + rng.normal(size=1000) * 1e-13):
            est = throughput_estimate(times, batch=1)
            if est.low is not None and est.high is not None:
                assert est.low <= est.items_per_s <= est.high
