"""The bench results model: one cell per backend x precision x batch x shape, serialized with a
versioned schema that other tools parse (docs/reference/bench-json.md).

Schema history:
    1: first release (schema_version, env, model, results[] of cells). Later additions are optional
       cell fields that older files lack: scenario fields; ``machine`` and ``placement``;
       ``block_medians_ms`` and ``block_samples``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import read_json
from optieval.errors import InputError

BENCH_SCHEMA_VERSION = 1
GATE_REPORT_SCHEMA_VERSION = 1
"""A gate report (``kind: "gate-report"``) embeds its cells in this module's cell shape under
``cells``, so that it serves as a baseline too."""

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
STATUS_ERROR = "error"


@dataclass(frozen=True)
class Cell:
    """One measured (or skipped, or failed) cell.

    ``times_ms`` holds every measured iteration in order; the summary fields are derived from it
    when the cell was measured (status ``ok``) and are None otherwise.

    ``scenario`` is ``single-stream``, ``offline``, ``concurrency`` or ``server`` and
    ``scenario_params`` its parameters (``concurrency``, ``qps``, ``idle_ms``, ...);
    ``issue_lag_ms`` (server) holds the load generator's lateness percentiles and whether the run
    is ``valid``; ``search`` holds a max-QPS search (rates tried and the answer). See
    :mod:`optieval.bench.scenarios`.
    """

    backend: str
    precision: str
    batch: int
    shapes: dict[str, list[int]]
    status: str
    reason: str | None = None
    samples: int = 0
    times_ms: list[float] = field(default_factory=list)
    latency_ms: dict[str, float] | None = None
    ci95_ms: dict[str, list[float] | None] | None = None
    throughput: dict[str, Any] | None = None
    device_times_ms: list[float] | None = None
    device_latency_ms: dict[str, float] | None = None
    cold_start_ms: float | None = None
    memory: dict[str, Any] | None = None
    artifact: dict[str, Any] | None = None
    artifact_bytes: int | None = None
    gflops: float | None = None
    flops: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    op_profile: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Load scenarios (optieval.bench.scenarios): None in files written before them, which
    # means single-stream.
    scenario: str | None = None
    scenario_params: dict[str, Any] | None = None
    issue_lag_ms: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    # Executors (optieval.execution): the fingerprint of the machine the cell ran on and
    # how it was placed there (executor, node, hardware, GPUs/CPUs asked, pinned cores, retry).
    # None in files written before them.
    machine: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    # Shape sets (issue 17): what tells this cell's shapes apart in a sweep (``seq=64``), or
    # None when only the batch varies. None in files written before them.
    shape_set: str | None = None
    # Blocks (issue 15): the median (ms) and sample count of each block when the cell was
    # measured in several processes and pooled (``times_ms`` holds them all, block after
    # block); None when measured in one process and in files written before blocks.
    block_medians_ms: list[float] | None = None
    block_samples: list[int] | None = None

    @property
    def key(self) -> tuple[str, str, int, tuple[tuple[str, tuple[int, ...]], ...]]:
        """What pairs this cell with a baseline's: backend, precision, batch and shapes."""
        return (
            self.backend,
            self.precision,
            self.batch,
            tuple(sorted((k, tuple(v)) for k, v in self.shapes.items())),
        )

    @property
    def label(self) -> str:
        """``ort-cpu:fp32 b8``, with the shape set when there is one (``... b1 seq=64``)."""
        base = f"{self.backend}:{self.precision} b{self.batch}"
        return f"{base} {self.shape_set}" if self.shape_set else base

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """Inverse of :meth:`to_json`; unknown keys are ignored so newer readers stay lenient."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class BenchReport:
    """A whole ``optieval bench`` run: where it ran, what it ran, and every cell."""

    env: dict[str, Any]
    model: dict[str, Any]
    settings: dict[str, Any]
    results: tuple[Cell, ...]
    warnings: tuple[str, ...] = ()
    baseline_model: dict[str, Any] | None = None
    """The baseline's model when it was measured in this run beside ``results``
    (``path``, ``sha256``); None otherwise."""
    baseline_results: tuple[Cell, ...] = ()
    """The baseline's model's cells, measured block by block in alternation with
    ``results`` (``benchmark(baseline_model=...)``)."""

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        out = {
            "schema_version": BENCH_SCHEMA_VERSION,
            "kind": "bench",
            "env": self.env,
            "model": self.model,
            "settings": self.settings,
            "warnings": list(self.warnings),
            "results": [c.to_json() for c in self.results],
        }
        if self.baseline_model is not None:
            out["baseline_run"] = {
                "model": self.baseline_model,
                "results": [c.to_json() for c in self.baseline_results],
            }
        return out

    def records(self) -> list[dict[str, Any]]:
        """One plain row per cell: the cell, its status, samples, percentiles with their 95%
        interval bounds (ms), mean, throughput and cold start (what ``optieval bench``
        prints)."""
        rows = []
        for cell in self.results:
            lat = cell.latency_ms or {}
            ci = cell.ci95_ms or {}
            row: dict[str, Any] = {
                "cell": cell.label, "backend": cell.backend, "precision": cell.precision,
                "batch": cell.batch, "status": cell.status, "samples": cell.samples,
            }  # fmt: skip
            for name in ("p50", "p90", "p99"):
                low, high = (ci.get(name) or (None, None))[:2]
                row.update({f"{name}_ms": lat.get(name), f"{name}_low_ms": low,
                            f"{name}_high_ms": high})  # fmt: skip
            row["mean_ms"] = lat.get("mean")
            row["items_per_s"] = (cell.throughput or {}).get("items_per_s")
            row["cold_start_ms"] = cell.cold_start_ms
            row["reason"] = cell.reason
            rows.append(row)
        return rows

    def to_dataframe(self) -> Any:
        """:meth:`records` as a ``pandas.DataFrame`` (pandas is optional: InputError without)."""
        from optieval.core import records_frame

        return records_frame(self.records())

    def _repr_html_(self) -> str:
        from optieval.core import records_html

        return records_html(f"optieval bench: {self.model.get('path', '')}", self.records(),
                            note="latency in ms, 95% intervals as low/high")  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = "bench JSON") -> BenchReport:
        """Read a bench JSON; refuses other schema versions with what to do."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != BENCH_SCHEMA_VERSION:
            raise InputError(
                f"bench schema_version {version!r} is not {BENCH_SCHEMA_VERSION}",
                where=where,
                hint="re-run the benchmark with this optieval version",
            )
        try:
            cells = tuple(Cell.from_json(c) for c in data["results"])
            again = data.get("baseline_run") or {}
            baseline_cells = tuple(Cell.from_json(c) for c in again.get("results", []))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"malformed bench results ({exc})", where=where) from exc
        return cls(
            env=data.get("env", {}),
            model=data.get("model", {}),
            settings=data.get("settings", {}),
            results=cells,
            warnings=tuple(data.get("warnings", [])),
            baseline_model=again.get("model") if again else None,
            baseline_results=baseline_cells,
        )


def load_baseline(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Read the cells, env and model of a baseline: a bench JSON or a gate report.

    Returns ``(cells, env, model)`` with cells as plain dicts in the bench cell shape.

    Raises:
        InputError (where the file): missing, not JSON, or of a schema version this optieval
            cannot read.
    """
    data = read_json(path, what="baseline")
    where = str(path)
    if not isinstance(data, dict):
        raise InputError("baseline is not a JSON object", where=where)
    kind = data.get("kind", "bench")
    version = data.get("schema_version")
    if kind == "bench":
        report = BenchReport.from_json(data, where=where)
        return [c.to_json() for c in report.results], report.env, report.model
    cells = data.get("cells")
    if kind != "gate-report" or not isinstance(cells, list):
        raise InputError(
            f"not a bench JSON or gate report (kind {kind!r}, schema_version {version!r})",
            where=where,
            hint="pass a file written by `optieval bench --json` or `optieval gate`",
        )
    if version != GATE_REPORT_SCHEMA_VERSION:
        raise InputError(
            f"gate report schema_version {version!r} is not {GATE_REPORT_SCHEMA_VERSION}",
            where=where,
            hint="re-run the gate with this optieval version",
        )
    return [dict(c) for c in cells], data.get("env", {}), data.get("model", {})
