"""Option handling shared by the commands: repeated and comma-separated lists, ``--json FILE``,
the cell executor of ``--executor`` and the progress display of a cell sweep."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from optieval.cli.console import err_console
from optieval.errors import InputError


def split_list(values: list[str] | None, option: str) -> list[str]:
    """Split repeated and comma-separated option values (``--batch 1,8 --batch 32``)."""
    items: list[str] = []
    for value in values or []:
        items.extend(v.strip() for v in value.split(",") if v.strip())
    return items


def parse_int_list(values: list[str] | None, option: str) -> list[int]:
    """Parse ``--batch 1,8,32`` into ints > 0, InputError naming the option otherwise."""
    result = []
    for item in split_list(values, option):
        try:
            number = int(item)
        except ValueError:
            raise InputError(f"{item!r} is not an integer", where=option) from None
        if number < 1:
            raise InputError(f"{number} must be at least 1", where=option)
        result.append(number)
    return result


def write_json_output(path: Path | None, payload: dict[str, Any]) -> None:
    """Write a result's JSON to ``--json FILE`` atomically (no-op without the option)."""
    if path is not None:
        from optieval.core import write_json_atomic

        write_json_atomic(path, payload)
        err_console.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


def cell_executor(name: str, ray_address: str | None) -> Any:
    """A context manager giving the cell executor for ``--executor`` (None for local: the
    command's own path) and closing it after."""
    from optieval.execution import create_executor

    executor = create_executor(name, ray_address=ray_address)
    if executor.name == "local":
        return contextlib.nullcontext(None)
    return executor


@contextlib.contextmanager
def cell_progress(label: str) -> Iterator[Callable[[Any], None]]:
    """A rich progress display on stderr; yields the ``on_cell`` callback that shows each
    finished cell."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"{label}: measuring", total=None)

        def on_cell(cell: Any) -> None:
            progress.update(task, description=f"{label}: {cell.label} {cell.status}")

        yield on_cell
