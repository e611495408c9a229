"""INT8 formats: which quantized form of a model each runtime runs fast, and which it can run at
all (docs/design.md, decision 1; docs/guides/precision.md, "INT8 formats").

* ``symmetric``: static Q/DQ, int8 activations and per-channel int8 weights, zero point 0. The
  only form TensorRT (and the TensorRT EP) accepts; the portable default. ONNX Runtime on ARM64
  runs it natively (its int8 kernels take signed activations there: ``QDQIsInt8Allowed``); on
  x86 ORT rewrites each int8 Q/DQ pair to uint8 before fusing, which works only when every
  QuantizeLinear has one consumer (:func:`~optieval.precision.int8` keeps them apart).
* ``u8s8``: static Q/DQ, uint8 asymmetric activations and per-channel int8 weights: ONNX Runtime's
  own choice on x86 CPUs (``quantize_static``'s defaults). ReLUs fold into the zero point.
* ``dynamic``: the weights of MatMul/Gemm quantized offline to int8, activations quantized at run
  time (``DynamicQuantizeLinear`` -> ``MatMulInteger``): ``quantize_dynamic``'s form, the one for
  transformer encoders on CPU, no calibration data needed.

``-p int8`` means :func:`best_int8_format` for the backend it runs on.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

import onnx

from optieval.errors import InputError

INT8_FORMATS = ("symmetric", "u8s8", "dynamic")
"""The INT8 formats ``convert(..., int8_format=...)`` makes."""

PORTABLE_INT8_FORMAT = "symmetric"
"""The format made when no backend is named: every ONNX backend can run it."""

# Which formats each ONNX backend can run. TensorRT takes only zero-point-0 int8 Q/DQ (no uint8
# activations, no integer operators); the CUDA EP has Q/DQ kernels for both signednesses but no
# DynamicQuantizeLinear, so a dynamic artifact would run its quantization on the CPU.
BACKEND_INT8_FORMATS: dict[str, tuple[str, ...]] = {
    "ort-cpu": ("symmetric", "u8s8", "dynamic"),
    "ort-cuda": ("symmetric", "u8s8"),
    "ort-trt": ("symmetric",),
    "tensorrt": ("symmetric",),
}

_WHY_NOT = {
    "u8s8": "TensorRT accepts only int8 Q/DQ with zero point 0, no uint8 activations",
    "dynamic": "TensorRT has no DynamicQuantizeLinear/MatMulInteger",
}

_ARM64 = ("arm64", "aarch64")


def check_int8_format(int8_format: str, *, where: str = "int8_format") -> str:
    """Return ``int8_format`` if known; InputError listing the formats otherwise."""
    if int8_format not in INT8_FORMATS:
        raise InputError(
            f"unknown INT8 format {int8_format!r}",
            where=where,
            hint=f"choose {', '.join(INT8_FORMATS)}",
        )
    return int8_format


def check_format_for_backend(int8_format: str, backend: str | None) -> None:
    """InputError (exit 2) naming both when ``backend`` cannot run ``int8_format``."""
    if backend is None or backend not in BACKEND_INT8_FORMATS:
        return
    allowed = BACKEND_INT8_FORMATS[backend]
    if int8_format in allowed:
        return
    reason = _WHY_NOT.get(int8_format, "") if backend in ("ort-trt", "tensorrt") else ""
    if backend == "ort-cuda":
        reason = "the CUDA EP has no DynamicQuantizeLinear kernel"
    raise InputError(
        f"backend {backend} cannot run the INT8 format {int8_format}"
        + (f" ({reason})" if reason else ""),
        where="int8_format",
        hint=f"use {' or '.join(allowed)} for {backend}, or run {int8_format} on ort-cpu",
    )


def check_artifact_format(found: str | None, backend: str | None, *, where: str) -> None:
    """InputError (exit 2) when an INT8 artifact whose graph reads as format ``found`` (the
    census's ``int8_format``) cannot run on ``backend``; the GPU TensorRT backends take only
    ``symmetric``."""
    if backend is None or found is None:
        return
    if found in INT8_FORMATS:
        try:
            check_format_for_backend(found, backend)
        except InputError as exc:
            raise InputError(exc.message, where=where, hint=exc.hint) from None
        return
    if backend in ("ort-trt", "tensorrt"):
        raise InputError(
            f"backend {backend} cannot run this INT8 artifact (its format reads as {found}; "
            "TensorRT needs int8 Q/DQ with zero point 0)",
            where=where,
            hint=f"convert the FP32 model for {backend}: it makes the symmetric format",
        )


def best_int8_format(backend: str | None, model: onnx.ModelProto, *, machine: str = "") -> str:
    """The INT8 format ``-p int8`` means on ``backend`` for ``model``.

    ort-cpu: ``dynamic`` for a transformer encoder (:func:`is_transformer`), else ``u8s8`` on x86
    and ``symmetric`` on ARM64 (ORT runs signed int8 natively there). Every GPU backend, and no
    backend at all: ``symmetric``, the portable format. ``machine`` defaults to this host's.
    """
    if backend != "ort-cpu":
        return PORTABLE_INT8_FORMAT
    if is_transformer(model):
        return "dynamic"
    arch = (machine or platform.machine()).lower()
    return PORTABLE_INT8_FORMAT if arch in _ARM64 else "u8s8"


# -- model kinds ----------------------------------------------------------------------------------

_ATTENTION_OPS = frozenset({"Attention", "MultiHeadAttention", "GroupQueryAttention"})
_CONSTANT_PASS = frozenset({"Transpose", "Reshape", "Identity", "Cast", "Unsqueeze", "Squeeze"})


def constant_names(model: onnx.ModelProto) -> set[str]:
    """Tensors known before any input arrives: initializers, Constant outputs and layout ops of
    them (a weight seen through Transpose, say)."""
    graph = model.graph
    known = {init.name for init in graph.initializer}
    for node in graph.node:
        passes = node.op_type in _CONSTANT_PASS and bool(node.input) and node.input[0] in known
        if node.op_type == "Constant" or passes:
            known.update(node.output)
    return known


def activation_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose two operands are both activations (attention scores and
    attention-weighted values): no weight to quantize offline; kept in float by every format."""
    known = constant_names(model)
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and len(node.input) >= 2 and not (set(node.input[:2]) & known)
    ]


_GELU_OPS = frozenset({"Gelu", "FastGelu", "BiasGelu", "QuickGelu"})


def ffn_down_projections(model: onnx.ModelProto) -> list[str]:
    """Names of the weight MatMul/Gemm nodes fed by a GELU (the op, or its Erf/Tanh expansion a
    few nodes up): a transformer's feed-forward down-projection. Its input has a long tail of
    large values in a few channels and tokens that one static per-tensor scale cannot hold
    (MiniLM-L6, symmetric: per-sentence cosine 0.838 with it quantized, 0.986 without)."""
    producers = {out: node for node in model.graph.node for out in node.output if out}
    known = constant_names(model)

    def gelu_above(name: str, hops: int) -> bool:
        node = producers.get(name)
        if node is None or hops < 0:
            return False
        if node.op_type in _GELU_OPS or node.op_type in ("Erf", "Tanh"):
            return True
        if node.op_type not in ("Mul", "Add", "Div"):
            return False
        return any(gelu_above(i, hops - 1) for i in node.input if i and i not in known)

    return [
        node.name
        for node in model.graph.node
        if node.op_type in ("MatMul", "Gemm")
        and len(node.input) >= 2
        and node.input[1] in known
        and gelu_above(node.input[0], 3)
    ]


def is_transformer(model: onnx.ModelProto) -> bool:
    """True for a transformer-like graph: attention (an attention op, or Softmax with a MatMul
    of two activations) and more weight MatMul/Gemm nodes than convolutions."""
    ops = [n.op_type for n in model.graph.node]
    attention = bool(_ATTENTION_OPS & set(ops)) or (
        "Softmax" in ops and bool(activation_matmuls(model))
    )
    dense = sum(op in ("MatMul", "Gemm") for op in ops)
    convs = sum(op in ("Conv", "ConvTranspose") for op in ops)
    return attention and dense > convs


def describe_format(int8_format: str) -> dict[str, str]:
    """What ``int8_format`` quantizes and how (stored in the artifact's options)."""
    check_int8_format(int8_format)
    if int8_format == "symmetric":
        return {
            "format": "QDQ",
            "weights": "int8 per-channel symmetric",
            "activations": "int8 symmetric (zero point 0)",
        }
    if int8_format == "u8s8":
        return {
            "format": "QDQ",
            "weights": "int8 per-channel symmetric",
            "activations": "uint8 asymmetric",
        }
    return {
        "format": "dynamic (DynamicQuantizeLinear + MatMulInteger)",
        "weights": "int8 per-channel symmetric (MatMul/Gemm)",
        "activations": "uint8, quantized at run time",
    }


def formats_text(formats: Iterable[str] = INT8_FORMATS) -> str:
    """``symmetric, u8s8 or dynamic``."""
    names = list(formats)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
