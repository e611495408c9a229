"""FP16 artifacts: optieval's own FP32 -> FP16 graph rewrite (:mod:`~.half_rewrite`), FP32
inputs and outputs kept (casts at the edges), a documented block list of ops kept in FP32
(:data:`DEFAULT_FP16_BLOCK_LIST` plus the op types and node names in ``exclude``), under a time
limit with progress.

The rewrite runs under a time limit (:data:`DEFAULT_FP16_TIME_LIMIT_S`, the environment
variable ``OPTIEVAL_CONVERT_TIME_LIMIT`` or :func:`conversion_limits`) and reports its stages
to a progress callback; running out of time is :class:`~optieval.errors.BackendFailed` naming the
stage and the node it had reached. The caller verifies the result (``onnx.checker`` with
``full_check``, an ONNX Runtime session) before publishing.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from optieval.core import save_onnx
from optieval.errors import InputError
from optieval.precision.half_rewrite import (
    TIME_LIMIT_ENV,
    ConversionClock,
    Progress,
    convert_to_fp16,
)

FP16_NUMERIC_BLOCK_LIST: tuple[str, ...] = (
    # Normalizations and softmax accumulate sums of many terms (and squares): FP16's 11-bit
    # mantissa and 65504 range lose them.
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
    "Softmax",
    "LogSoftmax",
    # Reductions (the mean and variance of a decomposed LayerNorm, mean pooling).
    "ReduceMean",
    "ReduceSum",
    "ReduceSumSquare",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceProd",
    "CumSum",
    # Exponent ranges: exp overflows FP16 above 11, log and pow of small values underflow.
    "Exp",
    "Log",
    "Pow",
    "Softplus",
)
"""Op types kept in FP32 for numerical reasons (docs/guides/precision.md)."""

FP16_KERNEL_BLOCK_LIST: tuple[str, ...] = (
    # Index and coordinate arithmetic, and ops whose FP16 kernels are missing or lossy.
    "Range",
    "Resize",
    "Upsample",
    "TopK",
    "NonMaxSuppression",
    "RoiAlign",
    "Min",
    "Max",
    # Float outputs typed by an attribute, and Q/DQ (their scales are FP32 before opset 19).
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
    "EyeLike",
    "HannWindow",
    "HammingWindow",
    "BlackmanWindow",
    "MelWeightMatrix",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    # The ai.onnx.ml operators.
    "ArrayFeatureExtractor",
    "Binarizer",
    "CastMap",
    "CategoryMapper",
    "DictVectorizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
)
"""Op types kept in FP32 because FP16 kernels are missing, lossy or typed by an attribute."""

DEFAULT_FP16_BLOCK_LIST: tuple[str, ...] = tuple(
    sorted({*FP16_NUMERIC_BLOCK_LIST, *FP16_KERNEL_BLOCK_LIST})
)
"""Op types kept in FP32 by ``convert(..., "fp16")`` (``exclude`` adds more)."""

DEFAULT_FP16_TIME_LIMIT_S = 600.0
"""Seconds the FP16 rewrite may take (``OPTIEVAL_CONVERT_TIME_LIMIT`` overrides it)."""


_TIME_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "optieval_fp16_time_limit", default=None
)
_PROGRESS: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "optieval_fp16_progress", default=None
)


@contextlib.contextmanager
def conversion_limits(
    time_limit: float | None = None, progress: Progress | None = None
) -> Iterator[None]:
    """Within the block, FP16 conversions use ``time_limit`` seconds and report their stages
    to ``progress``; None keeps what an enclosing block set (else the default, or
    ``OPTIEVAL_CONVERT_TIME_LIMIT``)."""
    if time_limit is not None and not time_limit > 0:
        raise InputError(f"time limit {time_limit:g} s must be positive", where="time_limit")
    limit_token = _TIME_LIMIT.set(time_limit if time_limit is not None else _TIME_LIMIT.get())
    progress_token = _PROGRESS.set(progress if progress is not None else _PROGRESS.get())
    try:
        yield
    finally:
        _TIME_LIMIT.reset(limit_token)
        _PROGRESS.reset(progress_token)


def fp16_time_limit() -> float:
    """The time limit in force: :func:`conversion_limits`, else ``OPTIEVAL_CONVERT_TIME_LIMIT``,
    else :data:`DEFAULT_FP16_TIME_LIMIT_S`."""
    limit = _TIME_LIMIT.get()
    if limit is not None:
        return limit
    text = os.environ.get(TIME_LIMIT_ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise InputError(f"{text!r} is not a positive number of seconds", where=TIME_LIMIT_ENV)
        return value
    return DEFAULT_FP16_TIME_LIMIT_S


def fp16_options(op_types: Iterable[str], node_names: Iterable[str]) -> dict[str, Any]:
    """The options that shape an FP16 artifact (part of its cache key and manifest): the
    default block list plus ``op_types``, and the ``node_names`` kept in FP32."""
    return {
        "converter": "optieval",
        "keep_io_types": True,
        "op_block_list": sorted({*DEFAULT_FP16_BLOCK_LIST, *op_types}),
        "node_block_list": sorted(node_names),
    }


def build_fp16(
    model: onnx.ModelProto, options: dict[str, Any], work: Path, *, external: bool, source: Path
) -> Path:
    """Convert ``model`` (FP32, loaded with its data) to FP16 in the folder ``work``.

    Args:
        model: the source model, its nodes named (:func:`~optieval.precision.node_names`).
        options: :func:`fp16_options`.
        work: an empty scratch folder; the result is ``work/out/model.onnx``.
        external: write the result with external data (``model.onnx.data``).
        source: the source model's path, named in errors.

    Returns:
        The path of the converted model (the caller verifies it before publishing).

    Raises:
        BackendFailed: the conversion passed its time limit (:func:`fp16_time_limit`).
    """
    clock = ConversionClock(fp16_time_limit(), _PROGRESS.get(), source)
    clock.enter("shape inference")
    # Shape inference by path works for any size (in memory it stops at 2 GB).
    staged = work / "fp32.onnx"
    save_onnx(model, staged, external=external)
    inferred = work / "fp32.inferred.onnx"
    onnx.shape_inference.infer_shapes_path(str(staged), str(inferred))
    model = onnx.load(str(inferred), load_external_data=True)
    clock.enter("tensor types")
    types = _tensor_types(model, inferred, work)
    fp16 = convert_to_fp16(
        model,
        types,
        op_block_list=options["op_block_list"],
        node_block_list=[*options["node_block_list"], *batch_transposed_matmuls(model)],
        clock=clock,
    )
    clock.enter("saving")
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    save_onnx(fp16, out, external=external)
    clock.enter("shape inference of the result")
    with contextlib.suppress(Exception):  # the verification that follows reports real faults
        onnx.shape_inference.infer_shapes_path(str(out), str(out))
    clock.check()
    return out


def batch_transposed_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMuls fed by a Transpose that swaps batch axes and keeps the last one
    (``perm = [1, 0, 2]``, as ``nn.MultiheadAttention`` exports), and of those Transposes:
    they stay in FP32.

    ONNX Runtime (1.31, CPU, default optimization level) fuses such a pair into a FusedMatMul
    with transposed batches, also through a Cast between them, and crashes creating the
    session when the Transpose is FP16; in FP32 it runs.
    """
    transposes: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        if node.op_type == "Transpose":
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [])
            if len(perm) >= 3 and perm[-1] == len(perm) - 1 and perm != sorted(perm):
                transposes[node.output[0]] = node
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        feeders = [transposes[f] for f in node.input[:2] if f in transposes]
        if feeders:
            names.extend([node.name, *(t.name for t in feeders)])
    return list(dict.fromkeys(names))


def _tensor_types(model: onnx.ModelProto, path: Path, work: Path) -> dict[str, int]:
    """Element type of every top-level tensor: declared, inferred, or (for what ONNX shape
    inference left open) what ONNX Runtime resolves."""
    g = model.graph
    types: dict[str, int] = {}
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    missing = [o for n in g.node for o in n.output if o and o not in types]
    if missing:
        types.update(_ort_types(path, missing, work))
    return types


def _ort_types(path: Path, names: list[str], work: Path) -> dict[str, int]:
    """Ask ONNX Runtime for the element types of ``names`` (added as untyped outputs)."""
    import onnxruntime as ort

    proto = onnx.load(str(path), load_external_data=False)
    known = {o.name for o in proto.graph.output}
    proto.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    probe = path.with_name("types.onnx")  # beside it: external data paths stay valid
    onnx.save_model(proto, str(probe))
    codes = {
        f"tensor({name})": code
        for code, name in (
            (TensorProto.FLOAT, "float"),
            (TensorProto.FLOAT16, "float16"),
            (TensorProto.DOUBLE, "double"),
            (TensorProto.BFLOAT16, "bfloat16"),
        )
    }
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(probe), options, providers=["CPUExecutionProvider"])
    except Exception:
        return {}  # unknown types: those nodes stay FP32
    finally:
        probe.unlink(missing_ok=True)
    # Only float-ness matters here; other types are recorded as "not float" (0 is never FLOAT).
    return {o.name: codes.get(o.type, TensorProto.UNDEFINED) for o in session.get_outputs()}
