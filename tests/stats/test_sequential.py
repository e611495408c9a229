"""Issue 15: one-sided percentile bounds, the sequential look plan, samples-to-decide, the
mean interval's coverage on skewed and autocorrelated latencies, the configured confidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from optieval.bench.results import Cell
from optieval.errors import InputError
from optieval.release.budgets import LatencyBudget
from optieval.stats import (
    autocorrelation_time,
    binomial_cdf,
    look_plan,
    mean_ci_batch_means,
    min_samples_for_mean,
    min_samples_for_upper_bound,
    quantile_bounds,
    samples_to_decide_quantile,
)


@pytest.mark.parametrize("n", [368, 400, 1000, 5000])
def test_upper_bound_rank_errs_at_most_alpha_half_and_is_the_smallest(n: int) -> None:
    xs = np.arange(1.0, n + 1.0)
    _, upper = quantile_bounds(xs, 0.99)
    assert upper is not None
    u = upper[1]
    assert 1.0 - binomial_cdf(u - 1, n, 0.99) <= 0.025  # P(K >= u)
    assert 1.0 - binomial_cdf(u - 2, n, 0.99) > 0.025  # u - 1 would err more


def test_no_upper_bound_below_its_minimum_count() -> None:
    # The two-sided 95% interval exists at 299 samples, but its upper end x(299) errs 4.9%.
    assert 0.99**299 > 0.025
    assert min_samples_for_upper_bound(0.99, 0.025) == 368
    lower, upper = quantile_bounds(np.arange(1.0, 300.0), 0.99)
    assert upper is None and lower is not None


def test_look_plan_splits_alpha_over_a_fixed_number_of_looks() -> None:
    plan = look_plan(3.0, 30.0)
    assert plan.durations_s == (3.0, 12.0, 30.0)
    assert plan.look_confidence == pytest.approx(1 - 0.05 / 3)
    # The first look waits for the count at which a PASS is possible at its error.
    assert plan.first_samples == min_samples_for_upper_bound(0.99, 0.05 / 6) == 477
    assert plan.samples_at(1) == 477 and plan.samples_at(2) is None  # later looks: by time
    assert look_plan(3.0, 3.0).looks == 1
    assert look_plan(3.0, 3.0, min_samples=1000).first_samples == 1000
    with pytest.raises(InputError, match="confidence"):
        look_plan(3.0, 30.0, confidence=1.0)


def test_sequential_looks_keep_false_pass_under_alpha_half() -> None:
    """Exact: the chance that any of the looks of a plan PASSes a p99 that is exactly at the
    budget is at most 2.5%, by the union bound over looks at 2.5% / looks each; judging each
    look at the full 2.5% (as re-measuring used to) exceeds it."""
    plan = look_plan(3.0, 30.0)
    err = (1 - plan.look_confidence) / 2
    total = 0.0
    for n in (477, 4 * 477, 16 * 477):  # any counts at the looks: each errs <= err
        _, upper = quantile_bounds(np.arange(1.0, n + 1.0), 0.99, plan.look_confidence)
        assert upper is not None
        exact = 1.0 - binomial_cdf(upper[1] - 1, n, 0.99)  # P(PASS) at the boundary
        assert exact <= err + 1e-12
        total += exact
    assert total <= 0.025 + 1e-12


def test_samples_to_decide_quantile() -> None:
    times = [float(i) for i in range(1, 41)]
    assert samples_to_decide_quantile(times, 0.99, 38.0) == 41
    # A budget above every sample: a PASS needs the upper bound, 368 samples.
    assert samples_to_decide_quantile([1.0] * 50, 0.99, 10.0) == 368
    # The share under the budget equal to q: no count decides it.
    assert samples_to_decide_quantile([1.0] * 99 + [5.0], 0.99, 1.0) is None


def _ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    z = np.empty(n)
    z[0] = rng.normal()
    e = rng.normal(size=n) * math.sqrt(1 - rho * rho)
    for t in range(1, n):
        z[t] = rho * z[t - 1] + e[t]
    return np.exp(0.5 * z)


def test_mean_interval_withheld_until_enough_autocorrelation_times() -> None:
    rng = np.random.default_rng(0)
    iid = rng.lognormal(size=99)
    assert mean_ci_batch_means(iid) is None  # fewer than 100 samples
    assert mean_ci_batch_means(rng.lognormal(size=100)) is not None
    series = _ar1(rng, 600, 0.9)
    tau = autocorrelation_time(series)
    assert 8.0 < tau < 40.0  # (1 + 0.9) / (1 - 0.9) = 19
    assert min_samples_for_mean(series) > 600
    assert mean_ci_batch_means(series) is None


@pytest.mark.parametrize(
    ("kind", "n"), [("lognormal", 100), ("lognormal", 300), ("pareto", 200), ("ar1", 2000)]
)
def test_mean_upper_bound_covers_on_skewed_and_autocorrelated_latencies(kind: str, n: int) -> None:
    """The side that overstates throughput: P(high < true mean) <= 2.5% + Monte Carlo error
    (400 replications: 3 standard errors of a 2.5% rate are 2.3%)."""
    rng = np.random.default_rng(7)
    reps, misses, made = 400, 0, 0
    truth = {"lognormal": math.exp(0.5), "pareto": 1.25, "ar1": math.exp(0.125)}[kind]
    for _ in range(reps):
        if kind == "lognormal":
            x = rng.lognormal(size=n)
        elif kind == "pareto":
            x = 1.0 + 0.5 * rng.pareto(3.0, size=n)
        else:
            x = _ar1(rng, n, 0.9)
        ci = mean_ci_batch_means(x)
        if ci is not None:
            made += 1
            misses += ci[1] < truth
    assert made >= reps * 0.9
    assert misses / made <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / made)


def _cell(times: list[float]) -> Cell:
    return Cell("ort-cpu", "fp32", 1, {"x": [1, 4]}, "ok", samples=len(times), times_ms=times)


def test_mean_check_uses_the_configured_confidence() -> None:
    times = list(np.random.default_rng(1).lognormal(size=400))
    check = LatencyBudget("mean_ms_max", 100.0).check(_cell(times), confidence=0.99)
    assert "99% interval" in check.evidence and "95%" not in check.evidence
    assert check.judgement.confidence == 0.99
    p99 = LatencyBudget("p99_ms_max", 100.0).check(_cell(times), confidence=0.9)
    assert "one-sided 95% bounds" in p99.evidence


def test_mean_check_without_an_interval_says_how_many_samples(tmp_path: Path) -> None:
    check = LatencyBudget("throughput_min", 1.0).check(_cell([1.0, 2.0] * 20))
    assert check.verdict.value == "INCONCLUSIVE"
    assert check.advice is not None and check.advice.startswith("about 100 samples (now 40)")
    assert check.decision is not None and check.decision["samples_to_decide"] == 100


@pytest.mark.parametrize("value", ["1.5", "0", "1.0", "-0.95", "0.5"])
def test_a_confidence_outside_its_range_is_bad_input(tmp_path: Path, value: str) -> None:
    from optieval.release.config_loader import load_config
    from tests.conftest import make_onnx_mlp

    make_onnx_mlp(tmp_path / "m.onnx")
    text = '[model]\npath = "m.onnx"\n[[target]]\nbackend = "ort-cpu"\n[measure]\n'
    (tmp_path / "r.toml").write_text(text + f"confidence = {value}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"measure\.confidence") as err:
        load_config(tmp_path / "r.toml")
    assert err.value.exit_code == 2
    (tmp_path / "r.toml").write_text(text + "confidence = 0.99\n", encoding="utf-8")
    config = load_config(tmp_path / "r.toml")
    assert config.measure.confidence == 0.99
    assert config.measure.settings().confidence == 0.99


def test_fixed_data_checks_say_how_they_were_decided() -> None:
    from optieval.release.budgets import Check
    from optieval.release.looks import fixed_sample
    from optieval.stats import judge

    undecided = judge("flip_rate", "max", 0.02, value=0.015, low=0.005, high=0.03, confidence=0.95)
    check = fixed_sample(Check("accuracy", "c", "c out", "flip_rate_max", undecided), 400)
    assert check.decision is not None
    assert check.decision["bound"] is None and check.decision["looks"] == 1
    assert check.decision["samples_to_decide"] == math.ceil(400 * (0.015 / 0.005) ** 2)
    passed = judge("flip_rate", "max", 0.02, value=0.005, low=0.001, high=0.01, confidence=0.9)
    check = fixed_sample(Check("accuracy", "c", "c out", "flip_rate_max", passed), 400)
    assert check.decision is not None and check.decision["bound"] == "upper"
    assert check.decision["look_confidence"] == 0.9


def test_a_max_duration_too_short_to_decide_is_said_in_the_evidence() -> None:
    from optieval.release.looks import with_looks

    budget = LatencyBudget("p99_ms_max", 10.0)
    check = budget.check(_cell([1.0, 2.0] * 20), confidence=0.95)  # 40 samples, no upper bound
    plan = look_plan(0.05, 0.05)
    out = with_looks(check, budget, 1, plan, 0.05)
    assert out.verdict.value == "INCONCLUSIVE"
    assert "undecided after look 1 of 1, 40 samples" in out.evidence
    assert "`max_duration_s` 0.05 s was too short to decide it: about 368 samples" in out.evidence
    assert out.decision is not None and out.decision["stopped_early"] is False
    decided = with_looks(budget.check(_cell([50.0] * 40)), budget, 1, look_plan(1.0, 16.0), 16.0)
    assert "decided at look 1 of 3" in decided.evidence and "stopped early" in decided.evidence
