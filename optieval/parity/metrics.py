"""Parity metrics: pure functions over numpy arrays, computed in float64.

Nothing here runs a model. :func:`tensor_metrics` compares one output tensor of a candidate with
the reference's; :func:`classification_metrics` compares (batch x classes) outputs by their
argmax; :func:`accuracy_metrics` compares both against labels. Every proportion comes with a
confidence interval:

- ``flip_rate`` (and ``top1_agreement``): Wilson score interval on flips / samples.
- ``accuracy_reference`` / ``accuracy_candidate``: Wilson score intervals.
- ``accuracy_delta`` (candidate minus reference, on the same samples): Newcombe's hybrid score
  interval for paired proportions (Newcombe 1998, method 10), which uses the Wilson limits of
  both accuracies and the correlation of the paired outcomes.
- ``accuracy_ratio`` (candidate over reference): the ``accuracy_delta`` interval divided by the
  reference accuracy (``1 + delta / acc_ref``). In simulation (benchmarks/parity_cost.py) it
  covers at 0.94-1.0 for n >= 50, where the delta-method log-ratio interval (Bonett & Price)
  fell to 0.90 at n = 100; and a ratio verdict can never contradict the delta verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optieval.stats import (
    DEFAULT_CONFIDENCE,
    Interval,
    paired_difference_interval,
    paired_ratio_interval,
    wilson_interval,
)

WORST_SAMPLES = 5


@dataclass(frozen=True)
class TensorMetrics:
    """Element-wise comparison of one candidate tensor with the reference's (float64).

    ``max_rel`` is over elements where the reference is non-zero. ``snr_db`` is
    ``10 log10(sum r^2 / sum (c - r)^2)``: ``inf`` when the tensors are equal. Metrics other than
    the counts are over the elements finite in both tensors. ``new_nonfinite`` counts elements
    that are NaN or Inf in the candidate where the reference has a finite value (or a different
    non-finite value).
    """

    max_abs: float
    max_rel: float
    mean_abs: float
    rmse: float
    cosine: float
    snr_db: float
    nan_count: int
    inf_count: int
    reference_nan_count: int
    reference_inf_count: int
    new_nonfinite: int
    elements: int


def tensor_metrics(reference: np.ndarray, candidate: np.ndarray) -> TensorMetrics:
    """Compare two tensors of the same shape; see :class:`TensorMetrics`.

    Raises ValueError when the shapes differ (callers check shapes first and raise InputError).
    """
    ref = np.asarray(reference).astype(np.float64, copy=False)
    cand = np.asarray(candidate).astype(np.float64, copy=False)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {cand.shape}")
    ref_finite = np.isfinite(ref)
    cand_finite = np.isfinite(cand)
    both = ref_finite & cand_finite
    same_nonfinite = ~ref_finite & ~cand_finite & (np.isnan(ref) == np.isnan(cand))
    same_nonfinite &= np.isnan(ref) | (ref == cand)
    new_nonfinite = int(np.sum(~cand_finite & ~same_nonfinite))
    r = ref[both]
    c = cand[both]
    diff = np.abs(c - r)
    if diff.size:
        max_abs = float(diff.max())
        mean_abs = float(diff.mean())
        rmse = float(math.sqrt(float(np.mean(diff * diff))))
        nonzero = r != 0
        max_rel = float((diff[nonzero] / np.abs(r[nonzero])).max()) if nonzero.any() else 0.0
        norm = float(np.linalg.norm(r) * np.linalg.norm(c))
        cosine = float(np.dot(r, c) / norm) if norm > 0 else (1.0 if max_abs == 0 else 0.0)
        noise = float(np.sum(diff * diff))
        signal = float(np.sum(r * r))
        if noise == 0:
            snr_db = math.inf
        elif signal == 0:
            snr_db = -math.inf
        else:
            snr_db = 10.0 * math.log10(signal / noise)
    else:
        max_abs = mean_abs = rmse = max_rel = 0.0
        cosine, snr_db = 1.0, math.inf
    return TensorMetrics(
        max_abs=max_abs,
        max_rel=max_rel,
        mean_abs=mean_abs,
        rmse=rmse,
        cosine=cosine,
        snr_db=snr_db,
        nan_count=int(np.sum(np.isnan(cand))),
        inf_count=int(np.sum(np.isinf(cand))),
        reference_nan_count=int(np.sum(np.isnan(ref))),
        reference_inf_count=int(np.sum(np.isinf(ref))),
        new_nonfinite=new_nonfinite,
        elements=int(ref.size),
    )


def tolerance_violations(
    reference: np.ndarray, candidate: np.ndarray, atol: float, rtol: float
) -> int:
    """Count elements with ``|c - r| > atol + rtol * |r|`` among those finite in both."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    both = np.isfinite(ref) & np.isfinite(cand)
    excess = np.abs(cand[both] - ref[both]) > atol + rtol * np.abs(ref[both])
    return int(np.sum(excess))


def worst_samples(
    reference: np.ndarray, candidate: np.ndarray, k: int = WORST_SAMPLES
) -> list[int]:
    """Indices (along axis 0) of the ``k`` samples with the largest max-abs difference, worst
    first; a sample with a new NaN/Inf counts as infinitely bad."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.ndim == 0 or ref.shape[0] == 0:
        return []
    n = ref.shape[0]
    r = ref.reshape(n, -1)
    c = cand.reshape(n, -1)
    both = np.isfinite(r) & np.isfinite(c)
    diff = np.where(both, np.abs(c - r), 0.0)
    same = (np.isnan(r) & np.isnan(c)) | (np.isinf(r) & (r == c))
    diff = np.where(~both & ~same, np.inf, diff)
    per_sample = diff.max(axis=1) if diff.shape[1] else np.zeros(n)
    order = np.argsort(-per_sample, kind="stable")
    return [int(i) for i in order[:k] if per_sample[i] > 0]


def is_classification_shaped(array: np.ndarray) -> bool:
    """True for float tensors shaped (batch x classes) with at least 2 classes."""
    a = np.asarray(array)
    return a.ndim == 2 and a.shape[1] >= 2 and np.issubdtype(a.dtype, np.floating)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Argmax agreement between candidate and reference on a (batch x classes) output.

    ``top5_agreement`` is the fraction of samples whose reference top-1 class is among the
    candidate's top 5 (None with 5 classes or fewer, where it is trivially 1). ``flip_rate`` is
    ``1 - top1_agreement`` with a Wilson interval.
    """

    samples: int
    top1_agreement: float
    top5_agreement: float | None
    flips: int
    flip_rate: float
    flip_rate_ci: Interval


def _argmax(a: np.ndarray) -> np.ndarray:
    # NaN rows would make argmax land on the NaN: treat NaN as -inf so a NaN row flips.
    return np.asarray(np.argmax(np.nan_to_num(a.astype(np.float64), nan=-np.inf), axis=1))


def classification_metrics(
    reference: np.ndarray, candidate: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> ClassificationMetrics:
    """Compare the argmax of two (batch x classes) outputs; see :class:`ClassificationMetrics`."""
    ref = np.asarray(reference)
    cand = np.asarray(candidate)
    n = int(ref.shape[0])
    ref_top1 = _argmax(ref)
    agree = ref_top1 == _argmax(cand)
    flips = int(n - int(agree.sum()))
    top5: float | None = None
    if ref.shape[1] > 5:
        scores = np.nan_to_num(cand.astype(np.float64), nan=-np.inf)
        top5_idx = np.argpartition(-scores, 4, axis=1)[:, :5]
        top5 = float(np.mean(np.any(top5_idx == ref_top1[:, None], axis=1))) if n else 1.0
    return ClassificationMetrics(
        samples=n,
        top1_agreement=float(agree.mean()) if n else 1.0,
        top5_agreement=top5,
        flips=flips,
        flip_rate=flips / n if n else 0.0,
        flip_rate_ci=wilson_interval(flips, n, confidence),
    )


@dataclass(frozen=True)
class AccuracyMetrics:
    """Task accuracy of reference and candidate against labels, on the same samples.

    ``accuracy_delta`` is candidate minus reference (negative is a drop); ``accuracy_ratio`` is
    candidate over reference (None when the reference accuracy is 0).
    """

    samples: int
    accuracy_reference: float
    accuracy_reference_ci: Interval
    accuracy_candidate: float
    accuracy_candidate_ci: Interval
    accuracy_delta: float
    accuracy_delta_ci: Interval
    accuracy_ratio: float | None
    accuracy_ratio_ci: Interval


def accuracy_metrics(
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> AccuracyMetrics:
    """Top-1 accuracy of both (batch x classes) outputs against integer ``labels`` (batch,),
    with paired intervals (see the module docstring)."""
    y = np.asarray(labels).astype(np.int64)
    ref_ok = _argmax(np.asarray(reference)) == y
    cand_ok = _argmax(np.asarray(candidate)) == y
    n = int(y.size)
    n_ref, n_cand = int(ref_ok.sum()), int(cand_ok.sum())
    acc_ref = n_ref / n if n else 0.0
    acc_cand = n_cand / n if n else 0.0
    return AccuracyMetrics(
        samples=n,
        accuracy_reference=acc_ref,
        accuracy_reference_ci=wilson_interval(n_ref, n, confidence),
        accuracy_candidate=acc_cand,
        accuracy_candidate_ci=wilson_interval(n_cand, n, confidence),
        accuracy_delta=acc_cand - acc_ref,
        accuracy_delta_ci=paired_difference_interval(cand_ok, ref_ok, confidence),
        accuracy_ratio=acc_cand / acc_ref if acc_ref > 0 else None,
        accuracy_ratio_ci=paired_ratio_interval(cand_ok, ref_ok, confidence),
    )
