"""The interval helpers other concerns share: the bootstrap's resampling weights and percentile
interval, and one Interval type for proportions and the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from optieval.stats import (
    Interval,
    bootstrap_weights,
    median_ratio_ci,
    percentile_interval,
    wilson_interval,
)


def test_bootstrap_weights_are_seeded_draws_with_replacement() -> None:
    first = list(bootstrap_weights(7, 20, seed=3))
    again = list(bootstrap_weights(7, 20, seed=3))
    assert len(first) == 20
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(w.dtype == np.float64 and w.sum() == 7 and (w >= 0).all() for w in first)
    other = list(bootstrap_weights(7, 20, seed=4))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert list(bootstrap_weights(0, 20)) == []


def test_percentile_interval_drops_undefined_resamples() -> None:
    values = np.concatenate([np.arange(1.0, 101.0), [np.nan, np.inf]])
    iv = percentile_interval(values, 0.9, "test")
    assert iv is not None and iv.method == "test" and iv.confidence == 0.9
    assert iv.low == pytest.approx(np.percentile(np.arange(1.0, 101.0), 5.0))
    assert iv.high == pytest.approx(np.percentile(np.arange(1.0, 101.0), 95.0))
    assert percentile_interval(np.array([np.nan]), 0.95, "test") is None


def test_one_interval_type_round_trips() -> None:
    iv = wilson_interval(10, 100)
    assert isinstance(iv, Interval) and iv.method == "wilson"
    assert Interval.from_json(iv.to_json()) == iv


def test_median_ratio_of_a_run_with_itself_is_one() -> None:
    times = np.random.default_rng(0).lognormal(0.0, 0.3, 400)
    ratio = median_ratio_ci(times, times)
    assert ratio.ratio == 1.0 and ratio.low is not None and ratio.low < 1.0 < (ratio.high or 0)
