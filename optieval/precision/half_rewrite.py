"""The FP32 -> FP16 graph rewrite behind FP16 artifacts (:func:`convert_to_fp16`), and the
clock that bounds a conversion (:class:`ConversionClock`).

Why not onnxconverter-common's ``convert_float_to_float16``: it rewrites every FP32
``value_info`` to FP16 but leaves ``Cast(to=FLOAT)`` nodes as they are, so a graph with a
``.to(torch.float32)`` (an attention mask, say) comes out with a Cast whose output is declared
FP16 while it produces FP32, which no runtime loads; and its node sort and cast removal are
quadratic (with ``Cast`` excluded it ran for over ten minutes on MiniLM). This rewrite decides
one precision per node in a single pass in topological order:

* a node of a blocked op type or name, a node of another domain (``com.microsoft``, local
  functions), a node with subgraphs (If, Loop, Scan) or a sequence op computes in FP32: its FP16
  inputs get a ``Cast`` to FP32 (one per tensor, shared by every consumer);
* every other node computes in FP16: its FP32 inputs get a ``Cast`` to FP16, its float
  constants (initializers, ``Constant`` values, ``ConstantOfShape`` values) are FP16 copies;
* a ``Cast(to=FLOAT)`` becomes ``Cast(to=FLOAT16)`` only when every consumer computes in FP16
  (an integer cast to float for a LayerNorm stays exact), and its attribute and output always
  agree;
* data movement ops (Reshape, Transpose, Gather, Concat, ...) follow their input: between two
  FP32 nodes they stay FP32 instead of a round trip through FP16;
* a float constant used by both kinds of consumer is kept twice, FP32 and FP16.

Values outside FP16's range are clipped to +-65504 (an attention mask of ``finfo(float32).min``
stays a large negative number rather than ``-inf``) and tiny non-zero values (epsilons) become
the smallest FP16 subnormal instead of zero. The result is shape-inferred again; the caller
verifies it (``onnx.checker`` with ``full_check``, an ONNX Runtime session) before publishing.
"""

from __future__ import annotations

import heapq
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optieval.errors import BackendFailed, InputError

FLOAT = TensorProto.FLOAT
HALF = TensorProto.FLOAT16
TIME_LIMIT_ENV = "OPTIEVAL_CONVERT_TIME_LIMIT"
"""The environment variable that sets the conversion time limit in seconds."""

Progress = Callable[[str], None]
"""``progress(message)``: called as each stage of a conversion starts."""

# Ops that only move or select data: they take the precision of their non-constant input.
_DATA_MOVEMENT = frozenset(
    {
        "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand",
        "Tile", "Slice", "Gather", "GatherElements", "GatherND", "Concat", "Split",
        "SpaceToDepth", "DepthToSpace", "Pad", "Where", "ScatterND", "ScatterElements",
    }
)  # fmt: skip
_SEQUENCE_OPS = frozenset(
    {
        "SequenceConstruct", "SequenceAt", "SequenceInsert", "SequenceErase", "SequenceEmpty",
        "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence",
        "Optional", "OptionalGetElement", "OptionalHasElement",
    }
)  # fmt: skip
_HALF_MAX = float(np.finfo(np.float16).max)
_HALF_TINY = float(2.0**-24)  # the smallest FP16 subnormal


class ConversionClock:
    """A conversion's deadline and its current stage, for progress and the timeout error.

    Args:
        limit: seconds the conversion may take.
        progress: called with ``fp16: STAGE`` as each stage starts.
        source: the model converted, named in the error.
    """

    def __init__(self, limit: float, progress: Progress | None, source: Path) -> None:
        self.limit = limit
        self.progress = progress
        self.source = source
        self.started = time.monotonic()
        self.stage = "preparation"

    def enter(self, stage: str) -> None:
        """Start ``stage`` (BackendFailed naming the previous one when time is up)."""
        self.check()
        self.stage = stage
        if self.progress is not None:
            self.progress(f"fp16: {stage}")

    def check(self, where: str = "") -> None:
        """BackendFailed when the time is up, naming the stage and ``where`` in it."""
        if time.monotonic() - self.started > self.limit:
            at = f" at {where}" if where else ""
            raise BackendFailed(
                f"FP16 conversion passed its time limit of {self.limit:g} s in {self.stage}{at}",
                where=str(self.source),
                hint=f"raise the limit (`time_limit`, {TIME_LIMIT_ENV}) or `exclude` the op "
                "types of a large subgraph",
            )


def convert_to_fp16(
    model: onnx.ModelProto,
    types: dict[str, int],
    *,
    op_block_list: Iterable[str],
    node_block_list: Iterable[str],
    clock: ConversionClock | None = None,
) -> onnx.ModelProto:
    """Rewrite ``model`` (shape-inferred, data loaded) in place to compute in FP16 except the
    blocked nodes; FP32 inputs and outputs are kept. ``types`` maps every tensor to its element
    type (:func:`_tensor_types`). Returns ``model``."""
    rewrite = _Rewrite(model, types, set(op_block_list), set(node_block_list), clock)
    rewrite.run()
    return model


class _Rewrite:
    """One pass of the FP32 -> FP16 rewrite over a top-level graph (see the module docstring)."""

    def __init__(
        self,
        model: onnx.ModelProto,
        types: dict[str, int],
        op_block_list: set[str],
        node_block_list: set[str],
        clock: ConversionClock | None,
    ) -> None:
        self.model = model
        self.graph = model.graph
        self.types = types
        self.op_block_list = op_block_list
        self.node_block_list = node_block_list
        self.clock = clock
        self.local_domains = {f.domain for f in model.functions}
        self.taken = _all_names(self.graph)
        self.inits = {t.name: t for t in self.graph.initializer if t.data_type == FLOAT}
        self.graph_inputs = {i.name for i in self.graph.input}
        self.consts: dict[str, TensorProto] = {}  # float Constant node outputs -> value
        self.half: set[str] = set()  # tensors that are FP16 in the new graph
        self.casts: dict[tuple[str, int], str] = {}
        self.const_uses: dict[str, set[int]] = {}  # constant name -> {FLOAT, HALF}
        self.nodes: list[onnx.NodeProto] = []

    # -- decisions ----------------------------------------------------------------------------

    def keeps_fp32(self, node: onnx.NodeProto) -> bool:
        return (
            node.op_type in self.op_block_list
            or node.name in self.node_block_list
            or node.domain not in ("", "ai.onnx")
            or node.domain in self.local_domains
            or node.op_type in _SEQUENCE_OPS
            or bool(_subgraphs(node))
            or any(o and o not in self.types for o in node.output)
        )

    def is_float(self, name: str) -> bool:
        return bool(name) and self.types.get(name) == FLOAT

    def is_const(self, name: str) -> bool:
        return name in self.consts or (name in self.inits and name not in self.graph_inputs)

    # -- the pass -----------------------------------------------------------------------------

    def run(self) -> None:
        order = _topological(self.graph)
        consumers = _consumers(order)
        outputs = {o.name for o in self.graph.output}
        total = len(order)
        if self.clock is not None:
            self.clock.enter(f"rewriting {total} nodes")
        for index, node in enumerate(order):
            if self.clock is not None and index % 256 == 0:
                self.clock.check(f"node {index} of {total} ({node.name or node.op_type})")
            if node.op_type == "Constant" and _float_constant(node) is not None:
                self.consts[node.output[0]] = _float_constant(node)  # type: ignore[assignment]
                continue
            if node.op_type == "Cast":
                self.cast_node(node, consumers, outputs)
            elif node.op_type in ("Shape", "Size"):
                self.nodes.append(node)  # reads the shape only: either precision will do
            elif self.keeps_fp32(node):
                self.fp32_node(node)
            else:
                self.half_node(node)
        self.finish()

    def cast_node(
        self, node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], outputs: set[str]
    ) -> None:
        to = next(a for a in node.attribute if a.name == "to")
        source = node.input[0]
        if self.is_const(source):
            node.input[0] = self.constant(source, FLOAT)
        out = node.output[0]
        users = consumers.get(out, [])
        if (
            to.i == FLOAT
            and out not in outputs
            and node.name not in self.node_block_list
            and "Cast" not in self.op_block_list
            and users
            and all(u.op_type != "Cast" and not self.keeps_fp32(u) for u in users)
        ):
            to.i = HALF
            self.half.add(out)
        self.nodes.append(node)

    def fp32_node(self, node: onnx.NodeProto) -> None:
        for i, name in enumerate(node.input):
            if self.is_const(name) and self.is_float(name):
                node.input[i] = self.constant(name, FLOAT)
            elif name in self.half:
                node.input[i] = self.cast(name, FLOAT)
        for sub in _subgraphs(node):  # outer-scope names read inside subgraphs
            for name in _outer_names(sub) & self.half:
                _rename_inside(sub, name, self.cast(name, FLOAT))
        self.nodes.append(node)

    def half_node(self, node: onnx.NodeProto) -> None:
        floats = [i for i, name in enumerate(node.input) if self.is_float(name)]
        if node.op_type in _DATA_MOVEMENT:
            live = [node.input[i] for i in floats if not self.is_const(node.input[i])]
            if live and not any(name in self.half for name in live):
                self.fp32_node(node)  # between FP32 nodes: no round trip through FP16
                return
        for i in floats:
            name = node.input[i]
            if self.is_const(name):
                node.input[i] = self.constant(name, HALF)
            elif name not in self.half:
                node.input[i] = self.cast(name, HALF)
        for out in node.output:
            if self.is_float(out):
                self.half.add(out)
        for attr in node.attribute:  # ConstantOfShape's value, any other tensor attribute
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(_to_half(attr.t, attr.t.name))
        self.nodes.append(node)

    # -- casts and constants ------------------------------------------------------------------

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def cast(self, name: str, to: int) -> str:
        key = (name, to)
        if key not in self.casts:
            out = self.fresh(f"{name}/to_{'fp16' if to == HALF else 'fp32'}")
            self.nodes.append(helper.make_node("Cast", [name], [out], to=to, name=out))
            self.casts[key] = out
        return self.casts[key]

    def constant(self, name: str, precision: int) -> str:
        """The name under which constant ``name`` is read in ``precision``."""
        self.const_uses.setdefault(name, set()).add(precision)
        return name if precision == FLOAT else f"{name}\0fp16"  # resolved in finish()

    def finish(self) -> None:
        g = self.graph
        renames: dict[str, str] = {}
        new_inits: list[TensorProto] = []
        new_consts: list[onnx.NodeProto] = []
        for name, uses in self.const_uses.items():
            value = self.consts[name] if name in self.consts else self.inits[name]
            if HALF in uses:
                # Converted in place when no FP32 reader is left, else an FP16 copy beside it.
                half_name = name if FLOAT not in uses else self.fresh(f"{name}/fp16")
                renames[f"{name}\0fp16"] = half_name
                half = _to_half(value, half_name)
                if name in self.consts:
                    new_consts.append(
                        helper.make_node("Constant", [], [half_name], value=half, name=half_name)
                    )
                else:
                    new_inits.append(half)
            if FLOAT in uses and name in self.consts:
                new_consts.append(
                    helper.make_node(
                        "Constant", [], [name], value=value, name=self.fresh(f"{name}/const")
                    )
                )
        unused_consts = [n for n in self.consts if n not in self.const_uses]
        for name in unused_consts:  # read by no node: a graph output, say
            new_consts.append(
                helper.make_node(
                    "Constant",
                    [],
                    [name],
                    value=self.consts[name],
                    name=self.fresh(f"{name}/const"),
                )
            )
        converted = {r for r in renames.values() if r in self.inits}
        keep = [t for t in g.initializer if t.name not in converted]
        del g.initializer[:]
        g.initializer.extend(keep + new_inits)
        for node in self.nodes:
            for i, name in enumerate(node.input):
                if name in renames:
                    node.input[i] = renames[name]
        tail: list[onnx.NodeProto] = []
        for out in g.output:
            if out.name in self.half:  # FP32 outputs: the FP16 tensor is renamed, cast back
                inner = self.fresh(f"{out.name}/fp16")
                for node in self.nodes:
                    _replace(node.input, out.name, inner)
                    _replace(node.output, out.name, inner)
                tail.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=inner))
        nodes = []
        for node in (*new_consts, *self.nodes, *tail):
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            nodes.append(copy)
        del g.node[:]
        g.node.extend(nodes)
        del g.value_info[:]  # stale types; shape inference of the result fills them again


# -- helpers ---------------------------------------------------------------------------------------


def _float_constant(node: onnx.NodeProto) -> TensorProto | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.t.data_type == FLOAT:
            return attr.t
    return None


def _to_half(tensor: TensorProto, name: str) -> TensorProto:
    """An FP16 copy of ``tensor`` named ``name``: clipped to +-65504, tiny non-zero values kept
    at the smallest FP16 subnormal."""
    values = numpy_helper.to_array(tensor).astype(np.float32)
    finite = np.isfinite(values)
    clipped = np.where(finite, np.clip(values, -_HALF_MAX, _HALF_MAX), values)
    tiny = (clipped != 0) & (np.abs(clipped) < _HALF_TINY) & finite
    clipped = np.where(tiny, np.sign(clipped) * _HALF_TINY, clipped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return numpy_helper.from_array(clipped.astype(np.float16), name)


def _topological(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's nodes in topological order (stable: the file's order when it already is)."""
    produced = {o for n in graph.node for o in n.output if o}
    producer_index = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    waiting: dict[int, int] = {}
    dependents: dict[int, list[int]] = {}
    for i, node in enumerate(graph.node):
        needs = {producer_index[x] for x in _node_reads(node) if x in produced} - {i}
        waiting[i] = len(needs)
        for j in needs:
            dependents.setdefault(j, []).append(i)
    ready = [i for i in range(len(graph.node)) if waiting[i] == 0]
    order: list[int] = []
    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in dependents.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(graph.node):
        stuck = next(n for i, n in enumerate(graph.node) if waiting[i] > 0)
        raise InputError(
            f"the graph has a cycle through node {stuck.name or stuck.op_type!r}",
            where="model",
            hint="check the model with onnx.checker",
        )
    return [graph.node[i] for i in order]


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    subs: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            subs.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            subs.extend(attr.graphs)
    return subs


def _node_reads(node: onnx.NodeProto) -> set[str]:
    reads = {x for x in node.input if x}
    for sub in _subgraphs(node):
        reads |= _outer_names(sub)
    return reads


def _consumers(nodes: list[onnx.NodeProto]) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in _node_reads(node):
            users.setdefault(name, []).append(node)
    return users


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    reads: set[str] = set()
    for node in graph.node:
        reads |= {x for x in _node_reads(node) if x not in defined}
        defined |= set(node.output)
    return reads


def _rename_inside(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        _replace(node.input, old, new)
        for sub in _subgraphs(node):
            _rename_inside(sub, old, new)
    for out in graph.output:
        if out.name == old:
            out.name = new


def _replace(names: Any, old: str, new: str) -> None:
    for i, name in enumerate(names):
        if name == old:
            names[i] = new


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in (*graph.input, *graph.output, *graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names |= set(node.input) | set(node.output) | {node.name}
        for sub in _subgraphs(node):
            names |= _all_names(sub)
    return names
