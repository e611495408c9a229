"""``optieval show``: a bench JSON, compare JSON or gate report rendered as the table that
produced it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console, err_console
from optieval.cli.flags import to_flags


def show(
    file: Annotated[
        Path,
        typer.Argument(
            help="A bench JSON, compare JSON, gate report.json (or the gate's report folder)."
        ),
    ],
) -> None:
    """Show a result file written by bench, compare or gate as the table that produced it."""
    from optieval.cli.render.readback import show_renderables
    from optieval.release import read_result

    renderables, notes = show_renderables(read_result(file))
    for renderable in renderables:
        console.print(renderable, highlight=False)
    for line in notes:
        err_console.print(to_flags(line), highlight=False, soft_wrap=True, markup=False)
