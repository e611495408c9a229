"""What a scenario cell runs: the kinds, :class:`ScenarioSpec` with its validation, the
expansion of the CLI's options into specs, and which backends can run the parallel kinds."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optieval.core import BACKEND_NAMES
from optieval.errors import InputError
from optieval.runtime import Backend

SINGLE_STREAM = "single-stream"
OFFLINE = "offline"
CONCURRENCY = "concurrency"
SERVER = "server"
SCENARIOS: tuple[str, ...] = (SINGLE_STREAM, OFFLINE, CONCURRENCY, SERVER)
PARALLEL_SCENARIOS: tuple[str, ...] = (OFFLINE, CONCURRENCY, SERVER)

DEFAULT_SERVER_WORKERS = 8
"""Threads that take queries off the server scenario's queue and call the backend: the most
queries in flight inside the backend at once (perf_analyzer's ``--max-threads``)."""

SEARCH_PERCENTILE = 99.0

SEARCH_RESOLUTION = 0.1

# Backends known to release the GIL inside their inference call (so worker threads load the
# backend in parallel) and whether one instance accepts calls from several threads at once
# (InferenceSession.run is thread-safe; a TensorRT execution context and a CUDA stream are not,
# so those get one instance per worker). A backend class may override both with class
# attributes ``releases_gil`` and ``concurrent_calls``.
_RELEASES_GIL = dict.fromkeys(BACKEND_NAMES, True)
_CONCURRENT_CALLS = {"ort-cpu": True, "ort-cuda": True, "ort-trt": True, "torch-cpu": True}

BackendFactory = Callable[[], Backend]


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
            InputError: unknown kind (``scenario``), non-positive concurrency, rate, streams or
                workers, negative idle time, an option the kind does not use, a server run
                without a rate, or a search without a p99 budget.
        """
        problems: list[tuple[str, str]] = []
        if self.kind not in SCENARIOS:
            problems.append(
                (
                    "scenario",
                    f"unknown scenario {self.kind!r} (choose from {', '.join(SCENARIOS)})",
                )
            )
        if self.concurrency is not None and self.concurrency < 1:
            problems.append(("concurrency", f"{self.concurrency} must be at least 1"))
        if self.streams is not None and self.streams < 1:
            problems.append(("streams", f"{self.streams} must be at least 1"))
        if self.workers is not None and self.workers < 1:
            problems.append(("workers", f"{self.workers} must be at least 1"))
        if self.qps is not None and not (math.isfinite(self.qps) and self.qps > 0):
            problems.append(("qps", f"{self.qps:g} must be a positive rate"))
        if not (math.isfinite(self.idle_ms) and self.idle_ms >= 0):
            problems.append(("idle_ms", f"{self.idle_ms:g} must not be negative"))
        if self.max_issue_lag_ms is not None and not self.max_issue_lag_ms > 0:
            problems.append(("max_issue_lag_ms", "must be positive"))
        if self.kind in SCENARIOS:
            if self.concurrency is not None and self.kind != CONCURRENCY:
                problems.append(("concurrency", "applies to `scenario` concurrency"))
            if self.streams is not None and self.kind != OFFLINE:
                problems.append(("streams", "applies to `scenario` offline"))
            if self.qps is not None and self.kind != SERVER:
                problems.append(("qps", "applies to `scenario` server"))
            if self.idle_ms and self.kind not in (SINGLE_STREAM, CONCURRENCY):
                problems.append(
                    (
                        "idle_ms",
                        "applies to single-stream and concurrency (the "
                        "server's arrivals and offline's back-to-back "
                        "batches set their own gaps)",
                    )
                )
            if self.find_max_qps and self.kind != SERVER:
                problems.append(("find_max_qps", "applies to `scenario` server"))
            if self.kind == SERVER and self.qps is None and not self.find_max_qps:
                problems.append(("qps", "the server scenario needs a rate (or `find_max_qps`)"))
        if self.find_max_qps and self.p99_ms_max is None:
            problems.append(("p99_ms_max", "`find_max_qps` needs a p99 budget in ms"))
        if self.p99_ms_max is not None:
            if not (math.isfinite(self.p99_ms_max) and self.p99_ms_max > 0):
                problems.append(("p99_ms_max", f"{self.p99_ms_max:g} must be positive"))
            elif not self.find_max_qps:
                problems.append(("p99_ms_max", "is the budget of `find_max_qps`"))
        if problems:
            wheres = list(dict.fromkeys(where for where, _ in problems))
            message = (
                problems[0][1]
                if len(problems) == 1
                else "; ".join(f"`{where}` {what}" for where, what in problems)
            )
            raise InputError(
                message,
                where=", ".join(wheres),
                hint="see docs/guides/scenarios.md",
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


def parse_rate_list(values: Sequence[str] | None, option: str = "qps") -> list[float]:
    """Parse rate lists such as ``["100,250.5", "7"]`` into positive finite floats.

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


def backend_traits(backend: type[Backend] | Backend | str) -> tuple[str, bool, bool]:
    """``(name, releases_gil, concurrent_calls)`` of a backend name, class or instance: whether
    its inference call releases the GIL, and whether one instance accepts calls from several
    threads at once (class attributes override the table above)."""
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
    """Raise :class:`InputError` (``scenario``) when ``backend`` cannot run ``spec``.

    The parallel scenarios call the backend from several threads; a backend whose call holds
    Python's GIL would make them measure the interpreter, not the backend.

    Args:
        backend: a backend name (``ort-cpu``), class or instance.
        spec: the scenario.
    """
    name, releases_gil, _ = backend_traits(backend)
    if spec.kind in PARALLEL_SCENARIOS and not releases_gil:
        raise InputError(
            f"backend {name} cannot run the {spec.kind} scenario: its inference call holds "
            "Python's GIL, so parallel requests would measure the interpreter, not the backend",
            where="scenario",
            hint="use `scenario` single-stream for this backend",
        )


__all__ = [
    "CONCURRENCY",
    "DEFAULT_SERVER_WORKERS",
    "OFFLINE",
    "PARALLEL_SCENARIOS",
    "SCENARIOS",
    "SEARCH_PERCENTILE",
    "SEARCH_RESOLUTION",
    "SERVER",
    "SINGLE_STREAM",
    "BackendFactory",
    "ScenarioSpec",
    "backend_traits",
    "check_scenario_support",
    "parse_rate_list",
    "scenario_specs",
]
