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
(:func:`optieval.stats.rank_autocorrelation_time`, 1 for independent samples).

**Between runs.** Variation between processes (memory layout, CPU frequency, neighbours) is in
neither run's samples: an identical rerun read "slower" about once in ten on a busy machine.
When a run was measured in blocks, each in its own process, the medians of its blocks carry it:
the variance of the mean log block median, ``B = s**2 / k`` per side, estimates the pooled
median's whole variance (between-process part included), of which Price-Bonett's ``V`` is the
within-process part. The half-width is ``sqrt(z**2 V + t**2 max(0, B - V))``: the excess of the
block spread over what sampling explains enters at the Student t quantile of its
Welch-Satterthwaite degrees of freedom (floored), the rest at z. When blocks agree no more than
sampling noise explains, the interval is Price-Bonett's; when they disagree it widens toward a
Welch t interval on the block medians. When
only one side has blocks (a baseline written before blocks existed, or ``blocks=1``), the other
side's between-run variance is taken to be one block's of the side that has them (the same model
on the same machine; ``k - 1`` degrees of freedom). With no blocks on either side the interval is
Price-Bonett's alone. The caller decides how large a ratio counts as a change
(:mod:`optieval.bench`'s baseline comparison uses a threshold).

**Interleaved runs.** Blocks of one process cannot see what changes over minutes (a neighbour's
job starting, the machine's load moving whole runs by 1.5x): two runs measured at different
times differ by that. When both models are at hand they are measured in alternating blocks
(new, old, old, new, ...), so each pair of blocks saw the same machine;
:func:`interleaved_ratio_ci` judges the pairs. The point is the geometric mean of the pairs'
median ratios; its variance from sampling is ``V = sum(v_new_i + v_old_i) / k**2``
(Price-Bonett per block) and its whole variance, what changed between pairs included, is
estimated by ``B = s_d**2 / k`` from the spread of the pairs' log ratios ``d_i``. The half-width
is the larger of ``z sqrt(V)`` and the paired t interval's ``t sqrt(B)`` (``k - 1`` degrees of
freedom): slow changes of the machine cancel within a pair instead of widening the interval.
The larger of the two, not the excess form above: with three pairs the excess form missed the
true ratio on one side 4-6% of the time when each block had its own 3% offset; the larger one
stayed within 2.5% (plus Monte Carlo error) on each side for 3, 5 and 8 pairs with block
offsets of 0-6% and a shared pair offset of 30% (600 replications each), at a width of
+-3.5% for three quiet pairs of 400 lognormal samples (+-2.3% for the excess form).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.between import between_block_log_variance, t_quantile
from optieval.stats.binomial import binomial_cdf
from optieval.stats.dependence import rank_autocorrelation_time
from optieval.stats.quantiles import nearest_rank

RATIO_METHOD = "Price-Bonett log ratio of nearest-rank medians"
BETWEEN_METHOD = "widened by the excess spread of per-process block medians (Welch t)"
INTERLEAVED_METHOD = (
    "interleaved blocks: geometric mean of paired block median ratios, Price-Bonett within "
    "blocks, widened by the excess spread of the pairs (t)"
)
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
        blocks_new, blocks_old: how many blocks (processes) each run's block medians came from
            (1: none recorded).
        between: how variation between processes entered the interval (None when neither run
            has blocks), e.g. ``"3 + 3 blocks, Welch t on 4 df: half-width 0.021 vs 0.012
            within (widened)"``.
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
    blocks_new: int = 1
    blocks_old: int = 1
    between: str | None = None

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
            "blocks_new": self.blocks_new,
            "blocks_old": self.blocks_old,
            "between": self.between,
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
                blocks_new=int(data.get("blocks_new", 1)),
                blocks_old=int(data.get("blocks_old", 1)),
                between=None if data.get("between") is None else str(data["between"]),
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


def _between_variance(
    new_blocks: Sequence[float] | None,
    old_blocks: Sequence[float] | None,
) -> tuple[float, int, str] | None:
    """``B``, the variance of the log ratio from the block medians, its (Welch) degrees of
    freedom and a description; None when neither side has two blocks."""
    new, old = between_block_log_variance(new_blocks), between_block_log_variance(old_blocks)
    if new is None and old is None:
        return None
    if new is not None and old is not None:
        (s2n, kn), (s2o, ko) = new, old
        parts = (s2n / kn, s2o / ko)
        denominator = parts[0] ** 2 / (kn - 1) + parts[1] ** 2 / (ko - 1)
        df = int(sum(parts) ** 2 / denominator) if denominator > 0 else kn + ko - 2
        text = f"{kn} + {ko} blocks"
    else:
        # One side has no blocks: its single process varies as one block of the other side.
        s2, k = new if new is not None else old  # type: ignore[misc]
        parts = (s2 / k, s2)
        df = k - 1
        side = "baseline" if new is not None else "new run"
        text = f"{k} blocks; the {side} has none, its between-run variance taken as one block's"
    return sum(parts), max(1, df), text


def median_ratio_ci(
    new_times: npt.ArrayLike,
    old_times: npt.ArrayLike,
    confidence: float = 0.95,
    *,
    new_blocks: Sequence[float] | None = None,
    old_blocks: Sequence[float] | None = None,
) -> RatioEstimate:
    """Ratio of the new run's median latency to the old run's, with its confidence interval.

    Args:
        new_times: the new run's latencies (any unit, same as ``old_times``).
        old_times: the baseline's latencies.
        confidence: in (0.5, 1); default 0.95.
        new_blocks, old_blocks: each run's per-block medians (same unit; each block measured
            in its own process), or None: with two or more on a side, variation between
            processes widens the interval (see the module docstring).

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
    between_text = None
    method = RATIO_METHOD
    if v_new is not None and v_old is not None:
        z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        within = v_new + v_old
        half = z * math.sqrt(within)
        between = _between_variance(new_blocks, old_blocks)
        if between is not None:
            b_var, df, text = between
            excess = max(0.0, b_var - within)
            widened = math.sqrt(z * z * within + t_quantile(confidence, df) ** 2 * excess)
            between_text = (
                f"{text}; block spread {math.sqrt(b_var):.4f} vs {math.sqrt(within):.4f} within "
                f"(log scale), t on {df} df: half-width {widened:.4f}"
                + (" (widened)" if excess > 0 else " (within-run interval kept)")
            )
            half = widened
            method = f"{RATIO_METHOD}, {BETWEEN_METHOD}"
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
        method=method,
        blocks_new=_block_count(new_blocks),
        blocks_old=_block_count(old_blocks),
        between=between_text,
    )


MAX_PAIRS = 32
"""The most blocks per model :func:`pairs_to_decide` suggests (as ``--blocks`` allows)."""


def pairs_to_decide(estimate: RatioEstimate, limit: float) -> int | None:
    """About how many interleaved pairs of blocks would decide whether ``estimate``'s ratio is
    under ``limit`` if the pairs kept varying as they did: the least count ``k'`` whose
    half-width, this one's scaled by ``(t(k' - 1) / sqrt(k')) / (t(k - 1) / sqrt(k))``, clears
    the distance from the ratio to ``limit`` on the log scale. None when the estimate is not
    interleaved or has no interval, when the ratio sits on the limit, or when more than
    :data:`MAX_PAIRS` would be needed."""
    if estimate.method != INTERLEAVED_METHOD or estimate.high is None or estimate.ratio <= 0:
        return None
    gap = abs(math.log(estimate.ratio) - math.log(limit))
    half = math.log(estimate.high / estimate.ratio)
    k = estimate.blocks_new
    if gap <= 0.0 or k < 2:
        return None

    def scale(m: int) -> float:
        return t_quantile(estimate.confidence, m - 1) / math.sqrt(m)

    for m in range(k + 1, MAX_PAIRS + 1):
        if half * scale(m) / scale(k) < gap:
            return m
    return None


def _block_count(blocks: Sequence[float] | None) -> int:
    return max(1, len(blocks)) if blocks is not None else 1


def interleaved_ratio_ci(
    new_blocks: Sequence[npt.ArrayLike],
    old_blocks: Sequence[npt.ArrayLike],
    confidence: float = 0.95,
) -> RatioEstimate:
    """Ratio of new to old median latency from blocks measured in alternation: block ``i`` of
    each run ran next to the other's block ``i`` (see the module docstring).

    Args:
        new_blocks: the new run's latencies, one sequence per block, in the order they ran.
        old_blocks: the baseline's, paired with ``new_blocks`` by position.
        confidence: in (0.5, 1); default 0.95.

    Returns:
        A :class:`RatioEstimate` whose ``ratio`` is the geometric mean of the pairs' median
        ratios and whose medians are the pooled ones; ``supported=False`` (no interval) when a
        block has fewer than ``MIN_RATIO_SAMPLES`` samples.

    Raises:
        InputError: fewer than two pairs or unequal block counts (where ``blocks``); empty,
            non-finite or negative samples; a zero median; confidence out of range.
    """
    if not 0.5 < confidence < 1.0:
        raise InputError(f"confidence {confidence!r} is not inside (0.5, 1)", where="confidence")
    k = len(new_blocks)
    if k < 2 or len(old_blocks) != k:
        raise InputError(
            f"interleaving needs two or more pairs of blocks (got {k} new, {len(old_blocks)} "
            "baseline)",
            where="blocks",
        )
    new = [_times(b, f"times_ms (new run, block {i + 1})") for i, b in enumerate(new_blocks)]
    old = [_times(b, f"times_ms (baseline, block {i + 1})") for i, b in enumerate(old_blocks)]
    logs, within, supported = [], 0.0, True
    for a, b in zip(new, old, strict=True):
        m_a, v_a = _median_and_log_var(a)
        m_b, v_b = _median_and_log_var(b)
        if m_a <= 0.0 or m_b <= 0.0:
            raise InputError("a block's median latency is zero; no ratio", where="times_ms")
        logs.append(math.log(m_a / m_b))
        if v_a is None or v_b is None:
            supported = False
        else:
            within += v_a + v_b
    d = np.asarray(logs)
    ratio = math.exp(float(d.mean()))
    m_new, _ = _median_and_log_var(np.concatenate(new))
    m_old, _ = _median_and_log_var(np.concatenate(old))
    low = high = None
    between_text = None
    if supported:
        z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        v = within / k**2
        spread = float(np.var(d, ddof=1)) / k
        paired_t = t_quantile(confidence, k - 1) * math.sqrt(spread)
        half = max(z * math.sqrt(v), paired_t)
        low, high = ratio * math.exp(-half), ratio * math.exp(half)
        between_text = (
            f"{k} interleaved pairs of blocks; pair spread {math.sqrt(spread):.4f} vs "
            f"{math.sqrt(v):.4f} within (log scale), t on {k - 1} df: half-width {half:.4f}"
            + (" (paired t)" if paired_t >= z * math.sqrt(v) else " (within-block interval)")
        )
    return RatioEstimate(
        ratio=ratio,
        low=low,
        high=high,
        confidence=float(confidence),
        new_median_ms=m_new,
        old_median_ms=m_old,
        n_new=sum(int(a.size) for a in new),
        n_old=sum(int(b.size) for b in old),
        supported=supported,
        method=INTERLEAVED_METHOD,
        blocks_new=k,
        blocks_old=k,
        between=between_text,
    )


__all__ = [
    "BETWEEN_METHOD",
    "INTERLEAVED_METHOD",
    "MAX_PAIRS",
    "MIN_RATIO_SAMPLES",
    "RATIO_METHOD",
    "RatioEstimate",
    "interleaved_ratio_ci",
    "median_ratio_ci",
    "pairs_to_decide",
]
