"""Count the arithmetic of an ONNX graph at concrete input shapes, for achieved GFLOP/s.

What is counted (FLOPs = 2 x multiply-accumulates; biases, activations, normalisations and
other element-wise work are left out and the result lists their op types):

* ``Conv`` / ``QLinearConv`` / ``ConvInteger`` / ``com.microsoft.FusedConv``:
  ``prod(Y.shape) * prod(W.shape[1:])`` MACs (each output needs ``C/group * kernel`` MACs).
* ``ConvTranspose``: ``prod(X.shape) * prod(W.shape[1:])`` MACs (each input scatters to
  ``M/group * kernel`` outputs).
* ``MatMul`` / ``QLinearMatMul`` / ``MatMulInteger`` / ``com.microsoft.FusedMatMul``:
  ``prod(Y.shape) * K``.
* ``Gemm`` / ``com.microsoft.QGemm`` / ``com.microsoft.FusedGemm``: ``M * N * K``.
* ``Attention`` (ai.onnx, opset 23+), ``com.microsoft.MultiHeadAttention`` (3-D query) and
  ``com.microsoft.Attention`` (with its QKV projection): ``B * H * Sq * Skv * (Dk + Dv)`` for
  the two batched products, past key/value included in ``Skv``. Attention built from plain
  ``MatMul`` / ``Softmax`` nodes is counted through its ``MatMul`` nodes.

Q/DQ models need nothing special: a ``Conv`` fed by ``DequantizeLinear`` is a ``Conv``. Its
FLOPs are also added to ``quantized_flops`` when both its data and weight inputs come from
``DequantizeLinear`` (or for the QLinear/Integer ops), so a report can say GOP/s for int8.

Shapes come from ONNX shape inference (with data propagation) on a light copy of the model: the
graph inputs are fixed to the given concrete shapes and large initializers are replaced by typed
inputs, so the weights are never copied. A node of a counted type whose shapes inference could
not resolve is listed in ``unresolved`` and not counted. Nodes inside control flow (``If``,
``Loop``, ``Scan``) are not counted; those op types appear in ``left_out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import TensorProto, helper

from optieval.errors import InputError

FLOP_METHOD = "2 x MACs of Conv/ConvTranspose/MatMul/Gemm/attention at the given input shapes"

# Initializers above this many elements become typed graph inputs in the inference copy;
# small integer ones stay, since Reshape/Expand/Slice read their values.
_KEEP_INITIALIZER_ELEMENTS = 1024

Dims = tuple[int, ...]


@dataclass(frozen=True)
class NodeFlops:
    """One counted node: name (``op_type_<index>`` when unnamed), op type, FLOPs, quantized."""

    name: str
    op_type: str
    flops: int
    quantized: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "op_type": self.op_type,
            "flops": self.flops,
            "quantized": self.quantized,
        }


@dataclass(frozen=True)
class FlopCount:
    """The operations of a graph at one set of input shapes.

    Attributes:
        flops: total FLOPs (2 x ``macs``) of the counted, resolved nodes.
        macs: multiply-accumulates.
        quantized_flops: the part of ``flops`` computed by quantized ops (QLinear/Integer ops,
            or Conv/MatMul/Gemm whose data and weight inputs both come from DequantizeLinear).
        by_op_type: FLOPs per counted op type.
        nodes: one :class:`NodeFlops` per counted node, in graph order.
        left_out: op types present in the graph but not counted, with their node counts.
        unresolved: nodes of counted types left out because shapes were unknown.
        input_shapes: the concrete input shapes counted at.
        method: what was counted.
    """

    flops: int
    macs: int
    quantized_flops: int
    by_op_type: dict[str, int]
    nodes: tuple[NodeFlops, ...]
    left_out: dict[str, int]
    unresolved: tuple[str, ...]
    input_shapes: dict[str, Dims] = field(default_factory=dict)
    method: str = FLOP_METHOD

    @property
    def gflops(self) -> float:
        """``flops / 1e9``."""
        return self.flops / 1e9

    @property
    def mostly_quantized(self) -> bool:
        """True when more than half of the FLOPs are quantized: report GOP/s, not GFLOP/s."""
        return self.quantized_flops * 2 > self.flops

    @property
    def unit(self) -> str:
        """``"GOP/s"`` for a mostly quantized graph, else ``"GFLOP/s"``."""
        return "GOP/s" if self.mostly_quantized else "GFLOP/s"

    def achieved_per_s(self, latency_ms: float) -> float:
        """Achieved G(FL)OP/s at ``latency_ms`` per inference at these input shapes.

        Raises:
            InputError: latency not positive.
        """
        if not latency_ms > 0.0:
            raise InputError(f"latency {latency_ms!r} ms is not positive", where="latency_ms")
        return self.flops / (latency_ms / 1000.0) / 1e9

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "flops": self.flops,
            "macs": self.macs,
            "quantized_flops": self.quantized_flops,
            "by_op_type": dict(self.by_op_type),
            "nodes": [n.to_json() for n in self.nodes],
            "left_out": dict(self.left_out),
            "unresolved": list(self.unresolved),
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "method": self.method,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FlopCount:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                flops=int(data["flops"]),
                macs=int(data["macs"]),
                quantized_flops=int(data.get("quantized_flops", 0)),
                by_op_type={str(k): int(v) for k, v in data["by_op_type"].items()},
                nodes=tuple(
                    NodeFlops(
                        str(n["name"]),
                        str(n["op_type"]),
                        int(n["flops"]),
                        bool(n.get("quantized", False)),
                    )
                    for n in data.get("nodes", [])
                ),
                left_out={str(k): int(v) for k, v in data["left_out"].items()},
                unresolved=tuple(str(s) for s in data.get("unresolved", [])),
                input_shapes={
                    str(k): tuple(int(d) for d in v)
                    for k, v in data.get("input_shapes", {}).items()
                },
                method=str(data.get("method", FLOP_METHOD)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed FLOP count ({exc})", where="gflops") from exc


# --------------------------------------------------------------------------------------------
# Shape inference on a light copy


def _light_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without large initializer payloads: they become typed graph inputs."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = light.graph
    g.name = model.graph.name
    g.node.extend(model.graph.node)
    g.output.extend(model.graph.output)
    declared = {vi.name for vi in model.graph.input}
    replaced: dict[str, onnx.ValueInfoProto] = {}
    for init in model.graph.initializer:
        elements = math.prod(init.dims)
        keep = elements <= _KEEP_INITIALIZER_ELEMENTS and init.data_location != TensorProto.EXTERNAL
        if keep:
            g.initializer.append(init)
        else:
            replaced[init.name] = helper.make_tensor_value_info(
                init.name, init.data_type, list(init.dims)
            )
    for vi in model.graph.input:
        g.input.append(replaced.pop(vi.name, vi))
    for name, vi in replaced.items():
        if name not in declared:
            g.input.append(vi)
    return light


def _fix_inputs(
    light: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]], initializers: set[str]
) -> dict[str, Dims]:
    graph_inputs = {vi.name: vi for vi in light.graph.input if vi.name not in initializers}
    problems: list[str] = []
    fixed: dict[str, Dims] = {}
    for name in input_shapes:
        if name not in graph_inputs:
            problems.append(
                f"{name!r} is not an input of the model "
                f"(inputs: {', '.join(graph_inputs) or 'none'})"
            )
    for name, vi in graph_inputs.items():
        if not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if name not in input_shapes:
            if any(not d.HasField("dim_value") for d in dims):
                problems.append(f"{name!r} has dynamic dimensions and no shape was given")
            else:
                fixed[name] = tuple(int(d.dim_value) for d in dims)
            continue
        try:
            given = tuple(int(d) for d in input_shapes[name])
        except (TypeError, ValueError):
            problems.append(f"{name!r}: shape {input_shapes[name]!r} is not a list of integers")
            continue
        if any(d < 1 for d in given):
            problems.append(f"{name!r}: shape {given} has a dimension below 1")
            continue
        if vi.type.tensor_type.HasField("shape") and len(dims) != len(given):
            problems.append(f"{name!r}: rank {len(given)} given, the model says {len(dims)}")
            continue
        declared = list(dims) if vi.type.tensor_type.HasField("shape") else [None] * len(given)
        for i, (d, g) in enumerate(zip(declared, given, strict=True)):
            if d is not None and d.HasField("dim_value") and d.dim_value != g:
                problems.append(f"{name!r}: dimension {i} is fixed at {d.dim_value}, got {g}")
        shape = vi.type.tensor_type.shape
        shape.ClearField("dim")
        for g in given:
            shape.dim.add().dim_value = g
        fixed[name] = given
    if problems:
        raise InputError(
            "; ".join(problems),
            where="shapes",
            hint="give every dynamic input a full concrete shape, batch included",
        )
    return fixed


def _shape_table(model: onnx.ModelProto) -> dict[str, Dims | None]:
    table: dict[str, Dims | None] = {}

    def add(vi: onnx.ValueInfoProto) -> None:
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if t is None or not t.HasField("shape"):
            table.setdefault(vi.name, None)
            return
        if all(d.HasField("dim_value") for d in t.shape.dim):
            table[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
        else:
            table[vi.name] = None

    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        add(vi)
    for init in model.graph.initializer:
        table[init.name] = tuple(int(d) for d in init.dims)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    table[node.output[0]] = tuple(int(d) for d in attr.t.dims)
    return table


# --------------------------------------------------------------------------------------------
# Per-op counting

_Shapes = Callable[[str], "Dims | None"]


def _inp(node: onnx.NodeProto, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _attr_ints(node: onnx.NodeProto, name: str) -> list[int]:
    for a in node.attribute:
        if a.name == name:
            return [int(v) for v in helper.get_attribute_value(a)]
    return []


def _conv(x_idx: int, w_idx: int) -> Callable[[onnx.NodeProto, _Shapes], int | None]:
    def count(node: onnx.NodeProto, shape: _Shapes) -> int | None:
        y, w = shape(node.output[0]), shape(_inp(node, w_idx))
        if y is None or w is None or len(w) < 2:
            return None
        return math.prod(y) * math.prod(w[1:])

    return count


def _conv_transpose(node: onnx.NodeProto, shape: _Shapes) -> int | None:
    x, w = shape(_inp(node, 0)), shape(_inp(node, 1))
    if x is None or w is None or len(w) < 2:
        return None
    return math.prod(x) * math.prod(w[1:])


def _matmul(
    a_idx: int, trans_attr: str | None = None
) -> Callable[[onnx.NodeProto, _Shapes], int | None]:
    def count(node: onnx.NodeProto, shape: _Shapes) -> int | None:
        a, y = shape(_inp(node, a_idx)), shape(node.output[0])
        if a is None or y is None or len(a) == 0:
            return None
        trans = bool(trans_attr and _attr(node, trans_attr, 0)) and len(a) >= 2
        k = a[-2] if trans else a[-1]
        return math.prod(y) * k

    return count


def _gemm(a_idx: int) -> Callable[[onnx.NodeProto, _Shapes], int | None]:
    def count(node: onnx.NodeProto, shape: _Shapes) -> int | None:
        a, y = shape(_inp(node, a_idx)), shape(node.output[0])
        if a is None or y is None or len(a) != 2:
            return None
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return math.prod(y) * k

    return count


def _attention_onnx(node: onnx.NodeProto, shape: _Shapes) -> int | None:
    q, k, v = shape(_inp(node, 0)), shape(_inp(node, 1)), shape(_inp(node, 2))
    if q is None or k is None or v is None:
        return None
    past = shape(_inp(node, 4)) if _inp(node, 4) else ()
    if past is None:
        return None
    past_len = past[2] if len(past) == 4 else 0
    if len(q) == 4 and len(k) == 4 and len(v) == 4:
        b, hq, sq, dk = q
        skv, dv = k[2], v[3]
    elif len(q) == 3 and len(k) == 3 and len(v) == 3:
        hq, hkv = _attr(node, "q_num_heads", 0), _attr(node, "kv_num_heads", 0)
        if hq < 1 or hkv < 1:
            return None
        b, sq, q_hidden = q
        skv = k[1]
        dk, dv = q_hidden // hq, v[2] // hkv
    else:
        return None
    return b * hq * sq * (skv + past_len) * (dk + dv)


def _mha_ms(node: onnx.NodeProto, shape: _Shapes) -> int | None:
    q, k, v = shape(_inp(node, 0)), shape(_inp(node, 1)), shape(_inp(node, 2))
    heads = _attr(node, "num_heads", 0)
    if q is None or k is None or v is None or len(q) != 3 or heads < 1:
        return None
    b, sq, d = q
    if len(k) == 3 and len(v) == 3:
        skv, dv = k[1], v[2]
    elif len(k) == 4 and len(v) == 4:  # (B, N, L, H)
        skv, dv = k[2], v[1] * v[3]
    else:
        return None
    past = shape(_inp(node, 6)) if _inp(node, 6) else ()
    if past is None:
        return None
    skv += past[2] if len(past) == 4 else 0
    return b * sq * skv * (d + dv)


def _attention_ms(node: onnx.NodeProto, shape: _Shapes) -> int | None:
    x, w = shape(_inp(node, 0)), shape(_inp(node, 1))
    if x is None or w is None or len(x) != 3 or len(w) != 2:
        return None
    b, s, d_in = x
    sizes = _attr_ints(node, "qkv_hidden_sizes")
    _dq, dk, dv = sizes if len(sizes) == 3 else (w[1] // 3,) * 3
    past = shape(_inp(node, 4)) if _inp(node, 4) else ()
    if past is None:
        return None
    total = s + (past[3] if len(past) == 5 else 0)
    projection = b * s * d_in * w[1]
    return projection + b * s * total * (dk + dv)


_COUNTERS: dict[tuple[str, str], Callable[[onnx.NodeProto, _Shapes], int | None]] = {
    ("", "Conv"): _conv(0, 1),
    ("", "ConvInteger"): _conv(0, 1),
    ("", "QLinearConv"): _conv(0, 3),
    ("com.microsoft", "FusedConv"): _conv(0, 1),
    ("", "ConvTranspose"): _conv_transpose,
    ("", "MatMul"): _matmul(0),
    ("", "MatMulInteger"): _matmul(0),
    ("", "QLinearMatMul"): _matmul(0),
    ("com.microsoft", "FusedMatMul"): _matmul(0, "transA"),
    ("", "Gemm"): _gemm(0),
    ("com.microsoft", "FusedGemm"): _gemm(0),
    ("com.microsoft", "QGemm"): _gemm(0),
    ("", "Attention"): _attention_onnx,
    ("com.microsoft", "MultiHeadAttention"): _mha_ms,
    ("com.microsoft", "Attention"): _attention_ms,
}

_QUANTIZED_OPS = {"ConvInteger", "QLinearConv", "MatMulInteger", "QLinearMatMul", "QGemm"}
# Data and weight input positions checked for a DequantizeLinear producer (QDQ form).
_QDQ_INPUTS = {
    "Conv": (0, 1),
    "ConvTranspose": (0, 1),
    "MatMul": (0, 1),
    "Gemm": (0, 1),
    "FusedConv": (0, 1),
    "FusedMatMul": (0, 1),
    "FusedGemm": (0, 1),
}


def _domain(node: onnx.NodeProto) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def _op_name(node: onnx.NodeProto) -> str:
    domain = _domain(node)
    return f"{domain}.{node.op_type}" if domain else node.op_type


def count_flops(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> FlopCount:
    """Count the FLOPs of ``model`` at concrete input shapes.

    Args:
        model: an ONNX model (not modified; its weights are not copied).
        input_shapes: full shape of each graph input, batch included, e.g.
            ``{"x": (8, 3, 224, 224)}``. Inputs whose shape is fully static may be omitted.

    Returns:
        A :class:`FlopCount` (see the module docstring for what is counted).

    Raises:
        InputError (where ``shapes``): an unknown input name, a rank or fixed-dimension
            mismatch, a dimension below 1, or a dynamic input without a shape; every problem is
            listed in one error.
    """
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception:  # an old onnx or an odd function: count what we can
            pass
    initializer_names = {init.name for init in model.graph.initializer}
    light = _light_copy(model)
    fixed = _fix_inputs(light, input_shapes, initializer_names)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            light, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception:  # inference gave up: count only what the inputs give
        inferred = light
    table = _shape_table(inferred)
    for init in model.graph.initializer:
        table[init.name] = tuple(int(d) for d in init.dims)

    def shape(name: str) -> Dims | None:
        return table.get(name) if name else None

    producers = {out: node for node in model.graph.node for out in node.output}

    def from_dq(name: str) -> bool:
        node = producers.get(name)
        return node is not None and node.op_type == "DequantizeLinear"

    nodes: list[NodeFlops] = []
    by_type: dict[str, int] = {}
    left_out: dict[str, int] = {}
    unresolved: list[str] = []
    macs_total = quant_total = 0
    for index, node in enumerate(model.graph.node):
        counter = _COUNTERS.get((_domain(node), node.op_type))
        op = _op_name(node)
        if counter is None:
            left_out[op] = left_out.get(op, 0) + 1
            continue
        name = node.name or f"{node.op_type}_{index}"
        try:
            macs = counter(node, shape)
        except (ValueError, TypeError, ZeroDivisionError, IndexError):
            macs = None  # a malformed attribute or shape: list it rather than guess
        if macs is None:
            unresolved.append(name)
            continue
        positions = _QDQ_INPUTS.get(node.op_type)
        quantized = node.op_type in _QUANTIZED_OPS or (
            positions is not None and all(from_dq(_inp(node, i)) for i in positions)
        )
        flops = 2 * int(macs)
        nodes.append(NodeFlops(name, op, flops, quantized))
        by_type[op] = by_type.get(op, 0) + flops
        macs_total += int(macs)
        quant_total += flops if quantized else 0
    return FlopCount(
        flops=2 * macs_total,
        macs=macs_total,
        quantized_flops=quant_total,
        by_op_type=by_type,
        nodes=tuple(nodes),
        left_out=dict(sorted(left_out.items())),
        unresolved=tuple(unresolved),
        input_shapes=fixed,
    )


__all__ = ["FLOP_METHOD", "FlopCount", "NodeFlops", "count_flops"]
