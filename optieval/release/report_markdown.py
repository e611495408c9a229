"""``report.md``: the gate's verdict and one row per check, fit for a pull-request comment.

Every user-supplied string is made safe for a Markdown table: pipes and newlines neutralised.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from optieval.release.evidence import (
    budget_text,
    interval_text,
    ordered_checks,
    value_text,
)
from optieval.release.placement import hardware_lines
from optieval.stats import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from optieval.release.gate_report import GateReport

__all__ = ["render_markdown"]


def _md(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: GateReport) -> str:
    """A summary for a pull-request comment: the verdict, then one row per check."""
    icon = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️"}
    model = report.model.get("path") or report.model.get("spec") or "model"
    lines = [
        f"## optieval gate: {icon[report.verdict.value]} {report.verdict.value}",
        "",
        f"{_md(report.summary)} · model `{_md(Path(str(model)).name)}` · exit code "
        f"{report.exit_code}",
        "",
        "| verdict | check | value | 95% interval | budget |",
        "| --- | --- | --- | --- | --- |",
    ]
    for check in ordered_checks(report.checks):
        lines.append(
            f"| {icon[check.verdict.value]} {check.verdict.value} | {_md(check.name)} | "
            f"{value_text(check)} | {interval_text(check)} | {budget_text(check)} |"
        )
    notes = [c for c in ordered_checks(report.checks) if c.verdict is not Verdict.PASS]
    if notes:
        lines += ["", "**Evidence**", ""]
        lines += [f"- {_md(c.name)}: {_md(c.evidence)}" for c in notes]
    hardware = hardware_lines(report.cells)
    if hardware:
        lines += ["", "**Hardware**", ""]
        lines += [f"- {_md(line)}" for line in hardware]
    if report.warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {_md(w)}" for w in report.warnings]
    lines += [
        "",
        "Intervals are 95% and distribution-free for latency percentiles; a check passes only "
        "when its whole interval is within the budget. Details: `report.html`, `report.json`.",
        "",
    ]
    return "\n".join(lines)
