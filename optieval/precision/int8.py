"""INT8 artifacts with onnxruntime.quantization: ``quant_pre_process`` (shape inference,
fusions), then ``quantize_static`` in QDQ form with per-channel symmetric int8 weights and
symmetric int8 activations (zero point 0, which TensorRT requires), calibrated on real data with
MinMax, Entropy or Percentile."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.core import Dataset, Signature, save_onnx
from optieval.errors import InputError

CALIB_METHODS = ("minmax", "entropy", "percentile")
"""Calibration methods ``convert(..., calib_method=...)`` accepts."""

ORT_CPU_INT8_DISABLED_OPTIMIZERS: tuple[str, ...] = ("CommonSubexpressionElimination",)
"""Pass as ``disabled_optimizers`` to an ONNX Runtime CPU session of an INT8 artifact.

The artifact has one Q/DQ pair per consumer; ORT's common-subexpression elimination merges them
back, and on x86 an int8 QuantizeLinear with several consumers is not turned into uint8, so the
Convs behind it stay in float (ResNet-18: 9 of 20 fused). Without it all 20 become QLinearConv.
"""


def int8_options(
    calib_method: str, calib_samples: int | None, exclude: Sequence[str]
) -> dict[str, Any]:
    """The options that shape an INT8 artifact (part of its cache key and manifest)."""
    return {
        "format": "QDQ",
        "weights": "int8 per-channel symmetric",
        "activations": "int8 symmetric (zero point 0)",
        "dedicated_qdq_pairs": True,
        "calib_method": calib_method,
        "calib_samples": calib_samples,
        "exclude": list(exclude),
    }


class CalibrationReader:
    """Feeds calibration batches to onnxruntime's calibrator (a CalibrationDataReader)."""

    def __init__(self, data: Dataset, batch_size: int, fixed_batch: bool) -> None:
        self.data = data
        self.batch_size = batch_size
        self.fixed_batch = fixed_batch
        self._iterator: Iterator[dict[str, np.ndarray]] | None = None
        self.rewind()

    def rewind(self) -> None:
        """Start again from the first batch."""
        count = -(-self.data.num_samples // self.batch_size)
        # A model with a fixed batch gets full batches: the last one wraps around.
        self._iterator = self.data.batches(self.batch_size, count=count, cycle=self.fixed_batch)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch of feeds, or None after the last."""
        assert self._iterator is not None
        return next(self._iterator, None)

    def __len__(self) -> int:
        return -(-self.data.num_samples // self.batch_size)


def calibration_batch(signature: Signature, samples: int) -> tuple[int, bool]:
    """Batch size for calibration runs, and whether the model's batch is fixed.

    A fixed batch is used as it is (the last batch wraps around). Otherwise the largest divisor
    of ``samples`` up to 16: onnxruntime's histogram calibrators (entropy, percentile) stack
    the per-batch tensors and need every batch to have the same shape.
    """
    fixed = {s.shape[0] for s in signature.inputs if s.shape and isinstance(s.shape[0], int)}
    if len(fixed) == 1:
        return int(next(iter(fixed))), True
    return max(d for d in range(1, min(16, samples) + 1) if samples % d == 0), False


@contextlib.contextmanager
def quiet_ort_logging() -> Iterator[None]:
    """Raise the root logger to ERROR for the block (onnxruntime.quantization logs freely)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def pre_process(source: Path, target: Path, external: bool, *, skip_symbolic_shape: bool) -> None:
    """onnxruntime's ``quant_pre_process`` from ``source`` to ``target`` (external data beside
    ``target`` when ``external``)."""
    from onnxruntime.quantization import quant_pre_process

    with quiet_ort_logging():
        quant_pre_process(
            str(source),
            str(target),
            skip_symbolic_shape=skip_symbolic_shape,
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            external_data_location=target.name + ".data",
        )


def build_int8(
    model: onnx.ModelProto,
    calib: Dataset,
    work: Path,
    *,
    external: bool,
    source: Path,
    signature: Signature,
    calib_method: str,
    exclude: Sequence[str],
    op_types: Collection[str],
) -> tuple[Path, list[str]]:
    """Quantize ``model`` (FP32, loaded with its data) to QDQ INT8 in the folder ``work``.

    Args:
        model: the source model, its nodes named (:func:`~optieval.precision.node_names`).
        calib: the calibration samples.
        work: an empty scratch folder; the result is ``work/out/model.onnx``.
        external: write the result with external data (``model.onnx.data``).
        source: the source model's path, named in errors.
        signature: the source model's inputs (fixed or dynamic batch).
        calib_method: one of :data:`CALIB_METHODS`.
        exclude: node names or op types kept in float.
        op_types: the entries of ``exclude`` that are op types (every node of that type).

    Returns:
        The path of the quantized model (the caller runs ``onnx.checker`` on it) and notes.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    notes: list[str] = []
    named = work / "named.onnx"
    save_onnx(model, named, external=external)
    pre = work / "pre.onnx"
    try:
        pre_process(named, pre, external, skip_symbolic_shape=False)
    except Exception as first:
        # ORT's symbolic shape inference asserts on some graphs (e.g. Reshape of a computed
        # shape); ONNX shape inference and the fusions still apply without it.
        notes.append(
            f"symbolic shape inference failed ({type(first).__name__}); pre-processed without it"
        )
        try:
            pre_process(named, pre, external, skip_symbolic_shape=True)
        except Exception as exc:
            raise InputError(
                f"INT8 pre-processing failed ({type(exc).__name__}: {exc})".splitlines()[0],
                where=str(source),
                hint="try `exclude` on the op types named, or simplify the model",
            ) from exc
    pre_proto = onnx.load(str(pre), load_external_data=False)
    present = {n.name for n in pre_proto.graph.node}
    excluded: list[str] = []
    for entry in exclude:
        if entry in op_types:
            excluded.extend(n.name for n in pre_proto.graph.node if n.op_type == entry)
        elif entry in present:
            excluded.append(entry)
        else:
            notes.append(f"`exclude` {entry}: fused away by pre-processing (nothing to keep)")
    batch_size, fixed = calibration_batch(signature, calib.num_samples)
    reader = CalibrationReader(calib, batch_size, fixed)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    quantized = work / "quantized.onnx"
    try:
        # The calibrators print progress to stdout; keep the command's output clean.
        with quiet_ort_logging(), contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(pre),
                str(quantized),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                use_external_data_format=external,
                calibrate_method=methods[calib_method],
                calibration_providers=["CPUExecutionProvider"],
                extra_options={
                    "ActivationSymmetric": True,
                    "WeightSymmetric": True,
                    # One Q/DQ pair per consumer: ORT fuses DQ->Conv->Q into QLinearConv only
                    # when the DQ feeds that node alone (residual inputs feed two).
                    "DedicatedQDQPair": True,
                },
            )
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"INT8 quantization failed ({type(exc).__name__}: {exc})".splitlines()[0],
            where=str(source),
            hint="check the calibration data; `exclude` the op types named",
        ) from exc
    if external:
        save_onnx(onnx.load(str(quantized)), out, external=True)
    else:
        os.replace(quantized, out)
    return out, notes
