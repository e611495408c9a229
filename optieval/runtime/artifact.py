"""Which precision an ONNX artifact really computes in, before any number is labelled with it.

The precision step writes its label and census into the artifact's manifest; when there is no
manifest (a model that arrived already quantized, say) the census is taken from the graph
(:func:`optieval.export.census.census`, its dominant precision); a graph without compute nodes
falls back to its types: Q/DQ or integer ops mean int8, FP16 weights or casts fp16, else fp32
(DESIGN.md, decisions 1 and 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optieval.errors import InputError
from optieval.manifest import read_manifest

PRECISIONS = ("fp32", "fp16", "bf16", "int8")

_INT8_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
}
_FLOAT16 = 10
_BFLOAT16 = 16


def check_precision_name(precision: str, *, where: str = "--precision") -> str:
    """Return ``precision`` if known; InputError listing the known ones otherwise."""
    if precision not in PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}", where=where, hint=f"choose {', '.join(PRECISIONS)}"
        )
    return precision


def _manifest_precision(manifest: dict[str, Any] | None) -> str | None:
    """The label the precision step wrote (it verified it against the census), else the
    census's dominant precision."""
    if not manifest:
        return None
    value = manifest.get("precision")
    if isinstance(value, str) and value in PRECISIONS:
        return value
    census = manifest.get("census")
    if isinstance(census, dict):
        dominant = census.get("dominant_precision")
        if isinstance(dominant, str) and dominant in PRECISIONS:
            return dominant
    return None


def graph_precision(model: Any) -> str:
    """Read the compute precision from an ONNX graph (``onnx.ModelProto``): int8 when it holds
    Q/DQ or integer ops, fp16/bf16 when weights or casts are in that type, else fp32."""
    ops = {node.op_type for node in model.graph.node}
    if ops & _INT8_OPS:
        return "int8"
    types = {init.data_type for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Cast":
            types.update(a.i for a in node.attribute if a.name == "to")
    if _FLOAT16 in types:
        return "fp16"
    if _BFLOAT16 in types:
        return "bf16"
    return "fp32"


def artifact_precision(path: str | os.PathLike[str]) -> str:
    """Return the precision an ONNX artifact computes in: its manifest's census when present,
    else read from the graph. InputError when the file is missing or not ONNX."""
    from optieval.signature import load_onnx

    manifest_value = _manifest_precision(read_manifest(path))
    if manifest_value is not None:
        return manifest_value
    model = load_onnx(Path(path), load_external_data=False)
    from optieval.export.census import census

    dominant = census(model).dominant_precision
    if dominant in PRECISIONS:
        return str(dominant)
    return graph_precision(model)  # no compute nodes: fall back to the graph's types


def require_precision(path: str | os.PathLike[str], requested: str | None, *, where: str) -> str:
    """Return the artifact's precision, or InputError (exit 2) when ``requested`` is given and
    the artifact's census says otherwise: a label must be true."""
    actual = artifact_precision(path)
    if requested is not None and check_precision_name(requested) != actual:
        raise InputError(
            f"requested precision {requested} but the artifact computes in {actual} (census)",
            where=where,
            hint=f"pass the {requested} artifact made by `optieval convert`, or ask for {actual}",
        )
    return actual
