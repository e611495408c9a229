"""Rich renderings of a gate run for the terminal: a progress bar fed by the gate's progress
callback, and the verdict table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from optieval.cli.console import VERBOSE, verbosity
from optieval.release import budget_text, interval_text, ordered_checks
from optieval.stats import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from optieval.release import GateReport, Progress

_STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.INCONCLUSIVE: "bold yellow"}


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


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
            _num(check.judgement.value),
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


@contextlib.contextmanager
def gate_progress(console: Console) -> Iterator[Progress]:
    """A progress bar on ``console``; yields the callback :func:`optieval.gate` takes."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    display = Progress(
        SpinnerColumn(),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with display:
        task = display.add_task("gate: reading the config", total=None)
        seen: set[str] = set()
        counted = [0]
        verbose = verbosity() >= VERBOSE

        def update(message: str, done: int, total: int) -> None:
            if done > counted[0]:  # a counted step: it has finished
                from optieval.cli.stopping import record_finished

                counted[0] = done
                record_finished(message, total)
            display.update(task, description=escape(message), completed=done, total=total)
            if (not console.is_terminal or verbose) and message not in seen:
                # Off a terminal (CI logs) the bar does not redraw: keep a line per step.
                seen.add(message)
                console.print(f"[{done}/{total}] {message}", markup=False, highlight=False)

        yield update
