"""Statistics: percentiles with distribution-free intervals, means, proportions, ratios, the
bootstrap, stopping rules, and the three-way verdict of a budget check. Every confidence interval
optieval reports is computed here.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.stats.binomial import binomial_cdf as binomial_cdf
    from optieval.stats.bootstrap import bootstrap_weights as bootstrap_weights
    from optieval.stats.bootstrap import percentile_interval as percentile_interval
    from optieval.stats.dependence import autocorrelation_time as autocorrelation_time
    from optieval.stats.dependence import rank_autocorrelation_time as rank_autocorrelation_time
    from optieval.stats.intervals import DEFAULT_CONFIDENCE as DEFAULT_CONFIDENCE
    from optieval.stats.intervals import Interval as Interval
    from optieval.stats.means import THROUGHPUT_METHOD as THROUGHPUT_METHOD
    from optieval.stats.means import ThroughputEstimate as ThroughputEstimate
    from optieval.stats.means import mean_ci_batch_means as mean_ci_batch_means
    from optieval.stats.means import min_samples_for_mean as min_samples_for_mean
    from optieval.stats.means import throughput_estimate as throughput_estimate
    from optieval.stats.proportions import clopper_pearson_interval as clopper_pearson_interval
    from optieval.stats.proportions import paired_difference_interval as paired_difference_interval
    from optieval.stats.proportions import paired_ratio_interval as paired_ratio_interval
    from optieval.stats.proportions import wilson_interval as wilson_interval
    from optieval.stats.quantiles import INTERVAL_METHOD as INTERVAL_METHOD
    from optieval.stats.quantiles import POINT_METHOD as POINT_METHOD
    from optieval.stats.quantiles import QuantileEstimate as QuantileEstimate
    from optieval.stats.quantiles import min_samples_for_percentiles as min_samples_for_percentiles
    from optieval.stats.quantiles import min_samples_for_quantile as min_samples_for_quantile
    from optieval.stats.quantiles import min_samples_for_upper_bound as min_samples_for_upper_bound
    from optieval.stats.quantiles import nearest_rank as nearest_rank
    from optieval.stats.quantiles import order_statistic_ranks as order_statistic_ranks
    from optieval.stats.quantiles import percentile_label as percentile_label
    from optieval.stats.quantiles import quantile_bounds as quantile_bounds
    from optieval.stats.quantiles import quantile_ci as quantile_ci
    from optieval.stats.quantiles import quantile_lower_bound as quantile_lower_bound
    from optieval.stats.ratios import INTERLEAVED_METHOD as INTERLEAVED_METHOD
    from optieval.stats.ratios import MAX_PAIRS as MAX_PAIRS
    from optieval.stats.ratios import MIN_RATIO_SAMPLES as MIN_RATIO_SAMPLES
    from optieval.stats.ratios import RATIO_METHOD as RATIO_METHOD
    from optieval.stats.ratios import RatioEstimate as RatioEstimate
    from optieval.stats.ratios import interleaved_ratio_ci as interleaved_ratio_ci
    from optieval.stats.ratios import median_ratio_ci as median_ratio_ci
    from optieval.stats.ratios import pairs_to_decide as pairs_to_decide
    from optieval.stats.sequential import LOOK_FACTOR as LOOK_FACTOR
    from optieval.stats.sequential import MIN_LOOK_S as MIN_LOOK_S
    from optieval.stats.sequential import LookPlan as LookPlan
    from optieval.stats.sequential import look_plan as look_plan
    from optieval.stats.sequential import samples_to_decide_quantile as samples_to_decide_quantile
    from optieval.stats.stability import StabilityCheck as StabilityCheck
    from optieval.stats.stability import stability_check as stability_check
    from optieval.stats.stopping import StoppingRule as StoppingRule
    from optieval.stats.stopping import should_stop as should_stop
    from optieval.stats.summary import DEFAULT_PERCENTILES as DEFAULT_PERCENTILES
    from optieval.stats.summary import LatencySummary as LatencySummary
    from optieval.stats.summary import summarize as summarize
    from optieval.stats.verdict import Judgement as Judgement
    from optieval.stats.verdict import Kind as Kind
    from optieval.stats.verdict import Verdict as Verdict
    from optieval.stats.verdict import confidence_text as confidence_text
    from optieval.stats.verdict import judge as judge
    from optieval.stats.verdict import judge_max as judge_max
    from optieval.stats.verdict import judge_min as judge_min

_EXPORTS = {
    "DEFAULT_CONFIDENCE": "optieval.stats.intervals",
    "DEFAULT_PERCENTILES": "optieval.stats.summary",
    "INTERVAL_METHOD": "optieval.stats.quantiles",
    "Interval": "optieval.stats.intervals",
    "Judgement": "optieval.stats.verdict",
    "Kind": "optieval.stats.verdict",
    "LOOK_FACTOR": "optieval.stats.sequential",
    "LatencySummary": "optieval.stats.summary",
    "LookPlan": "optieval.stats.sequential",
    "MIN_LOOK_S": "optieval.stats.sequential",
    "INTERLEAVED_METHOD": "optieval.stats.ratios",
    "MAX_PAIRS": "optieval.stats.ratios",
    "MIN_RATIO_SAMPLES": "optieval.stats.ratios",
    "POINT_METHOD": "optieval.stats.quantiles",
    "QuantileEstimate": "optieval.stats.quantiles",
    "RATIO_METHOD": "optieval.stats.ratios",
    "RatioEstimate": "optieval.stats.ratios",
    "StabilityCheck": "optieval.stats.stability",
    "StoppingRule": "optieval.stats.stopping",
    "THROUGHPUT_METHOD": "optieval.stats.means",
    "ThroughputEstimate": "optieval.stats.means",
    "Verdict": "optieval.stats.verdict",
    "autocorrelation_time": "optieval.stats.dependence",
    "binomial_cdf": "optieval.stats.binomial",
    "bootstrap_weights": "optieval.stats.bootstrap",
    "clopper_pearson_interval": "optieval.stats.proportions",
    "confidence_text": "optieval.stats.verdict",
    "judge": "optieval.stats.verdict",
    "judge_max": "optieval.stats.verdict",
    "judge_min": "optieval.stats.verdict",
    "look_plan": "optieval.stats.sequential",
    "mean_ci_batch_means": "optieval.stats.means",
    "interleaved_ratio_ci": "optieval.stats.ratios",
    "median_ratio_ci": "optieval.stats.ratios",
    "pairs_to_decide": "optieval.stats.ratios",
    "min_samples_for_mean": "optieval.stats.means",
    "min_samples_for_percentiles": "optieval.stats.quantiles",
    "min_samples_for_quantile": "optieval.stats.quantiles",
    "min_samples_for_upper_bound": "optieval.stats.quantiles",
    "nearest_rank": "optieval.stats.quantiles",
    "order_statistic_ranks": "optieval.stats.quantiles",
    "paired_difference_interval": "optieval.stats.proportions",
    "paired_ratio_interval": "optieval.stats.proportions",
    "percentile_interval": "optieval.stats.bootstrap",
    "percentile_label": "optieval.stats.quantiles",
    "quantile_bounds": "optieval.stats.quantiles",
    "rank_autocorrelation_time": "optieval.stats.dependence",
    "quantile_ci": "optieval.stats.quantiles",
    "quantile_lower_bound": "optieval.stats.quantiles",
    "samples_to_decide_quantile": "optieval.stats.sequential",
    "should_stop": "optieval.stats.stopping",
    "stability_check": "optieval.stats.stability",
    "summarize": "optieval.stats.summary",
    "throughput_estimate": "optieval.stats.means",
    "wilson_interval": "optieval.stats.proportions",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
