"""The binomial distribution in log space, exact to ~1e-15 and without scipy: the order-statistic
intervals of percentiles and the Price-Bonett ratio interval both rest on it."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# Beyond sqrt(24 n) from the mean a binomial holds under 2*exp(-48) < 1e-20 of its mass
# (Hoeffding), far below any alpha anyone will ask for.
_WINDOW_SIGMAS2 = 24.0


def binomial_window(n: int, p: float) -> tuple[int, npt.NDArray[np.float64]]:
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
    k0, pmf = binomial_window(n, p)
    if k < k0:
        return 0.0
    idx = k - k0
    if idx >= pmf.size:
        return 1.0
    return float(min(1.0, pmf[: idx + 1].sum()))


__all__ = ["binomial_cdf", "binomial_window"]
