"""Latency statistics: percentiles with distribution-free confidence intervals, throughput with
its interval, a stability check, and the rule that says when a timed run has enough samples.

Pure numpy and the standard library: no scipy, no torch, no onnxruntime.

Definitions used throughout (and named in every result, so a report can say them):

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
  log space over the window that holds all but 1e-20 of its mass, so it costs O(sqrt(n)).
* **Throughput** is ``batch / mean latency``. Its interval comes from the interval of the mean
  latency by the method of non-overlapping batch means (the run is cut into up to 30
  consecutive blocks; Student t on the block means), which stays honest when successive
  iterations are correlated (clock drift, thermal state), then mapped through ``batch / x``.
* **Stability**: the run is cut into ``k`` consecutive windows (default 5); it is ``unstable``
  when the spread of the window medians, relative to the overall median, exceeds a threshold
  (default 10%).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError

POINT_METHOD = "nearest-rank"
"""Name of the percentile point estimate (numpy ``method="inverted_cdf"``)."""

INTERVAL_METHOD = "order-statistic (binomial, equal-tailed)"
"""Name of the percentile interval method."""

THROUGHPUT_METHOD = "batch / mean latency; interval from batch means of latency (Student t)"
"""Name of the throughput estimate and its interval method."""

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)
DEFAULT_STABILITY_WINDOWS = 5
DEFAULT_STABILITY_THRESHOLD = 0.10
MIN_WINDOW_SAMPLES = 10
"""Fewer samples than this per window and the stability check is not assessed."""

MAX_THROUGHPUT_BATCHES = 30
MIN_THROUGHPUT_BATCHES = 5
MIN_BATCH_SAMPLES = 5

# Beyond sqrt(24 n) from the mean a binomial holds under 2*exp(-48) < 1e-20 of its mass
# (Hoeffding), far below any alpha anyone will ask for.
_WINDOW_SIGMAS2 = 24.0
_RANK_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Binomial in log space


def _binomial_window(n: int, p: float) -> tuple[int, npt.NDArray[np.float64]]:
    """Return ``(k0, pmf)``: the Binomial(n, p) probabilities of ``k0, k0 + 1, ...`` over the
    window that holds all but ~1e-20 of the mass."""
    half = math.ceil(math.sqrt(_WINDOW_SIGMAS2 * n)) + 2
    centre = n * p
    k0 = max(0, math.floor(centre - half))
    k1 = min(n, math.ceil(centre + half))
    log_p, log_q = math.log(p), math.log1p(-p)
    start = (
        math.lgamma(n + 1)
        - math.lgamma(k0 + 1)
        - math.lgamma(n - k0 + 1)
        + k0 * log_p
        + (n - k0) * log_q
    )
    ks = np.arange(k0, k1, dtype=np.float64)
    steps = np.log(n - ks) - np.log(ks + 1.0) + (log_p - log_q)
    log_pmf = np.empty(k1 - k0 + 1, dtype=np.float64)
    log_pmf[0] = start
    np.cumsum(steps, out=log_pmf[1:])
    log_pmf[1:] += start
    return k0, np.exp(log_pmf)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """Return ``P(K <= k)`` for ``K ~ Binomial(n, p)``, exact to ~1e-15 (log space, no scipy).

    Args:
        k: the count (any integer; below 0 gives 0, ``n`` or more gives 1).
        n: trials, >= 0.
        p: success probability in [0, 1].
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    k0, pmf = _binomial_window(n, p)
    if k < k0:
        return 0.0
    idx = k - k0
    if idx >= pmf.size:
        return 1.0
    return float(min(1.0, pmf[: idx + 1].sum()))


# --------------------------------------------------------------------------------------------
# Percentiles


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
                low=_opt_float(data.get("low")),
                high=_opt_float(data.get("high")),
                n=int(data["n"]),
                confidence=float(data["confidence"]),
                supported=bool(data["supported"]),
                low_rank=_opt_int(data.get("low_rank")),
                high_rank=_opt_int(data.get("high_rank")),
                coverage=_opt_float(data.get("coverage")),
                method=str(data.get("method", POINT_METHOD)),
                interval_method=str(data.get("interval_method", INTERVAL_METHOD)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed quantile estimate ({exc})", where="quantiles") from exc


def percentile_label(percentile: float) -> str:
    """Return the JSON key of a percentile: 99 -> ``"p99"``, 99.9 -> ``"p99.9"``."""
    return f"p{round(percentile, 6):g}"


def _check_quantile(q: float) -> None:
    if not (isinstance(q, (int, float)) and 0.0 < q < 1.0 and math.isfinite(q)):
        raise InputError(
            f"quantile {q!r} is not inside (0, 1)",
            where="quantile",
            hint="give a fraction such as 0.99 (percentiles such as 99 are divided by 100)",
        )


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, (int, float)) and 0.5 < confidence < 1.0):
        raise InputError(
            f"confidence {confidence!r} is not inside (0.5, 1)",
            where="confidence",
            hint="use 0.95 for a 95% interval",
        )


def _as_samples(samples: Iterable[float] | npt.ArrayLike, where: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(samples, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InputError("no samples", where=where, hint="measure at least one iteration")
    if not np.all(np.isfinite(arr)):
        raise InputError("samples contain NaN or infinity", where=where)
    if arr.min() < 0.0:
        raise InputError("samples contain negative times", where=where)
    return arr


def _sorted(arr: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # An O(n) check saves the O(n log n) sort when the caller already sorted.
    if arr.size < 2 or bool(np.all(arr[1:] >= arr[:-1])):
        return arr
    return np.sort(arr)


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
    _check_quantile(q)
    _check_confidence(confidence)
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

    k0, pmf = _binomial_window(n, q)
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
    _check_quantile(q)
    _check_confidence(confidence)
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
    _check_quantile(q)
    _check_confidence(confidence)
    xs = _sorted(_as_samples(samples, "samples"))
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


# --------------------------------------------------------------------------------------------
# Throughput and stability


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
    _check_confidence(confidence)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch {batch!r} is not a positive integer", where="--batch")
    arr = _as_samples(times_ms, "times_ms")
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


@dataclass(frozen=True)
class StabilityCheck:
    """Do consecutive windows of the run agree?

    Attributes:
        assessed: False when the run was too short (fewer than ``MIN_WINDOW_SAMPLES`` per
            window); then ``unstable`` is False and ``reason`` says so.
        unstable: True when ``relative_spread > threshold``.
        windows: number of consecutive windows.
        window_medians_ms: the median of each window, in order.
        relative_spread: ``(max - min) / overall median`` of the window medians (None if not
            assessed or the overall median is 0).
        threshold: the relative spread above which the run is unstable.
        reason: one sentence for a report.
    """

    assessed: bool
    unstable: bool
    windows: int
    window_medians_ms: tuple[float, ...]
    relative_spread: float | None
    threshold: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "assessed": self.assessed,
            "unstable": self.unstable,
            "windows": self.windows,
            "window_medians_ms": list(self.window_medians_ms),
            "relative_spread": self.relative_spread,
            "threshold": self.threshold,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StabilityCheck:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                assessed=bool(data["assessed"]),
                unstable=bool(data["unstable"]),
                windows=int(data["windows"]),
                window_medians_ms=tuple(float(v) for v in data["window_medians_ms"]),
                relative_spread=_opt_float(data.get("relative_spread")),
                threshold=float(data["threshold"]),
                reason=str(data["reason"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed stability check ({exc})", where="stability") from exc


def stability_check(
    times_ms: npt.ArrayLike,
    *,
    windows: int = DEFAULT_STABILITY_WINDOWS,
    threshold: float = DEFAULT_STABILITY_THRESHOLD,
) -> StabilityCheck:
    """Split a time-ordered run into ``windows`` consecutive windows and compare their medians.

    Args:
        times_ms: latencies in the order measured.
        windows: number of windows (>= 2); default 5.
        threshold: relative spread of window medians (``(max - min) / overall median``) above
            which the run is flagged unstable; default 0.10.

    Raises:
        InputError: bad samples, windows < 2 or threshold <= 0.
    """
    if windows < 2:
        raise InputError(f"windows={windows} must be at least 2", where="stability windows")
    if not threshold > 0.0:
        raise InputError(f"threshold={threshold} must be positive", where="stability threshold")
    arr = _as_samples(times_ms, "times_ms")
    if arr.size < windows * MIN_WINDOW_SAMPLES:
        return StabilityCheck(
            assessed=False,
            unstable=False,
            windows=windows,
            window_medians_ms=(),
            relative_spread=None,
            threshold=threshold,
            reason=(
                f"not assessed: {arr.size} samples, need {windows * MIN_WINDOW_SAMPLES} "
                f"({MIN_WINDOW_SAMPLES} per window)"
            ),
        )
    medians = tuple(float(np.median(chunk)) for chunk in np.array_split(arr, windows))
    overall = float(np.median(arr))
    spread = (max(medians) - min(medians)) / overall if overall > 0.0 else None
    listed = ", ".join(f"{m:.4g}" for m in medians)
    if spread is None:
        return StabilityCheck(
            True,
            False,
            windows,
            medians,
            None,
            threshold,
            "not assessed: the overall median is zero (clock resolution too coarse)",
        )
    unstable = spread > threshold
    if unstable:
        reason = (
            f"unstable: medians of {windows} consecutive windows differ by {spread:.1%} "
            f"(threshold {threshold:.0%}): {listed} ms; load, clocks or thermal state changed "
            "during the run"
        )
    else:
        reason = (
            f"stable: medians of {windows} consecutive windows agree within {spread:.1%} "
            f"(threshold {threshold:.0%})"
        )
    return StabilityCheck(True, unstable, windows, medians, spread, threshold, reason)


# --------------------------------------------------------------------------------------------
# Summary


@dataclass(frozen=True)
class LatencySummary:
    """Everything the bench reports about one cell's latency samples.

    Attributes:
        n: number of samples.
        batch: items per iteration.
        mean_ms, std_ms (sample std, ddof=1; 0 for one sample), min_ms, max_ms.
        cv: coefficient of variation ``std / mean`` (None when the mean is 0).
        quantiles: one :class:`QuantileEstimate` per requested percentile, ascending.
        throughput: :class:`ThroughputEstimate`.
        stability: :class:`StabilityCheck`.
        confidence: the intervals' confidence (0.95).
    """

    n: int
    batch: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    cv: float | None
    quantiles: tuple[QuantileEstimate, ...]
    throughput: ThroughputEstimate
    stability: StabilityCheck
    confidence: float = 0.95

    @property
    def unstable(self) -> bool:
        """Shortcut for ``stability.unstable``."""
        return self.stability.unstable

    @property
    def ci_key(self) -> str:
        """The JSON key of the percentile intervals: ``"ci95_ms"`` at 95%."""
        return f"ci{round(self.confidence * 100.0, 6):g}_ms"

    def percentile(self, p: float) -> QuantileEstimate:
        """Return the estimate for percentile ``p`` (in percent, e.g. 99). KeyError if absent."""
        for est in self.quantiles:
            if abs(est.q * 100.0 - p) < 1e-9:
                return est
        raise KeyError(percentile_label(p))

    def to_json(self) -> dict[str, Any]:
        """Return the bench-cell fields (issue 6 shape) plus the full detail.

        Keys: ``samples``, ``batch``, ``confidence``, ``latency_ms`` (``p50``.. and ``mean``,
        ``std``, ``min``, ``max``), ``ci95_ms`` (``{"p99": [low, high] or null}``), ``cv``,
        ``throughput`` (``items_per_s``, ``ci``, ...), ``stability``, ``percentile_method``,
        ``interval_method``, ``quantiles`` (full :class:`QuantileEstimate` records).
        """
        latency: dict[str, float] = {e.label: e.point for e in self.quantiles}
        latency.update(mean=self.mean_ms, std=self.std_ms, min=self.min_ms, max=self.max_ms)
        return {
            "samples": self.n,
            "batch": self.batch,
            "confidence": self.confidence,
            "latency_ms": latency,
            self.ci_key: {
                e.label: (None if e.interval is None else [e.low, e.high]) for e in self.quantiles
            },
            "cv": self.cv,
            "throughput": self.throughput.to_json(),
            "stability": self.stability.to_json(),
            "percentile_method": POINT_METHOD,
            "interval_method": INTERVAL_METHOD,
            "quantiles": [e.to_json() for e in self.quantiles],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencySummary:
        """Rebuild from :meth:`to_json` output (extra keys, such as the rest of a bench cell,
        are ignored). Raises InputError naming what is missing."""
        try:
            latency = data["latency_ms"]
            return cls(
                n=int(data["samples"]),
                batch=int(data["batch"]),
                mean_ms=float(latency["mean"]),
                std_ms=float(latency["std"]),
                min_ms=float(latency["min"]),
                max_ms=float(latency["max"]),
                cv=_opt_float(data.get("cv")),
                quantiles=tuple(QuantileEstimate.from_json(q) for q in data["quantiles"]),
                throughput=ThroughputEstimate.from_json(data["throughput"]),
                stability=StabilityCheck.from_json(data["stability"]),
                confidence=float(data.get("confidence", 0.95)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed latency summary ({exc})", where="latency_ms") from exc


def summarize(
    times_ms: npt.ArrayLike,
    *,
    batch: int,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    confidence: float = 0.95,
    stability_windows: int = DEFAULT_STABILITY_WINDOWS,
    stability_threshold: float = DEFAULT_STABILITY_THRESHOLD,
) -> LatencySummary:
    """Summarise one cell's latencies.

    Args:
        times_ms: every measured iteration in milliseconds, in the order measured (order
            matters for the stability check and the throughput interval).
        batch: items per iteration (>= 1), for throughput.
        percentiles: in percent, each in (0, 100); default (50, 90, 95, 99).
        confidence: of every interval; default 0.95.
        stability_windows: consecutive windows compared by the stability check; default 5.
        stability_threshold: relative spread of window medians that flags ``unstable``;
            default 0.10.

    Returns:
        A :class:`LatencySummary`. Percentiles the samples cannot support have
        ``supported=False`` and no interval.

    Raises:
        InputError: no samples, NaN/inf/negative samples, all samples zero (a clock too coarse
            for the model), batch < 1, bad percentiles.
    """
    _check_confidence(confidence)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch {batch!r} is not a positive integer", where="--batch")
    bad = [p for p in percentiles if not 0.0 < float(p) < 100.0]
    if bad:
        raise InputError(
            f"percentiles {bad} are not inside (0, 100)",
            where="percentiles",
            hint="give percentiles in percent, e.g. 99",
        )
    arr = _as_samples(times_ms, "times_ms")
    xs = np.sort(arr)
    n = int(arr.size)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    quantiles = tuple(
        quantile_ci(xs, float(p) / 100.0, confidence) for p in sorted(set(map(float, percentiles)))
    )
    throughput = throughput_estimate(arr, batch=int(batch), confidence=confidence)
    return LatencySummary(
        n=n,
        batch=int(batch),
        mean_ms=mean,
        std_ms=std,
        min_ms=float(xs[0]),
        max_ms=float(xs[-1]),
        cv=std / mean if mean > 0.0 else None,
        quantiles=quantiles,
        throughput=throughput,
        stability=stability_check(arr, windows=stability_windows, threshold=stability_threshold),
        confidence=float(confidence),
    )


# --------------------------------------------------------------------------------------------
# Stopping rule

StopReason = Literal["met", "max_duration"]


@dataclass(frozen=True)
class StoppingRule:
    """When a timed run may stop: once ``min_duration_s`` and ``min_samples`` are both met, or
    at ``max_duration_s`` whichever comes first.

    Attributes:
        min_duration_s: seconds of measurement at least (> 0; default 3).
        min_samples: iterations at least (>= 1), usually
            :func:`min_samples_for_quantile` of the target percentile.
        max_duration_s: cap in seconds (>= min_duration_s; default 30).
    """

    min_duration_s: float = 3.0
    min_samples: int = 1
    max_duration_s: float = 30.0

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not (math.isfinite(self.min_duration_s) and self.min_duration_s > 0.0):
            problems.append(("--duration", f"{self.min_duration_s!r} must be above 0 seconds"))
        if not (isinstance(self.min_samples, (int, np.integer)) and self.min_samples >= 1):
            problems.append(("--min-samples", f"{self.min_samples!r} must be at least 1"))
        if not (self.max_duration_s > 0.0):
            problems.append(("--max-duration", f"{self.max_duration_s!r} must be above 0 seconds"))
        elif self.max_duration_s < self.min_duration_s:
            problems.append(
                (
                    "--max-duration",
                    f"{self.max_duration_s!r} s is below --duration {self.min_duration_s!r} s",
                )
            )
        if problems:
            where = ", ".join(w for w, _ in problems)
            raise InputError(
                "; ".join(f"{w} {m}" for w, m in problems),
                where=where,
                hint="durations and counts must be positive",
            )

    @classmethod
    def for_percentile(
        cls,
        target_percentile: float = 99.0,
        *,
        confidence: float = 0.95,
        min_duration_s: float = 3.0,
        max_duration_s: float = 30.0,
        min_samples: int | None = None,
    ) -> StoppingRule:
        """Build the rule for a target percentile (in percent): ``min_samples`` is the larger of
        the given one and :func:`min_samples_for_quantile` (299 for p99 at 95%).

        Raises:
            InputError: a bad percentile (where ``--target-percentile``), duration or count.
        """
        if not 0.0 < float(target_percentile) < 100.0:
            raise InputError(
                f"{target_percentile!r} is not inside (0, 100)",
                where="--target-percentile",
                hint="e.g. 99",
            )
        needed = min_samples_for_quantile(float(target_percentile) / 100.0, confidence)
        if min_samples is not None and not (
            isinstance(min_samples, (int, np.integer)) and min_samples >= 1
        ):
            raise InputError(f"{min_samples!r} must be at least 1", where="--min-samples")
        return cls(
            min_duration_s=float(min_duration_s),
            min_samples=max(needed, int(min_samples or 0)),
            max_duration_s=float(max_duration_s),
        )

    def stop_reason(self, elapsed_s: float, n: int) -> StopReason | None:
        """Return ``"met"`` (both minimums met), ``"max_duration"`` (capped before they were),
        or None (keep measuring)."""
        if elapsed_s >= self.min_duration_s and n >= self.min_samples:
            return "met"
        if elapsed_s >= self.max_duration_s:
            return "max_duration"
        return None

    def should_stop(self, elapsed_s: float, n: int) -> bool:
        """True when measurement should stop (see :meth:`stop_reason`)."""
        return self.stop_reason(elapsed_s, n) is not None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "min_duration_s": self.min_duration_s,
            "min_samples": self.min_samples,
            "max_duration_s": self.max_duration_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoppingRule:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                float(data["min_duration_s"]),
                int(data["min_samples"]),
                float(data["max_duration_s"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed stopping rule ({exc})", where="stopping") from exc


def should_stop(
    elapsed_s: float,
    n: int,
    *,
    min_duration_s: float,
    min_samples: int,
    max_duration_s: float,
) -> bool:
    """True once ``elapsed_s >= min_duration_s`` and ``n >= min_samples``, or once
    ``elapsed_s >= max_duration_s``. Raises InputError for non-positive settings."""
    return StoppingRule(min_duration_s, min_samples, max_duration_s).should_stop(elapsed_s, n)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


__all__ = [
    "DEFAULT_PERCENTILES",
    "INTERVAL_METHOD",
    "POINT_METHOD",
    "THROUGHPUT_METHOD",
    "LatencySummary",
    "QuantileEstimate",
    "StabilityCheck",
    "StopReason",
    "StoppingRule",
    "ThroughputEstimate",
    "binomial_cdf",
    "mean_ci_batch_means",
    "min_samples_for_percentiles",
    "min_samples_for_quantile",
    "nearest_rank",
    "order_statistic_ranks",
    "percentile_label",
    "quantile_ci",
    "should_stop",
    "stability_check",
    "summarize",
    "throughput_estimate",
]
