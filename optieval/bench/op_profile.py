"""Op profiles (``profile_ops``; the CLI's ``--profile-ops``): where the time goes, per op type
and per node, from a separate profiled run after the timed one (profiling slows every node
down, so it never shares a run with timing).

ONNX Runtime backends use ORT's own profiler (a Chrome-trace JSON with one ``Node`` event per
kernel run); other backends report that they have no op profiler here.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core import ONNX_BACKENDS
from optieval.errors import InputError

ORT_PROFILED_BACKENDS = tuple(name for name in ONNX_BACKENDS if name.startswith("ort-"))


@dataclass(frozen=True)
class OpProfile:
    """Time per op type and the slowest nodes, averaged over ``iterations`` runs.

    Attributes:
        iterations: profiled runs.
        total_ms: the mean summed kernel time per run.
        by_op_type: op type -> (mean ms per run, share of total), slowest first.
        top_nodes: (node name, op type, mean ms per run), slowest first.
        source: what produced it.
    """

    iterations: int
    total_ms: float
    by_op_type: tuple[tuple[str, float, float], ...]
    top_nodes: tuple[tuple[str, str, float], ...]
    source: str

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "iterations": self.iterations,
            "total_ms": self.total_ms,
            "by_op_type": [
                {"op_type": op, "ms": ms, "share": share} for op, ms, share in self.by_op_type
            ],
            "top_nodes": [
                {"node": node, "op_type": op, "ms": ms} for node, op, ms in self.top_nodes
            ],
            "source": self.source,
        }


def profile_ops(
    backend_name: str,
    artifact: str | Path,
    feeds: dict[str, np.ndarray],
    *,
    iterations: int = 50,
    threads: int | None = None,
    top: int = 10,
) -> OpProfile:
    """Run ``artifact`` ``iterations`` times under the backend's op profiler and aggregate.

    Raises:
        InputError: the backend has no op profiler in optieval.
    """
    if backend_name not in ORT_PROFILED_BACKENDS:
        raise InputError(
            f"`profile_ops` has no op profiler for {backend_name}",
            where="profile_ops",
            hint=f"profile on one of {', '.join(ORT_PROFILED_BACKENDS)}",
        )
    from optieval.runtime import create_backend

    options: dict[str, Any] = {"threads": threads} if threads else {}
    with tempfile.TemporaryDirectory(prefix="optieval-profile-") as folder:
        backend = create_backend(backend_name, Path(artifact), profile_dir=folder, **options)
        with backend:
            run = backend.runner(feeds)
            for _ in range(iterations):
                run()
            trace = backend.end_profiling()  # type: ignore[attr-defined]
        events = json.loads(Path(trace).read_text()) if trace else []
    return aggregate_ort_trace(events, iterations=iterations, top=top)


def aggregate_ort_trace(
    events: list[dict[str, Any]], *, iterations: int, top: int = 10
) -> OpProfile:
    """Aggregate an ORT profiler trace: ``Node`` events whose name ends in ``_kernel_time``
    carry the kernel's duration (µs) and ``args.op_name``."""
    per_op: dict[str, float] = defaultdict(float)
    per_node: dict[tuple[str, str], float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        op_type = str(event.get("args", {}).get("op_name", "?"))
        node = str(event["name"])[: -len("_kernel_time")]
        duration_ms = float(event.get("dur", 0.0)) / 1e3
        per_op[op_type] += duration_ms
        per_node[(node, op_type)] += duration_ms
    runs = max(1, iterations)
    total = sum(per_op.values()) / runs
    by_op = sorted(((op, ms / runs) for op, ms in per_op.items()), key=lambda x: -x[1])
    nodes = sorted(((n, op, ms / runs) for (n, op), ms in per_node.items()), key=lambda x: -x[2])
    return OpProfile(
        iterations=iterations,
        total_ms=total,
        by_op_type=tuple((op, ms, ms / total if total else 0.0) for op, ms in by_op),
        top_nodes=tuple(nodes[:top]),
        source="onnxruntime profiler (kernel time per node)",
    )
