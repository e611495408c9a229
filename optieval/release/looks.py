"""The sequential looks of a gate cell (docs/design.md, "Sequential verdicts"): how long a cell
has measured, how a later look's samples join the earlier ones, and what a latency check says
about the look that decided it."""

from __future__ import annotations

import math
from dataclasses import replace

from optieval.bench import Cell
from optieval.release.budgets import Check, LatencyBudget
from optieval.stats import LookPlan, Verdict

__all__ = ["elapsed_s", "fixed_sample", "pooled", "with_looks"]


def elapsed_s(cell: Cell, plan: LookPlan, look: int) -> float:
    """Seconds measured so far: the timed loops' own clocks (``options["measured_s"]``, summed
    over the looks), else the latencies' sum; never past the look's time."""
    measured = (cell.options or {}).get("measured_s")
    seconds = float(measured) if measured is not None else sum(cell.times_ms) / 1000.0
    return min(seconds, plan.durations_s[look - 1])


def pooled(old: Cell, new: Cell, look: int, plan: LookPlan) -> Cell:
    """``new`` with ``old``'s samples before its own, summaries recomputed from all of them:
    a later look adds to the earlier ones."""
    from optieval.stats import summarize

    times = [*old.times_ms, *new.times_ms]
    single = new.scenario in (None, "single-stream")
    stats = summarize(times, batch=int(new.batch)).to_json()
    why = (
        "correlated samples: the first look needs more before it is judged"
        if look == 1
        else "an interval check was inconclusive"
    )
    added, before = len(new.times_ms), len(old.times_ms)
    note = f"look {look} of {plan.looks}: added {added} samples to {before} ({why})"
    earlier = [n for n in old.notes if n not in new.notes]
    return replace(
        new,
        samples=len(times),
        times_ms=times,
        latency_ms=stats["latency_ms"],
        ci95_ms=stats["ci95_ms"],
        throughput=stats["throughput"] if single else new.throughput,
        stability=stats["stability"],
        cold_start_ms=old.cold_start_ms,
        options={**new.options, "measured_s": _measured(old) + _measured(new)},
        notes=[*earlier, *new.notes, note],
    )


def with_looks(
    check: Check, budget: LatencyBudget, look: int, plan: LookPlan, max_duration_s: float
) -> Check:
    """Add to a latency check how the sequential design decided it: which look, of how many,
    at what per-look confidence, whether it stopped early, and, when it stayed undecided
    at the cap, that ``max_duration_s`` was too short (evidence, not an error)."""
    from optieval.stats import confidence_text

    if not budget.has_interval or check.error or check.decision is None:
        return check
    n = check.decision.get("samples")
    looks = (
        f"look {look} of {plan.looks}, {n} samples, each look at "
        f"{confidence_text(plan.look_confidence)} ({confidence_text(plan.confidence)} overall)"
    )
    decided = check.verdict is not Verdict.INCONCLUSIVE
    if decided:
        text = f"decided at {looks}" + (", stopped early" if look < plan.looks else "")
    else:
        text = f"undecided after {looks}"
        more = check.decision.get("samples_to_decide")
        if look >= plan.looks and isinstance(more, int) and isinstance(n, int) and n > 0:
            text += (
                f"; `max_duration_s` {max_duration_s:g} s was too short to decide it: about "
                f"{more} samples would, roughly {max_duration_s * more / n:.3g} s"
            )
    decision = {
        **check.decision,
        "look": look,
        "looks": plan.looks,
        "look_confidence": plan.look_confidence,
        "stopped_early": decided and look < plan.looks,
    }
    judgement = replace(check.judgement, evidence=f"{check.judgement.evidence}; {text}")
    return replace(check, judgement=judgement, decision=decision)


def _measured(cell: Cell) -> float:
    measured = (cell.options or {}).get("measured_s")
    return float(measured) if measured is not None else sum(cell.times_ms) / 1000.0


def fixed_sample(check: Check, samples: int) -> Check:
    """Add how a check on fixed data (accuracy, detection, the baseline ratio) was decided:
    one look at the full confidence, the bound that decided it, and for an INCONCLUSIVE one the
    count at which an interval of this shape, shrinking as ``1 / sqrt(n)``, would clear the
    budget (the same figure as its advice)."""
    j = check.judgement
    if j.basis != "interval" or check.error or check.decision is not None:
        return check
    bound = None
    if j.verdict is Verdict.PASS:
        bound = "upper" if j.kind == "max" else "lower"
    elif j.verdict is Verdict.FAIL:
        bound = "lower" if j.kind == "max" else "upper"
    more = None
    if j.verdict is Verdict.INCONCLUSIVE and None not in (j.value, j.low, j.high) and samples:
        assert j.value is not None and j.low is not None and j.high is not None
        gap, half = abs(j.value - j.budget), max(j.high - j.value, j.value - j.low)
        if gap > 0.0 and half > 0.0:
            more = math.ceil(samples * (half / gap) ** 2)
    decision = {"bound": bound, "samples": samples, "samples_to_decide": more, "look": 1,
                "looks": 1, "look_confidence": j.confidence, "stopped_early": False}  # fmt: skip
    return replace(check, decision=decision)
