"""``auto_exclude``: re-quantize a failing INT8 candidate with more nodes kept in float, round
after round, until tolerance and budgets hold, the rounds run out, or nothing is left to try.

Each round tries more nodes in float on top of the best artifact so far, chosen in this order:

1. ``localization``: the nodes where the error of the best artifact is born
   (:func:`optieval.parity.localize.localize_models`);
2. ``producers``: when those are already tried, the nodes that produce their float inputs (a
   node kept in float still reads a quantized input while its producer is quantized);
3. ``largest error``: otherwise the node still quantized whose output is furthest from the
   reference (error builds up gradually, or only a budget fails: no node "breaks", yet one is
   worst).

An activation (Relu, Clip...) is tried together with the quantized node that feeds it: the
quantizer fuses the pair, and keeping only the activation in float quantizes the unclipped
output before it, which is worse (EfficientNet-Lite0's ReLU6 nodes: top-1 agreement 77% -> 39%).

A round is kept when it improves on the best so far (fewer failed checks, then less excess past
their limits, tolerance counted as the share of elements outside it); otherwise its nodes are
rejected, never tried again, and the next round starts from the best artifact again. Every round
records the metrics of every output after it (:class:`ExcludeRound`, ``kept``); the run stops
with a reason (:data:`~optieval.parity.results.STOP_REASONS`): ``passed``, ``max_rounds``,
``no_candidates`` or ``no_quantized_nodes``. The artifact kept is the best round's, or the
artifact as built when no round improved on it (the stop detail says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.parity.localize import SEE_THROUGH, Localization, producers_of
from optieval.parity.output_compare import check_excess, compare_outputs
from optieval.parity.results import STOP_REASONS, AutoExcludeResult, ExcludeRound, OutputParity
from optieval.parity.runs import (
    DEFAULT_BATCH,
    RunCell,
    localize_artifact,
    measure_latency_ms,
)
from optieval.parity.sample_groups import SampleGroups, first_feeds
from optieval.parity.tolerances import TaskBudget, ToleranceSet
from optieval.precision import node_names


@dataclass(frozen=True)
class ExcludeJob:
    """What one ``auto_exclude`` run compares: the candidate cell and its artifact, the FP32
    model, the inputs, the reference outputs and how they are judged; ``run`` gives the
    candidate's outputs on an artifact (here, or on the executor that ran the compare)."""

    run: Callable[[Path], dict[str, np.ndarray]]
    cell: RunCell
    model_path: Path
    model_proto: Any
    artifact: Path
    inputs: Mapping[str, np.ndarray] | SampleGroups
    ref_outputs: Mapping[str, np.ndarray]
    labels: np.ndarray | None
    tolerances: ToleranceSet
    budget: TaskBudget
    calib: str | None
    threads: int | None
    batch: int | None
    confidence: float
    localize_samples: int
    output_kinds: Mapping[str, str] | None = None
    knn_k: int = 10
    outputs: tuple[OutputParity, ...] = ()
    """The candidate's outputs as built: what a round must improve on."""


def quantized_nodes(artifact: Any) -> set[str]:
    """Names of the compute nodes of a QDQ ``artifact`` (``onnx.ModelProto``) that read a
    dequantized tensor: the nodes that still compute in int8."""
    dq = {o for n in artifact.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {
        str(n.name)
        for n in artifact.graph.node
        if n.op_type not in SEE_THROUGH and n.name and any(i in dq for i in n.input)
    }


ACTIVATIONS = frozenset(
    {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu"}
)


def _score(outputs: Sequence[OutputParity]) -> tuple[int, float]:
    """Fewer failed checks is better; then less total excess past the limits (a count against
    a limit of 0, such as elements outside tolerance, as a share of the output's elements)."""
    failed = 0
    excess = 0.0
    for out in outputs:
        elements = max(int(np.prod(out.shape)) if out.shape else 1, 1)
        for check in out.checks:
            if check.passed:
                continue
            failed += 1
            if check.limit == 0.0 and check.value is not None:
                excess += float(check.value) / elements
            else:
                excess += min(check_excess(check), 1e12)
    return failed, excess


def _with_feeders(
    job: ExcludeJob, nodes: list[str], skip: set[str], quantized: set[str]
) -> list[str]:
    """``nodes``, each activation preceded by the quantized nodes that feed it."""
    ops = dict(zip(node_names(job.model_proto), (n.op_type for n in job.model_proto.graph.node),
                   strict=True))  # fmt: skip
    out: list[str] = []
    for name in nodes:
        if ops.get(name) in ACTIVATIONS:
            out.extend(p for p in producers_of(job.model_proto, [name])
                       if p in quantized and p not in skip and p not in out)  # fmt: skip
        if name not in out:
            out.append(name)
    return out


def _next_nodes(
    job: ExcludeJob, loc: Localization, tried: set[str], artifact: Any
) -> tuple[list[str], str]:
    quantized = quantized_nodes(artifact)
    new = [n for n in loc.exclude if n not in tried]
    if new:
        return _with_feeders(job, new, tried, quantized), "localization"
    new = [n for n in producers_of(job.model_proto, loc.exclude) if n not in tried]
    new = [n for n in new if n in quantized]
    if new:
        return new, "producers"
    # No node breaks tolerance (the error builds up, or only a budget fails): the worst one
    # still quantized, or fed by a quantized node (an activation folded into its feeder).
    for error in sorted(loc.nodes, key=lambda e: (e.violations, e.max_abs), reverse=True):
        if error.node in tried:
            continue
        nodes = [n for n in _with_feeders(job, [error.node], tried, quantized) if n in quantized]
        if nodes:
            return nodes, "largest error"
    return [], ""


def run_auto_exclude(job: ExcludeJob, first: Localization, max_rounds: int) -> AutoExcludeResult:
    """Run up to ``max_rounds`` rounds from the candidate's first localization ``first``; see the
    module docstring. Artifacts go to the cache (``auto-exclude/``), named by what they hold."""
    from optieval.core import cache_dir, cache_key, load_onnx
    from optieval.precision import convert

    folder = cache_dir("auto-exclude", cache_key({"model": str(job.model_path.resolve())}))
    kept: list[str] = []
    rejected: set[str] = set()
    history: list[ExcludeRound] = []
    loc, current = first, load_onnx(job.artifact)
    best: ExcludeRound | None = None
    best_score = _score(job.outputs)
    reason, detail = "max_rounds", ""
    batch = job.batch or DEFAULT_BATCH
    rounds = max(int(max_rounds), 1)
    for number in range(1, rounds + 1):
        added, chosen_by = _next_nodes(job, loc, set(kept) | rejected, current)
        if added and not quantized_nodes(current) - set(added):
            reason = "no_quantized_nodes"
            detail = (
                f"before round {number}: the next nodes to try ({', '.join(added)}) are the "
                "last quantized ones; in float they leave the fp32 model"
            )
            break
        if not added:
            reason = "no_quantized_nodes" if not quantized_nodes(current) else "no_candidates"
            detail = (f"before round {number}: {STOP_REASONS[reason]} ({len(rejected)} "
                      "rejected)")  # fmt: skip
            break
        trial = kept + added
        # Named by what it holds, so a rerun reuses the file instead of piling up copies.
        # The candidate's backend picks the INT8 format its artifact has (u8s8 on ort-cpu...).
        backend = job.cell.backend if job.cell.runs_onnx else None
        key = {"exclude": sorted(trial), "calib": job.calib, "backend": backend}
        out = folder / f"{cache_key(key)}.int8.onnx"
        convert(job.model_path, "int8", output=out, calib=job.calib, exclude=tuple(trial),
                backend=backend)  # fmt: skip
        cand = job.run(out)
        outputs = compare_outputs(job.ref_outputs, cand, tolerances=job.tolerances,
                                  labels=job.labels, budget=job.budget,
                                  confidence=job.confidence, output_kinds=job.output_kinds,
                                  knn_k=job.knn_k)  # fmt: skip
        passed = all(o.passed for o in outputs)
        score = _score(outputs)
        better = passed or score < best_score
        record = ExcludeRound(number, tuple(added), chosen_by, len(trial), passed, outputs,
                              str(out), kept=better)  # fmt: skip
        history.append(record)
        if better:
            kept, best, best_score = trial, record, score
        else:
            rejected.update(added)
        if passed:
            reason = "passed"
            detail = f"after round {number}: {STOP_REASONS[reason]}"
            break
        if number == rounds:
            detail = f"{STOP_REASONS[reason]} ({rounds} round(s))"
            break
        if better:
            current = load_onnx(out)
            loc = localize_artifact(job.model_proto, out, job.inputs, job.tolerances, batch,
                                    job.localize_samples, outputs)  # fmt: skip
    if best is None and history:
        detail += "; no round improved on the artifact as built, so it is kept"
    artifact = Path(best.artifact) if best is not None else job.artifact
    feeds = first_feeds(job.inputs, batch)
    before = measure_latency_ms(job.cell, job.artifact, feeds, job.threads)
    after = measure_latency_ms(job.cell, artifact, feeds, job.threads) if best else before
    return AutoExcludeResult(
        excluded=tuple(kept),
        rounds=len(history),
        passed=best is not None and best.passed,
        artifact=str(artifact),
        latency_ms_before=before,
        latency_ms_after=after,
        max_rounds=rounds,
        stop_reason=reason,
        stop_detail=detail,
        history=tuple(history),
        best_round=None if best is None else best.round,
    )


__all__ = ["ExcludeJob", "quantized_nodes", "run_auto_exclude"]
