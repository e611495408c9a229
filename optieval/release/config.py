"""The release config of ``optieval gate``: a TOML file, validated into frozen data.

Sections (docs/reference/release-toml.md)::

    [model]       path = "model.onnx"   or   spec = "pkg.mod:factory" (+ inputs, dynamic,
                  checkpoint)
    [task]        kind = "classification" | "detection", output roles, box_format,
                  ground_truth, match_iou, score_threshold, nms_iou, top_k   (optional)
    [data]        calibration, evaluation, labels            (all optional)
    [reference]   backend = "ort-cpu", precision = "fp32"    (optional, these defaults)
    [measure]     warmup_s, warmup_iters, duration_s, min_samples, max_duration_s,
                  isolate, confidence  (optional)
    [[target]]    backend, precision, batch (int or list) or shape / shapes (shape sets),
                  threads, hardware, scenario, qps, concurrency, latency = {...},
                  accuracy = {...}   (at least one)
    [baseline]    report, max_slowdown, interleave, blocks   (optional)
    [outputs]     OUTPUT = "embedding" | "regression" | "logits" | ...; "*" for the rest
                  (optional; default: inferred from names, shapes and values)

Relative paths resolve against the config file's folder. Every problem (unknown key, wrong type,
impossible value, missing file) is collected and raised once as :class:`InputError` (exit 2),
each naming its key path (``target[1].latency.p99_ms_mx``) and, for unknown keys, the nearest
valid key: :mod:`optieval.release.config_loader` reads and validates; this module holds the
sections' keys and the validated data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.release.budgets import (
    AccuracyBudget,
    LatencyBudget,
)

if TYPE_CHECKING:
    from optieval.bench import ScenarioSpec
    from optieval.detection import DetectionTask

SECTIONS = ("model", "task", "data", "reference", "measure", "target", "baseline", "outputs")
MODEL_KEYS = ("path", "spec", "inputs", "dynamic", "checkpoint")
DATA_KEYS = ("calibration", "evaluation", "labels")
REFERENCE_KEYS = ("backend", "precision")
MEASURE_KEYS = (
    "warmup_s",
    "warmup_iters",
    "duration_s",
    "min_samples",
    "max_duration_s",
    "isolate",
    "confidence",
)
TARGET_KEYS = (
    "backend",
    "precision",
    "batch",
    "shape",
    "shapes",
    "threads",
    "hardware",
    "scenario",
    "qps",
    "concurrency",
    "latency",
    "accuracy",
)
TARGET_SCENARIOS = ("single-stream", "server", "concurrency")
"""Load scenarios a target may carry (:mod:`optieval.bench.scenarios`)."""
BASELINE_KEYS = ("report", "max_slowdown", "interleave", "blocks")


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: an ONNX file (``path``) or a PyTorch spec to export (``spec``, with its
    ``inputs``, ``dynamic`` axes and ``checkpoint``)."""

    path: Path | None = None
    spec: str | None = None
    inputs: tuple[str, ...] = ()
    dynamic: tuple[str, ...] = ()
    checkpoint: Path | None = None


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: calibration data for INT8 artifacts, evaluation data for parity, and the key
    of the labels in the evaluation data. Files are resolved paths (as text); ``module:function``
    loaders are kept as written."""

    calibration: str | None = None
    evaluation: str | None = None
    labels: str | None = None


@dataclass(frozen=True)
class ReferenceConfig:
    """``[reference]``: the cell every candidate's accuracy is compared against."""

    backend: str = "ort-cpu"
    precision: str = "fp32"

    @property
    def label(self) -> str:
        """``ort-cpu:fp32``."""
        return f"{self.backend}:{self.precision}"


@dataclass(frozen=True)
class MeasureConfig:
    """``[measure]``: as ``optieval bench``'s options, same defaults; ``isolate`` (default true)
    runs each cell in its own subprocess."""

    warmup_s: float = 0.5
    warmup_iters: int = 10
    duration_s: float = 3.0
    min_samples: int | None = None
    max_duration_s: float = 30.0
    isolate: bool = True
    confidence: float = 0.95
    """Of every interval the gate decides on (latency, accuracy, baseline), in (0.5, 1)."""

    def settings(self, target_percentile: float = 99.0, duration_s: float | None = None) -> Any:
        """Return :class:`optieval.bench.latency.MeasureSettings` for one run, gating
        ``target_percentile`` (the highest percentile a target gates)."""
        from optieval.bench import MeasureSettings

        duration = self.duration_s if duration_s is None else duration_s
        return MeasureSettings(
            warmup_s=self.warmup_s,
            warmup_iters=self.warmup_iters,
            duration_s=duration,
            min_samples=self.min_samples,
            max_duration_s=max(self.max_duration_s, duration),
            target_percentile=target_percentile,
            confidence=self.confidence,
        )


@dataclass(frozen=True)
class TargetConfig:
    """One ``[[target]]``: a backend x precision, its batches and threads, and its budgets."""

    index: int
    backend: str
    precision: str = "fp32"
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    latency: tuple[LatencyBudget, ...] = ()
    accuracy: tuple[AccuracyBudget, ...] = ()
    hardware: str | None = None
    """The accelerator type the target is promised for (``"A10G"``): Ray's
    ``accelerator_type:A10G`` resource under ``--executor ray`` (optieval.execution)."""
    scenario: str | None = None
    """The load scenario its latency budgets apply to (None: single-stream)."""
    qps: float | None = None
    """``scenario = "server"``: the offered rate, queries per second."""
    concurrency: int | None = None
    """``scenario = "concurrency"``: requests kept in flight."""
    shape_sets: tuple[dict[str, tuple[int, ...]], ...] = ()
    """``shape`` / ``shapes``: the shape sets its latency cells run, one cell each (inputs
    left out follow tied dimensions); ``batches`` then holds each set's batch. Empty: the
    shapes come from the evaluation data, else only the batch is dynamic."""

    def __post_init__(self) -> None:
        if self.shape_sets:  # each set brings its batch (its first dimension)
            batches = tuple(next(iter(s.values()))[0] for s in self.shape_sets)
            object.__setattr__(self, "batches", batches)

    def scenario_spec(self) -> ScenarioSpec | None:
        """The :class:`optieval.bench.scenarios.ScenarioSpec` of the latency cells (None for the
        plain single-stream loop)."""
        from optieval.bench import ScenarioSpec

        if self.scenario in (None, "single-stream"):
            return None
        if self.scenario == "server":
            return ScenarioSpec("server", qps=self.qps).validate()
        return ScenarioSpec("concurrency", concurrency=self.concurrency or 1).validate()

    @property
    def max_qps_budget(self) -> LatencyBudget | None:
        """The ``max_qps_min`` budget, if any."""
        return next((b for b in self.latency if b.key == "max_qps_min"), None)

    def search_spec(self) -> ScenarioSpec | None:
        """The max-QPS search that ``max_qps_min`` needs (server scenario, the target's
        ``p99_ms_max`` as its budget, ``qps`` as its start rate), or None without that key."""
        from optieval.bench import ScenarioSpec

        p99 = next((b.limit for b in self.latency if b.key == "p99_ms_max"), None)
        if self.max_qps_budget is None or p99 is None:
            return None
        start = self.qps if self.scenario == "server" else None
        return ScenarioSpec("server", qps=start, find_max_qps=True, p99_ms_max=p99).validate()

    @property
    def label(self) -> str:
        """``ort-cpu:int8``."""
        return f"{self.backend}:{self.precision}"

    @property
    def gated_percentile(self) -> float:
        """The highest percentile the latency budgets gate (99 when they gate none: every cell
        still reports p99 with its interval)."""
        gated = [b.percentile for b in self.latency if b.percentile is not None]
        return max(gated) if gated else 99.0


@dataclass(frozen=True)
class BaselineConfig:
    """``[baseline]``: a previous ``report.json`` (or bench JSON) and the slowdown allowed."""

    report: Path
    max_slowdown: float = 0.05
    interleave: bool | None = None
    """Measure the baseline's model again, in blocks alternating with this model's: None
    (default) when its file is unchanged and the software and hardware match
    (:func:`optieval.bench.baseline_model_at_hand`); False compares with the report's samples;
    True requires it."""
    blocks: int = 3
    """Processes per model when the baseline's model is measured again (2-32): more narrow
    the interval where processes differ, at a process start and warm-up each."""


@dataclass(frozen=True)
class GateConfig:
    """A validated release config."""

    source: Path
    model: ModelConfig
    targets: tuple[TargetConfig, ...]
    data: DataConfig = field(default_factory=DataConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    baseline: BaselineConfig | None = None
    task: DetectionTask | None = None
    """``[task] kind = "detection"``: output roles, post-processing, ground truth (None: the
    model is a classifier, compared tensor-wise)."""
    output_kinds: dict[str, str] = field(default_factory=dict)
    """``[outputs]``: output name (or ``"*"``) -> kind (:mod:`optieval.parity.kinds`)."""

    @property
    def base_dir(self) -> Path:
        """The folder relative paths resolve against."""
        return self.source.parent

    def to_json(self) -> dict[str, Any]:
        """Plain data, paths as text, budgets as ``{key: limit}``."""

        def text(p: Path | None) -> str | None:
            return None if p is None else str(p)

        return {
            "source": str(self.source),
            "model": {
                "path": text(self.model.path),
                "spec": self.model.spec,
                "inputs": list(self.model.inputs),
                "dynamic": list(self.model.dynamic),
                "checkpoint": text(self.model.checkpoint),
            },
            "data": {
                "calibration": self.data.calibration,
                "evaluation": self.data.evaluation,
                "labels": self.data.labels,
            },
            "task": _task_json(self.task),
            "outputs": dict(self.output_kinds),
            "reference": {"backend": self.reference.backend, "precision": self.reference.precision},
            "measure": {
                "warmup_s": self.measure.warmup_s,
                "warmup_iters": self.measure.warmup_iters,
                "duration_s": self.measure.duration_s,
                "min_samples": self.measure.min_samples,
                "max_duration_s": self.measure.max_duration_s,
                "isolate": self.measure.isolate,
                "confidence": self.measure.confidence,
            },
            "targets": [
                {
                    "backend": t.backend,
                    "precision": t.precision,
                    "batch": list(t.batches),
                    "threads": t.threads,
                    "hardware": t.hardware,
                    "scenario": t.scenario,
                    "qps": t.qps,
                    "concurrency": t.concurrency,
                    "shapes": [
                        {name: "x".join(map(str, dims)) for name, dims in s.items()}
                        for s in t.shape_sets
                    ],
                    "latency": {b.key: b.limit for b in t.latency},
                    "accuracy": {b.key: b.limit for b in t.accuracy},
                }
                for t in self.targets
            ],
            "baseline": None
            if self.baseline is None
            else {
                "report": str(self.baseline.report),
                "max_slowdown": self.baseline.max_slowdown,
                "interleave": self.baseline.interleave,
                "blocks": self.baseline.blocks,
            },
        }


def _task_json(task: DetectionTask | None) -> dict[str, Any]:
    if task is None:
        return {"kind": "classification"}
    o = task.options
    return {
        "kind": "detection",
        "boxes": o.boxes,
        "scores": o.scores,
        "classes": o.classes,
        "batch_index": o.batch_index,
        "num_detections": o.num_detections,
        "box_format": o.box_format,
        "ground_truth": None if task.ground_truth is None else str(task.ground_truth),
        "match_iou": o.match_iou,
        "postprocess": o.postprocess.to_json(),
    }


__all__ = [
    "BaselineConfig",
    "DataConfig",
    "GateConfig",
    "MeasureConfig",
    "ModelConfig",
    "ReferenceConfig",
    "TargetConfig",
]
