"""The rule every gated check shares: an interval against a budget.

* A metric with a confidence interval passes when the **whole interval** is within the budget,
  fails when the whole interval is outside it, and is INCONCLUSIVE otherwise (more samples or
  more data would decide it). Boundaries count as within: ``high == budget`` passes a ``_max``
  budget.
* A metric without an interval (cold start, max abs error, cosine) is compared as a **point**,
  and the result says so (``basis="point"``), so nobody mistakes it for a statistical verdict.

A two-sided 95% interval used this way decides each direction at 97.5% one-sided confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from optieval.errors import InputError

Kind = Literal["max", "min"]
Basis = Literal["interval", "point"]


class Verdict(str, Enum):
    """Outcome of one check (a ``str`` subclass: compares equal to its value)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


def _number(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    out = float(value)
    if math.isnan(out):
        raise InputError(f"{name} is NaN", where=name)
    return out


def _budget(budget: float) -> float:
    out = _number(budget, "budget")
    if out is None or not math.isfinite(out):
        raise InputError(f"budget {budget!r} is not a finite number", where="budget")
    return out


def _bounds(low: float | None, high: float | None) -> tuple[float | None, float | None]:
    lo, hi = _number(low, "low"), _number(high, "high")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"interval [{lo}, {hi}] has low > high", where="interval")
    return lo, hi


def judge_max(low: float | None, high: float | None, budget: float) -> Verdict:
    """Judge an interval against an upper budget (``p99_ms_max``, ``flip_rate_max``).

    Args:
        low, high: the interval; either may be None when that side is unknown (an unsupported
            percentile has both None).
        budget: the largest allowed value.

    Returns:
        PASS when ``high <= budget``; FAIL when ``low > budget``; else INCONCLUSIVE.

    Raises:
        InputError: NaN, a non-finite budget, or low > high.
    """
    lo, hi = _bounds(low, high)
    limit = _budget(budget)
    if hi is not None and hi <= limit:
        return Verdict.PASS
    if lo is not None and lo > limit:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE


def judge_min(low: float | None, high: float | None, budget: float) -> Verdict:
    """Judge an interval against a lower budget (``throughput_min``, ``top1_agreement_min``).

    Returns:
        PASS when ``low >= budget``; FAIL when ``high < budget``; else INCONCLUSIVE. Arguments
        and errors as :func:`judge_max`.
    """
    lo, hi = _bounds(low, high)
    limit = _budget(budget)
    if lo is not None and lo >= limit:
        return Verdict.PASS
    if hi is not None and hi < limit:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE


def judge_point_max(value: float, budget: float) -> Verdict:
    """PASS when ``value <= budget``, else FAIL (a point: never INCONCLUSIVE).

    Raises:
        InputError: NaN value or a non-finite budget.
    """
    v = _number(value, "value")
    return Verdict.PASS if v is not None and v <= _budget(budget) else Verdict.FAIL


def judge_point_min(value: float, budget: float) -> Verdict:
    """PASS when ``value >= budget``, else FAIL (a point: never INCONCLUSIVE)."""
    v = _number(value, "value")
    return Verdict.PASS if v is not None and v >= _budget(budget) else Verdict.FAIL


@dataclass(frozen=True)
class Judgement:
    """A verdict with its evidence.

    Attributes:
        metric: the budget's metric (``"p99_ms"``).
        kind: ``"max"`` or ``"min"``.
        budget: the limit.
        verdict: :class:`Verdict`.
        basis: ``"interval"`` or ``"point"``.
        value: the point estimate (None if none).
        low, high: the interval (None on a point basis or when unsupported).
        confidence: the interval's confidence (None on a point basis).
        evidence: one sentence for reports.
    """

    metric: str
    kind: Kind
    budget: float
    verdict: Verdict
    basis: Basis
    value: float | None
    low: float | None
    high: float | None
    confidence: float | None
    evidence: str

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "metric": self.metric,
            "kind": self.kind,
            "budget": self.budget,
            "verdict": self.verdict.value,
            "basis": self.basis,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Judgement:
        """Rebuild from :meth:`to_json` output."""
        try:
            kind = str(data["kind"])
            basis = str(data["basis"])
            if kind not in ("max", "min") or basis not in ("interval", "point"):
                raise ValueError(f"kind {kind!r} / basis {basis!r}")

            def opt(key: str) -> float | None:
                return None if data.get(key) is None else float(data[key])

            return cls(
                metric=str(data["metric"]),
                kind=kind,  # type: ignore[arg-type]
                budget=float(data["budget"]),
                verdict=Verdict(data["verdict"]),
                basis=basis,  # type: ignore[arg-type]
                value=opt("value"),
                low=opt("low"),
                high=opt("high"),
                confidence=opt("confidence"),
                evidence=str(data["evidence"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed check ({exc})", where="checks") from exc


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def confidence_text(confidence: float) -> str:
    """The confidence as evidence prints it: 0.95 -> ``"95%"``, 0.975 -> ``"97.5%"``,
    0.999 -> ``"99.9%"`` (never rounded to a level that was not asked for)."""
    return f"{round(float(confidence) * 100.0, 6):g}%"


def judge(
    metric: str,
    kind: Kind,
    budget: float,
    *,
    value: float | None = None,
    low: float | None = None,
    high: float | None = None,
    confidence: float | None = None,
    basis: Basis = "interval",
) -> Judgement:
    """Judge one metric against one budget and write the evidence.

    Args:
        metric: the metric's name (``"p99_ms"``).
        kind: ``"max"`` (value must stay at or under the budget) or ``"min"``.
        budget: the limit.
        value: the point estimate.
        low, high: the interval (``basis="interval"``); None when the samples could not support
            one (then INCONCLUSIVE unless the known side decides).
        confidence: the interval's confidence, for the evidence text.
        basis: ``"interval"`` or ``"point"``; a point basis compares ``value`` alone.

    Raises:
        InputError: bad kind/basis, NaN, low > high, or a point basis without a value.
    """
    if kind not in ("max", "min"):
        raise InputError(f"kind {kind!r} is not 'max' or 'min'", where=metric)
    sign = "<=" if kind == "max" else ">="
    if basis == "point":
        if value is None:
            raise InputError("a point check needs a value", where=metric)
        verdict = (judge_point_max if kind == "max" else judge_point_min)(value, budget)
        evidence = f"{metric} = {_fmt(value)} (point, no interval); budget {sign} {budget:g}"
        return Judgement(
            metric, kind, float(budget), verdict, "point", float(value), None, None, None, evidence
        )
    if basis != "interval":
        raise InputError(f"basis {basis!r} is not 'interval' or 'point'", where=metric)
    verdict = (judge_max if kind == "max" else judge_min)(low, high, budget)
    level = "" if confidence is None else f"{confidence_text(confidence)} "
    if low is None and high is None:
        evidence = (
            f"{metric} = {_fmt(value)} with no {level}interval (too few samples); "
            f"budget {sign} {budget:g}"
        )
    else:
        evidence = (
            f"{metric} = {_fmt(value)}, {level}interval [{_fmt(low)}, {_fmt(high)}]; "
            f"budget {sign} {budget:g}"
        )
        if verdict is Verdict.INCONCLUSIVE:
            evidence += ": the interval straddles the budget"
    return Judgement(
        metric,
        kind,
        float(budget),
        verdict,
        "interval",
        None if value is None else float(value),
        None if low is None else float(low),
        None if high is None else float(high),
        None if confidence is None else float(confidence),
        evidence,
    )


__all__ = [
    "Basis",
    "Judgement",
    "Kind",
    "Verdict",
    "confidence_text",
    "judge",
    "judge_max",
    "judge_min",
    "judge_point_max",
    "judge_point_min",
]
