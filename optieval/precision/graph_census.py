"""Precision census: which compute nodes of an ONNX graph run in which precision.

A label must be true (docs/design.md, decision 2): an artifact called ``int8`` must really
compute in int8. The census counts the compute nodes (Conv, ConvTranspose, MatMul, Gemm and
attention ops) by the precision they compute in:

* ``int8``: the activation input (input 0) and the weight input (input 1) both come from a
  DequantizeLinear of an 8-bit integer tensor (seen through layout-only ops such as Transpose and
  Reshape), or the node is itself a quantized operator (QLinearConv, MatMulInteger, ...);
* otherwise the element type of input 0: ``fp16``, ``fp32``, ``bf16`` (anything else is
  ``other``).

It also counts Q/DQ pairs (a QuantizeLinear feeding a DequantizeLinear), proves the int8 compute
by the kernels it will run (``int8_kernels``: quantized operators such as QLinearConv,
ConvInteger, MatMulInteger by name, and Q/DQ patterns as ``DQ->Conv->Q``), and reads the INT8
format from the graph (``int8_format``: ``symmetric``, ``u8s8``, ``dynamic``, or ``s8s8``/
``mixed`` for forms optieval does not make). The census is stored in every artifact's manifest
and shown by ``optieval inspect``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import onnx

from optieval.core import CENSUS_ORDER, ONNX_PRECISIONS
from optieval.errors import InputError

__all__ = ["COMPUTE_OPS", "Census", "census", "node_names"]

CENSUS_SCHEMA_VERSION = 1

COMPUTE_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MatMul",
        "Gemm",
        # attention: ONNX (opset 23) and onnxruntime contrib ops
        "Attention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "PackedAttention",
        "PackedMultiHeadAttention",
        "SparseAttention",
    }
)

# Quantized operators that compute in 8-bit integers by construction, and the float op they
# stand for (QOperator-format models from other toolkits).
_QUANTIZED_OPS = {
    "QLinearConv": "Conv",
    "ConvInteger": "Conv",
    "QLinearMatMul": "MatMul",
    "MatMulInteger": "MatMul",
    "DynamicQuantizeMatMul": "MatMul",
    "MatMulIntegerToFloat": "MatMul",
    "QGemm": "Gemm",
    "QAttention": "Attention",
    "QOrderedAttention": "Attention",
}

# Ops that only move data: a weight may pass through them between its DequantizeLinear and the
# compute node (DQ -> Transpose -> MatMul) and still be read in int8 by backends.
_LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})

_INT8_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
_FLOAT_LABELS: dict[int, str] = {
    onnx.TensorProto.FLOAT: "fp32",
    onnx.TensorProto.FLOAT16: "fp16",
    onnx.TensorProto.BFLOAT16: "bf16",
}


@dataclass(frozen=True)
class Census:
    """Counts of compute nodes by precision, per op type, and Q/DQ pairs.

    Attributes:
        compute: precision -> number of compute nodes (``fp32``, ``fp16``, ``int8`` always
            present; ``bf16``/``other`` when found).
        by_op: op type -> precision -> count (quantized operators under their float op type).
        qdq_pairs: QuantizeLinear -> DequantizeLinear edges.
        dequantize_nodes: DequantizeLinear nodes (weights quantized offline have no Q).
        nodes: all nodes in the graph (subgraphs included).
        int8_kernels: what proves the int8 compute: quantized operator -> count, and Q/DQ
            patterns (``DQ->Conv->Q``: both operands dequantized from 8-bit, output quantized).
        int8_format: the INT8 format read from the graph (None without int8 compute).
    """

    compute: dict[str, int]
    by_op: dict[str, dict[str, int]] = field(default_factory=dict)
    qdq_pairs: int = 0
    dequantize_nodes: int = 0
    nodes: int = 0
    int8_kernels: dict[str, int] = field(default_factory=dict)
    int8_format: str | None = None

    @property
    def total_compute(self) -> int:
        """All compute nodes."""
        return sum(self.compute.values())

    @property
    def dominant_precision(self) -> str | None:
        """The precision most compute nodes run in (ties go to the lower precision); None
        for a graph without compute nodes."""
        order = CENSUS_ORDER
        present = [(self.compute.get(p, 0), -order.index(p)) for p in order]
        best = max(present)
        return order[-best[1]] if best[0] > 0 else None

    def has_precision(self, precision: str) -> bool:
        """True when at least one compute node runs in ``precision``."""
        return self.compute.get(precision, 0) > 0

    def describe(self) -> str:
        """One line: ``4 compute nodes: 3 int8, 1 fp32 (Conv 2 int8; Gemm 1 int8, 1 fp32);
        5 Q/DQ pairs``."""
        if not self.total_compute:
            return f"no compute nodes; {self.qdq_pairs} Q/DQ pairs"
        totals = ", ".join(f"{n} {p}" for p, n in self.compute.items() if n)
        ops = "; ".join(
            f"{op} " + ", ".join(f"{n} {p}" for p, n in counts.items() if n)
            for op, counts in sorted(self.by_op.items())
        )
        text = f"{self.total_compute} compute nodes: {totals} ({ops}); {self.qdq_pairs} Q/DQ pairs"
        if self.int8_format:
            text += f"; int8 format {self.int8_format}"
        return text

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (stored in manifests)."""
        return {
            "schema_version": CENSUS_SCHEMA_VERSION,
            "compute": dict(self.compute),
            "by_op": {op: dict(c) for op, c in self.by_op.items()},
            "qdq_pairs": self.qdq_pairs,
            "dequantize_nodes": self.dequantize_nodes,
            "nodes": self.nodes,
            "dominant_precision": self.dominant_precision,
            "int8_kernels": dict(self.int8_kernels),
            "int8_format": self.int8_format,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Census:
        """Inverse of :meth:`to_json`; InputError for an unknown schema version."""
        version = data.get("schema_version")
        if version != CENSUS_SCHEMA_VERSION:
            raise InputError(
                f"census schema_version {version!r} is not {CENSUS_SCHEMA_VERSION}",
                where="census",
                hint="re-run `optieval inspect` or re-create the artifact with this optieval",
            )
        return cls(
            compute={str(k): int(v) for k, v in data["compute"].items()},
            by_op={
                str(op): {str(k): int(v) for k, v in c.items()} for op, c in data["by_op"].items()
            },
            qdq_pairs=int(data["qdq_pairs"]),
            dequantize_nodes=int(data["dequantize_nodes"]),
            nodes=int(data["nodes"]),
            # Added within schema 1: older manifests lack them.
            int8_kernels={str(k): int(v) for k, v in (data.get("int8_kernels") or {}).items()},
            int8_format=data.get("int8_format"),
        )


def census(model: onnx.ModelProto) -> Census:
    """Count the compute nodes of ``model`` by the precision they run in.

    Args:
        model: an ONNX model (external data need not be loaded).

    Returns:
        The :class:`Census`.
    """
    types = _element_types(model)
    nodes = list(_all_nodes(model.graph))
    producers = {out: node for node in nodes for out in node.output if out}
    compute: Counter[str] = Counter({p: 0 for p in ONNX_PRECISIONS})
    by_op: dict[str, Counter[str]] = {}
    kernels: Counter[str] = Counter()
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    qdq_pairs = 0
    for node in nodes:
        if node.op_type == "DequantizeLinear" and node.input:
            source = producers.get(node.input[0])
            if source is not None and source.op_type == "QuantizeLinear":
                qdq_pairs += 1
        op = _QUANTIZED_OPS.get(node.op_type)
        if op is not None:
            precision = "int8"
            kernels[node.op_type] += 1
        elif node.op_type in COMPUTE_OPS:
            op = node.op_type
            precision = _precision(node, types, producers)
            if precision == "int8":
                quantized_out = bool(node.output) and any(
                    c.op_type == "QuantizeLinear" for c in consumers.get(node.output[0], [])
                )
                kernels[f"DQ->{op}" + ("->Q" if quantized_out else "")] += 1
        else:
            continue
        compute[precision] += 1
        by_op.setdefault(op, Counter())[precision] += 1
    return Census(
        compute=dict(compute),
        by_op={op: dict(c) for op, c in sorted(by_op.items())},
        qdq_pairs=qdq_pairs,
        dequantize_nodes=sum(1 for n in nodes if n.op_type == "DequantizeLinear"),
        nodes=len(nodes),
        int8_kernels=dict(sorted(kernels.items())),
        int8_format=_int8_format(nodes, types, compute["int8"] > 0, model),
    )


_DYNAMIC_OPS = frozenset(
    {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "ConvInteger"}
)


def _int8_format(
    nodes: list[onnx.NodeProto], types: dict[str, int], has_int8: bool, model: onnx.ModelProto
) -> str | None:
    """The INT8 format of a graph, read from its activation quantizers: ``dynamic`` (run-time
    quantization), ``u8s8`` (uint8 activations), ``symmetric`` (int8, every zero point 0),
    ``s8s8`` (int8 with other zero points) or ``mixed``; None without int8 compute."""
    if not has_int8:
        return None
    found: set[str] = set()
    if any(n.op_type in _DYNAMIC_OPS for n in nodes):
        found.add("dynamic")
    wanted = {
        n.input[2]
        for n in nodes
        if n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearMatMul") and len(n.input) > 2
    }
    zero_points = _constant_arrays(model, wanted)
    for node in nodes:
        if node.op_type not in ("QuantizeLinear", "QLinearConv", "QLinearMatMul"):
            continue
        # QuantizeLinear: the output zero point; QLinear ops: the activation's (input 2).
        index = 2
        if len(node.input) <= index or not node.input[index]:
            found.add("u8s8")  # ONNX's default zero point is uint8
            continue
        elem = types.get(node.input[index])
        if elem == onnx.TensorProto.UINT8:
            found.add("u8s8")
        elif elem == onnx.TensorProto.INT8:
            value = zero_points.get(node.input[index])
            found.add("symmetric" if value is None or not value.any() else "s8s8")
    if not found:
        return "symmetric" if any(n.op_type == "DequantizeLinear" for n in nodes) else None
    return found.pop() if len(found) == 1 else "mixed"


def _constant_arrays(model: onnx.ModelProto, names: set[str]) -> dict[str, Any]:
    """The 8-bit initializers named (zero points) as arrays; external data is not read."""
    from onnx import numpy_helper

    arrays: dict[str, Any] = {}
    for init in model.graph.initializer:
        if init.name in names and init.data_type in _INT8_TYPES and not init.external_data:
            arrays[init.name] = numpy_helper.to_array(init)
    return arrays


def _precision(
    node: onnx.NodeProto, types: dict[str, int], producers: dict[str, onnx.NodeProto]
) -> str:
    operands = [name for name in node.input[:2] if name]
    if len(operands) == 2 and all(_from_int8_dequantize(n, types, producers) for n in operands):
        return "int8"
    elem = types.get(node.input[0]) if node.input else None
    if elem is None:
        return "other"
    return _FLOAT_LABELS.get(elem, "other")


def _from_int8_dequantize(
    name: str, types: dict[str, int], producers: dict[str, onnx.NodeProto]
) -> bool:
    node = producers.get(name)
    for _ in range(8):  # a short chain of layout ops at most
        if node is None:
            return False
        if node.op_type == "DequantizeLinear":
            return bool(node.input) and types.get(node.input[0]) in _INT8_TYPES
        if node.op_type not in _LAYOUT_OPS or not node.input:
            return False
        node = producers.get(node.input[0])
    return False


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub)


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor name: declared ones, then ONNX shape inference, then a
    simple forward pass for whatever inference could not type."""
    types: dict[str, int] = {}
    _declared_types(model.graph, types)
    try:
        # Shape inference needs only initializer metadata, so external data need not be loaded;
        # a >2 GB in-memory model cannot be serialized for it, hence the fallback below.
        inferred = onnx.shape_inference.infer_shapes(model)
        _declared_types(inferred.graph, types)
    except Exception:  # inference is an aid: the forward pass below still types the rest
        pass
    for node in _all_nodes(model.graph):
        for out in node.output:
            if not out or out in types:
                continue
            elem = _forward_type(node, types)
            if elem is not None:
                types[out] = elem
    return types


def _declared_types(graph: onnx.GraphProto, types: dict[str, int]) -> None:
    for value in [*graph.input, *graph.output, *graph.value_info]:
        elem = value.type.tensor_type.elem_type
        if elem:
            types.setdefault(value.name, elem)
    for init in graph.initializer:
        types.setdefault(init.name, init.data_type)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    types.setdefault(node.output[0], attr.t.data_type)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _declared_types(attr.g, types)


def _forward_type(node: onnx.NodeProto, types: dict[str, int]) -> int | None:
    if node.op_type == "Cast":
        for attr in node.attribute:
            if attr.name == "to":
                return int(attr.i)
    if node.op_type == "DequantizeLinear":
        return types.get(node.input[1]) if len(node.input) > 1 else onnx.TensorProto.FLOAT
    if node.op_type == "QuantizeLinear":
        if len(node.input) > 2 and node.input[2]:
            return types.get(node.input[2])
        return onnx.TensorProto.UINT8
    for name in node.input:
        if name in types:
            return types[name]
    return None


def node_names(model: onnx.ModelProto) -> list[str]:
    """Every node's name, unnamed nodes called ``OpType_index`` (made unique).

    The one naming rule for nodes that carry no name: the precision step's ``--exclude`` and
    the quantizer work by these names, and parity's localization reports nodes by them, so a
    localized node can be excluded as it is printed.
    """
    taken = {n.name for n in model.graph.node if n.name}
    names = []
    for index, node in enumerate(model.graph.node):
        name = str(node.name)
        if not name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            taken.add(name)
        names.append(name)
    return names
