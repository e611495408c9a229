"""One-line messages from multi-line text and exceptions (a source model's errors are often
long tracebacks or ANSI-coloured logs)."""

from __future__ import annotations

import re

__all__ = ["describe_exception", "one_line"]


def one_line(text: str, limit: int = 400) -> str:
    """Collapse ``text`` to one line (ANSI codes removed), cut at ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` on one line."""
    return one_line(f"{type(exc).__name__}: {exc}")
