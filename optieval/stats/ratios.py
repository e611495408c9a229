"""The ratio of two runs' median latencies with a confidence interval.

**Interval method: Price & Bonett (2002)**, "Distribution-free confidence intervals for difference
and ratio of medians", J. Statist. Comput. Simul. 72(2). For each run the variance of the log of
its median is estimated from the order-statistic interval ``[x(c), x(n-c+1)]`` with
``c = round((n + 1) / 2 - sqrt(n))`` and that interval's exact binomial coverage::

    var(ln m) = ((ln x(n-c+1) - ln x(c)) / (2 z_c))**2,   z_c = Phi^-1(1 - P(Bin(n, 1/2) < c))

and the interval of the ratio is ``exp(ln(m_new / m_old) +/- z * sqrt(var_new + var_old))``. It
needs only three order statistics per run (``numpy.partition``, O(n)), so 1e5 samples take about
a millisecond, and no random numbers. Medians are nearest-rank, as in
:mod:`optieval.stats.quantiles`, so the ratio's point is ``new p50 / old p50`` as printed.

Successive samples of one run may be correlated (drift, a neighbour's load): each run's
variance is multiplied by its autocorrelation time
(:func:`optieval.stats.rank_autocorrelation_time`, 1 for independent samples). Variation
*between* runs (another process, another boot) is in neither run's samples. The caller decides
how large a ratio counts as a change (:mod:`optieval.bench`'s baseline comparison uses a
threshold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.binomial import binomial_cdf
from optieval.stats.dependence import rank_autocorrelation_time
from optieval.stats.quantiles import nearest_rank

RATIO_METHOD = "Price-Bonett log ratio of nearest-rank medians"
MIN_RATIO_SAMPLES = 10
"""Fewer samples than this in either run and the ratio gets no interval."""


@dataclass(frozen=True)
class RatioEstimate:
    """New over old median latency with its confidence interval.

    Attributes:
        ratio: ``new_median_ms / old_median_ms`` (above 1: slower).
        low, high: the interval; None when ``supported`` is False.
        confidence: nominal confidence of the interval.
        new_median_ms, old_median_ms: nearest-rank medians.
        n_new, n_old: sample counts.
        supported: False when either run has fewer than ``MIN_RATIO_SAMPLES`` samples or a
            zero latency inside its median interval (the log is undefined).
        method: the interval method's name.
    """

    ratio: float
    low: float | None
    high: float | None
    confidence: float
    new_median_ms: float
    old_median_ms: float
    n_new: int
    n_old: int
    supported: bool
    method: str = RATIO_METHOD

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(low, high)`` or None."""
        if self.low is None or self.high is None:
            return None
        return (self.low, self.high)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "ratio": self.ratio,
            "ci": None if self.interval is None else [self.low, self.high],
            "confidence": self.confidence,
            "new_median_ms": self.new_median_ms,
            "old_median_ms": self.old_median_ms,
            "n_new": self.n_new,
            "n_old": self.n_old,
            "supported": self.supported,
            "method": self.method,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RatioEstimate:
        """Rebuild from :meth:`to_json` output."""
        try:
            ci = data.get("ci")
            return cls(
                ratio=float(data["ratio"]),
                low=None if ci is None else float(ci[0]),
                high=None if ci is None else float(ci[1]),
                confidence=float(data["confidence"]),
                new_median_ms=float(data["new_median_ms"]),
                old_median_ms=float(data["old_median_ms"]),
                n_new=int(data["n_new"]),
                n_old=int(data["n_old"]),
                supported=bool(data["supported"]),
                method=str(data.get("method", RATIO_METHOD)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"malformed ratio estimate ({exc})", where="baseline") from exc


def _times(values: npt.ArrayLike, where: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InputError("no samples", where=where)
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0:
        raise InputError("samples must be finite and non-negative", where=where)
    return arr


def _median_and_log_var(arr: npt.NDArray[np.float64]) -> tuple[float, float | None]:
    """Nearest-rank median and the Price-Bonett variance of its log (None if undefined)."""
    n = int(arr.size)
    r = nearest_rank(n, 0.5)
    if n < MIN_RATIO_SAMPLES:
        return float(np.partition(arr, r - 1)[r - 1]), None
    c = max(1, round((n + 1) / 2.0 - math.sqrt(n)))
    part = np.partition(arr, sorted({c - 1, r - 1, n - c}))
    median, lo, hi = float(part[r - 1]), float(part[c - 1]), float(part[n - c])
    if lo <= 0.0:
        return median, None
    tail = binomial_cdf(c - 1, n, 0.5)  # P(K < c): one tail of [x(c), x(n-c+1)]
    z_c = NormalDist().inv_cdf(1.0 - tail)
    # Correlated successive samples: the median varies tau times more than with independent
    # ones (the count below it does).
    tau = rank_autocorrelation_time(arr)
    return median, tau * ((math.log(hi) - math.log(lo)) / (2.0 * z_c)) ** 2


def median_ratio_ci(
    new_times: npt.ArrayLike,
    old_times: npt.ArrayLike,
    confidence: float = 0.95,
) -> RatioEstimate:
    """Ratio of the new run's median latency to the old run's, with its confidence interval.

    Args:
        new_times: the new run's latencies (any unit, same as ``old_times``).
        old_times: the baseline's latencies.
        confidence: in (0.5, 1); default 0.95.

    Returns:
        A :class:`RatioEstimate` (Price-Bonett interval, see the module docstring); when either
        run has fewer than ``MIN_RATIO_SAMPLES`` samples, ``supported=False`` and no interval.

    Raises:
        InputError: empty, non-finite or negative samples (where ``times_ms``); a zero median;
            confidence out of range.
    """
    if not 0.5 < confidence < 1.0:
        raise InputError(f"confidence {confidence!r} is not inside (0.5, 1)", where="confidence")
    new = _times(new_times, "times_ms (new run)")
    old = _times(old_times, "times_ms (baseline)")
    m_new, v_new = _median_and_log_var(new)
    m_old, v_old = _median_and_log_var(old)
    if m_old <= 0.0 or m_new <= 0.0:
        raise InputError("a median latency is zero; no ratio can be formed", where="times_ms")
    ratio = m_new / m_old
    low = high = None
    if v_new is not None and v_old is not None:
        half = NormalDist().inv_cdf(0.5 + confidence / 2.0) * math.sqrt(v_new + v_old)
        low, high = ratio * math.exp(-half), ratio * math.exp(half)
    return RatioEstimate(
        ratio=ratio,
        low=low,
        high=high,
        confidence=float(confidence),
        new_median_ms=m_new,
        old_median_ms=m_old,
        n_new=int(new.size),
        n_old=int(old.size),
        supported=low is not None,
    )


__all__ = ["MIN_RATIO_SAMPLES", "RATIO_METHOD", "RatioEstimate", "median_ratio_ci"]
