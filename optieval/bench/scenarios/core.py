"""Load scenarios: latency under concurrency and arrival rates, and the highest rate that meets a
p99 budget (issue 11; MLPerf LoadGen's scenarios, perf_analyzer's sweeps, trtexec's streams and
idle time).

Scenarios (``ScenarioSpec.kind``):

* ``single-stream``: one request at a time, back to back (the bench default); with ``idle_ms``
  a pause after each request, so latency after idleness is measured too.
* ``offline``: ``streams`` backend instances (ONNX Runtime sessions), each driven by its own
  thread back to back; the answer is items per second with its interval.
* ``concurrency``: a closed loop keeping ``concurrency`` requests in flight; per-request latency
  percentiles and throughput at each level.
* ``server``: an open loop. Arrivals are a seeded Poisson process at ``qps``; each query's latency
  counts from its *scheduled* arrival, so queueing (and any lateness of the generator) is
  included.

The load generator issues on a precise schedule (``perf_counter_ns``: sleep until shortly before
the due time, then spin), records how late each query was issued (``issue lag``), and marks the
run **invalid** when it could not keep the schedule: its p99 issue lag exceeded the limit, or
planned queries were never issued. Backend calls run in worker threads, which is only a parallel
load when the call releases the GIL (ONNX Runtime, TensorRT and torch do); a backend that
declares ``releases_gil = False`` is refused for the parallel scenarios.

Throughput of the parallel scenarios is completions per second of wall time. Its interval: the
measured window is cut into equal time slices, and the mean of the per-slice rates gets the
batch-means interval of :func:`optieval.stats.latency.mean_ci_batch_means`. Percentiles and
their intervals come from :func:`optieval.stats.latency.summarize`.

The max-QPS search (:func:`find_max_qps`) runs the server scenario at a sequence of rates
(doubling or halving from a start, then geometric bisection) and returns the highest rate whose
p99 interval lies wholly under the budget (:func:`optieval.stats.verdict.judge_max` PASS), with
every rate tried. A rate whose run was invalid, or whose interval straddles the budget, does not
pass. A run that has already proven a FAIL (enough queries over the budget that the p99 interval's
lower bound must end above it) stops early instead of draining a growing backlog.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.bench.latency import MeasureSettings, measure
from optieval.errors import InputError
from optieval.runtime import Backend
from optieval.stats import (
    Judgement,
    LatencySummary,
    ThroughputEstimate,
    Verdict,
    judge,
    judge_max,
    mean_ci_batch_means,
    order_statistic_ranks,
    quantile_ci,
    summarize,
)

SINGLE_STREAM = "single-stream"
OFFLINE = "offline"
CONCURRENCY = "concurrency"
SERVER = "server"
SCENARIOS: tuple[str, ...] = (SINGLE_STREAM, OFFLINE, CONCURRENCY, SERVER)
PARALLEL_SCENARIOS: tuple[str, ...] = (OFFLINE, CONCURRENCY, SERVER)

DEFAULT_SERVER_WORKERS = 8
"""Threads that take queries off the server scenario's queue and call the backend: the most
queries in flight inside the backend at once (perf_analyzer's ``--max-threads``)."""

SPIN_NS = 300_000
"""The generator sleeps until this long before a query is due, then spins on the clock: on a
loaded Linux machine ``time.sleep`` overshoots by ~0.1 ms typically and more at p99."""

ISSUE_LAG_BEHIND_FLOOR_MS = 0.5
ISSUE_LAG_FLOOR_MS = 5.0
ISSUE_LAG_TAIL_SHARE = 0.5
ISSUE_LAG_GAP_FRACTION = 0.1
NOISY_LAG_MS = 1.0
"""A server run is **invalid** when the generator could not keep its schedule:

* planned queries were never issued; or
* the median issue lag, over the run or over its last tenth, exceeds max(0.5 ms, 10% of the mean
  gap between arrivals): the generator fell behind the offered rate, which would flatter the
  latency (less load than asked); or
* the p99 issue lag exceeds max(5 ms, 10% of the gap) *and* half the p99 latency: the tail
  measured is the generator's, not the backend's.

Otherwise a p99 lag over 1 ms is called **noisy** in the notes: a busy machine delays a sleeping
thread's wake-up by milliseconds now and then; such queries count their lateness in their latency
(measured from the scheduled arrival), so jitter makes the numbers pessimistic, never
flattering."""

RATE_METHOD = (
    "completions / wall time; interval from batch means of per-slice completion rates (Student t)"
)
RATE_SLICES = 150
SEARCH_PERCENTILE = 99.0
SEARCH_MAX_RUNS = 10
SEARCH_RESOLUTION = 0.1
SEARCH_MAX_QPS = 1e6
SEARCH_START_MAX_QPS = 1000.0
"""Without a start rate the search starts at half of one server's rate, at most this: a Python
generator keeps a schedule up to some thousands of queries per second; doubling goes on from
here when the rate passes."""

# Backends known to release the GIL inside their inference call (so worker threads load the
# backend in parallel) and whether one instance accepts calls from several threads at once
# (InferenceSession.run is thread-safe; a TensorRT execution context and a CUDA stream are not,
# so those get one instance per worker). A backend class may override both with class
# attributes ``releases_gil`` and ``concurrent_calls``.
_RELEASES_GIL = {
    "ort-cpu": True,
    "ort-cuda": True,
    "ort-trt": True,
    "tensorrt": True,
    "torch-cpu": True,
    "torch-cuda": True,
}
_CONCURRENT_CALLS = {"ort-cpu": True, "ort-cuda": True, "ort-trt": True, "torch-cpu": True}

BackendFactory = Callable[[], Backend]


# --------------------------------------------------------------------------------------------
# What to run


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario cell: the kind and its parameters.

    Attributes:
        kind: ``single-stream``, ``offline``, ``concurrency`` or ``server``.
        concurrency: requests kept in flight (``concurrency``; default 1).
        qps: offered rate in queries per second (``server``; the start rate of a search).
        streams: parallel backend instances (``offline``; default 1).
        idle_ms: pause after each request (``single-stream`` and ``concurrency``; default 0).
        workers: server threads calling the backend (default :data:`DEFAULT_SERVER_WORKERS`).
        seed: seed of the Poisson arrivals (``server``).
        max_issue_lag_ms: the p99 issue lag above which a server run is invalid (default
            max(1 ms, 10% of the mean gap between arrivals)).
        find_max_qps: search for the highest rate whose p99 interval is under ``p99_ms_max``.
        p99_ms_max: the search's budget in milliseconds.
    """

    kind: str = SINGLE_STREAM
    concurrency: int | None = None
    qps: float | None = None
    streams: int | None = None
    idle_ms: float = 0.0
    workers: int | None = None
    seed: int = 0
    max_issue_lag_ms: float | None = None
    find_max_qps: bool = False
    p99_ms_max: float | None = None

    @property
    def is_default(self) -> bool:
        """True for plain single-stream without idle time: the bench's classic timed loop."""
        return self.kind == SINGLE_STREAM and not self.idle_ms

    @property
    def label(self) -> str:
        """``server qps=200``, ``concurrency n=4``, ``server max-qps p99<=5ms``."""
        parts = [self.kind]
        if self.find_max_qps:
            parts.append(f"max-qps p99<={self.p99_ms_max:g}ms")
        elif self.kind == SERVER:
            parts.append(f"qps={self.qps:g}")
        if self.kind == CONCURRENCY:
            parts.append(f"n={self.concurrency or 1}")
        if self.kind == OFFLINE:
            parts.append(f"streams={self.streams or 1}")
        if self.idle_ms:
            parts.append(f"idle={self.idle_ms:g}ms")
        return " ".join(parts)

    def validate(self) -> ScenarioSpec:
        """Check every parameter, then raise one :class:`InputError` naming each bad option.

        Raises:
            InputError: unknown kind (``--scenario``), non-positive concurrency, rate, streams or
                workers, negative idle time, an option the kind does not use, a server run
                without a rate, or a search without a p99 budget.
        """
        problems: list[tuple[str, str]] = []
        if self.kind not in SCENARIOS:
            problems.append(
                (
                    "--scenario",
                    f"unknown scenario {self.kind!r} (choose from {', '.join(SCENARIOS)})",
                )
            )
        if self.concurrency is not None and self.concurrency < 1:
            problems.append(("--concurrency", f"{self.concurrency} must be at least 1"))
        if self.streams is not None and self.streams < 1:
            problems.append(("--streams", f"{self.streams} must be at least 1"))
        if self.workers is not None and self.workers < 1:
            problems.append(("workers", f"{self.workers} must be at least 1"))
        if self.qps is not None and not (math.isfinite(self.qps) and self.qps > 0):
            problems.append(("--qps", f"{self.qps:g} must be a positive rate"))
        if not (math.isfinite(self.idle_ms) and self.idle_ms >= 0):
            problems.append(("--idle-ms", f"{self.idle_ms:g} must not be negative"))
        if self.max_issue_lag_ms is not None and not self.max_issue_lag_ms > 0:
            problems.append(("max_issue_lag_ms", "must be positive"))
        if self.kind in SCENARIOS:
            if self.concurrency is not None and self.kind != CONCURRENCY:
                problems.append(("--concurrency", "applies to --scenario concurrency"))
            if self.streams is not None and self.kind != OFFLINE:
                problems.append(("--streams", "applies to --scenario offline"))
            if self.qps is not None and self.kind != SERVER:
                problems.append(("--qps", "applies to --scenario server"))
            if self.idle_ms and self.kind not in (SINGLE_STREAM, CONCURRENCY):
                problems.append(
                    (
                        "--idle-ms",
                        "applies to single-stream and concurrency (the "
                        "server's arrivals and offline's back-to-back "
                        "batches set their own gaps)",
                    )
                )
            if self.find_max_qps and self.kind != SERVER:
                problems.append(("--find-max-qps", "applies to --scenario server"))
            if self.kind == SERVER and self.qps is None and not self.find_max_qps:
                problems.append(("--qps", "the server scenario needs a rate (or --find-max-qps)"))
        if self.find_max_qps and self.p99_ms_max is None:
            problems.append(("--p99-ms-max", "--find-max-qps needs a p99 budget in ms"))
        if self.p99_ms_max is not None:
            if not (math.isfinite(self.p99_ms_max) and self.p99_ms_max > 0):
                problems.append(("--p99-ms-max", f"{self.p99_ms_max:g} must be positive"))
            elif not self.find_max_qps:
                problems.append(("--p99-ms-max", "is the budget of --find-max-qps"))
        if problems:
            wheres = list(dict.fromkeys(where for where, _ in problems))
            message = (
                problems[0][1]
                if len(problems) == 1
                else "; ".join(f"{where} {what}" for where, what in problems)
            )
            raise InputError(
                message,
                where=", ".join(wheres),
                hint="see Load scenarios in the README",
            )
        return self

    def params(self) -> dict[str, Any]:
        """The cell's ``scenario_params``: ``concurrency``, ``qps``, ``idle_ms`` and the rest."""
        out: dict[str, Any] = {
            "concurrency": self.concurrency
            if self.kind == CONCURRENCY
            else (1 if self.kind == SINGLE_STREAM else None),
            "qps": self.qps,
            "idle_ms": float(self.idle_ms),
        }
        if self.kind == OFFLINE:
            out["streams"] = self.streams or 1
        if self.kind == SERVER:
            out.update(workers=self.workers or DEFAULT_SERVER_WORKERS, seed=self.seed)
            if self.find_max_qps:
                out.update(find_max_qps=True, p99_ms_max=self.p99_ms_max)
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (inverse of :meth:`from_json`)."""
        return {
            "kind": self.kind,
            "concurrency": self.concurrency,
            "qps": self.qps,
            "streams": self.streams,
            "idle_ms": self.idle_ms,
            "workers": self.workers,
            "seed": self.seed,
            "max_issue_lag_ms": self.max_issue_lag_ms,
            "find_max_qps": self.find_max_qps,
            "p99_ms_max": self.p99_ms_max,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScenarioSpec:
        """Rebuild from :meth:`to_json` output (unknown keys ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_rate_list(values: Sequence[str] | None, option: str = "--qps") -> list[float]:
    """Parse ``--qps 100,250.5`` into positive finite floats.

    Raises:
        InputError: naming ``option`` for a value that is not a number or not positive.
    """
    rates: list[float] = []
    for value in values or []:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            try:
                rate = float(item)
            except ValueError:
                raise InputError(f"{item!r} is not a number", where=option) from None
            if not (math.isfinite(rate) and rate > 0):
                raise InputError(
                    f"{item} must be a positive rate (queries per second)", where=option
                )
            rates.append(rate)
    return rates


def scenario_specs(
    kind: str | None = None,
    *,
    concurrency: Sequence[int] = (),
    qps: Sequence[float] = (),
    streams: Sequence[int] = (),
    idle_ms: float = 0.0,
    find_max_qps: bool = False,
    p99_ms_max: float | None = None,
    seed: int = 0,
) -> list[ScenarioSpec]:
    """Expand the CLI's scenario options into one validated spec per cell.

    Args:
        kind: the scenario (None: single-stream, or server when a rate or search is given).
        concurrency: levels for ``concurrency`` (default ``[1]``): one cell each.
        qps: rates for ``server``: one cell each; with ``find_max_qps`` the first is the
            search's start rate.
        streams: stream counts for ``offline`` (default ``[1]``): one cell each.
        idle_ms: pause after each request.
        find_max_qps: run the max-QPS search instead of fixed rates.
        p99_ms_max: the search's p99 budget in ms (required with ``find_max_qps``).
        seed: seed of the arrivals.

    Raises:
        InputError: as :meth:`ScenarioSpec.validate`, naming the option.
    """
    if kind is None:
        kind = SERVER if (qps or find_max_qps) else SINGLE_STREAM
    common: dict[str, Any] = {
        "idle_ms": idle_ms,
        "seed": seed,
        "find_max_qps": find_max_qps,
        "p99_ms_max": p99_ms_max,
    }
    # Options that do not belong to the kind are still passed on, so validate() names them.
    extra: dict[str, Any] = {}
    if kind != CONCURRENCY and concurrency:
        extra["concurrency"] = concurrency[0]
    if kind != OFFLINE and streams:
        extra["streams"] = streams[0]
    if kind != SERVER and qps:
        extra["qps"] = qps[0]
    if kind == CONCURRENCY:
        specs = [ScenarioSpec(kind, concurrency=n, **common, **extra) for n in concurrency or [1]]
    elif kind == OFFLINE:
        specs = [ScenarioSpec(kind, streams=n, **common, **extra) for n in streams or [1]]
    elif kind == SERVER and find_max_qps:
        specs = [ScenarioSpec(kind, qps=qps[0] if qps else None, **common, **extra)]
    elif kind == SERVER:
        rates: list[float | None] = [*qps] or [None]
        specs = [ScenarioSpec(kind, qps=q, **common, **extra) for q in rates]
    else:
        specs = [ScenarioSpec(kind, **common, **extra)]
    for spec in specs:
        spec.validate()
    return specs


def _backend_traits(backend: type[Backend] | Backend | str) -> tuple[str, bool, bool]:
    cls: Any
    if isinstance(backend, str):
        from optieval.runtime import backend_class

        name, cls = backend, backend_class(backend)
    else:
        cls = backend if isinstance(backend, type) else type(backend)
        name = getattr(cls, "name", cls.__name__)
    releases = getattr(cls, "releases_gil", None)
    shared = getattr(cls, "concurrent_calls", None)
    return (
        name,
        _RELEASES_GIL.get(name, True) if releases is None else bool(releases),
        _CONCURRENT_CALLS.get(name, False) if shared is None else bool(shared),
    )


def check_scenario_support(backend: type[Backend] | Backend | str, spec: ScenarioSpec) -> None:
    """Raise :class:`InputError` (``--scenario``) when ``backend`` cannot run ``spec``.

    The parallel scenarios call the backend from several threads; a backend whose call holds
    Python's GIL would make them measure the interpreter, not the backend.

    Args:
        backend: a backend name (``ort-cpu``), class or instance.
        spec: the scenario.
    """
    name, releases_gil, _ = _backend_traits(backend)
    if spec.kind in PARALLEL_SCENARIOS and not releases_gil:
        raise InputError(
            f"backend {name} cannot run the {spec.kind} scenario: its inference call holds "
            "Python's GIL, so parallel requests would measure the interpreter, not the backend",
            where="--scenario",
            hint="use --scenario single-stream for this backend",
        )


# --------------------------------------------------------------------------------------------
# Results


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
        :func:`optieval.stats.verdict.judge_min`: PASS when the answer is at least the budget,
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
            hint="run the target with --scenario server --find-max-qps --p99-ms-max L",
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


# --------------------------------------------------------------------------------------------
# Clock helpers


def sleep_until(target_ns: int, spin_ns: int = SPIN_NS) -> int:
    """Wait until ``perf_counter_ns() >= target_ns``: sleep (releasing the GIL) until
    ``spin_ns`` before it, then spin. Returns the time it woke."""
    perf = time.perf_counter_ns
    while True:
        now = perf()
        remaining = target_ns - now
        if remaining <= 0:
            return now
        if remaining > spin_ns:
            time.sleep((remaining - spin_ns) / 1e9)


def _rate_estimate(
    ends_ns: npt.NDArray[np.int64], t0: int, t1: int, batch: int, confidence: float = 0.95
) -> ThroughputEstimate:
    """Completions in ``[t0, t1]`` per second times ``batch``, with a batch-means interval over
    equal time slices."""
    span = max(1, t1 - t0)
    inside = ends_ns[(ends_ns >= t0) & (ends_ns <= t1)]
    point = len(inside) * batch / (span / 1e9)
    edges = np.linspace(t0, t1, RATE_SLICES + 1)
    counts, _ = np.histogram(inside, bins=edges)
    rates = counts * batch / (span / RATE_SLICES / 1e9)
    ci = mean_ci_batch_means(rates, confidence)
    if ci is None or len(inside) < 2:
        return ThroughputEstimate(point, None, None, confidence, batch, 0, RATE_METHOD)
    low, high, batches = ci
    return ThroughputEstimate(point, max(0.0, low), high, confidence, batch, batches, RATE_METHOD)


# --------------------------------------------------------------------------------------------
# Instances


class _Instances:
    """Load ``count`` backends from the factory and bind their runners; close them on exit."""

    def __init__(self, factory: BackendFactory, feeds: Mapping[str, np.ndarray], count: int):
        self.factory, self.feeds, self.count = factory, feeds, count
        self.backends: list[Backend] = []
        self.runners: list[Callable[[], object]] = []

    def __enter__(self) -> _Instances:
        try:
            for _ in range(self.count):
                backend = self.factory()
                self.backends.append(backend)
                backend.load()
                self.runners.append(backend.runner(self.feeds))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for backend in self.backends:
            backend.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cold_load_ms(self) -> float | None:
        return self.backends[0].cold_start_ms if self.backends else None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.backends[0].options) if self.backends else {}


def _warm_up(
    runners: Sequence[Callable[[], object]], settings: MeasureSettings, idle_ns: int = 0
) -> tuple[float, int]:
    """Time the first call alone, then warm every runner up by time and count; returns the
    first call's milliseconds and the warm-up calls made."""
    perf = time.perf_counter_ns
    t0 = perf()
    runners[0]()
    first_ms = (perf() - t0) / 1e6
    warm = 0
    for run in runners:
        end = perf() + int(settings.warmup_s * 1e9 / len(runners))
        count = 0
        while count < max(1, math.ceil(settings.warmup_iters / len(runners))) or perf() < end:
            run()
            count += 1
            if idle_ns:
                sleep_until(perf() + idle_ns)
        warm += count
    return first_ms, warm


# --------------------------------------------------------------------------------------------
# The loops


def _single_stream_idle(
    run: Callable[[], object], settings: MeasureSettings, idle_ns: int
) -> tuple[npt.NDArray[np.int64], float, bool]:
    """Back to back with an idle pause after each call; returns latencies (ns), the measured
    window's seconds and whether the minimums were met."""
    perf = time.perf_counter_ns
    need = settings.required_samples()
    min_ns, max_ns = int(settings.duration_s * 1e9), int(settings.max_duration_s * 1e9)
    times: list[int] = []
    start = perf()
    while True:
        a = perf()
        run()
        b = perf()
        times.append(b - a)
        elapsed = b - start
        if (elapsed >= min_ns and len(times) >= need) or elapsed >= max_ns:
            break
        sleep_until(b + idle_ns)
    elapsed_s = (perf() - start) / 1e9
    met = len(times) >= need and elapsed_s >= settings.duration_s - 1e-9
    return np.asarray(times, dtype=np.int64), elapsed_s, met


@dataclass
class _ClosedLoopRun:
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    t0: int
    t_stop: int
    met: bool


def _closed_loop(
    runners: Sequence[Callable[[], object]], settings: MeasureSettings, idle_ns: int = 0
) -> _ClosedLoopRun:
    """One thread per runner, each calling back to back (with ``idle_ns`` after each), until the
    stopping rule holds for the calls of all threads together."""
    perf = time.perf_counter_ns
    need = settings.required_samples()
    min_ns, max_ns = int(settings.duration_s * 1e9), int(settings.max_duration_s * 1e9)
    records: list[tuple[int, int]] = []
    stop = threading.Event()
    go = threading.Barrier(len(runners) + 1)
    errors: list[BaseException] = []

    def worker(run: Callable[[], object]) -> None:
        try:
            go.wait()
        except threading.BrokenBarrierError:
            return
        append = records.append
        try:
            while not stop.is_set():
                a = perf()
                run()
                b = perf()
                append((a, b))
                if idle_ns:
                    sleep_until(b + idle_ns)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    t0 = perf()
    go.wait()
    met = False
    while not errors:
        # The watcher wakes rarely: it only decides when to stop, the workers time themselves.
        time.sleep(0.005)
        elapsed = perf() - t0
        if elapsed >= min_ns and len(records) >= need:
            met = True
            break
        if elapsed >= max_ns:
            break
    t_stop = perf()
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    records.sort()
    pairs = np.asarray(records, dtype=np.int64).reshape(-1, 2)
    return _ClosedLoopRun(pairs[:, 0], pairs[:, 1], t0, t_stop, met)


@dataclass
class _OpenLoopRun:
    sched: npt.NDArray[np.int64]
    issued: npt.NDArray[np.int64]  # 0: never issued
    starts: npt.NDArray[np.int64]  # 0: never started (censored)
    ends: npt.NDArray[np.int64]  # for censored queries: the time the run stopped
    censored: npt.NDArray[np.bool_]
    planned: int
    t0: int
    behind: int  # planned queries the generator had not issued when it gave up
    stopped_early: str | None
    met: bool


PROVEN_FAIL = "proven FAIL"


def _proven(over: int, budget_ms: float | None) -> str:
    return (
        f"{PROVEN_FAIL}: {over} queries over the {budget_ms or 0:g} ms budget put the p99 "
        "interval of the whole schedule above it"
    )


def _planned_queries(qps: float, settings: MeasureSettings) -> int:
    return max(1, settings.required_samples(), math.ceil(qps * settings.duration_s))


def _open_loop(
    runners: Sequence[Callable[[], object]],
    qps: float,
    settings: MeasureSettings,
    *,
    workers: int,
    seed: int,
    lag_limit_ns: int,
    budget_ms: float | None = None,
) -> _OpenLoopRun:
    """Issue Poisson arrivals at ``qps`` from this thread into a FIFO queue served by
    ``workers`` threads (worker k calls ``runners[k % len(runners)]``).

    With ``budget_ms`` the run stops as soon as enough queries are known to exceed it that the
    p99 interval's lower bound of the full schedule must lie above the budget (a proven FAIL);
    queries still queued then are censored at their age.
    """
    perf = time.perf_counter_ns
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.exponential(1e9 / qps, size=_planned_queries(qps, settings)))
    # The schedule must end within --max-duration (fewer queries then support fewer
    # percentiles, and the summary says so).
    offsets = offsets[offsets <= settings.max_duration_s * 1e9].astype(np.int64)
    if offsets.size == 0:
        offsets = np.zeros(1, dtype=np.int64)
    planned = int(offsets.size)
    issued = np.zeros(planned, dtype=np.int64)
    starts = np.zeros(planned, dtype=np.int64)
    ends = np.zeros(planned, dtype=np.int64)
    censored = np.zeros(planned, dtype=bool)
    started: list[int] = []
    over: list[int] = []
    abort = threading.Event()
    errors: list[BaseException] = []
    jobs: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    budget_ns = None if budget_ms is None else int(budget_ms * 1e6)
    fail_count: int | None = None
    if budget_ns is not None:
        ranks = order_statistic_ranks(planned, SEARCH_PERCENTILE / 100.0)
        # x(l) > budget for the full schedule once n - l + 1 queries exceed it.
        fail_count = None if ranks is None else planned - ranks[0] + 1

    def worker(run: Callable[[], object]) -> None:
        get = jobs.get
        while True:
            i = get()
            if i is None:
                return
            started.append(i)
            if abort.is_set():
                censored[i] = True
                continue
            try:
                a = perf()
                run()
                b = perf()
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)
                abort.set()
                continue
            starts[i], ends[i] = a, b
            if budget_ns is not None and b - sched[i] > budget_ns:
                over.append(i)

    threads = [
        threading.Thread(target=worker, args=(runners[k % len(runners)],), daemon=True)
        for k in range(workers)
    ]
    for thread in threads:
        thread.start()

    def proven_fail(now: int, count: int) -> bool:
        if fail_count is None or budget_ns is None:
            return False
        # Queued (not yet started) queries older than the budget will exceed it too; FIFO
        # order makes the started ones a prefix of the issued ones.
        waiting = int(np.searchsorted(sched[:count], now - budget_ns)) - len(started)
        return len(over) + max(0, waiting) >= fail_count

    t0 = perf() + 1_000_000  # a millisecond to get the first arrival onto the schedule
    sched: npt.NDArray[np.int64] = (t0 + offsets).astype(np.int64)
    deadline = t0 + int(settings.max_duration_s * 1e9)
    stopped: str | None = None
    count = 0
    for count in range(planned):
        due = int(sched[count])
        now = sleep_until(due)
        if now > deadline + lag_limit_ns:
            stopped = "the generator fell behind its schedule past --max-duration"
            break
        if errors:
            break
        if proven_fail(now, count):
            stopped = _proven(len(over), budget_ms)
            abort.set()
            break
        issued[count] = now
        jobs.put(count)
    else:
        count = planned
    behind = planned - count if stopped and not abort.is_set() else 0

    # Drain: let started calls finish, but stop waiting once the run is capped or proven.
    for _ in threads:
        jobs.put(None)
    while any(t.is_alive() for t in threads):
        now = perf()
        if not abort.is_set():
            if now > deadline:
                stopped = stopped or "stopped at --max-duration with queries still queued"
                abort.set()
            elif proven_fail(now, count):
                stopped = _proven(len(over), budget_ms)
                abort.set()
        time.sleep(0.002)
    stop_ns = perf()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    issued_mask = issued > 0
    ends = np.where(censored, stop_ns, ends)
    met = bool(issued_mask.sum() >= settings.required_samples() and not stopped)
    return _OpenLoopRun(
        sched[issued_mask],
        issued[issued_mask],
        starts[issued_mask],
        ends[issued_mask],
        censored[issued_mask],
        planned,
        t0,
        behind,
        stopped,
        met,
    )


# --------------------------------------------------------------------------------------------
# Public entry points


def _infer_batch(feeds: Mapping[str, np.ndarray]) -> int:
    for array in feeds.values():
        if array.ndim:
            return int(array.shape[0])
    return 1


def _issue_lag(
    run: _OpenLoopRun, qps: float, spec: ScenarioSpec, p99_latency_ms: float
) -> IssueLag:
    gap_ms = 1e3 / qps
    limit = spec.max_issue_lag_ms or max(ISSUE_LAG_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * gap_ms)
    behind_limit = max(ISSUE_LAG_BEHIND_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * gap_ms)
    lags_ms = (run.issued - run.sched).astype(np.float64) / 1e6
    if lags_ms.size == 0:
        return IssueLag(
            0.0,
            0.0,
            0.0,
            0.0,
            limit,
            behind_limit,
            0,
            run.planned,
            False,
            "invalid: nothing was issued",
        )
    lags_ms = np.maximum(lags_ms, 0.0)
    p50 = quantile_ci(lags_ms, 0.5).point
    p99 = quantile_ci(lags_ms, 0.99).point
    tail = lags_ms[-max(1, lags_ms.size // 10) :]
    p50_last = quantile_ci(tail, 0.5).point
    problems = []
    if run.behind:
        problems.append(f"{run.behind} of {run.planned} planned queries were never issued")
    if max(p50, p50_last) > behind_limit:
        problems.append(
            f"median issue lag {max(p50, p50_last):.3g} ms (over the run or its last tenth) "
            f"exceeds {behind_limit:.3g} ms: it fell behind the offered rate"
        )
    if p99 > limit and p99 > ISSUE_LAG_TAIL_SHARE * p99_latency_ms:
        problems.append(
            f"p99 issue lag {p99:.3g} ms exceeds {limit:.3g} ms and is over "
            f"{ISSUE_LAG_TAIL_SHARE:.0%} of the p99 latency ({p99_latency_ms:.3g} ms): the tail "
            "is the generator's"
        )
    valid = not problems
    reason = (
        f"the generator kept its schedule (issue lag p50 {p50:.3g} ms, p99 {p99:.3g} ms)"
        if valid
        else f"invalid: the load generator could not keep its schedule at {qps:g} qps: "
        f"{'; '.join(problems)}; the numbers describe the generator, not the backend"
    )
    return IssueLag(
        p50,
        p99,
        float(lags_ms.max()),
        float(lags_ms.mean()),
        limit,
        behind_limit,
        int(lags_ms.size),
        run.planned,
        valid,
        reason,
    )


def _server_result(
    spec: ScenarioSpec,
    run: _OpenLoopRun,
    batch: int,
    qps: float,
    inst: _Instances,
    workers: int,
    first_ms: float,
    warm: int,
) -> ScenarioResult:
    latency_ms = (run.ends - run.sched).astype(np.float64) / 1e6
    latency_ms = np.maximum(latency_ms, 0.0)
    summary = summarize(latency_ms, batch=batch)
    done = ~run.censored
    last_issue = int(run.issued.max()) if run.issued.size else run.t0
    throughput = _rate_estimate(run.ends[done], run.t0, max(last_issue, run.t0 + 1), batch)
    waits = (run.starts[done] - run.sched[done]).astype(np.float64) / 1e6
    service = (run.ends[done] - run.starts[done]).astype(np.float64) / 1e6
    wait_ci = mean_ci_batch_means(waits) if waits.size else None
    queue_wait = {
        "mean": float(waits.mean()) if waits.size else None,
        "ci": None if wait_ci is None else [wait_ci[0], wait_ci[1]],
        "service_mean_ms": float(service.mean()) if service.size else None,
    }
    lag = _issue_lag(run, qps, spec, summary.percentile(99).point)
    notes = []
    if not lag.valid:
        notes.append(lag.reason)
    elif lag.p99_ms > NOISY_LAG_MS:
        notes.append(
            f"noisy: the generator issued 1% of queries over {lag.p99_ms:.3g} ms late "
            "(a busy machine?); their latency includes it"
        )
    if run.stopped_early:
        notes.append(
            f"stopped early: {run.stopped_early}; {int(run.censored.sum())} queued "
            "queries counted at their age then (lower bounds)"
        )
    elapsed_s = (max(int(run.ends.max()), run.t0) - run.t0) / 1e9 if run.ends.size else 0.0
    return ScenarioResult(
        spec=spec,
        batch=batch,
        times_ms=tuple(float(t) for t in latency_ms),
        summary=summary,
        throughput=throughput,
        elapsed_s=elapsed_s,
        first_inference_ms=first_ms,
        cold_start_ms=None if inst.cold_load_ms is None else inst.cold_load_ms + first_ms,
        warmup_iterations=warm,
        instances=len(inst.runners),
        workers=workers,
        issue_lag=lag,
        queue_wait_ms=queue_wait,
        reached_minimums=run.met,
        stopped_early=run.stopped_early,
        options=inst.options,
        notes=tuple(notes),
    )


def run_scenario(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    scenario: ScenarioSpec,
    settings: MeasureSettings | None = None,
    *,
    batch: int | None = None,
) -> ScenarioResult:
    """Run one scenario cell.

    Args:
        backend_factory: returns a new (unloaded or loaded) backend each call; the parallel
            scenarios call it once per stream or worker that needs its own instance.
        feeds: one request's inputs (checked once by the backend).
        scenario: what to run (validated here).
        settings: warm-up and stopping rule (defaults as :class:`MeasureSettings`); the server
            scenario schedules max(required samples, qps x duration) arrivals, capped to fit
            in ``max_duration_s``.
        batch: items per request (default: the first input's leading dimension).

    Returns:
        A :class:`ScenarioResult`; ``valid`` is False when the generator could not keep its
        schedule.

    Raises:
        InputError: a bad scenario or settings, or a scenario the backend cannot run.
        BackendError: from the backend.
    """
    scenario.validate()
    settings = (settings or MeasureSettings()).validate()
    batch = batch or _infer_batch(feeds)
    if scenario.find_max_qps:
        return _run_search(backend_factory, feeds, scenario, settings, batch)
    first = backend_factory()
    check_scenario_support(first, scenario)
    _, _, shared = _backend_traits(first)
    kind = scenario.kind
    idle_ns = int(scenario.idle_ms * 1e6)
    if kind == SINGLE_STREAM:
        count = 1
    elif kind == OFFLINE:
        count = scenario.streams or 1
    elif kind == CONCURRENCY:
        count = 1 if shared else (scenario.concurrency or 1)
    else:
        count = 1 if shared else (scenario.workers or DEFAULT_SERVER_WORKERS)
    pending = [first]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    with _Instances(factory, feeds, count) as inst:
        if kind == SERVER:
            return _server_cell(scenario, inst, settings, batch, float(scenario.qps or 0.0))
        if kind == SINGLE_STREAM and not idle_ns:
            m = measure(inst.runners, settings)
            return _closed_result(
                scenario,
                m.times_ns,
                None,
                batch,
                m.elapsed_s,
                m.first_inference_ms,
                m.warmup_iterations,
                inst,
                1,
                m.reached_minimums,
            )
        first_ms, warm = _warm_up(inst.runners, settings, idle_ns)
        if kind == SINGLE_STREAM:
            times, elapsed_s, met = _single_stream_idle(inst.runners[0], settings, idle_ns)
            return _closed_result(
                scenario, times, None, batch, elapsed_s, first_ms, warm, inst, 1, met
            )
        threads = (scenario.streams or 1) if kind == OFFLINE else (scenario.concurrency or 1)
        runners = [inst.runners[k % len(inst.runners)] for k in range(threads)]
        loop = _closed_loop(runners, settings, idle_ns)
        return _closed_result(
            scenario,
            loop.ends - loop.starts,
            loop,
            batch,
            (loop.t_stop - loop.t0) / 1e9,
            first_ms,
            warm,
            inst,
            threads,
            loop.met,
        )


def _closed_result(
    spec: ScenarioSpec,
    times_ns: npt.NDArray[np.int64],
    loop: _ClosedLoopRun | None,
    batch: int,
    elapsed_s: float,
    first_ms: float,
    warm: int,
    inst: _Instances,
    workers: int,
    met: bool,
) -> ScenarioResult:
    times_ms = times_ns.astype(np.float64) / 1e6
    summary = summarize(times_ms, batch=batch)
    throughput = (
        summary.throughput
        if loop is None
        else _rate_estimate(loop.ends, loop.t0, loop.t_stop, batch)
    )
    notes = []
    if not met:
        notes.append(
            f"stopped at --max-duration with {len(times_ms)} samples, fewer than the minimums asked"
        )
    return ScenarioResult(
        spec=spec,
        batch=batch,
        times_ms=tuple(float(t) for t in times_ms),
        summary=summary,
        throughput=throughput,
        elapsed_s=elapsed_s,
        first_inference_ms=first_ms,
        cold_start_ms=None if inst.cold_load_ms is None else inst.cold_load_ms + first_ms,
        warmup_iterations=warm,
        instances=len(inst.runners),
        workers=workers,
        reached_minimums=met,
        options=inst.options,
        notes=tuple(notes),
    )


def _server_cell(
    spec: ScenarioSpec,
    inst: _Instances,
    settings: MeasureSettings,
    batch: int,
    qps: float,
    *,
    warm_up: bool = True,
    budget_ms: float | None = None,
    warm: tuple[float, int] = (0.0, 0),
) -> ScenarioResult:
    if warm_up:
        warm = _warm_up(inst.runners, settings)
    workers = spec.workers or DEFAULT_SERVER_WORKERS
    lag_ms = spec.max_issue_lag_ms or max(ISSUE_LAG_FLOOR_MS, ISSUE_LAG_GAP_FRACTION * 1e3 / qps)
    run = _open_loop(
        inst.runners,
        qps,
        settings,
        workers=workers,
        seed=spec.seed,
        lag_limit_ns=int(lag_ms * 1e6),
        budget_ms=budget_ms,
    )
    return _server_result(replace(spec, qps=qps), run, batch, qps, inst, workers, *warm)


def _trial(result: ScenarioResult, budget_ms: float) -> RateTrial:
    qps = float(result.spec.qps or 0.0)
    p99 = result.summary.percentile(SEARCH_PERCENTILE)
    lag = result.issue_lag
    if not result.valid:
        verdict = "INVALID"
        evidence = lag.reason if lag else "invalid run"
    elif result.stopped_early and result.stopped_early.startswith(PROVEN_FAIL):
        verdict = Verdict.FAIL.value
        evidence = f"{qps:.4g} qps: FAIL, {result.stopped_early}"
    else:
        verdict = judge_max(p99.low, p99.high, budget_ms).value
        interval = "no interval" if p99.interval is None else f"[{p99.low:.4g}, {p99.high:.4g}]"
        evidence = (
            f"{qps:.4g} qps: p99 {p99.point:.4g} ms {interval} ({p99.n} queries), "
            f"budget {budget_ms:g} ms: {verdict}"
        )
    return RateTrial(
        qps=qps,
        verdict=verdict,
        p99_ms=p99.point,
        low=p99.low,
        high=p99.high,
        samples=p99.n,
        achieved_qps=result.throughput.items_per_s / result.batch,
        issue_lag_p99_ms=None if lag is None else lag.p99_ms,
        stopped_early=result.stopped_early,
        evidence=evidence,
    )


def _run_search(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    spec: ScenarioSpec,
    settings: MeasureSettings,
    batch: int,
) -> ScenarioResult:
    budget = float(spec.p99_ms_max or 0.0)
    first = backend_factory()
    check_scenario_support(first, spec)
    _, _, shared = _backend_traits(first)
    workers = spec.workers or DEFAULT_SERVER_WORKERS
    pending = [first]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    with _Instances(factory, feeds, 1 if shared else workers) as inst:
        first_ms, warm = _warm_up(inst.runners, settings)
        # Start at half the rate one server would sustain, from a short single-stream probe.
        probe = []
        for _ in range(20):
            a = time.perf_counter_ns()
            inst.runners[0]()
            probe.append(time.perf_counter_ns() - a)
        service_s = max(float(np.median(probe)) / 1e9, 1e-6)
        rate = spec.qps or min(SEARCH_START_MAX_QPS, 0.5 / service_s)
        results: dict[float, ScenarioResult] = {}
        trials: list[RateTrial] = []

        def attempt(qps: float) -> bool:
            result = _server_cell(
                spec,
                inst,
                settings,
                batch,
                qps,
                warm_up=False,
                budget_ms=budget,
                warm=(first_ms, warm),
            )
            results[qps] = result
            trials.append(_trial(result, budget))
            return trials[-1].passed

        lo: float | None = None
        hi: float | None = None
        if attempt(rate):
            lo = rate
            while len(trials) < SEARCH_MAX_RUNS and rate * 2 <= SEARCH_MAX_QPS:
                rate *= 2
                if not attempt(rate):
                    hi = rate
                    break
                lo = rate
        else:
            hi = rate
            floor = rate / 64
            # Lower rates fit fewer queries into --max-duration: once a rate had too few for a
            # p99 interval, halving again cannot pass.
            while (
                len(trials) < SEARCH_MAX_RUNS
                and rate / 2 >= floor
                and not _too_few_queries(trials[-1])
            ):
                rate /= 2
                if attempt(rate):
                    lo = rate
                    break
                hi = rate
        while (
            lo is not None
            and hi is not None
            and hi / lo > 1 + SEARCH_RESOLUTION
            and len(trials) < SEARCH_MAX_RUNS
        ):
            mid = math.sqrt(lo * hi)
            if attempt(mid):
                lo = mid
            else:
                hi = mid
    search = _search_result(budget, lo, trials)
    shown = results[lo] if lo is not None else results[min(results)]
    notes = [*shown.notes]
    if lo is None:
        notes.append(
            f"no rate tried kept p99 under {budget:g} ms; the latency fields describe "
            f"the lowest rate tried ({min(results):.4g} qps)"
        )
    return replace(shown, spec=replace(spec, qps=shown.spec.qps), search=search, notes=tuple(notes))


def _too_few_queries(trial: RateTrial) -> bool:
    """A valid, complete run that could not support a p99 interval: lower rates fit even fewer
    queries into --max-duration."""
    return trial.verdict == Verdict.INCONCLUSIVE.value and trial.low is None


def _fmt_rate(qps: float | None) -> str:
    return "none" if qps is None else f"{qps:.4g} qps"


def _search_result(budget: float, answer: float | None, trials: list[RateTrial]) -> MaxQpsResult:
    above = sorted((t for t in trials if answer is None or t.qps > answer), key=lambda t: t.qps)
    if answer is None:
        evidence = f"no rate kept the p99 interval under {budget:g} ms; rates tried: " + "; ".join(
            t.evidence for t in trials
        )
    else:
        best = next(t for t in trials if t.qps == answer)
        evidence = f"highest rate with the p99 interval under {budget:g} ms: {best.evidence}"
        if above:
            evidence += f"; next rate up: {above[0].evidence}"
    if any(t.verdict == "INVALID" for t in trials):
        evidence += (
            "; some rates were invalid (the generator could not keep the schedule), "
            "so the answer may be limited by the generator"
        )
    return MaxQpsResult(budget, answer, tuple(trials), SEARCH_RESOLUTION, evidence)


def find_max_qps(
    backend_factory: BackendFactory,
    feeds: Mapping[str, np.ndarray],
    p99_ms_max: float,
    settings: MeasureSettings | None = None,
    *,
    start_qps: float | None = None,
    workers: int | None = None,
    seed: int = 0,
    batch: int | None = None,
) -> MaxQpsResult:
    """Search for the highest Poisson arrival rate whose p99 latency interval (from scheduled
    arrival) lies wholly under ``p99_ms_max``; the gate's ``max_qps_min`` judges the answer with
    :meth:`MaxQpsResult.check`.

    Args:
        backend_factory, feeds, settings, batch: as :func:`run_scenario`.
        p99_ms_max: the budget in milliseconds (> 0).
        start_qps: the first rate (default: half of one server's rate, 0.5 / median service
            time of a short probe).
        workers: server threads (default :data:`DEFAULT_SERVER_WORKERS`).
        seed: seed of the arrivals.

    Returns:
        A :class:`MaxQpsResult` with the answer and every rate tried.

    Raises:
        InputError: a non-positive budget or rate (naming ``--p99-ms-max`` / ``--qps``).
    """
    spec = ScenarioSpec(
        SERVER, qps=start_qps, workers=workers, seed=seed, find_max_qps=True, p99_ms_max=p99_ms_max
    )
    result = run_scenario(backend_factory, feeds, spec, settings, batch=batch)
    assert result.search is not None
    return result.search


def scenario_cell(
    request: Any,
    backend: Backend,
    feeds: Mapping[str, np.ndarray],
    backend_factory: BackendFactory,
    *,
    shapes: dict[str, list[int]],
    artifact: dict[str, Any],
    artifact_bytes: int | None,
    notes: Sequence[str] = (),
) -> Any:
    """Run ``request.scenario`` for the bench runner and return its ``ok`` cell.

    Args:
        request: the runner's ``CellRequest`` (backend, precision, batch, settings, scenario).
        backend: the runner's loaded instance, used as the first instance.
        feeds: one request's inputs.
        backend_factory: makes further instances with the cell's options.
        shapes, artifact, artifact_bytes, notes: the cell fields the runner resolved.
    """
    import resource
    import sys

    from optieval.bench.results import STATUS_OK, Cell

    pending = [backend]

    def factory() -> Backend:
        return pending.pop() if pending else backend_factory()

    result = run_scenario(factory, feeds, request.scenario, request.settings, batch=request.batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    peak_mb = round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)
    return Cell(
        backend=request.backend,
        precision=request.precision,
        batch=request.batch,
        shapes=shapes,
        status=STATUS_OK,
        cold_start_ms=result.cold_start_ms,
        memory={"peak_rss_mb": peak_mb},
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        options={**result.options, "warmup_iterations": result.warmup_iterations},
        notes=[*notes, *result.notes],
        **result.cell_fields(),
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "CONCURRENCY",
    "DEFAULT_SERVER_WORKERS",
    "OFFLINE",
    "SCENARIOS",
    "SERVER",
    "SINGLE_STREAM",
    "IssueLag",
    "MaxQpsResult",
    "RateTrial",
    "ScenarioResult",
    "ScenarioSpec",
    "check_scenario_support",
    "find_max_qps",
    "max_qps_from_cell",
    "parse_rate_list",
    "run_scenario",
    "scenario_cell",
    "scenario_specs",
    "sleep_until",
]
