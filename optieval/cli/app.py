"""The ``optieval`` command line: the Typer app, the error mapping every command shares
(``OptievalError`` -> one line and its exit code; anything else -> exit 4 with the traceback
saved), ``--version``, ``--debug``, and the registration of the commands, one module each in
:mod:`optieval.cli.commands`. Commands parse options, call the Python API, render, and exit
(docs/design.md); no logic of its own lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from optieval.cli.commands.bench import bench
from optieval.cli.commands.build import build
from optieval.cli.commands.compare import compare_command
from optieval.cli.commands.convert import convert
from optieval.cli.commands.demo import demo
from optieval.cli.commands.diff import diff
from optieval.cli.commands.doctor import doctor
from optieval.cli.commands.export import export_command
from optieval.cli.commands.gate import gate
from optieval.cli.commands.inspect import inspect
from optieval.cli.commands.show import show
from optieval.cli.console import (
    NORMAL,
    QUIET,
    VERBOSE,
    always_shown,
    err_console,
    reset_human_output,
    set_verbosity,
)
from optieval.cli.flags import error_line
from optieval.errors import InputError, InternalError, OptievalError
from optieval.version import __version__


def print_error(exc: OptievalError) -> None:
    """One line on stderr (also under ``--quiet``): what, where (as the flag the user typed),
    and a hint."""
    with always_shown():
        err_console.print(
            f"[bold red]error:[/] {escape(error_line(exc))}",
            highlight=False,
            soft_wrap=True,
            emoji=False,  # "x:one:..." in a message must not become an emoji
        )


def save_traceback(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to the cache folder (or a temporary one)
    for the bug report; None when neither can be written."""
    import tempfile
    import time
    import traceback

    from optieval.core import cache_root

    text = "".join(traceback.format_exception(exc))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{id(exc):x}.txt"
    for folder in (lambda: cache_root() / "crashes", lambda: Path(tempfile.gettempdir())):
        try:
            path = folder() / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"optieval {__version__}\n{' '.join(sys.argv)}\n\n{text}")
            return path
        except Exception:
            continue
    return None


class _OptievalGroup(TyperGroup):
    """Maps :class:`OptievalError` to one line on stderr and its exit code, and any other
    exception (a bug) to exit 4 with its traceback saved to a file (``--debug`` re-raises)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """Every command also takes ``--debug``, ``--quiet`` and ``--verbose`` after its name
        (``optieval convert --debug``)."""
        import copy

        command = super().get_command(ctx, cmd_name)
        for name in _EVERYWHERE:
            if command is None or any(p.name == name for p in command.params):
                continue
            # A copy of the root's own option (typer's option class), setting the root's state.
            option: Any = copy.copy(next(p for p in self.params if p.name == name))
            option.expose_value = False
            option.callback = _EVERYWHERE[name]
            command.params.append(option)
        return command

    def invoke(self, ctx: Any) -> Any:  # click's Context, vendored or not by typer
        import warnings

        import click

        from optieval.cli.options import fallback_exit_code
        from optieval.cli.stopping import interrupted_line, start_record
        from optieval.errors import combined_exit_code
        from optieval.execution import Interrupted, handle_interrupts

        start_record()
        fallback_exit_code()  # forget an earlier command's
        try:
            with warnings.catch_warnings(), handle_interrupts():
                warnings.showwarning = _show_warning
                value = super().invoke(ctx)
        except (typer.Exit, click.exceptions.Exit) as exc:
            code = combined_exit_code([getattr(exc, "exit_code", 0), fallback_exit_code()])
            raise typer.Exit(code) from None
        except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM as Interrupted
            stopped = exc if isinstance(exc, Interrupted) else Interrupted()
            with always_shown():
                err_console.print(
                    f"[bold yellow]{escape(interrupted_line(stopped.signal_name))}[/]",
                    highlight=False,
                    soft_wrap=True,
                )
            raise typer.Exit(stopped.exit_code) from None
        except OptievalError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Abort, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            saved = save_traceback(exc)
            internal = InternalError(
                f"{type(exc).__name__}: {exc}", report=str(saved) if saved else None
            )
            print_error(internal)
            raise typer.Exit(internal.exit_code) from None
        finally:
            reset_human_output()
            set_verbosity(NORMAL)
        code = fallback_exit_code()  # an output went to a fallback file: not a clean success
        if code:
            raise typer.Exit(code)
        return value


def _set_debug(ctx: Any, param: Any, value: bool) -> None:
    if value:
        root = ctx.find_root()
        if root.obj is None:
            root.obj = {}
        root.obj["debug"] = True


def _set_quiet(ctx: Any, param: Any, value: bool) -> bool:
    if value:
        set_verbosity(QUIET)
    return value


def _set_verbose(ctx: Any, param: Any, value: bool) -> bool:
    if value:
        set_verbosity(VERBOSE)
    return value


_EVERYWHERE = {"debug": _set_debug, "quiet": _set_quiet, "verbose": _set_verbose}


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """A Python warning raised under a command: one line on stderr, no source line."""
    text = " ".join(str(message).split())
    err_console.print(f"[bold yellow]WARNING:[/] {escape(text)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=_OptievalGroup,
    name="optieval",
    help="Export, convert, benchmark, compare and gate ML models for release.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"optieval {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", callback=_set_quiet, help="Errors only on stderr (results as usual)."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            callback=_set_verbose,
            help="A line per finished step and the evidence of every check.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print optieval's version and exit.",
        ),
    ] = False,
) -> None:
    if quiet and verbose:
        raise InputError("--quiet and --verbose exclude each other", where="--quiet")
    ctx.obj = {"debug": debug}


# In the order ``optieval --help`` lists them.
app.command()(doctor)
app.command()(bench)
app.command()(gate)
app.command()(show)
app.command()(diff)
app.command()(demo)
app.command("export")(export_command)
app.command()(convert)
app.command()(inspect)
app.command("compare")(compare_command)
app.command()(build)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="optieval")


if __name__ == "__main__":  # pragma: no cover
    main()
