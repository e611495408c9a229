"""Per-sample metrics: cosine per sample (not over the flattened tensor), neighbour agreement,
per-sample errors, and the kinds' metrics in compare_outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity.metrics import tensor_metrics
from optieval.parity.output_compare import compare_outputs
from optieval.parity.results import OutputParity
from optieval.parity.sample_metrics import (
    cosine_stats,
    error_stats,
    neighbour_stats,
    per_sample_cosine,
    percentile_of,
)
from optieval.parity.tolerances import TaskBudget, ToleranceSet

HUGE = ToleranceSet(atol=10.0, rtol=10.0)


def _bad_sample(n: int = 200, d: int = 64, bad: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings where one sample is badly off and the rest are close."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(n, d))
    cand = ref + rng.normal(size=(n, d)) * 0.01
    cand[bad] = -ref[bad] * 0.2 + rng.normal(size=d)
    return ref, cand


def test_one_bad_sample_hides_in_the_flattened_cosine() -> None:
    ref, cand = _bad_sample()
    flat = tensor_metrics(ref, cand).cosine
    stats, per = cosine_stats(ref, cand)
    assert flat > 0.99  # one cosine over everything says all is well
    assert stats.min < 0.5 and stats.worst[0][0] == 17  # the worst sample is named
    assert per[17] == pytest.approx(stats.min)
    assert stats.mean_ci is not None and stats.mean_ci.low <= stats.mean <= stats.mean_ci.high
    p5 = stats.percentile(5.0)
    assert p5 is not None and p5.interval is not None  # 200 samples: p5 has an interval
    assert stats.percentile(1.0) is not None and stats.percentile(1.0).interval is None  # < 299


def test_per_sample_cosine_edges() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    cand = np.array([[-1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [np.nan, 0.0]])
    assert per_sample_cosine(ref, cand).tolist() == [-1.0, 1.0, 0.0, -1.0]
    stats, _ = cosine_stats(ref, cand)
    assert stats.nonfinite == 1


def test_low_percentile_interval_holds_its_point() -> None:
    values = np.linspace(-0.5, 1.0, 100)
    p = percentile_of(values, 5.0, 0.95)
    assert p.value == pytest.approx(values[4])
    assert p.interval is not None and p.interval.low <= p.value <= p.interval.high


def test_neighbour_agreement_is_one_for_a_rotation_and_falls_with_noise() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(60, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    same = neighbour_stats(ref, ref @ q, k=5)  # cosine neighbours survive a rotation
    assert same is not None and same.agreement == 1.0 and same.top1 == 1.0
    noisy = neighbour_stats(ref, ref + rng.normal(size=ref.shape) * 2.0, k=5)
    assert noisy is not None and noisy.agreement < 0.6
    assert noisy.agreement_ci is not None
    assert noisy.agreement_ci.low <= noisy.agreement <= noisy.agreement_ci.high
    assert neighbour_stats(ref[:2], ref[:2]) is None  # too few samples to have neighbours
    assert neighbour_stats(ref[:4], ref[:4], k=10).k == 3  # k capped at samples - 1


def test_error_stats_name_the_worst_sample() -> None:
    ref = np.array([[1.0], [2.0], [4.0], [0.0]])
    cand = np.array([[1.1], [2.0], [2.0], [0.0]])
    err = error_stats(ref, cand)
    assert err.max_abs == pytest.approx(2.0)
    assert err.worst[0] == (2, pytest.approx(0.5)) and err.rel_max == pytest.approx(0.5)
    zero = error_stats(np.zeros((3, 1)), np.array([[0.0], [1.0], [0.0]]))
    assert math.isinf(zero.rel_max)
    assert zero.to_json()["rel_max"] == "inf"


def test_embedding_output_has_no_classification_metrics() -> None:
    ref, cand = _bad_sample()
    (out,) = compare_outputs({"emb": ref}, {"emb": cand}, tolerances=HUGE,
                             output_kinds={"emb": "embedding"},
                             budget=TaskBudget(min_cosine=0.9, min_knn_agreement=0.5))  # fmt: skip
    assert out.kind == "embedding" and out.kind_reason == "given"
    assert out.top1_agreement is None and out.flip_rate is None and out.flip_rate_ci is None
    assert out.neighbours is not None and out.neighbours.k == 10
    checks = {c.name: c for c in out.checks}
    assert not checks["cosine"].passed and checks["cosine"].value == pytest.approx(
        out.cosine_per_sample.min
    )
    assert checks["knn_agreement"].passed
    assert not out.passed and out.worst_metric == "cosine"
    back = OutputParity.from_json(out.to_json())
    assert back == out


def test_budgets_that_no_output_has_are_refused() -> None:
    ref, cand = _bad_sample(n=20)
    with pytest.raises(InputError, match="no output is scores") as info:
        compare_outputs({"emb": ref}, {"emb": cand}, output_kinds={"emb": "embedding"},
                        budget=TaskBudget(min_top1_agreement=0.9))  # fmt: skip
    assert info.value.where == "min_top1_agreement"
    with pytest.raises(InputError, match="no output is one"):
        compare_outputs({"y": ref[:, :1]}, {"y": cand[:, :1]},
                        budget=TaskBudget(min_knn_agreement=0.9))  # fmt: skip
    with pytest.raises(InputError, match="no output holds class scores"):
        compare_outputs({"emb": ref}, {"emb": cand}, output_kinds={"emb": "embedding"},
                        labels=np.zeros(20, np.int64))  # fmt: skip


def test_regression_output_gets_errors_not_argmax() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(30, 1)) + 3
    (out,) = compare_outputs({"y": ref}, {"y": ref * 1.01}, tolerances=HUGE)
    assert out.kind == "regression" and out.kind_reason == "one value per sample"
    assert out.errors is not None and out.errors.rel_max == pytest.approx(0.01)
    assert out.top1_agreement is None


def test_embeddings_are_judged_on_direction_by_default() -> None:
    # Unit embeddings of 384 elements: an int8-like error that turns one sentence's vector
    # passes atol/rtol 0.1 element-wise, so the default worst-sample cosine must catch it.
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(50, 384))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    cand = ref + rng.normal(size=ref.shape) * 0.002
    cand[7] = ref[7] + rng.normal(size=384) * 0.02
    kinds = {"sentence_embedding": "embedding"}
    (out,) = compare_outputs({"sentence_embedding": ref}, {"sentence_embedding": cand},
                             tolerances=ToleranceSet("int8"), output_kinds=kinds)  # fmt: skip
    checks = {c.name: c for c in out.checks}
    assert checks["tolerance"].passed
    assert not checks["cosine"].passed and checks["cosine"].limit == 0.95
    assert not out.passed
    # A budget the user gives replaces the default; fp16's default is stricter.
    (loose,) = compare_outputs({"sentence_embedding": ref}, {"sentence_embedding": cand},
                               tolerances=ToleranceSet("int8"), output_kinds=kinds,
                               budget=TaskBudget(min_cosine=0.5))  # fmt: skip
    assert loose.passed and [c.limit for c in loose.checks if c.name == "cosine"] == [0.5]
    assert ToleranceSet("fp16").embedding_cosine() == 0.999
