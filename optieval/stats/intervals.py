"""The two-sided confidence interval every proportion and bootstrap statistic returns, and the
normal quantile of a confidence level."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval ``[low, high]`` at ``confidence``, made by ``method``."""

    low: float
    high: float
    confidence: float = DEFAULT_CONFIDENCE
    method: str = "wilson"

    def contains(self, value: float) -> bool:
        """True when ``low <= value <= high``."""
        return self.low <= value <= self.high

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "method": self.method,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Interval:
        """Inverse of :meth:`to_json`."""
        return cls(
            float(data["low"]),
            float(data["high"]),
            float(data.get("confidence", DEFAULT_CONFIDENCE)),
            str(data.get("method", "wilson")),
        )


def z_value(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence`` (1.96 at 0.95).

    Raises:
        ValueError: ``confidence`` outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


__all__ = ["DEFAULT_CONFIDENCE", "Interval", "z_value"]
