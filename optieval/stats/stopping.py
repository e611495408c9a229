"""The stopping rule of a timed run: stop once a minimum duration and a minimum sample count
(usually what the target percentile's interval needs) are both met, or at a time cap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optieval.errors import InputError
from optieval.stats.quantiles import min_samples_for_quantile

StopReason = Literal["met", "max_duration"]


@dataclass(frozen=True)
class StoppingRule:
    """When a timed run may stop: once ``min_duration_s`` and ``min_samples`` are both met, or
    at ``max_duration_s`` whichever comes first.

    Attributes:
        min_duration_s: seconds of measurement at least (> 0; default 3).
        min_samples: iterations at least (>= 1), usually
            :func:`min_samples_for_quantile` of the target percentile.
        max_duration_s: cap in seconds (>= min_duration_s; default 30).
    """

    min_duration_s: float = 3.0
    min_samples: int = 1
    max_duration_s: float = 30.0

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not (math.isfinite(self.min_duration_s) and self.min_duration_s > 0.0):
            problems.append(("min_duration_s", f"{self.min_duration_s!r} must be above 0 seconds"))
        if not (isinstance(self.min_samples, (int, np.integer)) and self.min_samples >= 1):
            problems.append(("min_samples", f"{self.min_samples!r} must be at least 1"))
        if not (self.max_duration_s > 0.0):
            problems.append(("max_duration_s", f"{self.max_duration_s!r} must be above 0 seconds"))
        elif self.max_duration_s < self.min_duration_s:
            problems.append(
                (
                    "max_duration_s",
                    f"{self.max_duration_s!r} s is below `min_duration_s` "
                    f"{self.min_duration_s!r} s",
                )
            )
        if problems:
            where = ", ".join(w for w, _ in problems)
            raise InputError(
                "; ".join(f"`{w}` {m}" for w, m in problems),
                where=where,
                hint="durations and counts must be positive",
            )

    @classmethod
    def for_percentile(
        cls,
        target_percentile: float = 99.0,
        *,
        confidence: float = 0.95,
        min_duration_s: float = 3.0,
        max_duration_s: float = 30.0,
        min_samples: int | None = None,
    ) -> StoppingRule:
        """Build the rule for a target percentile (in percent): ``min_samples`` is the larger of
        the given one and :func:`min_samples_for_quantile` (299 for p99 at 95%).

        Raises:
            InputError: a bad percentile (where ``target_percentile``), duration or count.
        """
        if not 0.0 < float(target_percentile) < 100.0:
            raise InputError(
                f"{target_percentile!r} is not inside (0, 100)",
                where="target_percentile",
                hint="e.g. 99",
            )
        needed = min_samples_for_quantile(float(target_percentile) / 100.0, confidence)
        if min_samples is not None and not (
            isinstance(min_samples, (int, np.integer)) and min_samples >= 1
        ):
            raise InputError(f"{min_samples!r} must be at least 1", where="min_samples")
        return cls(
            min_duration_s=float(min_duration_s),
            min_samples=max(needed, int(min_samples or 0)),
            max_duration_s=float(max_duration_s),
        )

    def stop_reason(self, elapsed_s: float, n: int) -> StopReason | None:
        """Return ``"met"`` (both minimums met), ``"max_duration"`` (capped before they were),
        or None (keep measuring)."""
        if elapsed_s >= self.min_duration_s and n >= self.min_samples:
            return "met"
        if elapsed_s >= self.max_duration_s:
            return "max_duration"
        return None

    def should_stop(self, elapsed_s: float, n: int) -> bool:
        """True when measurement should stop (see :meth:`stop_reason`)."""
        return self.stop_reason(elapsed_s, n) is not None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "min_duration_s": self.min_duration_s,
            "min_samples": self.min_samples,
            "max_duration_s": self.max_duration_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoppingRule:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                float(data["min_duration_s"]),
                int(data["min_samples"]),
                float(data["max_duration_s"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed stopping rule ({exc})", where="stopping") from exc


def should_stop(
    elapsed_s: float,
    n: int,
    *,
    min_duration_s: float,
    min_samples: int,
    max_duration_s: float,
) -> bool:
    """True once ``elapsed_s >= min_duration_s`` and ``n >= min_samples``, or once
    ``elapsed_s >= max_duration_s``. Raises InputError for non-positive settings."""
    return StoppingRule(min_duration_s, min_samples, max_duration_s).should_stop(elapsed_s, n)


__all__ = ["StopReason", "StoppingRule", "should_stop"]
