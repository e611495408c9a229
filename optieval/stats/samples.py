"""Checks of the inputs every latency statistic takes (samples, a quantile, a confidence) and
the small JSON helpers their records share. Private to :mod:`optieval.stats`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError


def check_quantile(q: float) -> None:
    """Raise InputError (where ``quantile``) unless ``q`` is a finite fraction in (0, 1)."""
    if not (isinstance(q, (int, float)) and 0.0 < q < 1.0 and math.isfinite(q)):
        raise InputError(
            f"quantile {q!r} is not inside (0, 1)",
            where="quantile",
            hint="give a fraction such as 0.99 (percentiles such as 99 are divided by 100)",
        )


def check_confidence(confidence: float) -> None:
    """Raise InputError (where ``confidence``) unless ``confidence`` is in (0.5, 1)."""
    if not (isinstance(confidence, (int, float)) and 0.5 < confidence < 1.0):
        raise InputError(
            f"confidence {confidence!r} is not inside (0.5, 1)",
            where="confidence",
            hint="use 0.95 for a 95% interval",
        )


def as_samples(samples: Iterable[float] | npt.ArrayLike, where: str) -> npt.NDArray[np.float64]:
    """Return ``samples`` as a flat float64 array; raise InputError (naming ``where``) when it is
    empty or holds NaN, infinity or negative times."""
    arr = np.asarray(samples, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InputError("no samples", where=where, hint="measure at least one iteration")
    if not np.all(np.isfinite(arr)):
        raise InputError("samples contain NaN or infinity", where=where)
    if arr.min() < 0.0:
        raise InputError("samples contain negative times", where=where)
    return arr


def sorted_samples(arr: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``arr`` sorted ascending (``arr`` itself when it already is)."""
    # An O(n) check saves the O(n log n) sort when the caller already sorted.
    if arr.size < 2 or bool(np.all(arr[1:] >= arr[:-1])):
        return arr
    return np.sort(arr)


def optional_float(value: Any) -> float | None:
    """``float(value)``, or None for None (a JSON field that may be null)."""
    return None if value is None else float(value)


def optional_int(value: Any) -> int | None:
    """``int(value)``, or None for None (a JSON field that may be null)."""
    return None if value is None else int(value)


__all__ = [
    "as_samples",
    "check_confidence",
    "check_quantile",
    "optional_float",
    "optional_int",
    "sorted_samples",
]
