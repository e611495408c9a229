"""Issue 15: exact proportion bounds, one-sided quantile bounds, the real confidence in text."""

from __future__ import annotations

import numpy as np
import pytest

from optieval.stats import (
    binomial_cdf,
    clopper_pearson_interval,
    confidence_text,
    judge,
    quantile_lower_bound,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # reference values (R: binom.test(k, n)$conf.int)
        (1, 20, 0.001265, 0.248733),
        (5, 20, 0.086571, 0.491046),
        (0, 20, 0.0, 0.168433),
        (20, 20, 0.831567, 1.0),
        (3, 100, 0.006229, 0.085176),
    ],
)
def test_clopper_pearson_matches_reference_values(k: int, n: int, low: float, high: float) -> None:
    ci = clopper_pearson_interval(k, n)
    assert ci.method == "clopper-pearson"
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=2e-6)


def test_clopper_pearson_each_side_errs_at_most_alpha_half() -> None:
    n = 30
    for p in (0.01, 0.05, 0.1, 0.3, 0.5):
        pmf = [binomial_cdf(k, n, p) - binomial_cdf(k - 1, n, p) for k in range(n + 1)]
        over = sum(pmf[k] for k in range(n + 1) if clopper_pearson_interval(k, n).low > p)
        under = sum(pmf[k] for k in range(n + 1) if clopper_pearson_interval(k, n).high < p)
        assert over <= 0.025 + 1e-12 and under <= 0.025 + 1e-12


def test_quantile_lower_bound_of_p99_with_40_samples() -> None:
    xs = np.arange(1.0, 41.0)
    assert quantile_lower_bound(xs, 0.99) == (38.0, 38)
    assert quantile_lower_bound([7.0], 0.99) == (7.0, 1)  # 0.01 ** 1 <= 0.025
    assert quantile_lower_bound([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) is None  # 0.5**5 > 0.025


def test_quantile_lower_bound_covers_in_simulation() -> None:
    rng = np.random.default_rng(15)
    q, n, trials = 0.9, 25, 4000
    true = -np.log(1 - q)  # exponential(1) quantile
    misses = 0
    for _ in range(trials):
        bound = quantile_lower_bound(rng.exponential(size=n), q)
        assert bound is not None
        misses += bound[0] > true
    assert misses / trials <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / trials)


def test_evidence_prints_the_real_confidence() -> None:
    assert confidence_text(0.975) == "97.5%" and confidence_text(0.95) == "95%"
    text = judge("p99_ms", "max", 10.0, value=5.0, low=4.0, high=6.0, confidence=0.975).evidence
    assert "97.5% interval" in text
    text = judge("p99_ms", "max", 10.0, value=5.0, low=4.0, high=6.0, confidence=0.999).evidence
    assert "99.9% interval" in text
