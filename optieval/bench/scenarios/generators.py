"""The load generators: a precise clock, the backend instances of a cell, warm-up, and the three
loops (back to back with idle time, closed loop at a concurrency, open loop of Poisson
arrivals), plus the completion rate of a parallel run with its interval."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optieval.bench.latency import MeasureSettings
from optieval.bench.scenarios.spec import SEARCH_PERCENTILE, BackendFactory
from optieval.runtime import Backend
from optieval.stats import ThroughputEstimate, mean_ci_batch_means, order_statistic_ranks

SPIN_NS = 300_000
"""The generator sleeps until this long before a query is due, then spins on the clock: on a
loaded Linux machine ``time.sleep`` overshoots by ~0.1 ms typically and more at p99."""

RATE_METHOD = (
    "completions / wall time; interval from batch means of per-slice completion rates (Student t)"
)
RATE_SLICES = 150


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


def rate_estimate(
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
    # The slices' mean is the point estimate up to rounding; an interval of zero width (every
    # slice completed the same count) must still hold the point it was rounded from.
    low, high = max(0.0, min(low, point)), max(high, point)
    return ThroughputEstimate(point, low, high, confidence, batch, batches, RATE_METHOD)


class Instances:
    """Load ``count`` backends from the factory and bind their runners; close them on exit."""

    def __init__(self, factory: BackendFactory, feeds: Mapping[str, np.ndarray], count: int):
        self.factory, self.feeds, self.count = factory, feeds, count
        self.backends: list[Backend] = []
        self.runners: list[Callable[[], object]] = []

    def __enter__(self) -> Instances:
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
        """Close every backend loaded so far."""
        for backend in self.backends:
            backend.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cold_load_ms(self) -> float | None:
        """The first instance's load time, or None."""
        return self.backends[0].cold_start_ms if self.backends else None

    @property
    def options(self) -> dict[str, Any]:
        """The first instance's backend options."""
        return dict(self.backends[0].options) if self.backends else {}


def warm_up_runners(
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


def single_stream_idle(
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
class ClosedLoopRun:
    """A closed loop's calls (start and end, ns, sorted by start), its window and whether the
    minimums were met."""

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    t0: int
    t_stop: int
    met: bool


def closed_loop(
    runners: Sequence[Callable[[], object]], settings: MeasureSettings, idle_ns: int = 0
) -> ClosedLoopRun:
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
    return ClosedLoopRun(pairs[:, 0], pairs[:, 1], t0, t_stop, met)


@dataclass
class OpenLoopRun:
    """An open loop's queries (scheduled, issued, started and ended, ns), which were censored,
    and how the run ended."""

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


def open_loop(
    runners: Sequence[Callable[[], object]],
    qps: float,
    settings: MeasureSettings,
    *,
    workers: int,
    seed: int,
    lag_limit_ns: int,
    budget_ms: float | None = None,
) -> OpenLoopRun:
    """Issue Poisson arrivals at ``qps`` from this thread into a FIFO queue served by
    ``workers`` threads (worker k calls ``runners[k % len(runners)]``).

    With ``budget_ms`` the run stops as soon as enough queries are known to exceed it that the
    p99 interval's lower bound of the full schedule must lie above the budget (a proven FAIL);
    queries still queued then are censored at their age.
    """
    perf = time.perf_counter_ns
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.exponential(1e9 / qps, size=_planned_queries(qps, settings)))
    # The schedule must end within max_duration_s (fewer queries then support fewer
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
            stopped = "the generator fell behind its schedule past `max_duration_s`"
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
                stopped = stopped or "stopped at `max_duration_s` with queries still queued"
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
    return OpenLoopRun(
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


__all__ = [
    "PROVEN_FAIL",
    "RATE_METHOD",
    "RATE_SLICES",
    "SPIN_NS",
    "ClosedLoopRun",
    "Instances",
    "OpenLoopRun",
    "closed_loop",
    "open_loop",
    "rate_estimate",
    "single_stream_idle",
    "sleep_until",
    "warm_up_runners",
]
