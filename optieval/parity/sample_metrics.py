"""Per-sample parity metrics: one value per sample, summarized with intervals, the worst samples
named. Pure numpy over float64; nothing here runs a model.

- **Per-sample cosine** (:func:`cosine_stats`): the cosine between each sample's candidate and
  reference output, flattened. Its mean carries a percentile-bootstrap interval (samples
  resampled); its low percentiles (p1, p5) carry the distribution-free order-statistic interval
  of :mod:`optieval.stats` (None when there are too few samples for one: 59 for p5, 299 for p1
  at 95%); its worst sample is a fact about the evaluated set. A sample whose candidate is NaN
  or Inf where the reference is finite gets -1, the worst cosine there is. One cosine over the
  whole flattened tensor (``OutputParity.cosine``) hides bad samples among good ones
  (0.902 where the worst sample is 0.496): these are what the gate judges.
- **Nearest-neighbour agreement** (:func:`neighbour_stats`): for each sample, the share of its
  ``k`` nearest neighbours (by cosine, among the other evaluated samples) under the reference
  that are also among its ``k`` nearest under the candidate: recall@k of a retrieval index
  built from the candidate. Its interval bootstraps the per-sample recalls (with the neighbour
  sets held fixed: it describes this evaluation set's retrieval, not a larger corpus').
- **Per-sample errors** (:func:`error_stats`): each sample's max absolute error and its
  relative error ``||c - r|| / ||r||`` (L2 over the sample), with p50/p95 and the worst samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from optieval.stats import (
    DEFAULT_CONFIDENCE,
    Interval,
    bootstrap_weights,
    nearest_rank,
    order_statistic_ranks,
    percentile_interval,
)

LOW_PERCENTILES = (1.0, 5.0)
"""The low percentiles of per-sample cosine reported (and gated: ``cosine_p1_min``...)."""
ERROR_PERCENTILES = (50.0, 95.0)
"""The percentiles of per-sample relative error reported."""
DEFAULT_KNN_K = 10
"""Neighbours per sample for nearest-neighbour agreement (fewer when the set is small)."""
BOOTSTRAP_RESAMPLES = 2000
MAX_KNN_SAMPLES = 20000
"""Nearest-neighbour agreement uses at most this many samples (evenly spaced): its cost grows as
samples squared."""
_KNN_BLOCK = 1024
WORST_LISTED = 5
_ORDER_METHOD = "order-statistic"
_BOOT_METHOD = "bootstrap-percentile"


def _flat(a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a).astype(np.float64, copy=False)
    n = int(arr.shape[0]) if arr.ndim else 1
    return arr.reshape(n, -1)


def per_sample_cosine(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The cosine of each sample's candidate with its reference (axis 0 is the sample axis; the
    rest is flattened). Two zero vectors agree (1); one zero vector against a non-zero one is 0;
    a sample with a non-finite value in the candidate where the reference is finite is -1."""
    r, c = _flat(reference), _flat(candidate)
    bad = np.any(~np.isfinite(c) & np.isfinite(r), axis=1)
    r0 = np.where(np.isfinite(r), r, 0.0)
    c0 = np.where(np.isfinite(c), c, 0.0)
    rn, cn = np.linalg.norm(r0, axis=1), np.linalg.norm(c0, axis=1)
    dot = np.einsum("ij,ij->i", r0, c0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((rn > 0) & (cn > 0), dot / (rn * cn), np.where((rn == 0) & (cn == 0), 1, 0))
    return np.where(bad, -1.0, np.clip(cos, -1.0, 1.0))


def _worst(values: np.ndarray, *, lowest: bool) -> tuple[tuple[int, float], ...]:
    order = np.argsort(values if lowest else -values, kind="stable")[:WORST_LISTED]
    return tuple((int(i), float(values[i])) for i in order)


def _bootstrap_mean(values: np.ndarray, confidence: float) -> Interval | None:
    n = int(values.size)
    if n < 2:
        return None
    means = np.fromiter(
        (float(w @ values) / n for w in bootstrap_weights(n, BOOTSTRAP_RESAMPLES, seed=0)),
        dtype=np.float64,
    )
    return percentile_interval(means, confidence, _BOOT_METHOD)


@dataclass(frozen=True)
class Percentile:
    """A percentile of per-sample values: nearest-rank point, order-statistic interval (None
    when the samples are too few for one at ``confidence``)."""

    percentile: float
    value: float
    interval: Interval | None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "percentile": self.percentile,
            "value": self.value,
            "interval": None if self.interval is None else self.interval.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Percentile:
        """Inverse of :meth:`to_json`."""
        ci = data.get("interval")
        return cls(float(data["percentile"]), float(data["value"]),
                   None if ci is None else Interval.from_json(ci))  # fmt: skip


def percentile_of(values: np.ndarray, percentile: float, confidence: float) -> Percentile:
    """The ``percentile`` of ``values`` (any sign) with its distribution-free interval."""
    xs = np.sort(np.asarray(values, dtype=np.float64))
    n = int(xs.size)
    q = percentile / 100.0
    point = float(xs[nearest_rank(n, q) - 1])
    ranks = order_statistic_ranks(n, q, confidence) if n >= 2 else None
    ci = None
    if ranks is not None:
        ci = Interval(float(xs[ranks[0] - 1]), float(xs[ranks[1] - 1]), confidence, _ORDER_METHOD)
    return Percentile(float(percentile), point, ci)


def _worst_json(items: tuple[tuple[int, float], ...]) -> list[dict[str, Any]]:
    return [{"index": i, "value": v} for i, v in items]


def _worst_from(data: Any) -> tuple[tuple[int, float], ...]:
    return tuple((int(d["index"]), float(d["value"])) for d in data or ())


def _ci(data: Any) -> Interval | None:
    return None if data is None else Interval.from_json(data)


@dataclass(frozen=True)
class CosineStats:
    """Per-sample cosine of one output: ``mean`` (bootstrap interval), ``min`` (the worst
    sample), low ``percentiles`` (order-statistic intervals), the ``worst`` samples as
    (index, cosine), lowest first, and ``nonfinite``: samples scored -1 for a new NaN/Inf."""

    samples: int
    mean: float
    mean_ci: Interval | None
    min: float
    percentiles: tuple[Percentile, ...]
    worst: tuple[tuple[int, float], ...]
    nonfinite: int = 0

    def percentile(self, percentile: float) -> Percentile | None:
        """The reported ``percentile`` (1 or 5), or None."""
        return next((p for p in self.percentiles if p.percentile == percentile), None)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "samples": self.samples,
            "mean": self.mean,
            "mean_ci": None if self.mean_ci is None else self.mean_ci.to_json(),
            "min": self.min,
            "percentiles": [p.to_json() for p in self.percentiles],
            "worst": _worst_json(self.worst),
            "nonfinite": self.nonfinite,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CosineStats:
        """Inverse of :meth:`to_json`."""
        return cls(
            int(data["samples"]),
            float(data["mean"]),
            _ci(data.get("mean_ci")),
            float(data["min"]),
            tuple(Percentile.from_json(p) for p in data.get("percentiles", ())),
            _worst_from(data.get("worst")),
            int(data.get("nonfinite", 0)),
        )


def cosine_stats(
    reference: np.ndarray, candidate: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[CosineStats, np.ndarray]:
    """:class:`CosineStats` of one output, and the per-sample cosines themselves."""
    cos = per_sample_cosine(reference, candidate)
    r, c = _flat(reference), _flat(candidate)
    nonfinite = int(np.sum(np.any(~np.isfinite(c) & np.isfinite(r), axis=1)))
    if cos.size == 0:
        return CosineStats(0, 1.0, None, 1.0, (), (), 0), cos
    stats = CosineStats(
        samples=int(cos.size),
        mean=float(cos.mean()),
        mean_ci=_bootstrap_mean(cos, confidence),
        min=float(cos.min()),
        percentiles=tuple(percentile_of(cos, p, confidence) for p in LOW_PERCENTILES),
        worst=_worst(cos, lowest=True),
        nonfinite=nonfinite,
    )
    return stats, cos


@dataclass(frozen=True)
class NeighbourStats:
    """Nearest-neighbour agreement of an embedding output: the mean over samples of
    ``|N_ref(i) & N_cand(i)| / k`` (recall@k), its bootstrap interval, the share of samples
    whose nearest neighbour is the same (``top1``), and the samples that lost most neighbours
    as (index, recall), lowest first."""

    k: int
    samples: int
    agreement: float
    agreement_ci: Interval | None
    top1: float
    worst: tuple[tuple[int, float], ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "k": self.k,
            "samples": self.samples,
            "agreement": self.agreement,
            "agreement_ci": None if self.agreement_ci is None else self.agreement_ci.to_json(),
            "top1": self.top1,
            "worst": _worst_json(self.worst),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NeighbourStats:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["k"]), int(data["samples"]), float(data["agreement"]),
                   _ci(data.get("agreement_ci")), float(data.get("top1", math.nan)),
                   _worst_from(data.get("worst")))  # fmt: skip


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` nearest other rows by cosine, nearest first (in blocks of
    rows, so memory stays ``block x samples``)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0)
    n = int(unit.shape[0])
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _KNN_BLOCK):
        rows = np.arange(start, min(start + _KNN_BLOCK, n))
        sim = unit[rows] @ unit.T
        sim[np.arange(rows.size), rows] = -np.inf
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, part, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(part, order, axis=1)
    return out


def neighbour_stats(
    reference: np.ndarray,
    candidate: np.ndarray,
    k: int = DEFAULT_KNN_K,
    confidence: float = DEFAULT_CONFIDENCE,
) -> NeighbourStats | None:
    """:class:`NeighbourStats` with ``k`` neighbours (at most ``samples - 1``); None with fewer
    than 3 samples, where neighbours say nothing. Time grows as samples squared: beyond
    :data:`MAX_KNN_SAMPLES`, that many evenly spaced samples are used (``samples`` says how
    many; the worst indices are still indices into the whole set)."""
    r = np.nan_to_num(_flat(reference), nan=0.0, posinf=0.0, neginf=0.0)
    c = np.nan_to_num(_flat(candidate), nan=0.0, posinf=0.0, neginf=0.0)
    index = np.arange(r.shape[0])
    if r.shape[0] > MAX_KNN_SAMPLES:
        index = np.linspace(0, r.shape[0] - 1, MAX_KNN_SAMPLES).astype(np.int64)
        r, c = r[index], c[index]
    n = int(r.shape[0])
    if n < 3:
        return None
    k = max(1, min(int(k), n - 1))
    nr, nc = _neighbours(r, k), _neighbours(c, k)
    # Rows are sets of distinct indices: count, per row, the candidate's that are the reference's.
    shared = (nr[:, :, None] == nc[:, None, :]).any(axis=2).sum(axis=1)
    recall = shared.astype(np.float64) / k
    return NeighbourStats(
        k=k,
        samples=n,
        agreement=float(recall.mean()),
        agreement_ci=_bootstrap_mean(recall, confidence),
        top1=float(np.mean(nr[:, 0] == nc[:, 0])),
        worst=tuple((int(index[i]), v) for i, v in _worst(recall, lowest=True)),
    )


@dataclass(frozen=True)
class ErrorStats:
    """Per-sample errors of a regression output: the largest per-sample max abs error, the
    relative error ``||c - r|| / ||r||`` per sample (``rel_percentiles`` p50 and p95 with
    order-statistic intervals, ``rel_max``), and the worst samples by relative error as
    (index, relative error), worst first."""

    samples: int
    max_abs: float
    rel_max: float
    rel_percentiles: tuple[Percentile, ...]
    worst: tuple[tuple[int, float], ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (an infinite relative error, from a zero reference, as "inf")."""
        return {
            "samples": self.samples,
            "max_abs": _finite(self.max_abs),
            "rel_max": _finite(self.rel_max),
            "rel_percentiles": [
                {**p.to_json(), "value": _finite(p.value)} for p in self.rel_percentiles
            ],
            "worst": [{"index": i, "value": _finite(v)} for i, v in self.worst],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorStats:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["samples"]), float(data["max_abs"]), float(data["rel_max"]),
                   tuple(Percentile.from_json(p) for p in data.get("rel_percentiles", ())),
                   _worst_from(data.get("worst")))  # fmt: skip


def _finite(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def error_stats(
    reference: np.ndarray, candidate: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> ErrorStats:
    """:class:`ErrorStats` of one output. A non-finite difference makes a sample's errors
    infinite; a zero reference with a non-zero candidate too."""
    r, c = _flat(reference), _flat(candidate)
    n = int(r.shape[0])
    if n == 0 or r.shape[1] == 0:
        return ErrorStats(n, 0.0, 0.0, (), ())
    diff = c - r
    same = (np.isnan(r) & np.isnan(c)) | (r == c)
    diff = np.where(same, 0.0, diff)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    max_abs = np.abs(diff).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        num = np.where(np.isfinite(max_abs), np.linalg.norm(np.where(np.isfinite(diff), diff, 0),
                                                            axis=1), np.inf)  # fmt: skip
        den = np.linalg.norm(np.where(np.isfinite(r), r, 0.0), axis=1)
        rel = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    rank_rel = np.where(np.isfinite(rel), rel, np.finfo(np.float64).max)
    pct = []
    for p in ERROR_PERCENTILES:
        est = percentile_of(rank_rel, p, confidence)
        ci = est.interval
        if ci is not None:
            ci = Interval(_back(ci.low), _back(ci.high), confidence, _ORDER_METHOD)
        pct.append(Percentile(p, _back(est.value), ci))
    return ErrorStats(
        samples=n,
        max_abs=float(max_abs.max()),
        rel_max=float(rel.max()),
        rel_percentiles=tuple(pct),
        worst=_worst(rel, lowest=False),
    )


def _back(value: float) -> float:
    return math.inf if value >= np.finfo(np.float64).max else float(value)


__all__ = [
    "DEFAULT_KNN_K",
    "ERROR_PERCENTILES",
    "LOW_PERCENTILES",
    "CosineStats",
    "ErrorStats",
    "NeighbourStats",
    "Percentile",
    "cosine_stats",
    "error_stats",
    "neighbour_stats",
    "per_sample_cosine",
    "percentile_of",
]
