"""Top-level functions that misbehave, for the isolation tests (run in a child process)."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload, "torch_imported": "torch" in sys.modules}


def boom(payload: dict[str, Any]) -> None:
    print("about to fail", file=sys.stderr)
    raise ValueError(f"bad value {payload.get('value')}")


def input_error(payload: dict[str, Any]) -> None:
    from optieval.errors import InputError

    raise InputError("the feeds do not fit", where="x")


def abort(payload: dict[str, Any]) -> None:
    print("aborting now", file=sys.stderr, flush=True)
    os.abort()


def segfault(payload: dict[str, Any]) -> None:
    ctypes.string_at(0)  # null pointer dereference


def hang(payload: dict[str, Any]) -> None:
    time.sleep(600)


def not_plain(payload: dict[str, Any]) -> object:
    return object()
