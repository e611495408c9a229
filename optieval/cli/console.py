"""The two terminals the CLI writes to: results on stdout, diagnostics (errors, warnings,
progress, "wrote FILE") on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
