"""Streaming calibration (optieval.precision.calibration): bounded histograms that rebin exactly
as ranges grow, entropy and percentile ranges that differ from min-max where the histograms have
tails and equal it where they do not, and the ranges reaching ONNX Runtime's quantizer."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from optieval.precision import convert
from optieval.precision.calibration import (
    HISTOGRAM_BINS,
    StreamingHistogram,
    calibrate,
    kl_threshold,
)
from tests.conftest import calib_array


def _with_outliers(seed: int, size: int = 50_000) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal(size).astype(np.float32)
    values[:4] = [40.0, -35.0, 55.0, 30.0]
    return values


def test_histogram_rebins_exactly_and_keeps_its_size() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(1000).astype(np.float32) * s for s in (0.5, 1, 3, 10, 2)]
    hist = StreamingHistogram(64)
    size = hist.nbytes
    for batch in batches:
        hist.update(batch)
    assert hist.nbytes == size == 2 * 64 * 8  # bounded: independent of the values seen
    assert hist.edge > 10 * 0.5  # it grew, by doublings of the first batch's largest magnitude
    everything = np.concatenate(batches)
    width = hist.edge / 64
    direct = np.bincount(
        np.clip(np.floor(everything / width).astype(np.int64) + 64, 0, 127), minlength=128
    )
    np.testing.assert_array_equal(hist.counts, direct)  # merging neighbours lost nothing
    assert hist.minmax() == (float(everything.min()), float(everything.max()))
    assert hist.count == everything.size
    hist.update(np.array([np.nan, np.inf, 1.0], np.float32))  # non-finite values ignored
    assert hist.count == everything.size + 1


def test_entropy_and_percentile_clip_tails_and_keep_full_ranges() -> None:
    tailed = StreamingHistogram()
    tailed.update(_with_outliers(1))
    low, high = tailed.minmax()
    assert (low, high) == (-35.0, 55.0)
    for symmetric in (True, False):
        e_low, e_high = tailed.entropy_range(symmetric=symmetric)
        p_low, p_high = tailed.percentile_range(99.9, symmetric=symmetric)
        assert 2.5 < e_high < 20 and -20 < e_low < -2.5  # a few sigma, not the outliers
        assert 2.5 < p_high < 20 and -20 < p_low < -2.5
    flat = StreamingHistogram()
    flat.update(np.random.default_rng(2).uniform(-1, 1, 50_000).astype(np.float32))
    assert flat.entropy_range(symmetric=True) == flat.minmax()  # nothing to clip
    assert flat.percentile_range(99.999, symmetric=True) == flat.minmax()
    # ReLU6 output: most values exactly 0, a few saturated at 6. The zero spike must not pull
    # the range in (it did: 0.7 of 6 on EfficientNet-Lite0, top-1 agreement 0).
    relu6 = StreamingHistogram()
    values = np.clip(np.random.default_rng(4).standard_normal(50_000) * 2 - 1.5, 0, 6)
    relu6.update(values.astype(np.float32))
    assert (values == 0).mean() > 0.7
    for symmetric in (True, False):
        assert relu6.entropy_range(symmetric=symmetric)[1] > 4.5
    relu = StreamingHistogram()
    relu.update(np.maximum(_with_outliers(3), 0))
    assert relu.entropy_range(symmetric=False)[0] == 0.0  # one-signed stays one-signed
    assert 0 < relu.entropy_range(symmetric=False)[1] < 20


def test_kl_threshold_keeps_what_fits_the_levels() -> None:
    assert kl_threshold(np.r_[np.ones(100), np.zeros(500)], 128) == 100
    decaying = np.floor(1e6 * np.exp(-np.arange(2048) / 60.0)) + 1  # a long thin tail
    assert 128 < kl_threshold(decaying, 128) < 1024


def _activation_scales(path: str | Path) -> dict[str, float]:
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {
        n.input[0]: float(inits[n.input[1]])
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits
    }


@pytest.fixture
def outlier_calib(tmp_path: Path) -> Path:
    # Enough values for the 99.999th percentile to fall below a handful of extreme pixels.
    x = calib_array(2000)
    x[0, 0, 0, :3] = [25.0, -30.0, 28.0]  # long activation tails
    path = tmp_path / "calib_outliers.npz"
    np.savez(path, x=x)
    return path


def test_methods_reach_the_quantizer(cnn_onnx: Path, outlier_calib: Path) -> None:
    results = {
        method: convert(
            cnn_onnx,
            "int8",
            calib=outlier_calib,
            calib_method=method,
            output=cnn_onnx.with_name(f"{method}.onnx"),
        )
        for method in ("minmax", "entropy", "percentile")
    }
    scales = {method: _activation_scales(r.output) for method, r in results.items()}
    for method, result in results.items():  # the user is told what calibration did
        (note,) = [n for n in result.notes if n.startswith("calibration:")]
        assert f"calibration: {method} over 2000 samples" in note and "MiB" in note
        narrowed = int(note.split(" ranges narrower")[0].rsplit(" ", 1)[1])
        assert (narrowed == 0) == (method == "minmax"), note
    assert scales["minmax"].keys() == scales["entropy"].keys() == scales["percentile"].keys()
    for method in ("entropy", "percentile"):
        smaller = [t for t in scales[method] if scales[method][t] < scales["minmax"][t] * 0.95]
        assert smaller, method  # tails clipped somewhere
        assert all(scales[method][t] <= scales["minmax"][t] * 1.0001 for t in scales[method])


def test_minmax_matches_onnx_runtime_calibrator(cnn_onnx: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    x = calib_array(24)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"x": x[i : i + 8]} for i in range(0, 24, 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    def quantize(out: Path, reader: Reader | None, cache: Path | None) -> dict[str, float]:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(cnn_onnx),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_cache_path=None if cache is None else str(cache),
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
            )
        return _activation_scales(out)

    ours = calibrate(cnn_onnx, iter(Reader().get_next, None), "minmax", symmetric=True)
    assert ours.samples == 24 and ours.batches == 3
    assert ours.histogram_bytes == len(ours.ranges) * 2 * HISTOGRAM_BINS * 8
    cache = ours.write_ort_cache(tmp_path / "calibration.json")
    theirs = quantize(tmp_path / "ort.onnx", Reader(), None)
    assert quantize(tmp_path / "ours.onnx", None, cache) == theirs  # byte-identical scales


def test_default_method_is_chosen_per_format(cnn_onnx: Path, calib_npz: Path) -> None:
    symmetric = convert(cnn_onnx, "int8", calib=calib_npz, output=cnn_onnx.with_name("s.onnx"))
    assert symmetric.int8_format == "symmetric"
    assert symmetric.options["calib_method"] == "percentile"
    assert symmetric.calibration is not None and symmetric.calibration["method"] == "percentile"
    u8s8 = convert(
        cnn_onnx, "int8", calib=calib_npz, int8_format="u8s8", output=cnn_onnx.with_name("u.onnx")
    )
    assert u8s8.options["calib_method"] == "minmax"
    asked = convert(
        cnn_onnx,
        "int8",
        calib=calib_npz,
        calib_method="entropy",
        output=cnn_onnx.with_name("e.onnx"),
    )
    assert asked.options["calib_method"] == "entropy"
