"""Interrupts (SIGINT, SIGTERM) that stop every child process (docs/design.md, "Exit codes").

A measuring child runs in its own session (:func:`~optieval.execution.isolation.run_isolated`),
so a Ctrl-C at the terminal never reaches it: the parent must stop it. :func:`handle_interrupts`
turns both signals into :class:`Interrupted` (a :class:`KeyboardInterrupt`, so every ``finally``
and ``except KeyboardInterrupt`` on the way out runs) and records that a stop was asked for;
code that waits outside the main thread (a Ray executor's target threads, an isolated child
started from a worker thread) polls :func:`stop_requested` and stops too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Interrupted", "handle_interrupts", "raise_if_stopping", "stop_requested"]

_STOP = threading.Event()
_SIGNAL: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The run was interrupted by ``signum`` (SIGINT: exit 130, SIGTERM: exit 143)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        """``SIGINT`` or ``SIGTERM``."""
        return signal.Signals(self.signum).name


def stop_requested() -> int | None:
    """The signal that asked this process to stop (None when none did)."""
    return _SIGNAL[-1] if _STOP.is_set() and _SIGNAL else None


def raise_if_stopping() -> None:
    """Raise :class:`Interrupted` when an interrupt asked this process to stop."""
    signum = stop_requested()
    if signum is not None:
        raise Interrupted(signum)


def _request_stop(signum: int) -> None:
    _SIGNAL.append(int(signum))
    _STOP.set()


def _handler(signum: int, frame: Any) -> None:
    if _STOP.is_set():
        return  # already stopping: a second Ctrl-C must not cut the clean-up short
    _request_stop(signum)
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_interrupts() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread and ask
    every waiting thread to stop. A signal the caller ignores (``SIG_IGN``, e.g. a background
    job's SIGINT) stays ignored. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    _STOP.clear()
    _SIGNAL.clear()
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN or old is None:
                continue
            previous[signum] = old
            signal.signal(signum, _handler)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _STOP.clear()
        _SIGNAL.clear()
