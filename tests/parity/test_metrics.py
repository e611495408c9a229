"""Known perturbations give known metrics; intervals cover the truth in simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optieval.parity.metrics import (
    accuracy_metrics,
    classification_metrics,
    is_classification_shaped,
    tensor_metrics,
    tolerance_violations,
    worst_samples,
)
from optieval.stats import paired_difference_interval, paired_ratio_interval, wilson_interval
from tests.parity.parity_helpers import logits_with_flips


def test_constant_offset_gives_exact_metrics() -> None:
    ref = np.linspace(1.0, 2.0, 100).reshape(10, 10).astype(np.float32)
    m = tensor_metrics(ref, ref + np.float32(0.5))
    assert m.max_abs == pytest.approx(0.5, abs=1e-6)
    assert m.mean_abs == pytest.approx(0.5, abs=1e-6)
    assert m.rmse == pytest.approx(0.5, abs=1e-6)
    assert m.max_rel == pytest.approx(0.5, abs=1e-6)  # at the smallest |r| = 1
    assert m.nan_count == m.inf_count == m.new_nonfinite == 0


def test_gaussian_noise_of_set_size() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, 100))  # unit signal power
    sigma = 0.01
    m = tensor_metrics(ref, ref + sigma * rng.normal(size=ref.shape))
    assert m.rmse == pytest.approx(sigma, rel=0.02)
    assert m.mean_abs == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.02)
    assert m.snr_db == pytest.approx(40.0, abs=0.2)  # 10 log10(1 / 1e-4)
    assert m.cosine == pytest.approx(1 - sigma**2 / 2, abs=1e-5)


def test_identical_tensors() -> None:
    ref = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = tensor_metrics(ref, ref.copy())
    assert m.max_abs == 0 and m.cosine == 1.0 and m.snr_db == math.inf
    assert tolerance_violations(ref, ref, 0.0, 0.0) == 0


def test_computed_in_float64() -> None:
    # float16 inputs: differences below fp16 resolution of the sum must not vanish.
    ref = np.full((4, 4), 1024.0, dtype=np.float16)
    cand = ref.copy()
    cand[0, 0] = np.float16(1025.0)
    assert tensor_metrics(ref, cand).max_abs == 1.0


def test_nan_in_candidate_where_reference_is_finite() -> None:
    ref = np.ones((4, 3))
    cand = ref.copy()
    cand[1, 2] = np.nan
    cand[2, 0] = np.inf
    m = tensor_metrics(ref, cand)
    assert (m.nan_count, m.inf_count, m.new_nonfinite) == (1, 1, 2)
    assert m.max_abs == 0.0  # the finite elements agree
    assert worst_samples(ref, cand)[:2] == [1, 2]


def test_shared_nan_is_not_new() -> None:
    ref = np.ones((2, 2))
    ref[0, 0] = np.nan
    ref[1, 1] = -np.inf
    m = tensor_metrics(ref, ref.copy())
    assert m.new_nonfinite == 0 and m.reference_nan_count == 1 and m.reference_inf_count == 1
    cand = ref.copy()
    cand[1, 1] = np.inf  # a different infinity is new
    assert tensor_metrics(ref, cand).new_nonfinite == 1


def test_tolerance_rule_is_allclose() -> None:
    ref = np.array([1.0, 10.0, 100.0])
    cand = ref + np.array([0.04, 0.4, 6.0])
    assert tolerance_violations(ref, cand, atol=0.0, rtol=0.05) == 1
    assert tolerance_violations(ref, cand, atol=1.0, rtol=0.05) == 0


def test_worst_samples_order() -> None:
    ref = np.zeros((6, 2))
    cand = ref.copy()
    cand[4, 0], cand[1, 1], cand[3, 0] = 3.0, 2.0, 1.0
    assert worst_samples(ref, cand, k=5) == [4, 1, 3]


def test_flipped_fraction_gives_flip_rate() -> None:
    ref, cand, flips = logits_with_flips(400, 10, 0.05)
    cm = classification_metrics(ref, cand)
    assert cm.flips == flips == 20
    assert cm.flip_rate == pytest.approx(0.05)
    assert cm.top1_agreement == pytest.approx(0.95)
    assert cm.top5_agreement == 1.0  # the reference winner stays second
    assert cm.flip_rate_ci.contains(0.05) and cm.flip_rate_ci.method == "wilson"
    assert is_classification_shaped(ref) and not is_classification_shaped(ref[:, :1])


def test_top5_absent_for_few_classes() -> None:
    ref, cand, _ = logits_with_flips(20, 3, 0.1)
    assert classification_metrics(ref, cand).top5_agreement is None


def test_nan_row_counts_as_flip() -> None:
    ref, cand, _ = logits_with_flips(10, 4, 0.0)
    cand[0, :] = np.nan
    assert classification_metrics(ref, cand).flips == 1


def test_wilson_edges_and_values() -> None:
    assert wilson_interval(0, 0).low == 0.0 and wilson_interval(0, 0).high == 1.0
    assert wilson_interval(0, 50).low == 0.0 and wilson_interval(50, 50).high == 1.0
    iv = wilson_interval(10, 100)  # textbook: [0.0552, 0.1744]
    assert iv.low == pytest.approx(0.0552, abs=1e-4)
    assert iv.high == pytest.approx(0.1744, abs=1e-4)


def test_flip_rate_interval_covers_true_rate_in_simulation() -> None:
    rng = np.random.default_rng(1234)
    for p, n in ((0.02, 200), (0.1, 100), (0.3, 50)):
        flips = rng.binomial(n, p, size=800)
        covered = sum(wilson_interval(int(k), n).contains(p) for k in flips)
        assert covered / 800 >= 0.92, (p, n, covered)


def test_flip_rate_interval_covers_through_classification_metrics() -> None:
    rng = np.random.default_rng(7)
    p, n, covered, sims = 0.05, 120, 0, 200
    ref = rng.normal(size=(n, 5))
    ref[np.arange(n), 0] += 10
    for _ in range(sims):
        cand = ref.copy()
        flipped = rng.random(n) < p
        cand[flipped, 1] += 20
        covered += classification_metrics(ref, cand).flip_rate_ci.contains(p)
    assert covered / sims >= 0.92


def test_accuracy_metrics_known_values() -> None:
    n = 100
    labels = np.zeros(n, dtype=np.int64)
    ref = np.zeros((n, 3))
    ref[:90, 0] = 1  # 90 right
    ref[90:, 1] = 1
    cand = ref.copy()
    cand[:10, 0], cand[:10, 2] = 0, 1  # 10 of the right ones go wrong
    am = accuracy_metrics(ref, cand, labels)
    assert am.accuracy_reference == pytest.approx(0.9)
    assert am.accuracy_candidate == pytest.approx(0.8)
    assert am.accuracy_delta == pytest.approx(-0.1)
    assert am.accuracy_ratio == pytest.approx(0.8 / 0.9)
    assert am.accuracy_delta_ci.contains(-0.1) and am.accuracy_delta_ci.high < 0
    assert am.accuracy_ratio_ci.contains(0.8 / 0.9) and am.accuracy_ratio_ci.high < 1


def test_paired_intervals_cover_in_simulation() -> None:
    rng = np.random.default_rng(99)
    n, sims = 150, 300
    p_ref, p_break, p_fix = 0.8, 0.06, 0.02  # candidate: ref outcome flipped with these odds
    true_delta = -p_ref * p_break + (1 - p_ref) * p_fix
    true_ratio = (p_ref + true_delta) / p_ref
    cover_d = cover_r = 0
    for _ in range(sims):
        ref_ok = rng.random(n) < p_ref
        u = rng.random(n)
        cand_ok = np.where(ref_ok, u >= p_break, u < p_fix)
        cover_d += paired_difference_interval(cand_ok, ref_ok).contains(true_delta)
        cover_r += paired_ratio_interval(cand_ok, ref_ok).contains(true_ratio)
    assert cover_d / sims >= 0.92
    assert cover_r / sims >= 0.92


def test_identical_predictions_still_have_width() -> None:
    ok = np.array([True] * 40 + [False] * 10)
    d = paired_difference_interval(ok, ok)
    r = paired_ratio_interval(ok, ok)
    assert d.contains(0.0) and r.contains(1.0)
    assert r.high > 1.0 > r.low
