"""How the gate decides a latency percentile: on one-sided order-statistic bounds, each erring
at most ``alpha / 2`` (docs/guides/gate.md, "How a check is decided"), and what it says about
the decision: the bound it used, the samples, and for an undecided check about how many more
samples would decide it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from optieval.stats import Judgement, Kind, Verdict, confidence_text, judge

__all__ = ["SHOWN_TAU", "percentile_decision"]

SHOWN_TAU = 1.5
"""An autocorrelation time from which the evidence says that the samples were correlated."""


def percentile_decision(
    metric: str, kind: Kind, limit: float, q: float, times: Sequence[float], confidence: float
) -> tuple[Judgement, str | None, dict[str, Any]]:
    """Decide the q-quantile of ``times`` against ``limit``: PASS when the one-sided upper
    bound is within it, FAIL when the one-sided lower bound is over it (each bound errs at most
    ``(1 - confidence) / 2``), INCONCLUSIVE otherwise. The lower bound exists from a handful of
    samples, so a slow model far over its budget FAILs without the hundreds of samples a PASS
    needs.

    Returns:
        ``(judgement, advice, decision)``: advice (INCONCLUSIVE only) says about how many
        samples would decide it; ``decision`` holds ``bound``, ``samples`` and
        ``samples_to_decide``.
    """
    from optieval.stats import (
        min_samples_for_upper_bound,
        nearest_rank,
        quantile_bounds,
        rank_autocorrelation_time,
        samples_to_decide_quantile,
    )

    n = len(times)
    rank = nearest_rank(n, q)
    value = float(np.partition(np.asarray(times, dtype=np.float64), rank - 1)[rank - 1])
    tau = rank_autocorrelation_time(times)
    lower, upper = quantile_bounds(times, q, confidence, tau=tau)
    low = None if lower is None else lower[0]
    high = None if upper is None else upper[0]
    judgement = judge(metric, kind, limit, value=value, low=low, high=high, confidence=confidence)
    side = confidence_text(1.0 - (1.0 - confidence) / 2.0)
    sign = "<=" if kind == "max" else ">="
    need_upper = math.ceil(min_samples_for_upper_bound(q, (1.0 - confidence) / 2.0) * tau)

    def bound(name: str, b: tuple[float, int] | None, need: str) -> str:
        return f"{name} {need}" if b is None else f"{name} {b[0]:.4g} (x({b[1]}) of {n})"

    text = (
        f"{metric} = {value:.4g} from {n} samples; one-sided {side} bounds: "
        + bound("lower", lower, "none (too few samples)")
        + ", "
        + bound("upper", upper, f"none (needs {need_upper} samples)")
        + f"; budget {sign} {limit:g}"
    )
    if tau >= SHOWN_TAU:
        text += (
            f" (successive samples are correlated: autocorrelation time {tau:.3g}, so the "
            f"{n} count as {math.floor(n / tau)} independent ones)"
        )
    decision: dict[str, Any] = {
        "bound": None,
        "samples": n,
        "samples_to_decide": None,
        "autocorrelation_time": tau,
    }
    advice: str | None = None
    if judgement.verdict is Verdict.PASS:
        text += ": the upper bound is within the budget"
        decision["bound"] = "upper"
    elif judgement.verdict is Verdict.FAIL:
        text += ": even the lower bound is over the budget"
        decision["bound"] = "lower"
    else:
        text += ": the bounds straddle the budget" if upper else ": no upper bound yet"
        more = samples_to_decide_quantile(times, q, limit, confidence, tau=tau)
        decision["samples_to_decide"] = more
        if more is None:
            advice = (
                "the estimate sits on the budget: no feasible number of samples decides it; "
                "move the budget or change the model"
            )
        else:
            advice = f"about {more} samples (now {n}) would likely decide it"
    return replace(judgement, evidence=text), advice, decision
