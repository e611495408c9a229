"""The two terminals the CLI writes to: results on stdout, diagnostics (errors, warnings,
progress, "wrote FILE") on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def human_output_to_stderr() -> None:
    """Send the human output (tables, verdicts) to stderr, leaving stdout to ``--json -``."""
    console.file = sys.stderr


def reset_human_output() -> None:
    """Undo :func:`human_output_to_stderr` (after each command, for in-process callers)."""
    console._file = None  # rich's own "whatever sys.stdout is at print time"
