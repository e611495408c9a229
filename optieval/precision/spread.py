"""Calibration robustness: K INT8 models, each calibrated on its own resampled subset, run on the
same samples; how far their outputs spread from FP32 and from each other
(``convert(..., calib_repeats=K)``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.precision.cache import cached_artifact
from optieval.precision.int8 import calibration_batch
from optieval.precision.request import ConversionRequest, random_dataset

_SPREAD_EVAL_SAMPLES = 256


@dataclass(frozen=True)
class OutputSpread:
    """How one output moves with the calibration subset.

    Attributes:
        name: the output.
        max_abs_vs_fp32: per subset, the largest absolute difference from the FP32 model.
        cosine_vs_fp32: per subset, the lowest per-sample cosine similarity to FP32.
        max_abs_between: the largest absolute difference between any two subsets' models.
        cosine_between: the lowest per-sample cosine similarity between any two of them.
    """

    name: str
    max_abs_vs_fp32: tuple[float, ...]
    cosine_vs_fp32: tuple[float, ...]
    max_abs_between: float
    cosine_between: float

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "name": self.name,
            "max_abs_vs_fp32": list(self.max_abs_vs_fp32),
            "cosine_vs_fp32": list(self.cosine_vs_fp32),
            "max_abs_between": self.max_abs_between,
            "cosine_between": self.cosine_between,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputSpread:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            tuple(float(v) for v in data["max_abs_vs_fp32"]),
            tuple(float(v) for v in data["cosine_vs_fp32"]),
            float(data["max_abs_between"]),
            float(data["cosine_between"]),
        )


@dataclass(frozen=True)
class CalibrationSpread:
    """Calibration robustness: K INT8 models, each calibrated on its own resampled subset.

    Subset 0 is the artifact itself (the first ``samples_per_subset`` samples); subsets 1..K-1
    are drawn with replacement from the whole data set (seeds 1..K-1). Every model runs on the
    same ``eval_samples`` samples of the data set, on ONNX Runtime CPU.
    """

    repeats: int
    samples_per_subset: int
    eval_samples: int
    outputs: tuple[OutputSpread, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "repeats": self.repeats,
            "samples_per_subset": self.samples_per_subset,
            "eval_samples": self.eval_samples,
            "outputs": [o.to_json() for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationSpread:
        """Inverse of :meth:`to_json`."""
        return cls(
            int(data["repeats"]),
            int(data["samples_per_subset"]),
            int(data["eval_samples"]),
            tuple(OutputSpread.from_json(o) for o in data["outputs"]),
        )


def _cpu_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def calibration_spread(request: ConversionRequest, primary: Path) -> CalibrationSpread:
    """Calibrate ``request.calib_repeats - 1`` more INT8 models on resampled subsets (seeds
    1..K-1) and compare all of them, ``primary`` first, with the FP32 source on ONNX Runtime CPU."""
    assert request.data is not None and request.calib_data is not None
    data = request.data
    per_subset = request.calib_data.num_samples
    models = [primary]
    for k in range(1, request.calib_repeats):
        if request.random:
            subset = random_dataset(request.signature, per_subset, seed=k)
        else:
            rng = np.random.default_rng(k)
            subset = data.subset(rng.integers(0, data.num_samples, size=per_subset))
        models.append(cached_artifact(request, subset).path)
    eval_data = (
        data
        if data.num_samples <= _SPREAD_EVAL_SAMPLES
        else data.subset(range(_SPREAD_EVAL_SAMPLES))
    )
    batch_size, fixed = calibration_batch(request.signature, eval_data.num_samples)

    count = -(-eval_data.num_samples // batch_size)

    def run(path: Path) -> dict[str, np.ndarray]:
        session = _cpu_session(path)
        outputs: dict[str, list[np.ndarray]] = {}
        names = [o.name for o in session.get_outputs()]
        for feeds in eval_data.batches(batch_size, count=count, cycle=fixed):
            for name, value in zip(names, session.run(names, dict(feeds)), strict=True):
                outputs.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
        return {k: np.concatenate(v)[: eval_data.num_samples] for k, v in outputs.items()}

    reference = run(request.source)
    results = [run(m) for m in models]
    spreads = []
    for name, ref in reference.items():
        vs_abs = tuple(_max_abs(r[name], ref) for r in results)
        vs_cos = tuple(_min_cosine(r[name], ref) for r in results)
        pairs = [(i, j) for i in range(len(results)) for j in range(i + 1, len(results))]
        between_abs = max(
            (_max_abs(results[i][name], results[j][name]) for i, j in pairs), default=0.0
        )
        between_cos = min(
            (_min_cosine(results[i][name], results[j][name]) for i, j in pairs), default=1.0
        )
        spreads.append(OutputSpread(name, vs_abs, vs_cos, between_abs, between_cos))
    return CalibrationSpread(
        request.calib_repeats, per_subset, eval_data.num_samples, tuple(spreads)
    )


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Lowest per-sample cosine similarity (1.0 for two zero vectors)."""
    x = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, -1)
    y = b.reshape(b.shape[0], -1) if b.ndim else b.reshape(1, -1)
    dot = np.sum(x * y, axis=1)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 1.0)
    return float(np.min(cos)) if cos.size else 1.0
