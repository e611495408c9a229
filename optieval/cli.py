"""The ``optieval`` command line: parse options, call the Python API, render, map errors to exit
codes (DESIGN.md). No logic of its own lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from optieval.errors import InputError, OptievalError

console = Console()
err_console = Console(stderr=True)


class _OptievalGroup(TyperGroup):
    """Maps :class:`OptievalError` to one line on stderr and its exit code (traceback with
    ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OptievalError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise click.exceptions.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_OptievalGroup,
    name="optieval",
    help="Export, convert, benchmark, compare and gate ML models for release.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


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
        from optieval.files import write_json_atomic

        write_json_atomic(path, payload)
        err_console.print(f"wrote {path}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="optieval")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
