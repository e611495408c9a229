"""Every error optieval raises on purpose, and the exit code each one maps to.

The tree::

    OptievalError                 base: what happened, where, and a hint
    ├── InputError                exit 2: bad file, option, config, data or precision request
    ├── BackendError              exit 3: a backend is unusable, crashed, timed out or built
    │   ├── BackendUnavailable            something other than what was asked
    │   └── BackendFailed
    ├── CheckFailed               exit 1: a gated check, parity check or regression failed
    └── InternalError             exit 4: a bug in optieval (any unexpected exception)

The CLI prints ``str(error)`` on one line (no traceback unless ``--debug``) and exits with
``error.exit_code``. An exception that is not an :class:`OptievalError` is a bug: the CLI wraps
it in :class:`InternalError`, writes the traceback to a file and asks for a report. When several
errors apply at once, :func:`combined_exit_code` picks the one that wins: 4, then 2, then 3, then
1 (docs/design.md, "Exit codes"). Interrupts exit 130 (SIGINT) or 143 (SIGTERM).

Messages name what the Python API calls things (a parameter such as ``calibration``, in
backticks, or ``where="shapes"``); the command line maps those names to its flags when it prints
an error (:mod:`optieval.cli.flags`), so a Python caller is never told about ``--calib``.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BACKEND = 3
EXIT_INTERNAL = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

_PRECEDENCE = (EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_BACKEND, EXIT_CHECK_FAILED)


class OptievalError(Exception):
    """Base of every expected optieval failure.

    Args:
        message: what happened, in one sentence.
        where: the file, option, input or backend it happened at (optional).
        hint: what the user can try next (optional).
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} (hint: {self.hint})"
        return text


class InputError(OptievalError):
    """Bad input or usage: a missing or malformed file, a bad option or config, data that does
    not fit the model, or a precision request the artifact cannot honour (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class BackendError(OptievalError):
    """A backend the command needs cannot be used or did not do what was asked (exit 3)."""

    exit_code = EXIT_BACKEND


class BackendUnavailable(BackendError):
    """The backend cannot run on this machine: a library, driver or device is missing."""


class BackendFailed(BackendError):
    """The backend crashed, timed out, or built something other than what was asked."""


class CheckFailed(OptievalError):
    """A gated check, a parity check or a regression check failed (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class InternalError(OptievalError):
    """A bug in optieval: an exception nobody raised on purpose (exit 4).

    Args:
        message: what went wrong, in one sentence.
        report: where the full traceback was written, for the bug report (optional).
    """

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, report: str | None = None) -> None:
        hint = "please report it at the optieval issue tracker"
        if report:
            hint += f" with the traceback saved in {report}"
        super().__init__(f"internal error: {message}", hint=hint)
        self.report = report


def combined_exit_code(codes: Iterable[int]) -> int:
    """Return the exit code that wins among ``codes``: 4, then 2, then 3, then 1, else 0."""
    present = set(codes)
    for code in _PRECEDENCE:
        if code in present:
            return code
    return EXIT_OK
