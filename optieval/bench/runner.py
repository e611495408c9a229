"""``optieval.benchmark``: a matrix of backend x precision x batch x shape cells over one model,
each measured with the protocol in :mod:`optieval.bench.latency`."""

from __future__ import annotations

import os
import resource
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optieval.bench import inputs as inputs_mod
from optieval.bench.environment import fingerprint, validity_warnings
from optieval.bench.latency import MeasureSettings, measure, percentile_point
from optieval.bench.results import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
    BenchReport,
    Cell,
)
from optieval.errors import BackendError, InputError, OptievalError
from optieval.files import sha256_file
from optieval.manifest import read_manifest
from optieval.runtime.registry import availability, check_backend_name, create_backend
from optieval.signature import Signature, load_onnx, signature_from_onnx

PRECISIONS = ("fp32", "fp16", "int8")
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


@dataclass(frozen=True)
class CellRequest:
    """Plain data describing one cell: all a (possibly separate) process needs to run it."""

    model: str
    backend: str
    precision: str
    batch: int
    shapes: dict[str, tuple[int, ...]]
    settings: MeasureSettings
    threads: int | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


def benchmark(
    model: str | os.PathLike[str],
    *,
    backends: Sequence[str] = ("ort-cpu",),
    precisions: Sequence[str] = ("fp32",),
    batches: Sequence[int] = (1,),
    shapes: Mapping[str, Sequence[tuple[int, ...]]] | None = None,
    threads: int | None = None,
    settings: MeasureSettings | None = None,
    seed: int = 0,
) -> BenchReport:
    """Benchmark ``model`` on every backend x precision x batch x shape cell.

    Args:
        model: path to an ONNX file.
        backends: backend names (DESIGN.md); default ``("ort-cpu",)``.
        precisions: ``fp32``, ``fp16``, ``int8``; default ``("fp32",)``.
        batches: batch sizes; default ``(1,)``.
        shapes: per input, one or more full shapes (batch included) to sweep.
        threads: intra-op threads for CPU backends (None: the runtime's default).
        settings: warm-up and measurement settings (defaults as in :class:`MeasureSettings`).
        seed: seed of the generated inputs.

    Returns:
        A :class:`BenchReport`; unusable backends appear as ``skipped`` cells with the reason and
        cells that fail as ``error`` cells.

    Raises:
        InputError: a missing or malformed model, unknown backend or precision, or shapes the
            model does not accept (exit 2).
    """
    settings = (settings or MeasureSettings()).validate()
    path = Path(model)
    onnx_model = load_onnx(path, load_external_data=False)
    signature = signature_from_onnx(onnx_model)
    for name in backends:
        check_backend_name(name)
    for precision in precisions:
        if precision not in PRECISIONS:
            raise InputError(
                f"unknown precision {precision!r}",
                where="--precision",
                hint=f"choose from {', '.join(PRECISIONS)}",
            )
    if threads is not None and threads < 1:
        raise InputError("thread count must be at least 1", where="--threads")

    shape_sets = _shape_sets(signature, batches, shapes or {})
    warnings = []
    manifest = read_manifest(path)
    if manifest and manifest.get("parity", {}).get("passed") is False:
        warnings.append(
            f"{path.name}: its export parity check failed; its numbers describe a model that "
            "does not match its PyTorch source"
        )

    cells: list[Cell] = []
    for backend in backends:
        state = availability(backend)
        for precision in precisions:
            for batch, cell_shapes in shape_sets:
                if not state.usable:
                    cells.append(
                        Cell(
                            backend,
                            precision,
                            batch,
                            _listify(cell_shapes),
                            STATUS_SKIPPED,
                            reason=state.reason,
                        )
                    )
                    continue
                request = CellRequest(
                    str(path), backend, precision, batch, cell_shapes, settings, threads, seed
                )
                cells.append(run_cell(request))

    env = fingerprint()
    warnings.extend(validity_warnings(env))
    return BenchReport(
        env=env,
        model={
            "path": str(path),
            "sha256": sha256_file(path),
            "io": signature.to_json(),
        },
        settings={
            "warmup_s": settings.warmup_s,
            "warmup_iters": settings.warmup_iters,
            "duration_s": settings.duration_s,
            "min_samples": settings.required_samples(),
            "max_duration_s": settings.max_duration_s,
            "target_percentile": settings.target_percentile,
            "percentile_method": "nearest-rank (order statistic x_(ceil(q*n)))",
            "clock": "host monotonic perf_counter_ns around each iteration",
            "seed": seed,
        },
        results=tuple(cells),
        warnings=tuple(warnings),
    )


def _shape_sets(
    signature: Signature,
    batches: Sequence[int],
    shapes: Mapping[str, Sequence[tuple[int, ...]]],
) -> list[tuple[int, dict[str, tuple[int, ...]]]]:
    """Expand batches and swept shapes into concrete (batch, shapes) pairs, checking each."""
    for batch in batches:
        if batch < 1:
            raise InputError(f"batch {batch} must be at least 1", where="--batch")
    combos = _product(list(shapes.values()))
    sweeps = [dict(zip(shapes, combo, strict=True)) for combo in combos] or [{}]
    pairs = []
    if shapes and not batches:
        for sweep in sweeps:
            first = next(iter(sweep.values()))
            resolved = inputs_mod.resolve_shapes(signature, first[0] if first else None, sweep)
            pairs.append((first[0] if first else 1, resolved))
        return pairs
    for batch in batches or [1]:
        for sweep in sweeps:
            pairs.append((batch, inputs_mod.resolve_shapes(signature, batch, sweep)))
    return pairs


def _product(lists: list[Sequence[tuple[int, ...]]]) -> list[tuple[tuple[int, ...], ...]]:
    import itertools

    return list(itertools.product(*lists)) if lists else []


def _listify(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, list[int]]:
    return {k: list(v) for k, v in shapes.items()}


def run_cell(request: CellRequest) -> Cell:
    """Run one cell in this process and return it; a backend failure becomes an ``error`` cell
    and bad input propagates as :class:`InputError`."""
    shapes = _listify(request.shapes)
    try:
        return _measure_cell(request)
    except InputError:
        raise
    except BackendError as exc:
        status = STATUS_SKIPPED if "Unavailable" in type(exc).__name__ else STATUS_ERROR
        return Cell(
            request.backend, request.precision, request.batch, shapes, status, reason=str(exc)
        )
    except OptievalError as exc:
        return Cell(
            request.backend, request.precision, request.batch, shapes, STATUS_ERROR, reason=str(exc)
        )
    except Exception as exc:  # a crash inside a backend is a failed cell, not a crashed run
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Cell(
            request.backend, request.precision, request.batch, shapes, STATUS_ERROR, reason=tail
        )


def _measure_cell(request: CellRequest) -> Cell:
    artifact = Path(request.model)
    notes: list[str] = []
    if request.precision != "fp32":
        raise InputError(
            f"precision {request.precision} needs a precision artifact, which this build cannot "
            "make yet",
            where="--precision",
        )
    options: dict[str, Any] = {"threads": request.threads} if request.threads else {}
    backend = create_backend(request.backend, artifact, **options)
    with backend:
        signature = backend.signature
        feeds = inputs_mod.generate_feeds(signature, request.shapes, seed=request.seed)
        runner = backend.runner(feeds)
        measurement = measure([runner], request.settings)
        cold_load_ms = backend.cold_start_ms or 0.0
        backend_options = dict(backend.options)
    times = measurement.times_ms
    ordered = np.sort(times)
    latency = {f"p{int(p)}": percentile_point(ordered, p) for p in PERCENTILES}
    latency.update(
        mean=float(times.mean()),
        std=float(times.std(ddof=1)) if len(times) > 1 else 0.0,
        min=float(ordered[0]),
        max=float(ordered[-1]),
    )
    throughput = request.batch / (latency["mean"] / 1e3) if latency["mean"] > 0 else None
    if not measurement.reached_minimums:
        notes.append(
            f"stopped at --max-duration with {len(times)} samples, fewer than the "
            f"{request.settings.required_samples()} the target percentile needs"
        )
    return Cell(
        backend=request.backend,
        precision=request.precision,
        batch=request.batch,
        shapes=_listify(request.shapes),
        status=STATUS_OK,
        samples=len(times),
        times_ms=[float(t) for t in times],
        latency_ms=latency,
        throughput={"items_per_s": throughput},
        cold_start_ms=cold_load_ms + measurement.first_inference_ms,
        memory={"peak_rss_mb": _peak_rss_mb()},
        artifact={"path": str(artifact)},
        artifact_bytes=artifact.stat().st_size,
        options={**backend_options, "warmup_iterations": measurement.warmup_iterations},
        notes=notes,
    )


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)
