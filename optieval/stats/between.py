"""Variation between runs: the spread of per-block medians (each block its own process) and the
Student t quantile a Welch interval on so few blocks needs.

A run's samples say nothing about what changes from one process to the next (memory layout,
CPU frequency, a neighbour's load); the medians of several blocks, each measured in its own
process, do. :func:`between_block_log_variance` gives the variance of the mean log block median
(which estimates the variance of the pooled median's log, between-process part included) and
its degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student t critical value: ``t`` with ``P(|T| < t) = confidence`` for
    ``T ~ t(df)``, exact for integer ``df >= 1`` (Abramowitz & Stegun 26.7.3-4, bisection)."""
    df = max(1, int(df))

    def central(t: float) -> float:  # P(|T| < t)
        theta = math.atan(t / math.sqrt(df))
        s, c = math.sin(theta), math.cos(theta)
        if df == 1:
            return 2.0 * theta / math.pi
        if df % 2:
            term, total = c, c
            for k in range(3, df - 1, 2):
                term *= c * c * (k - 1) / k
                total += term
            return 2.0 / math.pi * (theta + s * total)
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):
            term *= c * c * (k - 1) / k
            total += term
        return s * total

    low, high = 0.0, 1.0
    while central(high) < confidence:
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if central(mid) < confidence:
            low = mid
        else:
            high = mid
    return high


def between_block_log_variance(block_medians: Sequence[float] | None) -> tuple[float, int] | None:
    """``(s**2, k)``: the sample variance of the logs of ``k >= 2`` positive block medians and
    their count; None with fewer than two blocks or a block median that is not positive."""
    if block_medians is None:
        return None
    arr = np.asarray(list(block_medians), dtype=np.float64).reshape(-1)
    if arr.size < 2 or not np.all(np.isfinite(arr)) or arr.min() <= 0.0:
        return None
    return float(np.var(np.log(arr), ddof=1)), int(arr.size)


__all__ = ["between_block_log_variance", "t_quantile"]
