"""What a command had finished when an interrupt stopped it: the progress displays record each
finished cell or step here, and the error mapping says it in one line before exiting 130
(SIGINT) or 143 (SIGTERM)."""

from __future__ import annotations

_FINISHED: list[str] = []
_TOTAL: list[int] = []


def start_record() -> None:
    """Forget what an earlier command (in the same process) finished."""
    _FINISHED.clear()
    _TOTAL.clear()


def record_finished(what: str, total: int | None = None, *, again: bool = False) -> None:
    """Note that ``what`` (a cell, a gate step) finished, out of ``total`` when known; a text
    already noted counts again only with ``again`` (two cells may share a label)."""
    if again or what not in _FINISHED:
        _FINISHED.append(what)
    if total is not None:
        _TOTAL[:] = [total]


def interrupted_line(signal_name: str) -> str:
    """``interrupted by SIGINT after 2 of 6 finished (a, b); every child process stopped``."""
    done = len(_FINISHED)
    if not done:
        finished = "before anything finished"
    else:
        count = f"{done} of {_TOTAL[0]}" if _TOTAL and _TOTAL[0] >= done else str(done)
        shown = ", ".join(_FINISHED[-6:])
        more = "..., " if done > 6 else ""
        finished = f"after {count} finished ({more}{shown})"
    return f"interrupted by {signal_name} {finished}; every child process stopped"
