"""Throughput with its interval: ``batch / mean latency``, the interval of the mean latency by
non-overlapping batch means (the run is cut into up to 30 consecutive blocks; Student t on the
block means), which stays honest when successive iterations are correlated (clock drift,
thermal state), then mapped through ``batch / x``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.samples import as_samples, check_confidence

THROUGHPUT_METHOD = "batch / mean latency; interval from batch means of latency (Student t)"
"""Name of the throughput estimate and its interval method."""

MAX_THROUGHPUT_BATCHES = 30
MIN_THROUGHPUT_BATCHES = 5
MIN_BATCH_SAMPLES = 5


def _t_quantile(p: float, df: int) -> float:
    """Student t quantile by the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5);
    within 1e-3 of the exact value for df >= 4 at the usual levels."""
    z = NormalDist().inv_cdf(p)
    v = float(df)
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


@dataclass(frozen=True)
class ThroughputEstimate:
    """Items per second, ``batch / mean latency``, with its interval.

    Attributes:
        items_per_s: the point estimate.
        low, high: the interval (None when there were too few samples for the batch means:
            under ``MIN_THROUGHPUT_BATCHES * MIN_BATCH_SAMPLES``).
        confidence: the interval's confidence.
        batch: items per iteration.
        batches: how many consecutive blocks the batch-means interval used (0 if none).
        method: the method's name.
    """

    items_per_s: float
    low: float | None
    high: float | None
    confidence: float
    batch: int
    batches: int
    method: str = THROUGHPUT_METHOD

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(low, high)`` or None."""
        if self.low is None or self.high is None:
            return None
        return (self.low, self.high)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "items_per_s": self.items_per_s,
            "ci": None if self.interval is None else [self.low, self.high],
            "confidence": self.confidence,
            "batch": self.batch,
            "batches": self.batches,
            "method": self.method,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThroughputEstimate:
        """Rebuild from :meth:`to_json` output."""
        try:
            ci = data.get("ci")
            return cls(
                items_per_s=float(data["items_per_s"]),
                low=None if ci is None else float(ci[0]),
                high=None if ci is None else float(ci[1]),
                confidence=float(data["confidence"]),
                batch=int(data["batch"]),
                batches=int(data.get("batches", 0)),
                method=str(data.get("method", THROUGHPUT_METHOD)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"malformed throughput ({exc})", where="throughput") from exc


def mean_ci_batch_means(
    times: npt.ArrayLike, confidence: float = 0.95, *, max_batches: int = MAX_THROUGHPUT_BATCHES
) -> tuple[float, float, int] | None:
    """Return ``(low, high, batches)`` for the mean of a time-ordered series by non-overlapping
    batch means, or None when the series is too short (fewer than ``MIN_THROUGHPUT_BATCHES``
    blocks of ``MIN_BATCH_SAMPLES``)."""
    arr = np.asarray(times, dtype=np.float64).reshape(-1)
    batches = min(max_batches, arr.size // MIN_BATCH_SAMPLES)
    if batches < MIN_THROUGHPUT_BATCHES:
        return None
    means = np.array([chunk.mean() for chunk in np.array_split(arr, batches)])
    centre = float(arr.mean())
    se = float(means.std(ddof=1)) / math.sqrt(batches)
    t = _t_quantile(0.5 + confidence / 2.0, batches - 1)
    return centre - t * se, centre + t * se, batches


def throughput_estimate(
    times_ms: npt.ArrayLike, *, batch: int, confidence: float = 0.95
) -> ThroughputEstimate:
    """Return items per second (``batch / mean latency``) with its batch-means interval.

    Args:
        times_ms: per-iteration latencies in milliseconds, in the order measured.
        batch: items per iteration (>= 1).
        confidence: in (0.5, 1).

    Raises:
        InputError: bad samples, batch < 1 or a zero mean latency.
    """
    check_confidence(confidence)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch {batch!r} is not a positive integer", where="batch")
    arr = as_samples(times_ms, "times_ms")
    mean_ms = float(arr.mean())
    if mean_ms <= 0.0:
        raise InputError("mean latency is zero; throughput is undefined", where="times_ms")
    point = batch * 1000.0 / mean_ms
    ci = mean_ci_batch_means(arr, confidence)
    if ci is None:
        return ThroughputEstimate(point, None, None, float(confidence), int(batch), 0)
    lo_ms, hi_ms, batches = ci
    high = batch * 1000.0 / lo_ms if lo_ms > 0.0 else math.inf
    if not math.isfinite(high):
        # A mean interval reaching zero gives no upper bound worth printing.
        return ThroughputEstimate(point, None, None, float(confidence), int(batch), batches)
    return ThroughputEstimate(
        point, batch * 1000.0 / hi_ms, high, float(confidence), int(batch), batches
    )


__all__ = [
    "MAX_THROUGHPUT_BATCHES",
    "MIN_BATCH_SAMPLES",
    "MIN_THROUGHPUT_BATCHES",
    "THROUGHPUT_METHOD",
    "ThroughputEstimate",
    "mean_ci_batch_means",
    "throughput_estimate",
]
