"""How the gate's reports show a check: its bound (``n/a``, ``inf``, 4 significant digits), its
interval, its budget, and the order checks are listed in (failures first).

``report.md``, ``report.html`` and the terminal table (``optieval gate``) all print checks this
way, so a number reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from optieval.release.budgets import Check
from optieval.stats import Verdict

__all__ = [
    "VERDICT_COLOURS",
    "budget_text",
    "format_bound",
    "interval_text",
    "ordered_checks",
    "value_text",
]

_SIZE_KEYS = frozenset({"memory_mb_max", "artifact_mb_max"})
"""Budgets in MiB: their values and budgets print as sizes (``13.5 MiB``, optieval.core)."""

VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}
"""The colour of each verdict in the HTML report and its plots."""


def format_bound(x: float | None) -> str:
    """A value or bound as the reports print it: ``n/a`` for None, ``inf``/``-inf``, else 4
    significant digits."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def interval_text(check: Check) -> str:
    """``[low, high]`` of the check's interval, ``point`` for a point check, or ``no interval``
    when a bound is missing."""
    j = check.judgement
    if j.basis == "point":
        return "point"
    if j.low is None or j.high is None:
        return "no interval"
    return f"[{format_bound(j.low)}, {format_bound(j.high)}]"


def value_text(check: Check) -> str:
    """The check's value: a size for a size budget (``3.92 MiB``), else :func:`format_bound`."""
    value = check.judgement.value
    if check.key in _SIZE_KEYS and value is not None and math.isfinite(value):
        from optieval.core import format_mib

        return format_mib(value)
    return format_bound(value)


def budget_text(check: Check) -> str:
    """The check's budget: ``≤ 5`` for a maximum, ``≥ 0.99`` for a minimum, ``≤ 100 MiB`` for
    a size."""
    j = check.judgement
    if check.key in _SIZE_KEYS:
        from optieval.core import format_mib

        return f"{'≤' if j.kind == 'max' else '≥'} {format_mib(j.budget)}"
    return f"{'≤' if j.kind == 'max' else '≥'} {j.budget:g}"


def ordered_checks(checks: Iterable[Check]) -> list[Check]:
    """Failures first, then inconclusive checks, then passes (stable within each)."""
    rank = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}
    return sorted(checks, key=lambda c: rank[c.verdict])
