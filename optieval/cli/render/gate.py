"""Rich renderings of a gate run for the terminal: a progress bar fed by the gate's progress
callback, and the verdict table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from optieval.release import budget_text, interval_text, ordered_checks, value_text
from optieval.stats import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from optieval.release import GateReport

_STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.INCONCLUSIVE: "bold yellow"}


def gate_table(report: GateReport) -> Table:
    """One row per check, failures first: verdict, check, value, 95% interval, budget."""
    table = Table(title="optieval gate", title_justify="left")
    table.add_column("verdict", no_wrap=True)
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("budget", justify="right", no_wrap=True)
    for check in ordered_checks(report.checks):
        table.add_row(
            Text(check.verdict.value, style=_STYLE[check.verdict]),
            Text(check.name),
            value_text(check),
            interval_text(check),
            budget_text(check),
        )
    return table


def verdict_line(report: GateReport) -> Text:
    """``FAIL: 12 checks, 11 passed, 1 failed, 0 inconclusive (exit 1)``."""
    text = Text(report.verdict.value, style=_STYLE[report.verdict])
    rest = report.summary.split(":", 1)[1]
    text.append(f":{rest} (exit {report.exit_code})")
    return text


def evidence_lines(report: GateReport, *, every: bool = False) -> list[str]:
    """The evidence of every check that did not pass (of every check with ``every``; plain
    text, for stderr)."""
    return [
        f"{c.verdict.value} {c.name}: {c.evidence}"
        for c in report.checks
        if every or c.verdict is not Verdict.PASS
    ]
