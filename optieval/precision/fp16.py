"""FP16 artifacts: onnxconverter_common's ``convert_float_to_float16`` with FP32 inputs and
outputs kept (casts at the edges) and a block list of ops that lose accuracy or lack fp16
kernels (:data:`DEFAULT_FP16_BLOCK_LIST` plus the op types in ``exclude``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import onnx

from optieval.core import save_onnx
from optieval.errors import InputError


def _fp16_default_block_list() -> tuple[str, ...]:
    from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST

    # Beyond the converter's list (ML ops, Resize, TopK, NMS, ...): ops whose fp16 results
    # overflow or lose too much (exp/log/pow, sums of squares).
    extra = ("Exp", "Log", "Pow", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp")
    return tuple(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *extra]))


DEFAULT_FP16_BLOCK_LIST: tuple[str, ...] = _fp16_default_block_list()
"""Op types kept in FP32 by ``convert(..., "fp16")`` (``exclude`` adds more)."""


def fp16_options(op_types: Iterable[str], node_names: Iterable[str]) -> dict[str, Any]:
    """The options that shape an FP16 artifact (part of its cache key and manifest): the
    default block list plus ``op_types``, and the ``node_names`` kept in FP32."""
    return {
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
        The path of the converted model (the caller runs ``onnx.checker`` on it).
    """
    from onnxconverter_common.float16 import convert_float_to_float16

    # Shape inference by path works for any size (in memory it stops at 2 GB).
    staged = work / "fp32.onnx"
    save_onnx(model, staged, external=external)
    inferred = work / "fp32.inferred.onnx"
    onnx.shape_inference.infer_shapes_path(str(staged), str(inferred))
    model = onnx.load(str(inferred), load_external_data=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the converter warns about clipped tiny weights
            fp16 = convert_float_to_float16(
                model,
                keep_io_types=True,
                disable_shape_infer=True,
                op_block_list=options["op_block_list"],
                node_block_list=options["node_block_list"],
            )
    except ValueError as exc:
        raise InputError(f"FP16 conversion failed: {exc}", where=str(source)) from exc
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    save_onnx(fp16, out, external=external)
    return out
