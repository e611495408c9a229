"""The gate's sequential design: a cell is looked at up to a fixed number of times, each look
adding samples to the earlier ones, and it stops at the first look where every check is
decided. Error stays at most ``alpha / 2`` per side at any stopping time because the looks
split alpha equally (Bonferroni): look ``k`` of ``L`` judges at confidence
``1 - alpha / L``, and the chance that *any* look errs is at most the sum over the looks
(docs/design.md, "Sequential verdicts").

Why this and not a confidence sequence: it reuses the fixed-sample intervals the rest of
optieval already computes (order statistics, batch means, Clopper-Pearson) unchanged, it is
valid for every check kind at once without a per-statistic derivation, and it costs little
because the looks grow geometrically: three looks judge at 98.33% instead of 95%, which asks
a p99 check for 477 samples instead of 368 before it can PASS. It needs the number of looks
fixed before measuring: the plan is computed from ``duration_s`` and ``max_duration_s`` alone.

Also: :func:`samples_to_decide_quantile`, how many samples would likely decide an undecided
percentile check (the exact order-statistic ranks at the observed share under the budget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.errors import InputError
from optieval.stats.quantiles import min_samples_for_upper_bound
from optieval.stats.samples import as_samples, check_confidence, check_quantile

LOOK_FACTOR = 4.0
"""Each look comes at most this many times later (in measuring time) than the previous one."""

MIN_LOOK_S = 0.25
"""A look that reached its sample count still measures at least this long (timer noise, a
first burst of cache misses)."""


@dataclass(frozen=True)
class LookPlan:
    """A group-sequential plan for one cell.

    Attributes:
        confidence: the overall confidence the verdicts promise (0.95).
        durations_s: the cumulative measuring time at which each look comes at the latest
            (``duration_s``, 4x, 16x, ... capped at ``max_duration_s``); their count is the
            number of looks, fixed before measuring.
        first_samples: the samples the first look waits for (it comes earlier than its time
            once it has them and ``MIN_LOOK_S`` has passed); later looks come at their time.
    """

    confidence: float
    durations_s: tuple[float, ...]
    first_samples: int

    @property
    def looks(self) -> int:
        """The most looks a cell gets."""
        return len(self.durations_s)

    @property
    def look_confidence(self) -> float:
        """The confidence each look judges at: ``1 - (1 - confidence) / looks``."""
        return 1.0 - (1.0 - self.confidence) / self.looks

    def samples_at(self, look: int) -> int | None:
        """The cumulative samples that bring look ``look`` (1-based) before its time: the
        first look's ``first_samples``; None for later looks, which come at their time (a
        check still undecided after the first look is near its budget, and the most samples
        decide it soonest)."""
        return self.first_samples if look == 1 else None

    def to_json(self) -> dict[str, Any]:
        """Plain data (inverse of :meth:`from_json`)."""
        return {
            "confidence": self.confidence,
            "look_confidence": self.look_confidence,
            "durations_s": list(self.durations_s),
            "first_samples": self.first_samples,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LookPlan:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                float(data["confidence"]),
                tuple(float(d) for d in data["durations_s"]),
                int(data["first_samples"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed look plan ({exc})", where="looks") from exc


def look_plan(
    duration_s: float,
    max_duration_s: float,
    *,
    confidence: float = 0.95,
    percentile: float = 99.0,
    min_samples: int | None = None,
) -> LookPlan:
    """Plan the looks of a cell: at most ``duration_s``, ``4 * duration_s``, ... seconds of
    measuring (cumulative), the last capped at ``max_duration_s``; each look judged at
    ``1 - (1 - confidence) / looks``. The first look waits for the larger of ``min_samples``
    and the samples ``percentile``'s one-sided upper bound needs at the look's error (a PASS
    is impossible with fewer).

    Raises:
        InputError: non-positive durations, ``max_duration_s < duration_s``, a confidence
            outside (0.5, 1).
    """
    check_confidence(confidence)
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise InputError(f"`duration_s` {duration_s!r} must be positive", where="duration_s")
    if not (max_duration_s >= duration_s and math.isfinite(max_duration_s)):
        raise InputError(
            f"`max_duration_s` {max_duration_s!r} is below `duration_s` {duration_s!r}",
            where="max_duration_s",
        )
    durations = [float(duration_s)]
    while durations[-1] < max_duration_s * (1 - 1e-9):
        durations.append(min(durations[-1] * LOOK_FACTOR, float(max_duration_s)))
    looks = len(durations)
    look_conf = 1.0 - (1.0 - confidence) / looks
    need = min_samples_for_upper_bound(percentile / 100.0, (1.0 - look_conf) / 2.0)
    return LookPlan(float(confidence), tuple(durations), max(need, int(min_samples or 0)))


def samples_to_decide_quantile(
    samples: npt.ArrayLike, q: float, budget: float, confidence: float = 0.95, *, tau: float = 1.0
) -> int | None:
    """About how many samples would decide whether the q-quantile is under ``budget``, if the
    share ``p`` of samples at or under it stays what it is now: the least ``n`` at which the
    one-sided order-statistic bound on the decisive side (upper when ``p > q``, lower when
    ``p < q``; error ``(1 - confidence) / 2`` each) crosses the budget, found on the exact
    binomial ranks, times ``tau`` (the autocorrelation time: correlated samples count as
    ``n / tau``). None when ``p`` equals ``q`` (the estimate sits on the budget: no count
    decides it) or when more than 10**8 samples would be needed.

    Raises:
        InputError: bad samples, q or confidence.
    """
    from optieval.stats.quantiles import lower_bound_rank, upper_bound_rank

    check_quantile(q)
    check_confidence(confidence)
    arr = as_samples(samples, "samples")
    n = int(arr.size)
    p = float(np.count_nonzero(arr <= budget)) / n
    if abs(p - q) < 1e-12:
        return None
    error = (1.0 - confidence) / 2.0

    def decides(m: int) -> bool:
        under = p * m  # samples at or under the budget, at this share
        if p > q:
            u = upper_bound_rank(m, q, error)
            return u is not None and u <= under
        lo = lower_bound_rank(m, q, error)
        return lo is not None and lo > under

    scale = max(1.0, float(tau))
    n = max(1, math.floor(n / scale))
    low, high = n, n + 1
    while not decides(high):
        low, high = high, high * 2
        if high > 10**8:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        if decides(mid):
            high = mid
        else:
            low = mid
    return max(math.ceil(high * scale), int(arr.size) + 1)


__all__ = [
    "LOOK_FACTOR",
    "MIN_LOOK_S",
    "LookPlan",
    "look_plan",
    "samples_to_decide_quantile",
]
