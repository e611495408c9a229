"""How long optieval's statistics take per bench cell (pure numpy; no model is run).

    python benchmarks/bench_stats_speed.py

Prints the best of several repeats for summarize() (all percentiles, intervals, throughput,
stability), quantile_ci() on already sorted samples, and median_ratio_ci() for a baseline pair.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from optieval.stats import median_ratio_ci, quantile_ci, summarize


def best_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'n':>10}  {'summarize':>12}  {'quantile_ci (sorted)':>20}  {'median_ratio_ci':>16}")
    for n in (1_000, 100_000, 1_000_000, 10_000_000):
        times = rng.lognormal(np.log(5.0), 0.2, n)
        other = rng.lognormal(np.log(5.0), 0.2, n)
        xs = np.sort(times)
        repeats = 3 if n >= 1_000_000 else 10
        s = best_ms(lambda t=times: summarize(t, batch=8), repeats)
        q = best_ms(lambda x=xs: quantile_ci(x, 0.99), repeats)
        r = best_ms(lambda a=times, b=other: median_ratio_ci(a, b), repeats)
        print(f"{n:>10}  {s:>10.2f}ms  {q:>18.3f}ms  {r:>14.2f}ms")


if __name__ == "__main__":
    main()
