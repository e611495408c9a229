"""The gate's per-sample accuracy budgets (:class:`PerSampleBudget`): judgements on one
output's per-sample metrics (:mod:`optieval.parity.sample_metrics`). The config builds every
accuracy budget through :func:`accuracy_budget`, which picks this class for these keys.

==========================  ===================================================================
key                         decided on
==========================  ===================================================================
``cosine_min``              the worst sample's cosine with the reference: FAIL when any
                            evaluated sample is under the budget (a fact about these samples,
                            listed), PASS when none is; the evidence bounds the share of such
                            inputs that could still fall under it (one-sided exact binomial)
``cosine_mean_min``         mean per-sample cosine, percentile-bootstrap interval
``cosine_p1_min``,          the 1st / 5th percentile of per-sample cosine, distribution-free
``cosine_p5_min``           order-statistic interval (299 / 59 samples needed at 95%)
``knn_agreement_min``       nearest-neighbour agreement of an embedding (recall@k), bootstrap
``rel_error_p95_max``       95th percentile of a regression output's per-sample relative error,
                            order-statistic interval
==========================  ===================================================================

The interval keys follow the shared rule (:func:`optieval.stats.judge`): PASS when the whole
interval is within the budget, FAIL when it is wholly outside, INCONCLUSIVE otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from optieval.release.budgets import AccuracyBudget, samples_to_decide, unmeasured
from optieval.stats import Judgement, Kind, Verdict, clopper_pearson_interval, judge

SAMPLE_KEYS = frozenset(
    {"cosine_min", "cosine_mean_min", "cosine_p1_min", "cosine_p5_min", "knn_agreement_min",
     "rel_error_p95_max"}
)  # fmt: skip
"""Per-sample accuracy budgets (described in ``ACCURACY_KEYS``)."""

_PERCENTILE_NEEDS = {1.0: 299, 5.0: 59, 95.0: 59}


def applies_to_sample_key(key: str, output: Any) -> bool:
    """True when ``output`` (an ``OutputParity``) has the metric of per-sample ``key``."""
    if key == "knn_agreement_min":
        return output.neighbours is not None
    if key == "rel_error_p95_max":
        return output.errors is not None
    return output.cosine_per_sample is not None


def _worst_cosine(key: str, limit: float, cos: Any) -> Judgement:
    n = int(cos.samples)
    below = [(i, v) for i, v in cos.worst if v < limit]
    if below:
        listed = ", ".join(f"#{i} {v:.6f}" for i, v in below)
        more = "at least " if len(below) == len(cos.worst) else ""
        evidence = (f"worst sample's cosine = {cos.min:.6f} of {n} samples: {more}{len(below)} "
                    f"under the budget ({listed}); budget >= {limit:g}")  # fmt: skip
        return Judgement("cosine", "min", limit, Verdict.FAIL, "point", float(cos.min), None,
                         None, None, evidence)  # fmt: skip
    bound = clopper_pearson_interval(0, n, 0.95).high
    evidence = (f"worst sample's cosine = {cos.min:.6f}: all {n} samples meet the budget "
                f">= {limit:g}; at most {bound:.2%} of such inputs fall below it (one-sided "
                "97.5%, exact binomial)")  # fmt: skip
    return Judgement("cosine", "min", limit, Verdict.PASS, "point", float(cos.min), None, None,
                     None, evidence)  # fmt: skip


def judge_sample_key(
    key: str, limit: float, output: Any, samples: int
) -> tuple[Judgement, str | None]:
    """Judge per-sample ``key`` (one of :data:`SAMPLE_KEYS`) against ``limit`` on ``output``
    (an ``OutputParity``) evaluated on ``samples`` samples; the advice is for INCONCLUSIVE."""
    metric, _, side = key.rpartition("_")
    kind: Kind = "max" if side == "max" else "min"
    if not applies_to_sample_key(key, output):
        return unmeasured(metric, kind, limit, "the output's kind has no such metric"), None
    if key == "cosine_min":
        return _worst_cosine(key, limit, output.cosine_per_sample), None
    value: float | None
    low = high = confidence = None
    needs: int | None = None
    if key == "cosine_mean_min":
        cos = output.cosine_per_sample
        value, ci = cos.mean, cos.mean_ci
    elif key == "knn_agreement_min":
        nb = output.neighbours
        value, ci = nb.agreement, nb.agreement_ci
        metric = f"knn_agreement@{nb.k}"
    else:
        pct = 95.0 if key == "rel_error_p95_max" else float(key.split("_p")[1].split("_")[0])
        pool = (output.errors.rel_percentiles if key == "rel_error_p95_max"
                else output.cosine_per_sample.percentiles)  # fmt: skip
        found = next((p for p in pool if p.percentile == pct), None)
        if found is None:
            return unmeasured(metric, kind, limit, f"p{pct:g} not reported"), None
        value, ci, needs = found.value, found.interval, _PERCENTILE_NEEDS.get(pct)
    if ci is not None:
        low, high, confidence = ci.low, ci.high, ci.confidence
    if value is not None and not math.isfinite(value):
        return judge(metric, kind, limit, value=value, basis="point"), None
    judgement = judge(metric, kind, limit, value=value, low=low, high=high,
                      confidence=confidence)  # fmt: skip
    advice: str | None = None
    if judgement.verdict is Verdict.INCONCLUSIVE:
        if low is None or high is None:
            advice = f"an interval needs at least {needs or 2} evaluation samples (now {samples})"
        elif value is not None:
            advice = samples_to_decide(value, low, high, limit, samples,
                                       what="evaluation samples")  # fmt: skip
    return judgement, advice


@dataclass(frozen=True)
class PerSampleBudget(AccuracyBudget):
    """An accuracy budget on a per-sample metric (one of :data:`SAMPLE_KEYS`)."""

    def applies_to(self, output: Any) -> bool:
        """True when ``output`` has this budget's metric (``knn_agreement_min`` needs an
        embedding, ``rel_error_p95_max`` a regression output, the cosine keys a float one)."""
        return applies_to_sample_key(self.key, output)

    def _judge(self, out: Any, samples: int) -> tuple[Judgement, str | None]:
        return judge_sample_key(self.key, self.limit, out, samples)


def accuracy_budget(key: str, limit: float) -> AccuracyBudget:
    """The budget object for accuracy ``key``: a :class:`PerSampleBudget` for the per-sample
    keys, an :class:`~optieval.release.budgets.AccuracyBudget` otherwise."""
    if key in SAMPLE_KEYS:
        return PerSampleBudget(key, limit)
    return AccuracyBudget(key, limit)


__all__ = [
    "SAMPLE_KEYS",
    "PerSampleBudget",
    "accuracy_budget",
    "applies_to_sample_key",
    "judge_sample_key",
]
