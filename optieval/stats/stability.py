"""Stability of a timed run: it is cut into ``k`` consecutive windows (default 5) and called
``unstable`` when the spread of the window medians, relative to the overall median, exceeds a
threshold (default 10%)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.samples import as_samples, optional_float

DEFAULT_STABILITY_WINDOWS = 5
DEFAULT_STABILITY_THRESHOLD = 0.10
MIN_WINDOW_SAMPLES = 10
"""Fewer samples than this per window and the stability check is not assessed."""


@dataclass(frozen=True)
class StabilityCheck:
    """Do consecutive windows of the run agree?

    Attributes:
        assessed: False when the run was too short (fewer than ``MIN_WINDOW_SAMPLES`` per
            window); then ``unstable`` is False and ``reason`` says so.
        unstable: True when ``relative_spread > threshold``.
        windows: number of consecutive windows.
        window_medians_ms: the median of each window, in order.
        relative_spread: ``(max - min) / overall median`` of the window medians (None if not
            assessed or the overall median is 0).
        threshold: the relative spread above which the run is unstable.
        reason: one sentence for a report.
    """

    assessed: bool
    unstable: bool
    windows: int
    window_medians_ms: tuple[float, ...]
    relative_spread: float | None
    threshold: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "assessed": self.assessed,
            "unstable": self.unstable,
            "windows": self.windows,
            "window_medians_ms": list(self.window_medians_ms),
            "relative_spread": self.relative_spread,
            "threshold": self.threshold,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StabilityCheck:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                assessed=bool(data["assessed"]),
                unstable=bool(data["unstable"]),
                windows=int(data["windows"]),
                window_medians_ms=tuple(float(v) for v in data["window_medians_ms"]),
                relative_spread=optional_float(data.get("relative_spread")),
                threshold=float(data["threshold"]),
                reason=str(data["reason"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed stability check ({exc})", where="stability") from exc


def stability_check(
    times_ms: npt.ArrayLike,
    *,
    windows: int = DEFAULT_STABILITY_WINDOWS,
    threshold: float = DEFAULT_STABILITY_THRESHOLD,
) -> StabilityCheck:
    """Split a time-ordered run into ``windows`` consecutive windows and compare their medians.

    Args:
        times_ms: latencies in the order measured.
        windows: number of windows (>= 2); default 5.
        threshold: relative spread of window medians (``(max - min) / overall median``) above
            which the run is flagged unstable; default 0.10.

    Raises:
        InputError: bad samples, windows < 2 or threshold <= 0.
    """
    if windows < 2:
        raise InputError(f"windows={windows} must be at least 2", where="stability windows")
    if not threshold > 0.0:
        raise InputError(f"threshold={threshold} must be positive", where="stability threshold")
    arr = as_samples(times_ms, "times_ms")
    if arr.size < windows * MIN_WINDOW_SAMPLES:
        return StabilityCheck(
            assessed=False,
            unstable=False,
            windows=windows,
            window_medians_ms=(),
            relative_spread=None,
            threshold=threshold,
            reason=(
                f"not assessed: {arr.size} samples, need {windows * MIN_WINDOW_SAMPLES} "
                f"({MIN_WINDOW_SAMPLES} per window)"
            ),
        )
    medians = tuple(float(np.median(chunk)) for chunk in np.array_split(arr, windows))
    overall = float(np.median(arr))
    spread = (max(medians) - min(medians)) / overall if overall > 0.0 else None
    listed = ", ".join(f"{m:.4g}" for m in medians)
    if spread is None:
        return StabilityCheck(
            True,
            False,
            windows,
            medians,
            None,
            threshold,
            "not assessed: the overall median is zero (clock resolution too coarse)",
        )
    unstable = spread > threshold
    if unstable:
        reason = (
            f"unstable: medians of {windows} consecutive windows differ by {spread:.1%} "
            f"(threshold {threshold:.0%}): {listed} ms; load, clocks or thermal state changed "
            "during the run"
        )
    else:
        reason = (
            f"stable: medians of {windows} consecutive windows agree within {spread:.1%} "
            f"(threshold {threshold:.0%})"
        )
    return StabilityCheck(True, unstable, windows, medians, spread, threshold, reason)


__all__ = [
    "DEFAULT_STABILITY_THRESHOLD",
    "DEFAULT_STABILITY_WINDOWS",
    "MIN_WINDOW_SAMPLES",
    "StabilityCheck",
    "stability_check",
]
