"""The bootstrap: seeded resampling weights (one draw of ``n`` units with replacement, as a
weight per unit, so the same draw can weight paired reference and candidate statistics and
per-unit work is done once) and the percentile interval of the resampled statistics."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from optieval.stats.intervals import Interval


def bootstrap_weights(n: int, resamples: int, *, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield ``resamples`` weight vectors of length ``n`` (float64): how often each of the ``n``
    units was drawn in one resample with replacement. Seeded (``numpy.random.default_rng``),
    so the same ``seed`` gives the same resamples; nothing is yielded when ``n`` is 0.

    Apply one weight vector to the reference's and to the candidate's per-unit values for a
    paired bootstrap."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples if n else 0):
        yield np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)


def percentile_interval(values: np.ndarray, confidence: float, method: str) -> Interval | None:
    """The percentile-bootstrap interval of resampled statistics ``values`` (non-finite values,
    from resamples where the statistic is undefined, are dropped), named ``method``; None when
    no resample gave a finite value."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(low), float(high), confidence, method)


__all__ = ["bootstrap_weights", "percentile_interval"]
