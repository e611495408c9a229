"""Localize a parity failure: the first nodes of the ONNX graph where the error jumps.

Both models (reference and candidate) are copied with every intermediate tensor added as a graph
output and run on ONNX Runtime's CPU provider with graph optimizations off, so that tensors keep
their names. Each candidate tensor is mapped to a reference tensor by name; where the precision
step renamed it, the mapping sees through the ``QuantizeLinear`` / ``DequantizeLinear`` / ``Cast``
nodes it inserted (a candidate tensor made by a chain of those from tensor ``t`` stands for ``t``).

A node *breaks* when one of its outputs violates the tolerance while every float input it reads
from other nodes is still within it: the error was born there, not inherited. The first such
nodes in topological order are reported; for INT8 their names are the ``--exclude`` list for
the precision step (``nodes_to_exclude`` of ONNX Runtime's quantizer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optieval.parity.metrics import tensor_metrics, tolerance_violations
from optieval.parity.tolerances import Tolerance, ToleranceSet
from optieval.precision import node_names

SEE_THROUGH = frozenset({"QuantizeLinear", "DequantizeLinear", "Cast"})
DEFAULT_MAX_NODES = 5
DEFAULT_LOCALIZE_SAMPLES = 16


@dataclass(frozen=True)
class NodeError:
    """The error of one reference node's output in the candidate.

    ``breaks`` is True when this output violates the tolerance while all of the node's float
    inputs were within it.
    """

    node: str
    op_type: str
    tensor: str
    candidate_tensor: str
    max_abs: float
    max_rel: float
    cosine: float
    violations: int
    passed: bool
    breaks: bool

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "node": self.node,
            "op_type": self.op_type,
            "tensor": self.tensor,
            "candidate_tensor": self.candidate_tensor,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "cosine": self.cosine,
            "violations": self.violations,
            "passed": self.passed,
            "breaks": self.breaks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeError:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["node"]),
            str(data["op_type"]),
            str(data["tensor"]),
            str(data.get("candidate_tensor", data["tensor"])),
            float(data["max_abs"]),
            float(data["max_rel"]),
            float(data["cosine"]),
            int(data["violations"]),
            bool(data["passed"]),
            bool(data["breaks"]),
        )


@dataclass(frozen=True)
class Localization:
    """Where a candidate's error is born.

    Attributes:
        first_bad_nodes: names of the first breaking nodes, topological order.
        exclude: node names to keep in float (for INT8: ``--exclude`` of the precision step).
        nodes: the error of every compared tensor, topological order.
        compared: tensors compared; unmatched: reference tensors with no candidate counterpart.
        samples: samples run through both models.
    """

    first_bad_nodes: tuple[str, ...]
    exclude: tuple[str, ...]
    nodes: tuple[NodeError, ...]
    compared: int
    unmatched: int
    samples: int

    def exclude_args(self) -> str:
        """The ``--exclude`` options that keep the breaking nodes in float."""
        return " ".join(f"--exclude {name}" for name in self.exclude)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "first_bad_nodes": list(self.first_bad_nodes),
            "exclude": list(self.exclude),
            "compared": self.compared,
            "unmatched": self.unmatched,
            "samples": self.samples,
            "nodes": [n.to_json() for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Localization:
        """Inverse of :meth:`to_json`."""
        return cls(
            tuple(data.get("first_bad_nodes", ())),
            tuple(data.get("exclude", ())),
            tuple(NodeError.from_json(n) for n in data.get("nodes", ())),
            int(data.get("compared", 0)),
            int(data.get("unmatched", 0)),
            int(data.get("samples", 0)),
        )


def expose_intermediates(model: Any, *, skip_ops: Iterable[str] = ("QuantizeLinear",)) -> Any:
    """Return a copy of ``model`` (an ``onnx.ModelProto``) with every top-level node output added
    as a graph output (outputs of ``skip_ops`` nodes, integer tensors, are left out)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    existing = {o.name for o in copy.graph.output}
    skip = set(skip_ops)
    for node in copy.graph.node:
        if node.op_type in skip:
            continue
        for name in node.output:
            if name and name not in existing:
                # A ValueInfo without a type: ONNX Runtime infers it.
                copy.graph.output.append(onnx.ValueInfoProto(name=name))
                existing.add(name)
    return copy


def run_all_tensors(
    model: Any, batches: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Run ``model`` (with intermediates exposed) on ONNX Runtime CPU, no graph optimization,
    over ``batches``; return every output concatenated along axis 0 where shapes allow (the
    first batch's value otherwise)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    collected: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feeds in batches:
        for name, value in zip(names, session.run(names, dict(feeds)), strict=True):
            collected[name].append(np.asarray(value))
    out: dict[str, np.ndarray] = {}
    for name, values in collected.items():
        try:
            out[name] = np.concatenate(values, axis=0) if len(values) > 1 else values[0]
        except ValueError:  # scalars or per-batch shapes (e.g. a Shape node's output)
            out[name] = values[0]
    return out


def map_tensors(reference: Any, candidate: Any) -> dict[str, str]:
    """Map reference tensor names to candidate tensor names: the same name where the candidate
    has it, otherwise a candidate tensor that a chain of Q/DQ/Cast nodes made from it."""
    ref_tensors = {o for n in reference.graph.node for o in n.output}
    ref_tensors |= {i.name for i in reference.graph.input}
    producer = {o: n for n in candidate.graph.node for o in n.output}
    cand_tensors = list(producer)
    mapping = {t: t for t in cand_tensors if t in ref_tensors}
    for t in cand_tensors:
        if t in ref_tensors:
            continue
        source = t
        seen = 0
        while source not in ref_tensors and source in producer and seen < 16:
            node = producer[source]
            if node.op_type not in SEE_THROUGH or not node.input:
                break
            source = node.input[0]
            seen += 1
        if source in ref_tensors and source not in mapping:
            mapping[source] = t
    return mapping


def _is_float(a: np.ndarray) -> bool:
    return bool(np.issubdtype(a.dtype, np.floating))


def localize_models(
    reference: Any,
    candidate: Any,
    batches: Sequence[Mapping[str, np.ndarray]],
    *,
    tolerances: ToleranceSet,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Localization:
    """Find the first nodes of ``reference`` (an ``onnx.ModelProto``) whose outputs break
    tolerance in ``candidate`` (its converted copy), running both on ``batches``.

    Intermediate tensors use the candidate precision's tolerance (with ``--atol``/``--rtol``);
    graph outputs use their own (``--tol``). Returns a :class:`Localization`.
    """
    ref_values = run_all_tensors(expose_intermediates(reference), batches)
    cand_values = run_all_tensors(expose_intermediates(candidate), batches)
    mapping = map_tensors(reference, candidate)
    initializers = {i.name for i in reference.graph.initializer}
    graph_outputs = {o.name for o in reference.graph.output}
    bad: dict[str, bool] = {}  # tensor -> violates tolerance
    nodes: list[NodeError] = []
    breaking: list[str] = []
    compared = unmatched = 0
    generic: Tolerance = tolerances.for_output("\0intermediate")
    for label, node in zip(node_names(reference), reference.graph.node, strict=True):
        inputs_bad = any(bad.get(i, False) for i in node.input if i and i not in initializers)
        for tensor in node.output:
            if not tensor or tensor not in ref_values:
                continue
            ref = ref_values[tensor]
            cand_name = mapping.get(tensor)
            cand = cand_values.get(cand_name) if cand_name else None
            if cand is None or not _is_float(ref) or np.shape(cand) != np.shape(ref):
                unmatched += 1
                continue
            tol = tolerances.for_output(tensor) if tensor in graph_outputs else generic
            violations = tolerance_violations(ref, cand, tol.atol, tol.rtol)
            metrics = tensor_metrics(ref, cand)
            failed = violations > 0 or metrics.new_nonfinite > 0
            bad[tensor] = failed
            breaks = failed and not inputs_bad
            compared += 1
            nodes.append(
                NodeError(
                    node=label,
                    op_type=str(node.op_type),
                    tensor=tensor,
                    candidate_tensor=str(cand_name),
                    max_abs=metrics.max_abs,
                    max_rel=metrics.max_rel,
                    cosine=metrics.cosine,
                    violations=violations + metrics.new_nonfinite,
                    passed=not failed,
                    breaks=breaks,
                )
            )
            if breaks and label not in breaking:
                breaking.append(label)
    first = tuple(breaking[:max_nodes])
    # Q/DQ/Cast nodes are not quantizable compute: only the rest can be excluded.
    ops = dict(zip(node_names(reference), (n.op_type for n in reference.graph.node), strict=True))
    exclude = tuple(name for name in first if ops.get(name) not in SEE_THROUGH)
    samples = int(sum(int(np.shape(next(iter(b.values())))[0]) for b in batches if b))
    return Localization(first, exclude, tuple(nodes), compared, unmatched, samples)


def producers_of(model: Any, labels: Sequence[str]) -> list[str]:
    """Names of the nodes (not Q/DQ/Cast) that produce the float inputs of the nodes called
    ``labels`` in ``model`` (an ``onnx.ModelProto``), in topological order."""
    names = node_names(model)
    producer = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    wanted = set(labels)
    found: list[str] = []
    for label, node in zip(names, model.graph.node, strict=True):
        if label not in wanted:
            continue
        for tensor in node.input:
            index = producer.get(tensor)
            if index is None:
                continue
            source = model.graph.node[index]
            if source.op_type not in SEE_THROUGH and names[index] not in found:
                found.append(names[index])
    return found
