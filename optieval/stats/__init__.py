"""Statistics: percentiles with distribution-free intervals, means, proportions, ratios, the
bootstrap, stopping rules, and the three-way verdict of a budget check.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.stats.latency import INTERVAL_METHOD as INTERVAL_METHOD
    from optieval.stats.latency import POINT_METHOD as POINT_METHOD
    from optieval.stats.latency import THROUGHPUT_METHOD as THROUGHPUT_METHOD
    from optieval.stats.latency import LatencySummary as LatencySummary
    from optieval.stats.latency import ThroughputEstimate as ThroughputEstimate
    from optieval.stats.latency import binomial_cdf as binomial_cdf
    from optieval.stats.latency import mean_ci_batch_means as mean_ci_batch_means
    from optieval.stats.latency import min_samples_for_quantile as min_samples_for_quantile
    from optieval.stats.latency import nearest_rank as nearest_rank
    from optieval.stats.latency import order_statistic_ranks as order_statistic_ranks
    from optieval.stats.latency import quantile_ci as quantile_ci
    from optieval.stats.latency import summarize as summarize
    from optieval.stats.latency import throughput_estimate as throughput_estimate
    from optieval.stats.verdict import Judgement as Judgement
    from optieval.stats.verdict import Kind as Kind
    from optieval.stats.verdict import Verdict as Verdict
    from optieval.stats.verdict import judge as judge
    from optieval.stats.verdict import judge_max as judge_max

_EXPORTS = {
    "INTERVAL_METHOD": "optieval.stats.latency",
    "Judgement": "optieval.stats.verdict",
    "Kind": "optieval.stats.verdict",
    "LatencySummary": "optieval.stats.latency",
    "POINT_METHOD": "optieval.stats.latency",
    "THROUGHPUT_METHOD": "optieval.stats.latency",
    "ThroughputEstimate": "optieval.stats.latency",
    "Verdict": "optieval.stats.verdict",
    "binomial_cdf": "optieval.stats.latency",
    "judge": "optieval.stats.verdict",
    "judge_max": "optieval.stats.verdict",
    "mean_ci_batch_means": "optieval.stats.latency",
    "min_samples_for_quantile": "optieval.stats.latency",
    "nearest_rank": "optieval.stats.latency",
    "order_statistic_ranks": "optieval.stats.latency",
    "quantile_ci": "optieval.stats.latency",
    "summarize": "optieval.stats.latency",
    "throughput_estimate": "optieval.stats.latency",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
