"""Percentiles of latency samples with distribution-free confidence intervals, and the rule
that says how many samples a percentile's interval needs.

Pure numpy and the standard library: no scipy, no torch, no onnxruntime.

* **Point estimate of a percentile: nearest rank.** For ``n`` samples sorted ascending,
  ``x(1) <= ... <= x(n)``, the q-quantile is ``x(r)`` with ``r = ceil(n * q)`` (clamped to
  ``[1, n]``). This is ``numpy.quantile(..., method="inverted_cdf")``. It is always an observed
  latency and always lies inside the interval below.
* **Interval of a percentile: order statistics, binomial, equal-tailed.** The number ``K`` of
  samples below the true q-quantile is Binomial(n, q), so ``[x(l), x(u)]`` covers it with
  probability at least ``P(l <= K <= u - 1)``; this holds for any distribution (exactly for
  continuous ones, conservatively when latencies tie). ``l`` is the largest rank with
  ``P(K < l) <= alpha / 2`` and ``u`` the smallest with ``P(K >= u) <= alpha / 2``. When one
  tail cannot be resolved at this ``n`` (for p99 with few samples, ``P(K = n) = q**n`` alone is
  over ``alpha / 2``) that side takes the extreme sample and the other side gets the rest of
  ``alpha``; when even ``[x(1), x(n)]`` covers with less than the confidence asked, the
  percentile is *not supported* and no interval is given. The binomial is evaluated exactly in
  log space over the window that holds all but 1e-20 of its mass, so it costs O(sqrt(n))
  (:mod:`optieval.stats.binomial`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.binomial import binomial_window
from optieval.stats.samples import (
    as_samples,
    check_confidence,
    check_quantile,
    optional_float,
    optional_int,
    sorted_samples,
)

POINT_METHOD = "nearest-rank"
"""Name of the percentile point estimate (numpy ``method="inverted_cdf"``)."""

INTERVAL_METHOD = "order-statistic (binomial, equal-tailed)"
"""Name of the percentile interval method."""

_RANK_EPS = 1e-9


@dataclass(frozen=True)
class QuantileEstimate:
    """A percentile of latency samples with its distribution-free confidence interval.

    Attributes:
        q: the quantile as a fraction in (0, 1) (0.99 for p99).
        point: the nearest-rank point estimate, ``x(ceil(n q))``.
        low, high: the interval ``[x(l), x(u)]``; None when ``supported`` is False.
        n: the number of samples.
        confidence: the nominal confidence asked for (0.95).
        supported: False when ``n`` is too small for a two-sided interval at ``confidence``
            (see :func:`min_samples_for_quantile`).
        low_rank, high_rank: ``l`` and ``u``, 1-based ranks in the sorted samples (None when
            unsupported).
        coverage: the exact binomial coverage of ``[x(l), x(u)]`` (>= confidence; None when
            unsupported).
        method: the point estimate's name (``"nearest-rank"``).
        interval_method: the interval's name.
    """

    q: float
    point: float
    low: float | None
    high: float | None
    n: int
    confidence: float
    supported: bool
    low_rank: int | None = None
    high_rank: int | None = None
    coverage: float | None = None
    method: str = POINT_METHOD
    interval_method: str = INTERVAL_METHOD

    @property
    def percentile(self) -> float:
        """The quantile in percent (99.0 for p99)."""
        return self.q * 100.0

    @property
    def label(self) -> str:
        """``"p99"``, ``"p99.9"``, ``"p50"``."""
        return percentile_label(self.q * 100.0)

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(low, high)``, or None when the samples cannot support an interval."""
        if self.low is None or self.high is None:
            return None
        return (self.low, self.high)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "q": self.q,
            "point": self.point,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "confidence": self.confidence,
            "supported": self.supported,
            "low_rank": self.low_rank,
            "high_rank": self.high_rank,
            "coverage": self.coverage,
            "method": self.method,
            "interval_method": self.interval_method,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuantileEstimate:
        """Rebuild from :meth:`to_json` output. Raises InputError on missing fields."""
        try:
            return cls(
                q=float(data["q"]),
                point=float(data["point"]),
                low=optional_float(data.get("low")),
                high=optional_float(data.get("high")),
                n=int(data["n"]),
                confidence=float(data["confidence"]),
                supported=bool(data["supported"]),
                low_rank=optional_int(data.get("low_rank")),
                high_rank=optional_int(data.get("high_rank")),
                coverage=optional_float(data.get("coverage")),
                method=str(data.get("method", POINT_METHOD)),
                interval_method=str(data.get("interval_method", INTERVAL_METHOD)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed quantile estimate ({exc})", where="quantiles") from exc


def percentile_label(percentile: float) -> str:
    """Return the JSON key of a percentile: 99 -> ``"p99"``, 99.9 -> ``"p99.9"``."""
    return f"p{round(percentile, 6):g}"


def nearest_rank(n: int, q: float) -> int:
    """Return the 1-based nearest rank ``ceil(n q)``, clamped to ``[1, n]``.

    A tiny tolerance keeps ``n q`` that is an integer in exact arithmetic (100 * 0.99) from
    rounding up to the next rank through floating point; it matches numpy's ``inverted_cdf``.
    """
    return max(1, min(n, math.ceil(n * q - _RANK_EPS)))


def _tail_floors(n: int, q: float) -> tuple[float, float]:
    """``P(K = 0)`` and ``P(K = n)`` for Binomial(n, q): the smallest tail probabilities any
    order-statistic interval can have (it cannot reach past x(1) or x(n))."""
    return math.exp(n * math.log1p(-q)), math.exp(n * math.log(q))


def order_statistic_ranks(
    n: int, q: float, confidence: float = 0.95
) -> tuple[int, int, float] | None:
    """Return ``(l, u, coverage)``: the 1-based ranks of the interval for the q-quantile of
    ``n`` samples and its exact binomial coverage, or None when no two-sided interval reaches
    ``confidence`` at this ``n``. See the module docstring for the rule."""
    check_quantile(q)
    check_confidence(confidence)
    if n < 2:
        return None
    alpha = 1.0 - confidence
    lo_floor, hi_floor = _tail_floors(n, q)
    if lo_floor + hi_floor > alpha:
        return None
    a_lo = a_hi = alpha / 2.0
    force_l1 = force_un = False
    if hi_floor > a_hi:
        force_un, a_lo = True, alpha - hi_floor
    elif lo_floor > a_lo:
        force_l1, a_hi = True, alpha - lo_floor

    k0, pmf = binomial_window(n, q)
    cdf = np.cumsum(pmf)  # P(K <= k0 + i)
    sf = np.cumsum(pmf[::-1])[::-1]  # P(K >= k0 + i)

    if force_l1:
        lower = 1
    else:
        # largest j = l - 1 with P(K <= j) <= a_lo; below the window P(K <= j) < 1e-20.
        idx = int(np.searchsorted(cdf, a_lo, side="right")) - 1
        lower = max(1, min(n, k0 + idx + 1))
    if force_un:
        upper = n
    else:
        # smallest u with P(K >= u) <= a_hi; sf is non-increasing, so search its negation.
        idx = int(np.searchsorted(-sf, -a_hi, side="left"))
        upper = max(1, min(n, k0 + idx))

    p_below = 0.0 if lower - 1 < k0 else float(cdf[min(lower - 1 - k0, cdf.size - 1)])
    p_above = 0.0 if upper - k0 >= sf.size else float(sf[max(upper - k0, 0)])
    if force_l1:
        p_below = lo_floor
    if force_un:
        p_above = hi_floor
    return lower, upper, max(0.0, 1.0 - p_below - p_above)


def min_samples_for_quantile(q: float, confidence: float = 0.95) -> int:
    """Return the smallest ``n`` for which a two-sided distribution-free interval for the
    q-quantile exists at ``confidence``: the least ``n`` with ``q**n + (1 - q)**n <= alpha``,
    since no order-statistic interval is wider than ``[x(1), x(n)]``.

    299 for p99 at 95%, 59 for p95, 29 for p90, 6 for p50, 2995 for p99.9.

    Args:
        q: the quantile as a fraction in (0, 1).
        confidence: in (0.5, 1); default 0.95.

    Raises:
        InputError: q or confidence out of range.
    """
    check_quantile(q)
    check_confidence(confidence)
    alpha = 1.0 - confidence
    # q**n + (1-q)**n >= max(q, 1-q)**n gives a lower bound to start from.
    n = max(2, math.ceil(math.log(alpha) / math.log(max(q, 1.0 - q))) - 1)
    while sum(_tail_floors(n, q)) > alpha:
        n += 1
    return n


def min_samples_for_percentiles(percentiles: Iterable[float], confidence: float = 0.95) -> int:
    """Return the samples needed so that every percentile (in percent, e.g. 99) in
    ``percentiles`` has an interval: the largest :func:`min_samples_for_quantile`."""
    needed = [min_samples_for_quantile(p / 100.0, confidence) for p in percentiles]
    return max(needed) if needed else 1


def quantile_ci(
    samples: Iterable[float] | npt.ArrayLike, q: float, confidence: float = 0.95
) -> QuantileEstimate:
    """Estimate the q-quantile of ``samples`` with a distribution-free confidence interval.

    Args:
        samples: latencies, sorted or not (an already sorted array is detected in O(n) and not
            sorted again; pass sorted arrays when calling this repeatedly on millions of
            samples).
        q: the quantile as a fraction in (0, 1), e.g. 0.99.
        confidence: the interval's confidence, in (0.5, 1); default 0.95.

    Returns:
        A :class:`QuantileEstimate`. When ``n`` is below :func:`min_samples_for_quantile` it has
        ``supported=False`` and ``low``/``high`` None: never a number with false confidence.

    Raises:
        InputError: no samples, NaN/inf/negative samples, q or confidence out of range.
    """
    check_quantile(q)
    check_confidence(confidence)
    xs = sorted_samples(as_samples(samples, "samples"))
    n = int(xs.size)
    point = float(xs[nearest_rank(n, q) - 1])
    ranks = order_statistic_ranks(n, q, confidence)
    if ranks is None:
        return QuantileEstimate(
            q=float(q),
            point=point,
            low=None,
            high=None,
            n=n,
            confidence=float(confidence),
            supported=False,
        )
    lower, upper, coverage = ranks
    return QuantileEstimate(
        q=float(q),
        point=point,
        low=float(xs[lower - 1]),
        high=float(xs[upper - 1]),
        n=n,
        confidence=float(confidence),
        supported=True,
        low_rank=lower,
        high_rank=upper,
        coverage=coverage,
    )


def lower_bound_rank(n: int, q: float, error: float) -> int | None:
    """Return the largest 1-based rank ``l`` with ``P(x(l) > true q-quantile) <= error``, or
    None when even ``x(1)`` is not a lower bound at that error.

    ``x(l)`` lies above the q-quantile exactly when fewer than ``l`` samples fall below it, and
    that count ``K`` is Binomial(n, q), so ``P(x(l) > q-quantile) = P(K <= l - 1)`` (at most,
    when latencies tie). Hence ``l - 1`` is the largest ``j`` with ``P(K <= j) <= error``.
    """
    check_quantile(q)
    if n < 1 or not 0.0 < error < 1.0:
        return None
    k0, pmf = binomial_window(n, q)
    cdf = np.cumsum(pmf)  # P(K <= k0 + i); below the window P(K <= j) < 1e-20
    idx = int(np.searchsorted(cdf, error, side="right")) - 1  # largest i with cdf <= error
    j = k0 + idx if idx >= 0 else (k0 - 1 if k0 > 0 else -1)
    if j < 0:
        return None
    return min(n, j + 1)


def quantile_lower_bound(
    samples: Iterable[float] | npt.ArrayLike, q: float, confidence: float = 0.95
) -> tuple[float, int] | None:
    """A one-sided distribution-free lower confidence bound of the q-quantile, with error at
    most ``(1 - confidence) / 2``: the same error each side of the two-sided interval has, so
    a gate that fails on it fails a candidate exactly at its budget at most ``alpha / 2`` of
    the time. It exists at far fewer samples than the two-sided interval: ``x(1)`` is a bound
    once ``(1 - q)**n <= alpha / 2`` (one sample for p99 at 95%, against 299 for the interval);
    with 40 samples the p99's bound is ``x(38)``.

    Returns:
        ``(bound, rank)`` (the 1-based rank of the order statistic), or None when no order
        statistic is a lower bound at that error.

    Raises:
        InputError: bad samples, q or confidence.
    """
    check_quantile(q)
    check_confidence(confidence)
    xs = sorted_samples(as_samples(samples, "samples"))
    rank = lower_bound_rank(int(xs.size), q, (1.0 - confidence) / 2.0)
    if rank is None:
        return None
    return float(xs[rank - 1]), rank


def upper_bound_rank(n: int, q: float, error: float) -> int | None:
    """Return the smallest 1-based rank ``u`` with ``P(x(u) < true q-quantile) <= error``, or
    None when even ``x(n)`` is not an upper bound at that error (``q**n > error``).

    ``x(u)`` lies below the q-quantile only when at least ``u`` samples fall below it, so
    ``P(x(u) < q-quantile) <= P(K >= u)`` with ``K`` ~ Binomial(n, q).
    """
    check_quantile(q)
    if n < 1 or not 0.0 < error < 1.0:
        return None
    if n * math.log(q) > math.log(error):
        return None
    k0, pmf = binomial_window(n, q)
    sf = np.cumsum(pmf[::-1])[::-1]  # P(K >= k0 + i); above the window P(K >= j) < 1e-20
    idx = int(np.searchsorted(-sf, -error, side="left"))  # smallest i with sf <= error
    return max(1, min(n, k0 + idx))


def min_samples_for_upper_bound(q: float, error: float) -> int:
    """The fewest samples for which ``x(n)`` is an upper bound of the q-quantile with error at
    most ``error``: the least ``n`` with ``q**n <= error`` (367 for p99 at 2.5%)."""
    check_quantile(q)
    if not 0.0 < error < 1.0:
        raise InputError(f"error {error!r} is not inside (0, 1)", where="error")
    return max(1, math.ceil(math.log(error) / math.log(q) - 1e-12))


def quantile_bounds(
    samples: Iterable[float] | npt.ArrayLike,
    q: float,
    confidence: float = 0.95,
    *,
    tau: float = 1.0,
) -> tuple[tuple[float, int] | None, tuple[float, int] | None]:
    """One-sided distribution-free lower and upper confidence bounds of the q-quantile, each
    with error at most ``(1 - confidence) / 2``: ``((low, rank) | None, (high, rank) | None)``.

    The gate decides on these, not on the two-sided interval: the two-sided interval may give
    one side more than ``alpha / 2`` when the other cannot use its share (at 299 samples the
    p99's upper end ``x(299)`` errs 4.9% of the time), while a PASS must err at most
    ``alpha / 2``. The upper bound exists from :func:`min_samples_for_upper_bound` samples on
    (367 for p99 at 95%), the lower from far fewer (one for p99).

    Args:
        samples: latencies, in any order.
        q: the quantile as a fraction in (0, 1).
        confidence: in (0.5, 1).
        tau: the series' autocorrelation time in samples
            (:func:`optieval.stats.rank_autocorrelation_time`); the binomial ranks are then
            those of ``floor(n / tau)`` independent samples, scaled back to ``n`` (the count
            below the quantile varies ``tau`` times more than a binomial's when successive
            samples are correlated).

    Raises:
        InputError: bad samples, q or confidence.
    """
    check_quantile(q)
    check_confidence(confidence)
    xs = sorted_samples(as_samples(samples, "samples"))
    n = int(xs.size)
    error = (1.0 - confidence) / 2.0
    scale = max(1.0, float(tau))
    n_eff = max(1, math.floor(n / scale)) if scale > 1.0 else n
    lo_eff = lower_bound_rank(n_eff, q, error)
    hi_eff = upper_bound_rank(n_eff, q, error)
    lo_rank = hi_rank = None
    if lo_eff is not None:
        # P(K_eff <= lo_eff - 1) <= error, with K about K_eff * n / n_eff.
        lo_rank = min(n, math.floor((lo_eff - 1) * n / n_eff) + 1)
    if hi_eff is not None:
        hi_rank = min(n, math.ceil(hi_eff * n / n_eff))
    low = None if lo_rank is None else (float(xs[lo_rank - 1]), lo_rank)
    high = None if hi_rank is None else (float(xs[hi_rank - 1]), hi_rank)
    return low, high


__all__ = [
    "INTERVAL_METHOD",
    "POINT_METHOD",
    "QuantileEstimate",
    "min_samples_for_percentiles",
    "min_samples_for_quantile",
    "min_samples_for_upper_bound",
    "nearest_rank",
    "order_statistic_ranks",
    "percentile_label",
    "quantile_bounds",
    "quantile_ci",
    "quantile_lower_bound",
]
