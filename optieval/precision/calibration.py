"""INT8 activation calibration with streaming histograms: min-max, entropy (KL divergence) and
percentile ranges computed by optieval and handed to ONNX Runtime's quantizer as a calibration
cache (``quantize_static(calibration_cache_path=...)``), so that ORT runs no calibrator of its own.

Why not ONNX Runtime's calibrators (1.31): its ``HistogramCalibrater`` keeps every calibrated
tensor of every batch in memory before it builds one histogram (13.4 GB on MobileNetV2 with 400
samples), and its entropy calibrator defaults to ``num_bins=128`` with
``num_quantized_bins=128``, which leaves exactly one candidate threshold, the whole histogram,
then clipped to the tensor's min and max: entropy ranges are min-max ranges, byte for byte.

Here each calibrated tensor gets a :class:`StreamingHistogram`: a running min and max, and a
histogram of a fixed number of bins (:data:`HISTOGRAM_BINS` on each side of zero) over
``[-edge, edge)``. The first batch sets ``edge`` to its largest magnitude; when a later batch
goes beyond it, ``edge`` doubles (and again, as often as needed) and every pair of neighbouring
bins merges into one, exactly. Memory is therefore ``2 * HISTOGRAM_BINS`` 8-byte counts per tensor
(32 KiB at 2048 bins; 3.2 MiB for 100 tensors), whatever the number of samples, plus the outputs
of one calibration batch at a time. The resolution is at least ``HISTOGRAM_BINS / 2`` bins over
the tensor's largest magnitude.

Ranges, per tensor (``symmetric`` for the zero-point-0 format TensorRT needs, else asymmetric):

* ``minmax``: the running min and max (identical to ONNX Runtime's MinMax calibrator);
* ``percentile``: the magnitude below which :data:`PERCENTILE` % of the values fall
  (symmetric), or the two tails of (100 - :data:`PERCENTILE`) / 2 % each (asymmetric), never
  beyond min and max;
* ``entropy``: TensorRT's KL-divergence threshold on the magnitude histogram: for each candidate
  threshold, the distribution clipped there is compared with its quantization to 128 levels
  (256 for a tensor of one sign in an asymmetric format) and the threshold with the smallest
  divergence wins; clipped to min and max. The bin at zero counts as its neighbour (as in
  NVIDIA's pytorch-quantization): the spike of exact zeros after a ReLU otherwise drives the
  search to the narrowest range.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.errors import InputError

HISTOGRAM_BINS = 2048
"""Histogram bins on each side of zero per calibrated tensor (memory: 2 x 8 bytes each)."""

PERCENTILE = 99.999
"""The share of values (in %) the ``percentile`` method keeps inside the range."""

DEFAULT_CALIB_METHODS: dict[str, str] = {"symmetric": "percentile", "u8s8": "minmax"}
"""The calibration method used when none is asked for, per static INT8 format, chosen by
measurement (benchmarks/README.md, "Calibration"): on the symmetric format percentile beat
min-max on EfficientNet-Lite0 (top-1 agreement 78.0% against 75.2%, 18 images against 7, paired
p = 0.04) and on MiniLM (lowest sentence cosine 0.947 against 0.926); on u8s8 no method beat
min-max (79.2%; percentile 78.5%, entropy 77.5%, neither significant), which also keeps the
u8s8 artifact identical to ONNX Runtime's own ``quantize_static``."""


def default_calib_method(int8_format: str) -> str:
    """The calibration method :data:`DEFAULT_CALIB_METHODS` gives ``int8_format`` (min-max for
    any other format)."""
    return DEFAULT_CALIB_METHODS.get(int8_format, "minmax")


_ENTROPY_CANDIDATES = 64  # thresholds per round of the coarse-to-fine KL search
_KL_EPS = 1e-4


class StreamingHistogram:
    """A running min/max and a fixed-size, self-rebinning histogram of one tensor's values.

    Args:
        bins: bins on each side of zero (even).
    """

    def __init__(self, bins: int = HISTOGRAM_BINS) -> None:
        if bins < 2 or bins % 2:
            raise ValueError(f"bins must be even and at least 2, not {bins}")
        self.bins = bins
        self.counts = np.zeros(2 * bins, dtype=np.int64)
        self.edge = 0.0
        self.lowest = np.inf
        self.highest = -np.inf
        self.count = 0

    @property
    def nbytes(self) -> int:
        """Bytes the histogram holds (its counts)."""
        return int(self.counts.nbytes)

    def update(self, values: np.ndarray, *, histogram: bool = True) -> None:
        """Add ``values`` (any shape; NaN and infinities are ignored); without ``histogram``
        only the min, max and count."""
        flat = np.asarray(values, dtype=np.float32).ravel()
        if not flat.size:
            return
        low, high = float(flat.min()), float(flat.max())
        if not (np.isfinite(low) and np.isfinite(high)):  # NaN or inf among them
            flat = flat[np.isfinite(flat)]
            if not flat.size:
                return
            low, high = float(flat.min()), float(flat.max())
        self.lowest = min(self.lowest, low)
        self.highest = max(self.highest, high)
        self.count += int(flat.size)
        if not histogram:
            return
        magnitude = max(abs(low), abs(high))
        if self.edge == 0.0:
            if magnitude == 0.0:
                self.counts[self.bins] += flat.size  # zeros: the bin [0, w) whatever w becomes
                return
            self.edge = magnitude
        while magnitude > self.edge:
            self._double()
        # Shifted by edge, every value is >= 0: truncation is floor (one pass fewer).
        scale = np.float32(self.bins / self.edge)
        index = ((flat + np.float32(self.edge)) * scale).astype(np.intp)  # bincount: intp
        np.minimum(index, 2 * self.bins - 1, out=index)
        self.counts += np.bincount(index, minlength=2 * self.bins)

    def _double(self) -> None:
        """Double the edge: neighbouring bins merge pairwise (exact for bins centred on 0)."""
        merged = self.counts[0::2] + self.counts[1::2]
        self.counts = np.zeros_like(self.counts)
        half = self.bins // 2
        self.counts[half : half + self.bins] = merged
        self.edge *= 2.0

    def magnitudes(self) -> np.ndarray:
        """Counts of ``|x|`` in ``[k w, (k+1) w)`` for k < bins (w = edge / bins)."""
        positive = self.counts[self.bins :]
        negative = self.counts[: self.bins][::-1]
        return positive + negative

    def minmax(self) -> tuple[float, float]:
        """The running (min, max); (0, 0) before any value."""
        if self.count == 0:
            return 0.0, 0.0
        return float(self.lowest), float(self.highest)

    def percentile_range(self, percentile: float, *, symmetric: bool) -> tuple[float, float]:
        """The range keeping ``percentile`` % of the values (see the module docstring)."""
        lo, hi = self.minmax()
        if self.count == 0 or self.edge == 0.0:
            return lo, hi
        width = self.edge / self.bins
        if symmetric:
            cdf = np.cumsum(self.magnitudes()) / self.count
            k = int(np.searchsorted(cdf, percentile / 100.0))
            t = (min(k, self.bins - 1) + 1) * width
            return max(lo, -t), min(hi, t)
        cut = (100.0 - percentile) / 200.0
        cdf = np.cumsum(self.counts) / self.count
        left = int(np.searchsorted(cdf, cut))  # bin of the lower tail's end
        right = int(np.searchsorted(cdf, 1.0 - cut))
        low_edge = (left - self.bins) * width
        high_edge = (min(right, 2 * self.bins - 1) - self.bins + 1) * width
        return max(lo, low_edge), min(hi, high_edge)

    def entropy_range(self, *, symmetric: bool) -> tuple[float, float]:
        """The KL-divergence range (see the module docstring)."""
        lo, hi = self.minmax()
        if self.count == 0 or self.edge == 0.0:
            return lo, hi
        one_sign = lo >= 0.0 or hi <= 0.0
        levels = 256 if (one_sign and not symmetric) else 128
        magnitudes = self.magnitudes()
        # The bin at zero holds every exact zero (after a ReLU, most values): quantization keeps
        # zeros exact, and left in, that spike makes the KL search prefer the narrowest range
        # (EfficientNet-Lite's ReLU6 outputs clipped to 0.7 of 6: top-1 agreement 0). As
        # NVIDIA's pytorch-quantization does, count it as its neighbour.
        magnitudes[0] = magnitudes[1]
        t = kl_threshold(magnitudes, levels) * (self.edge / self.bins)
        return max(lo, -t), min(hi, t)


def kl_threshold(hist: np.ndarray, levels: int) -> int:
    """The number of leading bins of the magnitude histogram ``hist`` whose clipped distribution
    loses least (KL divergence) when quantized to ``levels`` levels (TensorRT's entropy
    calibration). Returns a bin count in ``[levels, len(hist)]``.

    The search is coarse to fine: :data:`_ENTROPY_CANDIDATES` thresholds spread over the
    histogram, then every bin count around the best of them (to within one bin when the step
    allows)."""
    hist = np.asarray(hist, dtype=np.float64)
    used = int(np.flatnonzero(hist)[-1]) + 1 if hist.any() else 0
    if used <= levels:
        return max(used, 1)  # no clipping can help: the data fits the levels exactly
    suffix = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # suffix[i] = sum(hist[i:])
    scores: dict[int, float] = {}

    def search(first: int, last: int, step: int) -> int:
        for i in [*range(first, last + 1, step), last]:
            if i not in scores:
                scores[i] = _clipped_kl(hist, suffix, i, levels)
        return min(scores, key=lambda i: (scores[i], -i))

    step = max(1, (used - levels) // _ENTROPY_CANDIDATES)
    best = search(levels, used, step)
    if step > 1:
        fine = max(1, step // _ENTROPY_CANDIDATES)
        best = search(max(levels, best - step), min(used, best + step), fine)
    return best


def _clipped_kl(hist: np.ndarray, suffix: np.ndarray, i: int, levels: int) -> float:
    """KL divergence between ``hist`` clipped at ``i`` bins and its quantization to
    ``levels`` levels (each level's mass spread over its non-empty bins, as TensorRT does)."""
    sliced = hist[:i]
    p = sliced.copy()
    p[i - 1] += suffix[i]  # the clipped values pile up in the last bin
    nonzero = sliced > 0
    bounds = (np.arange(levels + 1) * i) // levels
    group_sum = np.add.reduceat(sliced, bounds[:-1])
    group_nonzero = np.add.reduceat(nonzero.astype(np.float64), bounds[:-1])
    spread = np.divide(
        group_sum, group_nonzero, out=np.zeros_like(group_sum), where=group_nonzero > 0
    )
    q = np.where(nonzero, np.repeat(spread, np.diff(bounds)), 0.0)
    return _kl(p, q)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    if q.sum() <= 0:
        return float("inf")
    q = q / q.sum()
    support = p > 0
    # Smooth q where p has mass and q has none (the clipped tail), as TensorRT does.
    q = np.where(support & (q == 0), _KL_EPS, q)
    q = q / q.sum()
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


@dataclass(frozen=True)
class CalibrationRanges:
    """Activation ranges from one calibration pass.

    Attributes:
        method: ``minmax``, ``entropy`` or ``percentile``.
        symmetric: whether the ranges were chosen for symmetric (zero point 0) activations.
        ranges: ``{tensor name: (low, high)}``.
        samples: calibration samples seen; ``batches`` the runs.
        histogram_bytes: the memory the histograms held (all tensors together).
        seconds: wall time of collection and range selection.
        narrowed: how many ranges are narrower than the tensor's min-max range (0 for
            ``minmax``; entropy and percentile clip tails only where the histogram has them).
    """

    method: str
    symmetric: bool
    ranges: dict[str, tuple[float, float]]
    samples: int
    batches: int
    histogram_bytes: int
    seconds: float
    narrowed: int = 0

    def note(self) -> str:
        """One line for the conversion's notes: method, tensors, ranges narrowed, memory."""
        return (
            f"calibration: {self.method} over {self.samples} samples, {len(self.ranges)} "
            f"activation tensors, {self.narrowed} ranges narrower than min-max; histograms "
            f"{self.histogram_bytes / 2**20:.1f} MiB ({self.seconds:.1f} s)"
        )

    def summary(self) -> dict[str, Any]:
        """What a manifest records about the calibration pass (not the ranges themselves)."""
        return {
            "method": self.method,
            "symmetric": self.symmetric,
            "tensors": len(self.ranges),
            "histogram_bins": HISTOGRAM_BINS,
            "histogram_bytes": self.histogram_bytes,
            "percentile": PERCENTILE if self.method == "percentile" else None,
        }

    def write_ort_cache(self, path: Path) -> Path:
        """Write the ranges as an ONNX Runtime calibration cache (``calibration_cache_path`` of
        ``quantize_static``, declared MinMax: pass ``calibrate_method=CalibrationMethod.MinMax``
        with it). Returns ``path``."""
        data = {
            name: {
                "lowest": _np_json(lo),
                "highest": _np_json(hi),
                "CLS": "TensorData",
            }
            for name, (lo, hi) in self.ranges.items()
        }
        payload = {
            "CLS": "TensorsData",
            "data": data,
            "calibration_method": {
                "CLS": "CalibrationMethod",
                "value": "CalibrationMethod.MinMax",
            },
            "smooth_quant": False,
        }
        path.write_text(json.dumps(payload))
        return path


def _np_json(value: float) -> dict[str, Any]:
    return {"data": float(np.float32(value)), "dtype": "float32", "CLS": "numpy.array"}


def calibration_tensors(model: onnx.ModelProto, op_types: Sequence[str] | None) -> list[str]:
    """The float tensors ONNX Runtime's calibrators would calibrate: inputs and outputs of the
    nodes of ``op_types`` (None: every op type the QDQ quantizer handles), initializers aside.
    ``model`` must be shape-inferred (its ``value_info`` gives the types)."""
    if op_types is None:
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        op_types = sorted({*QLinearOpsRegistry, *QDQRegistry})
    g = model.graph
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    typed = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in (*g.value_info, *g.output, *g.input)
        if vi.type.HasField("tensor_type")
    }
    initializers = {t.name for t in g.initializer}
    wanted = set(op_types)
    names: dict[str, None] = {}
    for node in g.node:
        if node.op_type not in wanted:
            continue
        for name in (*node.input, *node.output):
            if name and name not in initializers and typed.get(name) in floats:
                names[name] = None
    return list(names)


def calibrate(
    model_path: Path,
    feeds: Iterable[dict[str, np.ndarray]],
    method: str,
    *,
    symmetric: bool,
    op_types: Sequence[str] | None = None,
    bins: int = HISTOGRAM_BINS,
) -> CalibrationRanges:
    """Run ``model_path`` on every batch of ``feeds`` once and choose each calibrated tensor's
    range by ``method`` from its :class:`StreamingHistogram`.

    Args:
        model_path: the (pre-processed) FP32 model; external data beside it is found.
        feeds: calibration batches, each a feed dict.
        method: ``minmax``, ``entropy`` or ``percentile``.
        symmetric: choose ranges for symmetric (zero point 0) activations.
        op_types: the op types whose tensors are calibrated (:func:`calibration_tensors`).
        bins: histogram bins on each side of zero.

    Raises:
        InputError: an unknown method, or no calibration batch.
    """
    if method not in ("minmax", "entropy", "percentile"):
        raise InputError(f"unknown calibration method {method!r}", where="calib_method")
    import onnxruntime as ort

    started = time.perf_counter()
    inferred = model_path.with_name(model_path.stem + ".calib-inferred.onnx")
    onnx.shape_inference.infer_shapes_path(str(model_path), str(inferred))
    proto = onnx.load(str(inferred), load_external_data=False)
    tensors = calibration_tensors(proto, op_types)
    outputs = {o.name for o in proto.graph.output}
    # Untyped outputs: ONNX Runtime resolves their types (ONNX shape inference may not have).
    proto.graph.output.extend(onnx.ValueInfoProto(name=n) for n in tensors if n not in outputs)
    augmented = model_path.with_name(model_path.stem + ".calib-augmented.onnx")
    onnx.save_model(proto, str(augmented))  # beside the model: external data paths hold
    del proto
    inferred.unlink(missing_ok=True)
    options = ort.SessionOptions()
    # As ONNX Runtime's calibrators: no fusions, so every tensor keeps its float values.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(augmented), options, providers=["CPUExecutionProvider"])
    finally:
        augmented.unlink(missing_ok=True)
    histograms = {name: StreamingHistogram(bins) for name in tensors}
    samples = batches = 0
    for feed in feeds:
        values = session.run(tensors, feed)
        for name, array in zip(tensors, values, strict=True):
            histograms[name].update(array, histogram=method != "minmax")
        del values
        batches += 1
        samples += len(next(iter(feed.values()))) if feed else 0
    if batches == 0:
        raise InputError("no calibration batch", where="calib")
    ranges: dict[str, tuple[float, float]] = {}
    narrowed = 0
    for name, hist in histograms.items():
        if hist.count == 0:
            continue  # no value seen (an empty tensor): ORT leaves such a tensor in float
        if method == "minmax":
            ranges[name] = hist.minmax()
        elif method == "percentile":
            ranges[name] = hist.percentile_range(PERCENTILE, symmetric=symmetric)
        else:
            ranges[name] = hist.entropy_range(symmetric=symmetric)
        narrowed += _narrower(ranges[name], hist.minmax(), symmetric=symmetric)
    return CalibrationRanges(
        method=method,
        symmetric=symmetric,
        ranges=ranges,
        samples=samples,
        batches=batches,
        histogram_bytes=sum(h.nbytes for h in histograms.values()),
        seconds=time.perf_counter() - started,
        narrowed=narrowed,
    )


def _narrower(chosen: tuple[float, float], full: tuple[float, float], *, symmetric: bool) -> bool:
    """Whether ``chosen`` quantizes with a smaller scale than ``full`` (the min-max range)."""
    if symmetric:
        return max(abs(chosen[0]), abs(chosen[1])) < max(abs(full[0]), abs(full[1]))
    return chosen[0] > full[0] or chosen[1] < full[1]
