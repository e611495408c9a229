"""Intervals of proportions: the Wilson score interval of one binomial proportion, and Newcombe's
hybrid score interval for the difference of two paired proportions (Newcombe 1998, method 10),
which uses the Wilson limits of both and the correlation of the paired outcomes; the ratio of two
paired proportions is that difference interval divided by the reference proportion
(``1 + delta / p_ref``), so a ratio verdict can never contradict the difference verdict. In
simulation (benchmarks/parity_cost.py) it covers at 0.94-1.0 for n >= 50, where the delta-method
log-ratio interval (Bonett & Price) fell to 0.90 at n = 100."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from optieval.stats.binomial import binomial_cdf
from optieval.stats.intervals import DEFAULT_CONFIDENCE, Interval, z_value

CLOPPER_PEARSON = "clopper-pearson"
"""Name of the exact binomial interval."""


def wilson_interval(
    successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Returns ``[0, 1]`` when ``trials`` is 0. Raises ValueError for counts out of range.
    """
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"bad counts: {successes} of {trials}")
    if trials == 0:
        return Interval(0.0, 1.0, confidence, "wilson")
    z = z_value(confidence)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # Exact at the edges (floating point leaves 1e-17 residues there).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high, confidence, "wilson")


def _solve(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] with ``f(p) = target`` for ``f`` decreasing in p (bisection to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def clopper_pearson_interval(
    successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Clopper-Pearson (exact) interval for a binomial proportion: each side errs with
    probability at most ``(1 - confidence) / 2`` for every true proportion and every n, so a
    gate that fails when the low end is over a budget fails a candidate exactly at the budget
    at most ``alpha / 2`` of the time (Wilson's nominal level is only approximate, and below it
    for small counts). ``low`` solves ``P(K >= successes | p) = alpha / 2`` and ``high`` solves
    ``P(K <= successes | p) = alpha / 2``; ``[0, 1]`` when ``trials`` is 0.

    Raises:
        ValueError: counts out of range.
    """
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"bad counts: {successes} of {trials}")
    if trials == 0:
        return Interval(0.0, 1.0, confidence, CLOPPER_PEARSON)
    half = (1.0 - confidence) / 2.0
    k, n = successes, trials
    if k == 0:
        low = 0.0
    elif k == n:
        low = half ** (1.0 / n)
    else:
        # P(K >= k | p) = 1 - cdf(k - 1) increases in p: solve on its complement.
        low = _solve(lambda p: binomial_cdf(k - 1, n, p), 1.0 - half)
    if k == n:
        high = 1.0
    elif k == 0:
        high = 1.0 - half ** (1.0 / n)
    else:
        high = _solve(lambda p: binomial_cdf(k, n, p), half)
    return Interval(low, high, confidence, CLOPPER_PEARSON)


def paired_difference_interval(
    candidate_correct: np.ndarray,
    reference_correct: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Newcombe's hybrid score interval for ``mean(candidate) - mean(reference)`` on paired
    boolean outcomes (method 10 of Newcombe 1998)."""
    cand = np.asarray(candidate_correct, dtype=bool)
    ref = np.asarray(reference_correct, dtype=bool)
    n = int(cand.size)
    if n == 0:
        return Interval(-1.0, 1.0, confidence, "newcombe-paired")
    a = int(np.sum(cand & ref))
    b = int(np.sum(cand & ~ref))
    c = int(np.sum(~cand & ref))
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    w1 = wilson_interval(a + b, n, confidence)
    w2 = wilson_interval(a + c, n, confidence)
    product = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(product) if product > 0 else 0.0
    delta = p1 - p2
    lower_sq = (p1 - w1.low) ** 2 - 2 * phi * (p1 - w1.low) * (w2.high - p2) + (w2.high - p2) ** 2
    upper_sq = (w1.high - p1) ** 2 - 2 * phi * (w1.high - p1) * (p2 - w2.low) + (p2 - w2.low) ** 2
    low = delta - math.sqrt(max(lower_sq, 0.0))
    high = delta + math.sqrt(max(upper_sq, 0.0))
    return Interval(max(-1.0, low), min(1.0, high), confidence, "newcombe-paired")


def paired_ratio_interval(
    candidate_correct: np.ndarray,
    reference_correct: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Interval for ``mean(candidate) / mean(reference)`` on paired boolean outcomes: the
    Newcombe interval of the difference, divided by the reference accuracy
    (``ratio = 1 + delta / acc_ref``), so that the ratio and delta verdicts always agree.
    ``[0, inf]`` when the reference gets nothing right."""
    ref = np.asarray(reference_correct, dtype=bool)
    p_ref = float(ref.mean()) if ref.size else 0.0
    if p_ref == 0.0:
        return Interval(0.0, math.inf, confidence, "newcombe-paired/reference")
    delta = paired_difference_interval(candidate_correct, ref, confidence)
    return Interval(
        max(0.0, (p_ref + delta.low) / p_ref),
        (p_ref + delta.high) / p_ref,
        confidence,
        "newcombe-paired/reference",
    )


__all__ = [
    "CLOPPER_PEARSON",
    "clopper_pearson_interval",
    "paired_difference_interval",
    "paired_ratio_interval",
    "wilson_interval",
]
