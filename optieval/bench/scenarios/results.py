"""What a scenario cell produced: :class:`ScenarioResult`, the generator's :class:`IssueLag`, and
the max-QPS search's :class:`MaxQpsResult` with every :class:`RateTrial`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from optieval.bench.scenarios.spec import SEARCH_PERCENTILE, SEARCH_RESOLUTION, ScenarioSpec
from optieval.errors import InputError
from optieval.stats import Judgement, LatencySummary, ThroughputEstimate, Verdict, judge


@dataclass(frozen=True)
class IssueLag:
    """How late the generator issued queries against its schedule.

    Attributes:
        p50_ms, p99_ms, max_ms, mean_ms: of the issue lags (issue time minus scheduled time).
        limit_ms: the p99 lag above which the run is invalid.
        behind_limit_ms: the median lag above which the generator fell behind the rate.
        issued, planned: queries issued and queries the schedule planned.
        valid: False when the generator could not keep the schedule.
        reason: one sentence for reports.
    """

    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    limit_ms: float
    behind_limit_ms: float
    issued: int
    planned: int
    valid: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The cell's ``issue_lag_ms`` block."""
        return {
            "p50": self.p50_ms,
            "p99": self.p99_ms,
            "max": self.max_ms,
            "mean": self.mean_ms,
            "limit_ms": self.limit_ms,
            "behind_limit_ms": self.behind_limit_ms,
            "issued": self.issued,
            "planned": self.planned,
            "valid": self.valid,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RateTrial:
    """One rate the max-QPS search ran.

    Attributes:
        qps: the offered rate.
        verdict: ``PASS``, ``FAIL``, ``INCONCLUSIVE`` (the p99 interval straddles the budget
            or could not be supported) or ``INVALID`` (the generator could not keep the
            schedule).
        p99_ms, low, high: the p99 point and its 95% interval (None when unsupported).
        samples: queries measured.
        achieved_qps: completions per second.
        issue_lag_p99_ms: the generator's p99 lateness.
        stopped_early: why the run stopped before its schedule ended, or None.
        evidence: one sentence.
    """

    qps: float
    verdict: str
    p99_ms: float | None
    low: float | None
    high: float | None
    samples: int
    achieved_qps: float | None
    issue_lag_p99_ms: float | None
    stopped_early: str | None
    evidence: str

    @property
    def passed(self) -> bool:
        """True when the whole p99 interval is within the budget and the run was valid."""
        return self.verdict == Verdict.PASS.value

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "qps": self.qps,
            "verdict": self.verdict,
            "p99_ms": self.p99_ms,
            "p99_ci95_ms": None if self.low is None or self.high is None else [self.low, self.high],
            "samples": self.samples,
            "achieved_qps": self.achieved_qps,
            "issue_lag_p99_ms": self.issue_lag_p99_ms,
            "stopped_early": self.stopped_early,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RateTrial:
        """Inverse of :meth:`to_json`."""
        ci = data.get("p99_ci95_ms")
        return cls(
            qps=float(data["qps"]),
            verdict=str(data["verdict"]),
            p99_ms=_opt(data.get("p99_ms")),
            low=None if ci is None else float(ci[0]),
            high=None if ci is None else float(ci[1]),
            samples=int(data.get("samples", 0)),
            achieved_qps=_opt(data.get("achieved_qps")),
            issue_lag_p99_ms=_opt(data.get("issue_lag_p99_ms")),
            stopped_early=data.get("stopped_early"),
            evidence=str(data.get("evidence", "")),
        )


@dataclass(frozen=True)
class MaxQpsResult:
    """The answer of the max-QPS search with its evidence (the cell's ``search`` block).

    Attributes:
        p99_ms_max: the budget.
        answer_qps: the highest rate tried whose p99 interval lay wholly under the budget in a
            valid run; None when no rate passed.
        tried: every rate run, in the order run.
        resolution: the bisection stopped when the passing and the next non-passing rate were
            within this fraction of each other.
        evidence: one paragraph for reports.
    """

    p99_ms_max: float
    answer_qps: float | None
    tried: tuple[RateTrial, ...]
    resolution: float
    evidence: str
    percentile: float = SEARCH_PERCENTILE

    @property
    def lowest_failing_qps(self) -> float | None:
        """The lowest rate whose valid run proved p99 over the budget (FAIL), or None."""
        fails = [t.qps for t in self.tried if t.verdict == Verdict.FAIL.value]
        return min(fails) if fails else None

    def check(self, max_qps_min: float) -> Judgement:
        """Judge the gate's ``max_qps_min`` budget against this search.

        The highest passing rate is a lower bound of the true maximum rate and the lowest
        failing rate an upper bound, so they serve as the interval of
        :func:`optieval.stats.judge_min`: PASS when the answer is at least the budget,
        FAIL when a rate below the budget already failed, INCONCLUSIVE otherwise (the search
        did not resolve the budget's rate: tried rates there were inconclusive or invalid).

        Raises:
            InputError: a non-finite budget.
        """
        low = self.answer_qps if self.answer_qps is not None else 0.0
        judged = judge(
            "max_qps",
            "min",
            max_qps_min,
            value=self.answer_qps,
            low=low,
            high=self.lowest_failing_qps,
        )
        evidence = (
            f"highest rate with p{self.percentile:g} under {self.p99_ms_max:g} ms: "
            f"{_fmt_rate(self.answer_qps)}; lowest rate over it: "
            f"{_fmt_rate(self.lowest_failing_qps)}; budget >= {max_qps_min:g} qps "
            f"({len(self.tried)} rates tried)"
        )
        return replace(judged, evidence=evidence)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (inverse of :meth:`from_json`)."""
        return {
            "percentile": self.percentile,
            "p99_ms_max": self.p99_ms_max,
            "answer_qps": self.answer_qps,
            "lowest_failing_qps": self.lowest_failing_qps,
            "resolution": self.resolution,
            "tried": [t.to_json() for t in self.tried],
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MaxQpsResult:
        """Rebuild from :meth:`to_json` output (a bench cell's ``search``).

        Raises:
            InputError: a malformed block.
        """
        try:
            return cls(
                p99_ms_max=float(data["p99_ms_max"]),
                answer_qps=_opt(data.get("answer_qps")),
                tried=tuple(RateTrial.from_json(t) for t in data["tried"]),
                resolution=float(data.get("resolution", SEARCH_RESOLUTION)),
                evidence=str(data.get("evidence", "")),
                percentile=float(data.get("percentile", SEARCH_PERCENTILE)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"malformed max-qps search ({exc})", where="search") from exc


def max_qps_from_cell(cell: Any) -> MaxQpsResult:
    """Return the max-QPS search of a bench cell (a :class:`~optieval.bench.results.Cell` or
    its JSON) for the gate's ``max_qps_min`` key.

    Raises:
        InputError: the cell holds no search.
    """
    data = cell.get("search") if isinstance(cell, Mapping) else getattr(cell, "search", None)
    if not data:
        raise InputError(
            "this cell has no max-qps search",
            where="max_qps_min",
            hint="run the target with `scenario` server, `find_max_qps` and a `p99_ms_max` budget",
        )
    return MaxQpsResult.from_json(data)


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario cell produced.

    Attributes:
        spec: the scenario.
        batch: items per request.
        times_ms: per-request latency in issue order (server: from the scheduled arrival, so it
            includes queueing; censored queries, if the run stopped early, at their age then).
        summary: percentiles with intervals, mean, std, stability of ``times_ms``.
        throughput: items per second; for the parallel scenarios completions per second of wall
            time with its interval.
        elapsed_s: the measured window.
        first_inference_ms: the first call, timed alone.
        cold_start_ms: load time of the first instance plus its first call.
        warmup_iterations: discarded calls.
        instances: backend instances loaded.
        workers: threads calling the backend.
        issue_lag: the generator's lateness (server), else None.
        queue_wait_ms: server: mean wait between scheduled arrival and call start, with its
            interval, and the mean service time.
        reached_minimums: whether the duration and sample minimums were both met.
        stopped_early: why the run stopped before the end of its schedule, or None.
        search: the max-QPS search, when one ran (the other fields then describe the run at
            the answer, or the lowest rate tried when none passed).
        options: the backend's options.
        notes: sentences for reports.
    """

    spec: ScenarioSpec
    batch: int
    times_ms: tuple[float, ...]
    summary: LatencySummary
    throughput: ThroughputEstimate
    elapsed_s: float
    first_inference_ms: float
    cold_start_ms: float | None
    warmup_iterations: int
    instances: int
    workers: int
    issue_lag: IssueLag | None = None
    queue_wait_ms: dict[str, Any] | None = None
    reached_minimums: bool = True
    stopped_early: str | None = None
    search: MaxQpsResult | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """False when the generator could not keep its schedule."""
        return self.issue_lag is None or self.issue_lag.valid

    def cell_fields(self) -> dict[str, Any]:
        """The bench cell fields this result fills (issue 6 shape plus the scenario fields)."""
        summary = self.summary.to_json()
        params = self.spec.params()
        params.update(instances=self.instances, workers=self.workers)
        if self.queue_wait_ms is not None:
            params["queue_wait_ms"] = self.queue_wait_ms
        if self.stopped_early:
            params["stopped_early"] = self.stopped_early
        return {
            "samples": len(self.times_ms),
            "times_ms": list(self.times_ms),
            "latency_ms": summary["latency_ms"],
            "ci95_ms": summary.get("ci95_ms"),
            "throughput": self.throughput.to_json(),
            "stability": summary["stability"],
            "scenario": self.spec.kind,
            "scenario_params": params,
            "issue_lag_ms": None if self.issue_lag is None else self.issue_lag.to_json(),
            "search": None if self.search is None else self.search.to_json(),
        }


def _fmt_rate(qps: float | None) -> str:
    return "none" if qps is None else f"{qps:.4g} qps"


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "IssueLag",
    "MaxQpsResult",
    "RateTrial",
    "ScenarioResult",
    "max_qps_from_cell",
]
