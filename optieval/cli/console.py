"""The two terminals the CLI writes to: results on stdout, diagnostics (errors, warnings,
progress, "wrote FILE") on stderr; and how much of the diagnostics ``--quiet`` and
``--verbose`` let through."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console


def _width(stream: object) -> int | None:
    """Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns: give them 160
    unless ``COLUMNS`` says otherwise (rich reads it when the width is None)."""
    import os

    isatty = getattr(stream, "isatty", None)
    return None if (isatty is not None and isatty()) or os.environ.get("COLUMNS") else 160


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def human_output_to_stderr() -> None:
    """Send the human output (tables, verdicts) to stderr, leaving stdout to ``--json -``."""
    console.file = sys.stderr


def reset_human_output() -> None:
    """Undo :func:`human_output_to_stderr` (after each command, for in-process callers)."""
    console._file = None  # rich's own "whatever sys.stdout is at print time"


QUIET, NORMAL, VERBOSE = -1, 0, 1
_LEVEL = [NORMAL]


def set_verbosity(level: int) -> None:
    """``--quiet`` (QUIET): stderr shows errors only (no progress, warnings, "wrote FILE");
    ``--verbose`` (VERBOSE): a line per finished step or cell and the evidence of every check.
    Results on stdout are the same at every level."""
    _LEVEL[0] = level
    err_console.quiet = level <= QUIET


def verbosity() -> int:
    """The level :func:`set_verbosity` set (NORMAL by default)."""
    return _LEVEL[0]


@contextlib.contextmanager
def always_shown() -> Iterator[None]:
    """Print on stderr even under ``--quiet`` (errors, an interrupt, a lost output)."""
    quiet = err_console.quiet
    err_console.quiet = False
    try:
        yield
    finally:
        err_console.quiet = quiet
