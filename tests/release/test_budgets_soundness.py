"""Issue 15: the gate's verdicts are sound (baseline three-way, one-sided percentile FAIL,
exact flip-rate bounds, the real confidence in the evidence)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from optieval.bench.results import Cell
from optieval.release.budgets import AccuracyBudget, LatencyBudget, RegressionBudget
from optieval.stats import RatioEstimate, Verdict, binomial_cdf, clopper_pearson_interval


def _comparison(low: float | None, high: float | None, *, confidence: float = 0.95) -> Any:
    supported = low is not None
    ratio = RatioEstimate(1.0 if low is None else (low + high) / 2, low, high, confidence,  # type: ignore[operator]
                          10.0, 10.0, 100 if supported else 5, 100, supported)  # fmt: skip
    return SimpleNamespace(backend="ort-cpu", precision="fp32", batch=1, ratio=ratio,
                           verdict=SimpleNamespace(value="no significant change"))  # fmt: skip


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.90, 1.05, Verdict.PASS),  # upper end exactly at 1 + max_slowdown passes
        (0.95, 1.04, Verdict.PASS),
        (1.06, 1.20, Verdict.FAIL),
        (0.98, 1.20, Verdict.INCONCLUSIVE),  # straddles 1.05: not shown within budget
        (1.01, 1.10, Verdict.INCONCLUSIVE),  # significant, but not past 1.05 for sure
        (None, None, Verdict.INCONCLUSIVE),  # no interval at all
    ],
)
def test_baseline_check_is_three_way(low: Any, high: Any, expected: Verdict) -> None:
    check = RegressionBudget(0.05).check(_comparison(low, high))
    assert check.verdict is expected
    if low is None:
        assert "no 95% interval" in check.evidence and "INCONCLUSIVE" in check.evidence


def test_baseline_evidence_prints_the_real_confidence() -> None:
    check = RegressionBudget(0.05).check(_comparison(0.9, 1.0, confidence=0.99))
    assert "99% interval" in check.evidence and "95%" not in check.evidence


def _cell(times: list[float]) -> Cell:
    return Cell("ort-cpu", "fp32", 1, {"x": [1, 4]}, "ok", samples=len(times), times_ms=times)


def test_percentile_far_over_budget_fails_without_a_two_sided_interval() -> None:
    check = LatencyBudget("p99_ms_max", 5.0).check(_cell([80.0] * 40))
    assert check.verdict is Verdict.FAIL
    assert "one-sided 97.5% bounds: lower 80 (x(38) of 40)" in check.evidence
    assert check.advice is None


def test_percentile_one_sided_bound_is_the_right_order_statistic() -> None:
    # 40 samples 1..40 ms: the p99 lower bound is x(38) = 38 ms; P(K <= 37) <= 0.025 < P(K <= 38)
    assert binomial_cdf(37, 40, 0.99) <= 0.025 < binomial_cdf(38, 40, 0.99)
    # Interleaved small and large (no positive lag-1 correlation: tau = 1); sorted times
    # would look perfectly autocorrelated and count as fewer independent samples.
    times = [float(x) for pair in zip(range(1, 21), range(40, 20, -1), strict=True) for x in pair]
    assert LatencyBudget("p99_ms_max", 37.9).check(_cell(times)).verdict is Verdict.FAIL
    under = LatencyBudget("p99_ms_max", 38.0).check(_cell(times))
    assert under.verdict is Verdict.INCONCLUSIVE  # never PASS without the upper end
    assert under.advice == "about 41 samples (now 40) would likely decide it"


def test_flip_rate_gate_errs_at_most_alpha_half_at_the_budget() -> None:
    # A candidate whose true flip rate is exactly the budget: the probability (exact, over the
    # binomial) that the gate FAILS it must not exceed 2.5%. Wilson breaks this at n = 20.
    from optieval.stats import wilson_interval

    n, budget = 20, 0.1
    fail = 0.0
    for flips in range(n + 1):
        # parity reports Wilson; the gate must not decide on it
        out = SimpleNamespace(name="logits", flip_rate=flips / n,
                              flip_rate_ci=wilson_interval(flips, n))  # fmt: skip
        verdict = AccuracyBudget("flip_rate_max", budget).check(out, candidate="c", samples=n)
        if verdict.verdict is Verdict.FAIL:
            p_k = binomial_cdf(flips, n, budget) - binomial_cdf(flips - 1, n, budget)
            fail += p_k
    assert fail <= 0.025


def test_flip_rate_gate_uses_exact_bounds_even_when_parity_reported_wilson() -> None:
    from optieval.stats import wilson_interval

    # 5 flips in 20 against flip_rate_max = 0.1: Wilson's low end 0.112 would FAIL; the exact
    # low end 0.087 does not.
    out = SimpleNamespace(name="logits", flip_rate=5 / 20, flip_rate_ci=wilson_interval(5, 20))
    check = AccuracyBudget("flip_rate_max", 0.1).check(out, candidate="c", samples=20)
    assert check.verdict is Verdict.INCONCLUSIVE
    assert check.judgement.low == pytest.approx(clopper_pearson_interval(5, 20).low)
