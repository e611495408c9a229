"""The timed loop: warm-up kept apart, then measure until a minimum duration and a minimum
sample count are both met, capped by a maximum duration (docs/design.md, decision 3).

The loop calls a zero-argument runner (``Backend.runner``) between two reads of the host's
monotonic nanosecond clock and appends the difference: nothing else happens per iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from optieval.errors import InputError


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how much to measure.

    Args:
        warmup_s: seconds of discarded warm-up (default 0.5).
        warmup_iters: discarded warm-up iterations, at least (default 10).
        duration_s: measure at least this long (default 3).
        min_samples: measure at least this many iterations; the run also measures at least
            the count ``target_percentile``'s interval needs at ``confidence`` (the larger of
            the two counts applies; None: that count alone).
        max_duration_s: stop here even if the minimums are not met (default 30).
        target_percentile: the highest percentile that must get an interval (default 99).
        confidence: of the intervals the samples must support, in (0.5, 1) (default 0.95).
    """

    warmup_s: float = 0.5
    warmup_iters: int = 10
    duration_s: float = 3.0
    min_samples: int | None = None
    max_duration_s: float = 30.0
    target_percentile: float = 99.0
    confidence: float = 0.95

    def validate(self) -> MeasureSettings:
        """Raise InputError naming the setting for zero or negative durations and counts."""
        checks = [
            ("warmup_s", self.warmup_s >= 0, "must not be negative"),
            ("warmup_iters", self.warmup_iters >= 0, "must not be negative"),
            ("duration_s", self.duration_s > 0, "must be positive"),
            ("max_duration_s", self.max_duration_s > 0, "must be positive"),
            ("min_samples", self.min_samples is None or self.min_samples > 0, "must be positive"),
            ("target_percentile", 0 < self.target_percentile < 100, "must be in (0, 100)"),
            ("confidence", 0.5 < self.confidence < 1, "must be inside (0.5, 1), e.g. 0.95"),
        ]
        for option, ok, message in checks:
            if not ok:
                raise InputError(message, where=option)
        if self.max_duration_s < self.duration_s:
            raise InputError(
                f"`max_duration_s` {self.max_duration_s} is shorter than "
                f"`duration_s` {self.duration_s}",
                where="max_duration_s",
            )
        return self

    def required_samples(self) -> int:
        """The sample count the run must reach: the larger of ``min_samples`` and the smallest
        count for which the target percentile has a distribution-free interval at
        ``confidence`` (299 for p99 at 95%). A user's count raises the minimum, never lowers
        it below what the gated percentile needs."""
        from optieval.stats import min_samples_for_quantile

        needed = min_samples_for_quantile(self.target_percentile / 100.0, self.confidence)
        return max(needed, self.min_samples or 0)


@dataclass(frozen=True)
class Measurement:
    """What one timed loop produced."""

    times_ns: np.ndarray
    warmup_iterations: int
    first_inference_ms: float
    elapsed_s: float
    reached_minimums: bool

    @property
    def times_ms(self) -> np.ndarray:
        """Per-iteration latencies in milliseconds."""
        return self.times_ns.astype(np.float64) / 1e6


def measure(runners: Sequence[Callable[[], object]], settings: MeasureSettings) -> Measurement:
    """Warm up, then time ``runners`` (cycled, one call per iteration) per the settings.

    The first call is timed on its own and reported as the cold first inference.
    """
    perf = time.perf_counter_ns
    count = len(runners)
    if count == 0:
        raise InputError("nothing to run: no inputs")

    t0 = perf()
    runners[0]()
    first_ms = (perf() - t0) / 1e6

    warm_end = perf() + int(settings.warmup_s * 1e9)
    warm = 0
    while warm < settings.warmup_iters or perf() < warm_end:
        runners[warm % count]()
        warm += 1

    need = settings.required_samples()
    min_ns = int(settings.duration_s * 1e9)
    max_ns = int(settings.max_duration_s * 1e9)
    times: list[int] = []
    append = times.append
    start = perf()
    i = 0
    while True:
        run = runners[i % count]
        i += 1
        a = perf()
        run()
        b = perf()
        append(b - a)
        elapsed = b - start
        if (elapsed >= min_ns and len(times) >= need) or elapsed >= max_ns:
            break
    elapsed_s = (perf() - start) / 1e9
    return Measurement(
        times_ns=np.asarray(times, dtype=np.int64),
        warmup_iterations=warm,
        first_inference_ms=first_ms,
        elapsed_s=elapsed_s,
        reached_minimums=len(times) >= need and elapsed_s >= settings.duration_s - 1e-9,
    )
