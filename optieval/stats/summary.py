"""One cell's latency summary: mean, spread, percentiles with their intervals
(:mod:`optieval.stats.quantiles`), throughput (:mod:`optieval.stats.means`) and the stability
check (:mod:`optieval.stats.stability`), in the bench cell's JSON shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.means import ThroughputEstimate, throughput_estimate
from optieval.stats.quantiles import (
    INTERVAL_METHOD,
    POINT_METHOD,
    QuantileEstimate,
    percentile_label,
    quantile_ci,
)
from optieval.stats.samples import as_samples, check_confidence, optional_float
from optieval.stats.stability import (
    DEFAULT_STABILITY_THRESHOLD,
    DEFAULT_STABILITY_WINDOWS,
    StabilityCheck,
    stability_check,
)

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)


@dataclass(frozen=True)
class LatencySummary:
    """Everything the bench reports about one cell's latency samples.

    Attributes:
        n: number of samples.
        batch: items per iteration.
        mean_ms, std_ms (sample std, ddof=1; 0 for one sample), min_ms, max_ms.
        cv: coefficient of variation ``std / mean`` (None when the mean is 0).
        quantiles: one :class:`QuantileEstimate` per requested percentile, ascending.
        throughput: :class:`ThroughputEstimate`.
        stability: :class:`StabilityCheck`.
        confidence: the intervals' confidence (0.95).
    """

    n: int
    batch: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    cv: float | None
    quantiles: tuple[QuantileEstimate, ...]
    throughput: ThroughputEstimate
    stability: StabilityCheck
    confidence: float = 0.95

    @property
    def unstable(self) -> bool:
        """Shortcut for ``stability.unstable``."""
        return self.stability.unstable

    @property
    def ci_key(self) -> str:
        """The JSON key of the percentile intervals: ``"ci95_ms"`` at 95%."""
        return f"ci{round(self.confidence * 100.0, 6):g}_ms"

    def percentile(self, p: float) -> QuantileEstimate:
        """Return the estimate for percentile ``p`` (in percent, e.g. 99). KeyError if absent."""
        for est in self.quantiles:
            if abs(est.q * 100.0 - p) < 1e-9:
                return est
        raise KeyError(percentile_label(p))

    def to_json(self) -> dict[str, Any]:
        """Return the bench-cell fields (issue 6 shape) plus the full detail.

        Keys: ``samples``, ``batch``, ``confidence``, ``latency_ms`` (``p50``.. and ``mean``,
        ``std``, ``min``, ``max``), ``ci95_ms`` (``{"p99": [low, high] or null}``), ``cv``,
        ``throughput`` (``items_per_s``, ``ci``, ...), ``stability``, ``percentile_method``,
        ``interval_method``, ``quantiles`` (full :class:`QuantileEstimate` records).
        """
        latency: dict[str, float] = {e.label: e.point for e in self.quantiles}
        latency.update(mean=self.mean_ms, std=self.std_ms, min=self.min_ms, max=self.max_ms)
        return {
            "samples": self.n,
            "batch": self.batch,
            "confidence": self.confidence,
            "latency_ms": latency,
            self.ci_key: {
                e.label: (None if e.interval is None else [e.low, e.high]) for e in self.quantiles
            },
            "cv": self.cv,
            "throughput": self.throughput.to_json(),
            "stability": self.stability.to_json(),
            "percentile_method": POINT_METHOD,
            "interval_method": INTERVAL_METHOD,
            "quantiles": [e.to_json() for e in self.quantiles],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencySummary:
        """Rebuild from :meth:`to_json` output (extra keys, such as the rest of a bench cell,
        are ignored). Raises InputError naming what is missing."""
        try:
            latency = data["latency_ms"]
            return cls(
                n=int(data["samples"]),
                batch=int(data["batch"]),
                mean_ms=float(latency["mean"]),
                std_ms=float(latency["std"]),
                min_ms=float(latency["min"]),
                max_ms=float(latency["max"]),
                cv=optional_float(data.get("cv")),
                quantiles=tuple(QuantileEstimate.from_json(q) for q in data["quantiles"]),
                throughput=ThroughputEstimate.from_json(data["throughput"]),
                stability=StabilityCheck.from_json(data["stability"]),
                confidence=float(data.get("confidence", 0.95)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed latency summary ({exc})", where="latency_ms") from exc


def summarize(
    times_ms: npt.ArrayLike,
    *,
    batch: int,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    confidence: float = 0.95,
    stability_windows: int = DEFAULT_STABILITY_WINDOWS,
    stability_threshold: float = DEFAULT_STABILITY_THRESHOLD,
) -> LatencySummary:
    """Summarise one cell's latencies.

    Args:
        times_ms: every measured iteration in milliseconds, in the order measured (order
            matters for the stability check and the throughput interval).
        batch: items per iteration (>= 1), for throughput.
        percentiles: in percent, each in (0, 100); default (50, 90, 95, 99).
        confidence: of every interval; default 0.95.
        stability_windows: consecutive windows compared by the stability check; default 5.
        stability_threshold: relative spread of window medians that flags ``unstable``;
            default 0.10.

    Returns:
        A :class:`LatencySummary`. Percentiles the samples cannot support have
        ``supported=False`` and no interval.

    Raises:
        InputError: no samples, NaN/inf/negative samples, all samples zero (a clock too coarse
            for the model), batch < 1, bad percentiles.
    """
    check_confidence(confidence)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch {batch!r} is not a positive integer", where="batch")
    bad = [p for p in percentiles if not 0.0 < float(p) < 100.0]
    if bad:
        raise InputError(
            f"percentiles {bad} are not inside (0, 100)",
            where="percentiles",
            hint="give percentiles in percent, e.g. 99",
        )
    arr = as_samples(times_ms, "times_ms")
    xs = np.sort(arr)
    n = int(arr.size)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    quantiles = tuple(
        quantile_ci(xs, float(p) / 100.0, confidence) for p in sorted(set(map(float, percentiles)))
    )
    throughput = throughput_estimate(arr, batch=int(batch), confidence=confidence)
    return LatencySummary(
        n=n,
        batch=int(batch),
        mean_ms=mean,
        std_ms=std,
        min_ms=float(xs[0]),
        max_ms=float(xs[-1]),
        cv=std / mean if mean > 0.0 else None,
        quantiles=quantiles,
        throughput=throughput,
        stability=stability_check(arr, windows=stability_windows, threshold=stability_threshold),
        confidence=float(confidence),
    )


__all__ = ["DEFAULT_PERCENTILES", "LatencySummary", "summarize"]
