"""Progress displays on stderr: a bar with the count of cells (or gate steps) done out of a fixed
total and an estimate of the time left, and a spinner with the elapsed time for one long step
(export, conversion and calibration, a build). Each finished cell or step is recorded for the
line an interrupt prints (:mod:`optieval.cli.stopping`); off a terminal, or with
``--verbose``, each also gets a line of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from optieval.cli.console import VERBOSE, err_console, verbosity
from optieval.cli.stopping import record_finished


class EtaColumn(ProgressColumn):
    """``ETA 0:42``: the time left at the mean pace of the steps done so far, counting down
    between steps (rich's own estimate needs two steps inside a 30 s window; cells are slower)."""

    def render(self, task: Task) -> Text:
        """The estimate, or ``ETA -:--`` before the first step is done."""
        import time

        started = task.fields.get("counting_since")
        last = task.fields.get("last_done")
        if not task.total or not task.completed or started is None or last is None:
            return Text("ETA -:--", style="progress.remaining")
        pace = (last - started) / task.completed
        left = max(pace * (task.total - task.completed) - (time.monotonic() - last), 0.0)
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        return Text(f"ETA {text}", style="progress.remaining")


def _bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        EtaColumn(),
        console=console,
        transient=True,
    )


@dataclass(frozen=True)
class CellProgress:
    """The callbacks of :func:`optieval.benchmark`: ``on_start(total)`` and ``on_cell(cell)``."""

    on_start: Callable[[int], None]
    on_cell: Callable[[Any], None]


@contextlib.contextmanager
def cell_progress(label: str) -> Iterator[CellProgress]:
    """A bar of cells done out of the run's total, with the time left; yields the callbacks."""
    import time

    display = _bar(err_console)
    with display:
        task = display.add_task(f"{label}: preparing", total=None, counting_since=None)

        def on_start(total: int) -> None:
            display.update(task, total=total, description=f"{label}: measuring",
                           counting_since=time.monotonic())  # fmt: skip

        def on_cell(cell: Any) -> None:
            text = f"{cell.label} {cell.status}"
            total = display.tasks[0].total
            record_finished(text, int(total) if total else None, again=True)
            display.update(task, advance=1, description=escape(f"{label}: {text}"),
                           last_done=time.monotonic())  # fmt: skip
            if verbosity() >= VERBOSE or not err_console.is_terminal:
                p50 = (cell.latency_ms or {}).get("p50")
                done = f", p50 {p50:.4g} ms over {cell.samples} samples" if p50 else ""
                count = display.tasks[0]
                display.console.print(
                    f"[{int(count.completed)}/{int(count.total or 0)}] {label}: {text}{done}",
                    highlight=False,
                    markup=False,
                )

        yield CellProgress(on_start, on_cell)


@contextlib.contextmanager
def gate_progress(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    """A bar of the gate's steps (each measured cell is one) with the time left; yields the
    ``progress(message, done, total)`` callback :func:`optieval.gate` takes."""
    display = _bar(console)
    with display:
        import time

        task = display.add_task("gate: reading the config", total=None,
                                counting_since=time.monotonic())  # fmt: skip
        seen: set[str] = set()
        counted = [0]
        verbose = verbosity() >= VERBOSE

        def update(message: str, done: int, total: int) -> None:
            if done > counted[0]:  # a counted step: it has finished
                counted[0] = done
                record_finished(message, total)
                display.update(task, last_done=time.monotonic())
            display.update(task, description=escape(message), completed=done, total=total)
            if (not console.is_terminal or verbose) and message not in seen:
                # Off a terminal (CI logs) the bar does not redraw: keep a line per step.
                seen.add(message)
                console.print(f"[{done}/{total}] {message}", markup=False, highlight=False)

        yield update


@contextlib.contextmanager
def step_progress(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the elapsed time while one long step runs (``export: exporting ...``);
    the step is recorded as finished when the block ends without an exception. Yields a
    callback that shows the stage the step is in beside its message."""
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with display:
        task = display.add_task(escape(message), total=None)

        def stage(text: str) -> None:
            display.update(task, description=escape(f"{message}: {text}"))

        yield stage
    record_finished(message)
