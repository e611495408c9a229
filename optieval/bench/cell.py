"""One bench cell, measured in the process it runs in: the request that describes it (plain
data, so that it can travel to a subprocess or a Ray worker), the artifact it runs, its feeds, the
timed loop and the result record."""

from __future__ import annotations

import math
import resource
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from optieval.bench.latency import MeasureSettings, measure
from optieval.bench.results import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED, Cell
from optieval.bench.scenarios.run import scenario_cell
from optieval.bench.scenarios.spec import SINGLE_STREAM, ScenarioSpec
from optieval.core import (
    GPU_BACKENDS,
    TORCH_BACKENDS,
    Signature,
    generate_feeds,
    load_onnx,
    sha256_file,
)
from optieval.errors import BackendUnavailable, InputError, OptievalError
from optieval.precision import is_engine
from optieval.runtime import create_backend
from optieval.stats import summarize

IO_MODES = ("device", "host")
# The GPU backends that take the ``io`` option (all: ort-trt binds I/O on the device as ort-cuda).
GPU_IO_BACKENDS = tuple(GPU_BACKENDS)
# How many distinct batches of real data a cell cycles through: enough that caches do not
# flatter the numbers, few enough that building the feeds stays cheap.
_MAX_DATA_BATCHES = 64


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
    data: str | None = None
    calib: str | None = None
    count_flops: bool = True
    profile_ops: bool = False
    io: str = "device"
    cuda_graph: bool = False
    scenario: ScenarioSpec | None = None
    shape_set: str | None = None
    """The label of the cell's shape set (``seq=64``), carried to its :class:`Cell`."""

    def to_json(self) -> dict[str, Any]:
        """Plain data for a subprocess."""
        return {**asdict(self), "shapes": {k: list(v) for k, v in self.shapes.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRequest:
        """Inverse of :meth:`to_json`."""
        return cls(
            **{
                **data,
                "shapes": {k: tuple(v) for k, v in data["shapes"].items()},
                "settings": MeasureSettings(**data["settings"]),
                "scenario": None
                if data.get("scenario") is None
                else ScenarioSpec.from_json(data["scenario"]),
            }
        )


def listify(shapes: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    return {k: [int(d) for d in v] for k, v in shapes.items()}


def run_cell(request: CellRequest) -> Cell:
    """Run one cell in this process and return it; a backend failure becomes an ``error`` cell
    (``skipped`` when the backend is unusable) and bad input propagates as :class:`InputError`."""
    shapes = listify(request.shapes)
    label = request.shape_set
    try:
        cell = _measure_cell(request)
        return cell if cell.shape_set or not label else replace(cell, shape_set=label)
    except InputError:
        raise
    except BackendUnavailable as exc:
        return Cell(
            request.backend,
            request.precision,
            request.batch,
            shapes,
            STATUS_SKIPPED,
            reason=str(exc),
            shape_set=label,
        )
    except OptievalError as exc:
        return Cell(request.backend, request.precision, request.batch, shapes, STATUS_ERROR,
                    reason=str(exc), shape_set=label)  # fmt: skip
    except Exception as exc:  # a crash inside a backend is a failed cell, not a crashed run
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Cell(request.backend, request.precision, request.batch, shapes, STATUS_ERROR,
                    reason=tail, shape_set=label)  # fmt: skip


def resolve_artifact(
    model: Path, backend: str, precision: str, calib: str | None
) -> tuple[Path, dict[str, Any]]:
    """The file a cell loads and what is known of its precision: the precision artifact (with
    its census) for ONNX backends; the model itself for torch backends, which apply the
    precision themselves."""
    if backend in TORCH_BACKENDS:
        return model, {"path": str(model), "precision_source": "torch autocast / fp32 module"}
    if is_engine(model):
        # The engine's precision was read back from it when it was built (optieval build)
        # and is checked again by the tensorrt backend on load.
        return model, {
            "path": str(model),
            "sha256": sha256_file(model),
            "precision_source": "engine read-back",
        }
    from optieval.precision import artifact_for, census

    artifact = artifact_for(model, precision, calib=calib, backend=backend)
    found = census(load_onnx(artifact, load_external_data=False))
    info = {
        "path": str(artifact),
        "sha256": sha256_file(artifact),
        "census": found.to_json(),
        "precision_source": "artifact census",
    }
    return artifact, info


def _backend_options(request: CellRequest) -> dict[str, Any]:
    """The constructor options each backend takes for this cell."""
    options: dict[str, Any] = {}
    if request.threads and request.backend != "tensorrt":
        options["threads"] = request.threads
    # Every backend checks the label against what it loads: the artifact's census, the
    # engine's read-back, or torch's autocast dtype.
    options["precision"] = request.precision
    if request.backend in ("ort-trt", "tensorrt"):
        # Engine profiles cover exactly the shapes this cell runs.
        options["shapes"] = _profile_shapes(request)
    if request.backend in GPU_IO_BACKENDS:
        options["io"] = request.io
    if request.cuda_graph and request.backend in ("ort-cuda", "ort-trt"):
        options["enable_cuda_graph"] = True
    elif request.cuda_graph and request.backend == "tensorrt":
        options["cuda_graph"] = True
    return options


def _profile_shapes(request: CellRequest) -> dict[str, list[list[int]]]:
    """The shapes a cell runs, per input: its own, and with data whose lengths vary, the batch
    shape of every length (so a TensorRT profile spans them all)."""
    shapes = {name: [list(shape)] for name, shape in request.shapes.items()}
    if request.data is None or is_engine(Path(request.model)):
        return shapes
    from optieval.core import load_dataset
    from optieval.precision import model_signature

    dataset = load_dataset(request.data, model_signature(Path(request.model)), ragged=True)
    for group in dataset.groups:
        for name, array in group.inputs.items():
            shape = [request.batch, *array.shape[1:]]
            if shape not in shapes.setdefault(name, []):
                shapes[name].append(shape)
    return shapes


def _feeds(
    request: CellRequest, signature: Signature, notes: list[str]
) -> tuple[list[dict[str, np.ndarray]], dict[str, list[int]]]:
    if request.data is None:
        feeds = generate_feeds(signature, request.shapes, seed=request.seed)
        return [feeds], listify(request.shapes)
    from optieval.core import load_dataset

    dataset = load_dataset(request.data, signature, ragged=True)
    if dataset.is_ragged:
        # Samples of several lengths: each batch holds one length, and the cell cycles
        # through them in the data's proportions (what serving this data costs).
        batches = dataset.length_batches(request.batch, limit=_MAX_DATA_BATCHES)
        notes.append(
            f"the data's samples come in {len(dataset.groups)} shapes; each batch holds one "
            f"shape and the cell cycles through {len(batches)} batches, so its latencies mix "
            "the shapes as the data does (shapes: the first batch's)"
        )
        return batches, {k: list(v.shape) for k, v in batches[0].items()}
    count = max(1, min(_MAX_DATA_BATCHES, math.ceil(dataset.num_samples / request.batch)))
    batches = list(dataset.batches(request.batch, count=count, cycle=True))
    return batches, {k: list(v.shape) for k, v in batches[0].items()}


def _measure_cell(request: CellRequest) -> Cell:
    model = Path(request.model)
    artifact, artifact_info = resolve_artifact(
        model, request.backend, request.precision, request.calib
    )
    notes: list[str] = []
    if request.backend == "ort-cpu" and request.precision == "fp16":
        notes.append(
            "fp16 on the ONNX Runtime CPU provider runs through inserted casts (no fp16 compute "
            "kernels on x86): expect it slower than fp32; it says nothing about GPU fp16"
        )
    if request.backend == "ort-trt" and request.precision != "fp32":
        notes.append(
            f"the {request.precision} label rests on the artifact's census: ORT's TensorRT EP "
            "engine cannot be inspected"
        )
    if request.data is None and request.precision == "int8":
        notes.append("generated inputs: int8 latency can depend on the data; pass `data`")

    backend = create_backend(request.backend, artifact, **_backend_options(request))
    with backend:
        signature = backend.signature
        feeds, shapes = _feeds(request, signature, notes)
        if request.scenario is not None and not request.scenario.is_default:
            return scenario_cell(
                request,
                backend,
                feeds[0],
                lambda: create_backend(request.backend, artifact, **_backend_options(request)),
                shapes=shapes,
                artifact=artifact_info,
                artifact_bytes=_artifact_bytes(artifact),
                notes=notes,
            )
        runners = [backend.runner(f) for f in feeds]
        measurement = measure(runners, request.settings)
        device_times = _device_times(backend, feeds[0], len(measurement.times_ns))
        backend_options = dict(backend.options)
        cold_load_ms = backend.cold_start_ms or 0.0
    if backend_options.get("fp32_math") == "tf32":
        notes.append(
            "ort-trt runs fp32 layers in TF32 on this GPU (TensorRT's default; the TensorRT EP "
            "has no switch): not comparable with fp32 on tensorrt or ort-cuda, which keep TF32 off"
        )
    if backend_options.get("graph_input_copy"):
        notes.append(f"CUDA graph with several batches: {backend_options['graph_input_copy']}")

    op_profile = None
    if request.profile_ops:
        from optieval.bench.op_profile import profile_ops

        try:
            op_profile = profile_ops(
                request.backend, artifact, feeds[0], threads=request.threads
            ).to_json()
        except InputError as exc:
            notes.append(str(exc))

    times = measurement.times_ms
    summary = summarize(times, batch=request.batch)
    stats = summary.to_json()
    if not measurement.reached_minimums:
        notes.append(
            f"stopped at `max_duration_s` with {len(times)} samples; the target percentile needs "
            f"{request.settings.required_samples()}"
        )
    if summary.unstable:
        notes.append(summary.stability.reason)
    one_shape = len({tuple((k, v.shape) for k, v in f.items()) for f in feeds}) == 1
    gflops, flops = (
        _flops(artifact, shapes, summary.mean_ms)
        if request.count_flops
        and request.backend not in TORCH_BACKENDS
        and not is_engine(artifact)
        and one_shape
        else (None, None)
    )
    return Cell(
        backend=request.backend,
        precision=request.precision,
        batch=request.batch,
        shapes=shapes,
        status=STATUS_OK,
        samples=summary.n,
        times_ms=[float(t) for t in times],
        latency_ms=stats["latency_ms"],
        ci95_ms=stats["ci95_ms"],
        throughput=stats["throughput"],
        device_times_ms=device_times,
        device_latency_ms=_device_summary(device_times, request.batch),
        cold_start_ms=cold_load_ms + measurement.first_inference_ms,
        memory={"peak_rss_mb": _peak_rss_mb()},
        artifact=artifact_info,
        artifact_bytes=_artifact_bytes(artifact),
        gflops=gflops,
        flops=flops,
        stability=stats["stability"],
        op_profile=op_profile,
        options={
            **backend_options,
            "warmup_iterations": measurement.warmup_iterations,
            "measured_s": measurement.elapsed_s,
            "cv": stats["cv"],
        },
        notes=notes,
        scenario=SINGLE_STREAM,
        scenario_params=ScenarioSpec().params(),
    )


def _device_times(backend: Any, feeds: dict[str, np.ndarray], count: int) -> list[float] | None:
    """Device time per iteration from CUDA events, for backends that offer it."""
    device_runner = getattr(backend, "device_runner", None)
    if device_runner is None:
        return None
    run = device_runner(feeds)
    return [float(run()) for _ in range(max(1, min(count, 10_000)))]


def _device_summary(times: list[float] | None, batch: int) -> dict[str, float] | None:
    if not times:
        return None
    latency: dict[str, float] = summarize(times, batch=batch).to_json()["latency_ms"]
    return latency


def _flops(
    artifact: Path, shapes: dict[str, list[int]], mean_ms: float
) -> tuple[float | None, dict[str, Any] | None]:
    """Achieved GFLOP/s (GOP/s when most of the work is int8) and what the count covered."""
    from optieval.bench.flops import count_flops

    try:
        counted = count_flops(load_onnx(artifact, load_external_data=False), shapes)
    except OptievalError:
        return None, None
    if mean_ms <= 0 or counted.flops == 0:
        return None, None
    achieved = counted.flops / (mean_ms / 1e3) / 1e9
    return achieved, {
        "per_iteration": counted.flops,
        "unit": counted.unit,
        "achieved": achieved,
        "counted_op_types": sorted(counted.by_op_type),
        "left_out": counted.left_out,
        "method": counted.method,
    }


def _artifact_bytes(artifact: Path) -> int:
    """Size of the model file plus any external data files beside it that it names."""
    total = artifact.stat().st_size
    for sibling in artifact.parent.glob(artifact.name + ".data"):
        total += sibling.stat().st_size
    return total


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)
