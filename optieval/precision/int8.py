"""INT8 artifacts with onnxruntime.quantization, one form per runtime family
(:mod:`~optieval.precision.formats`): ``quant_pre_process`` (shape inference, fusions), then

* ``symmetric``: ``quantize_static`` in QDQ form, per-channel symmetric int8 weights, symmetric
  int8 activations (zero point 0, which TensorRT requires), one Q/DQ pair per consumer, and
  each consumer's pair given its own scale tensor (:func:`separate_shared_quantizers`);
* ``u8s8``: ``quantize_static`` in QDQ form, uint8 asymmetric activations, per-channel int8
  weights (ONNX Runtime's x86 CPU form);
* ``dynamic``: ``quantize_dynamic`` of the MatMul weights (int8), activations at run time.

Static formats are calibrated on real data with MinMax, Entropy or Percentile. On a transformer
(:func:`~optieval.precision.formats.is_transformer`) only the weight MatMul/Gemm (and Conv) nodes
are quantized: attention-score MatMuls, Softmax and LayerNorm stay in float.

onnxruntime's symbolic shape inference writes ``sym_shape_infer_temp.onnx`` and a
``<uuid>.data`` file into the *current directory* when it cannot finish; every call into the
quantization tools therefore runs with the build's scratch folder as the current directory
(:func:`scratch_cwd`), which the cache removes, also on failure.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.core import Dataset, Signature, save_onnx
from optieval.errors import InputError

CALIB_METHODS = ("minmax", "entropy", "percentile")
"""Calibration methods ``convert(..., calib_method=...)`` accepts."""

CSE_FINDING = (
    "ONNX Runtime's common-subexpression elimination merges a tensor's per-consumer QuantizeLinear "
    "nodes back into one with several consumers; on x86 ORT rewrites int8 Q/DQ pairs to uint8 only "
    "where the QuantizeLinear has one consumer (QDQS8ToU8Transformer), so the Convs behind a "
    "merged one stayed in float (ResNet-18: 11 of 20). Each consumer's pair now has its own scale "
    "tensor, so nothing can merge them."
)
"""Why the symmetric artifact used to need a session without CSE (benchmarks/README.md)."""

SESSION_OPTIONS: dict[str, Any] = {"config_entries": {}, "disabled_optimizers": []}
"""ONNX Runtime session settings an optieval INT8 artifact needs: none. Written into every
artifact's manifest (``session_options``) all the same, and applied from there by every optieval
ONNX Runtime backend, so that what is measured is what a plain session deploys."""


def int8_options(
    int8_format: str, calib_method: str, calib_samples: int | None, exclude: Sequence[str]
) -> dict[str, Any]:
    """The options that shape an INT8 artifact (part of its cache key and manifest)."""
    from optieval.precision.formats import describe_format

    options: dict[str, Any] = {"int8_format": int8_format, **describe_format(int8_format)}
    if int8_format == "symmetric":
        options["dedicated_qdq_pairs"] = True
        options["separate_scales"] = True
    if int8_format == "dynamic":
        options.update(calib_method=None, calib_samples=None)
    else:
        options.update(calib_method=calib_method, calib_samples=calib_samples)
    options["exclude"] = list(exclude)
    return options


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


_CWD_LOCK = threading.RLock()


@contextlib.contextmanager
def scratch_cwd(folder: Path) -> Iterator[None]:
    """Run the block with ``folder`` as the current directory (and hold a lock, the current
    directory being the process's): onnxruntime's symbolic shape inference drops
    ``sym_shape_infer_temp.onnx`` and ``<uuid>.data`` there when it gives up."""
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


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
    ``target`` when ``external``), with ``target``'s folder as the current directory."""
    from onnxruntime.quantization import quant_pre_process

    with quiet_ort_logging(), scratch_cwd(target.resolve().parent):
        quant_pre_process(
            str(source.resolve()),
            str(target.resolve()),
            skip_symbolic_shape=skip_symbolic_shape,
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            external_data_location=target.name + ".data",
        )


def separate_shared_quantizers(model: onnx.ModelProto) -> int:
    """Give every QuantizeLinear that repeats another's (input, scale, zero point) its own scale
    tensor, one float32 ulp above the previous one, and point its DequantizeLinear at it.

    Why: ONNX Runtime's CSE merges identical QuantizeLinear nodes (its ConstantSharing first
    merges equal scale tensors), and on x86 a merged int8 QuantizeLinear with several consumers
    is not rewritten to uint8, so the Conv behind it is not fused (:data:`CSE_FINDING`). Scales
    that differ by a relative 1.2e-7 cannot be merged and change no result that matters;
    TensorRT reads each pair as it is. Returns the number of scales separated.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    seen: dict[tuple[str, ...], int] = {}
    separated = 0
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 2:
            continue
        key = tuple(node.input)
        count = seen.get(key, 0)
        seen[key] = count + 1
        if count == 0 or node.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        for _ in range(count):
            scale = np.nextafter(scale, np.float32(np.inf)).astype(np.float32)
        name = f"{node.input[1]}_consumer{count}"
        graph.initializer.append(numpy_helper.from_array(scale, name))
        node.input[1] = name
        for dq in consumers.get(node.output[0], []):
            if dq.op_type == "DequantizeLinear" and len(dq.input) > 1:
                dq.input[1] = name
        separated += 1
    return separated


def name_dequantized_tensors(model: onnx.ModelProto) -> int:
    """Where a float tensor ``T`` feeds only a QuantizeLinear whose output feeds only one
    DequantizeLinear, rename ``T`` to ``T_float`` and give the DequantizeLinear's output the name
    ``T``: the artifact's tensor ``T`` is then the value its int8 consumers really read. Returns
    the number of tensors renamed.

    Why: in the u8s8 format the quantizer folds each ReLU into the zero point of the quantizer of
    the node before it and gives that node's output the ReLU's name; read by name, ``T`` was the
    value before the ReLU (parity's localization compared it with the reference's ReLU output).
    Names only: the graph, its fusions and its results are unchanged."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    producers = {out for node in graph.node for out in node.output}
    renamed = 0
    for q in list(graph.node):
        if q.op_type != "QuantizeLinear" or not q.input:
            continue
        tensor = q.input[0]
        readers = consumers.get(tensor, [])
        after = consumers.get(q.output[0], [])
        if (
            tensor in outputs
            or tensor not in producers
            or len(readers) != 1
            or len(after) != 1
            or after[0].op_type != "DequantizeLinear"
        ):
            continue
        dq = after[0]
        old = dq.output[0]
        if old in outputs:
            continue
        float_name = f"{tensor}_float"
        for node in graph.node:
            node.output[:] = [float_name if o == tensor else o for o in node.output]
        q.input[0] = float_name
        dq.output[0] = tensor
        for reader in consumers.get(old, []):
            reader.input[:] = [tensor if i == old else i for i in reader.input]
        for info in graph.value_info:
            if info.name == tensor:
                info.name = float_name
        renamed += 1
    return renamed


def unshare_gemm_weights(model: onnx.ModelProto) -> int:
    """Give every Gemm (transB=1) that shares its weight initializer with another node a copy
    of its own; returns how many copies were made.

    Why: ``quantize_dynamic`` rewrites Gemm into MatMul by transposing the weight initializer
    in place, assuming nobody else reads it (onnxruntime 1.31, ``replace_gemm_with_matmul``); a
    weight shared by two Gemms (identical layers deduplicated by the exporter) is transposed
    twice and the second layer computes with the wrong matrix. Works on a model without its
    external data loaded too (only counts then)."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    copies = 0
    for node in graph.node:
        if node.op_type != "Gemm" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
        if not trans_b or readers.get(node.input[1], 0) < 2:
            continue
        original = inits[node.input[1]]
        copy = onnx.TensorProto()
        copy.CopyFrom(original)
        copy.name = f"{original.name}_{node.name or copies}"
        graph.initializer.append(copy)
        readers[node.input[1]] -= 1
        node.input[1] = copy.name
        copies += 1
    return copies


def build_int8(
    model: onnx.ModelProto,
    calib: Dataset | None,
    work: Path,
    *,
    external: bool,
    source: Path,
    signature: Signature,
    calib_method: str,
    exclude: Sequence[str],
    op_types: Collection[str],
    int8_format: str = "symmetric",
) -> tuple[Path, list[str]]:
    """Quantize ``model`` (FP32, loaded with its data) to INT8 in ``int8_format`` in the folder
    ``work``.

    Args:
        model: the source model, its nodes named (:func:`~optieval.precision.node_names`).
        calib: the calibration samples (None for ``dynamic``, which needs none).
        work: an empty scratch folder; the result is ``work/out/model.onnx``.
        external: write the result with external data (``model.onnx.data``).
        source: the source model's path, named in errors.
        signature: the source model's inputs (fixed or dynamic batch).
        calib_method: one of :data:`CALIB_METHODS`.
        exclude: node names or op types kept in float.
        op_types: the entries of ``exclude`` that are op types (every node of that type).
        int8_format: ``symmetric``, ``u8s8`` or ``dynamic`` (:data:`~.formats.INT8_FORMATS`).

    Returns:
        The path of the quantized model (the caller runs ``onnx.checker`` on it) and notes.
    """
    from optieval.precision.formats import (
        activation_matmuls,
        ffn_down_projections,
        is_transformer,
    )

    notes: list[str] = []
    work = work.resolve()
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
                hint="try `exclude` on the op types named",
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
    quantize_ops: list[str] | None = None
    if is_transformer(pre_proto):
        # Only the weight products: attention scores, Softmax, LayerNorm, residual Adds and
        # the embedding lookups keep their float range (outliers there ruin a shared scale).
        quantize_ops = ["MatMul", "Gemm", "Conv", "ConvTranspose"]
        attention = activation_matmuls(pre_proto)
        excluded.extend(a for a in attention if a not in excluded)
        kept = f"{len(attention)} attention MatMuls"
        if int8_format != "dynamic":
            # A static scale cannot hold the GELU output's tail; run-time scales can.
            down = ffn_down_projections(pre_proto)
            excluded.extend(d for d in down if d not in excluded)
            kept += f", {len(down)} feed-forward down-projections (after GELU)"
        notes.append(
            f"transformer: weight MatMul/Gemm quantized; {kept}, Softmax and LayerNorm kept in "
            "float"
        )
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    quantized = work / "quantized.onnx"
    try:
        # The calibrators print progress to stdout; keep the command's output clean.
        with quiet_ort_logging(), contextlib.redirect_stdout(io.StringIO()), scratch_cwd(work):
            if int8_format == "dynamic":
                if unshare_gemm_weights(pre_proto):
                    pre_full = onnx.load(str(pre))
                    unshare_gemm_weights(pre_full)
                    pre = work / "pre_unshared.onnx"
                    save_onnx(pre_full, pre, external=external)
                _quantize_dynamic(pre, quantized, excluded, external)
            else:
                assert calib is not None
                calibrated = _quantize_static(
                    pre,
                    quantized,
                    calib,
                    signature,
                    calib_method=calib_method,
                    excluded=excluded,
                    external=external,
                    symmetric=int8_format == "symmetric",
                    op_types_to_quantize=quantize_ops,
                )
                notes.append(calibrated)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"INT8 quantization failed ({type(exc).__name__}: {exc})".splitlines()[0],
            where=str(source),
            hint="check the calibration data; `exclude` the op types named",
        ) from exc
    if int8_format == "symmetric":
        result = onnx.load(str(quantized))
        separated = separate_shared_quantizers(result)
        if separated:
            notes.append(f"{separated} shared activation quantizers given their own scale tensor")
        save_onnx(result, out, external=external)
    elif int8_format == "u8s8":
        result = onnx.load(str(quantized))
        name_dequantized_tensors(result)
        save_onnx(result, out, external=external)
    elif external:
        save_onnx(onnx.load(str(quantized)), out, external=True)
    else:
        os.replace(quantized, out)
    return out, notes


def _quantize_static(
    pre: Path,
    quantized: Path,
    calib: Dataset,
    signature: Signature,
    *,
    calib_method: str,
    excluded: list[str],
    external: bool,
    symmetric: bool,
    op_types_to_quantize: list[str] | None,
) -> str:
    """Calibrate (optieval's streaming histograms) and quantize; returns the calibration's note."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from optieval.precision.calibration import calibrate

    batch_size, fixed = calibration_batch(signature, calib.num_samples)
    reader = CalibrationReader(calib, batch_size, fixed)
    # optieval's streaming calibration (precision/calibration.py) chooses the activation
    # ranges; ONNX Runtime reads them as its calibration cache and only quantizes.
    ranges = calibrate(
        pre,
        iter(reader.get_next, None),
        calib_method,
        symmetric=symmetric,
        op_types=op_types_to_quantize,
    )
    cache = ranges.write_ort_cache(quantized.with_name("calibration.json"))
    if symmetric:
        extra: dict[str, Any] = {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            # One Q/DQ pair per consumer: ORT fuses DQ->Conv->Q into QLinearConv only
            # when the DQ feeds that node alone (residual inputs feed two).
            "DedicatedQDQPair": True,
        }
        activation_type = QuantType.QInt8
    else:
        # ONNX Runtime's own x86 form (quantize_static's defaults): uint8 asymmetric
        # activations, a ReLU folds into the zero point.
        extra = {"WeightSymmetric": True}
        activation_type = QuantType.QUInt8
    quantize_static(
        str(pre),
        str(quantized),
        None,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=op_types_to_quantize,
        per_channel=True,
        activation_type=activation_type,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
        use_external_data_format=external,
        calibrate_method=CalibrationMethod.MinMax,  # what the cache declares
        calibration_cache_path=str(cache),
        extra_options=extra,
    )
    return ranges.note()


def _quantize_dynamic(pre: Path, quantized: Path, excluded: list[str], external: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(pre),
        str(quantized),
        # Weight MatMuls only (MatMulConstBOnly): embeddings (Gather) stay float.
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=DYNAMIC_PER_CHANNEL,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
        use_external_data_format=external,
        extra_options={"MatMulConstBOnly": True},
    )


DYNAMIC_PER_CHANNEL = True
"""Per-column weight scales for the dynamic format: on MiniLM-L6 (real weights, 40 sentences at
seq 128) per-sentence cosine 0.9938 (min 0.9909) against 0.9659 (min 0.842) per-tensor."""
