"""Intervals of proportions: the Wilson score interval of one binomial proportion, and Newcombe's
hybrid score interval for the difference of two paired proportions (Newcombe 1998, method 10),
which uses the Wilson limits of both and the correlation of the paired outcomes; the ratio of two
paired proportions is that difference interval divided by the reference proportion
(``1 + delta / p_ref``), so a ratio verdict can never contradict the difference verdict. In
simulation (benchmarks/parity_cost.py) it covers at 0.94-1.0 for n >= 50, where the delta-method
log-ratio interval (Bonett & Price) fell to 0.90 at n = 100."""

from __future__ import annotations

import math

import numpy as np

from optieval.stats.intervals import DEFAULT_CONFIDENCE, Interval, z_value


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


__all__ = ["paired_difference_interval", "paired_ratio_interval", "wilson_interval"]
