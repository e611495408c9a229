"""``auto_exclude``: re-quantize a failing INT8 candidate with more nodes kept in float, round
after round, until tolerance and budgets hold, the rounds run out, or nothing is left to try.

Each round adds nodes to the float list, chosen in this order:

1. ``localization``: the nodes where the error of the current artifact is born
   (:func:`optieval.parity.localize.localize_models`);
2. ``producers``: when those are already in the list, the nodes that produce their float
   inputs (a node kept in float still reads a quantized input while its producer is quantized);
3. ``largest error``: otherwise the node still quantized whose output is furthest past
   tolerance (error builds up gradually, so no node "breaks", yet one is worst).

Every round records the metrics of every output after it (:class:`ExcludeRound`); the run stops
with a reason (:data:`~optieval.parity.results.STOP_REASONS`): ``passed``, ``max_rounds``,
``no_candidates`` or ``no_quantized_nodes``. The artifact kept is the first passing round's,
else the round whose failed checks are fewest and least far past their limits.
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
    split_batches,
)
from optieval.parity.tolerances import TaskBudget, ToleranceSet


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
    inputs: Mapping[str, np.ndarray]
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


def quantized_nodes(artifact: Any) -> set[str]:
    """Names of the compute nodes of a QDQ ``artifact`` (``onnx.ModelProto``) that read a
    dequantized tensor: the nodes that still compute in int8."""
    dq = {o for n in artifact.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {
        str(n.name)
        for n in artifact.graph.node
        if n.op_type not in SEE_THROUGH and n.name and any(i in dq for i in n.input)
    }


def _score(outputs: Sequence[OutputParity]) -> tuple[int, float]:
    """Fewer failed checks is better; then less total excess past the limits."""
    failed = [c for o in outputs for c in o.checks if not c.passed]
    return len(failed), sum(min(check_excess(c), 1e12) for c in failed)


def _next_nodes(
    job: ExcludeJob, loc: Localization, excluded: Sequence[str], artifact: Any
) -> tuple[list[str], str]:
    quantized = quantized_nodes(artifact)
    new = [n for n in loc.exclude if n not in excluded]
    if new:
        return new, "localization"
    new = [n for n in producers_of(job.model_proto, loc.exclude) if n not in excluded]
    new = [n for n in new if n in quantized]
    if new:
        return new, "producers"
    failing = [e for e in loc.nodes if not e.passed and e.node in quantized
               and e.node not in excluded]  # fmt: skip
    if failing:
        worst = max(failing, key=lambda e: (e.violations, e.max_abs))
        return [worst.node], "largest error"
    return [], ""


def run_auto_exclude(job: ExcludeJob, first: Localization, max_rounds: int) -> AutoExcludeResult:
    """Run up to ``max_rounds`` rounds from the candidate's first localization ``first``; see the
    module docstring. Artifacts go to the cache (``auto-exclude/``), named by what they hold."""
    from optieval.core import cache_dir, cache_key, load_onnx
    from optieval.precision import convert

    folder = cache_dir("auto-exclude", cache_key({"model": str(job.model_path.resolve())}))
    excluded: list[str] = []
    history: list[ExcludeRound] = []
    loc, current = first, load_onnx(job.artifact)
    reason, detail = "max_rounds", ""
    batch = job.batch or DEFAULT_BATCH
    rounds = max(int(max_rounds), 1)
    for number in range(1, rounds + 1):
        added, chosen_by = _next_nodes(job, loc, excluded, current)
        if not added:
            left = quantized_nodes(current)
            if not left:
                reason = "no_quantized_nodes"
                detail = f"before round {number}: {STOP_REASONS[reason]}"
            else:
                reason = "no_candidates"
                detail = (
                    f"before round {number}: {STOP_REASONS[reason]} ({len(left)} node(s) "
                    "still quantized are all within tolerance on the localized samples)"
                )
            break
        excluded.extend(added)
        # Named by what it holds, so a rerun reuses the file instead of piling up copies.
        # The candidate's backend picks the INT8 format its artifact has (u8s8 on ort-cpu...).
        backend = job.cell.backend if job.cell.runs_onnx else None
        key = {'exclude': sorted(excluded), 'calib': job.calib, 'backend': backend}
        out = folder / f"{cache_key(key)}.int8.onnx"
        convert(job.model_path, "int8", output=out, calib=job.calib, exclude=tuple(excluded),
                backend=backend)  # fmt: skip
        cand = job.run(out)
        outputs = compare_outputs(job.ref_outputs, cand, tolerances=job.tolerances,
                                  labels=job.labels, budget=job.budget,
                                  confidence=job.confidence, output_kinds=job.output_kinds,
                                  knn_k=job.knn_k)  # fmt: skip
        passed = all(o.passed for o in outputs)
        history.append(ExcludeRound(number, tuple(added), chosen_by, len(excluded), passed,
                                    outputs, str(out)))  # fmt: skip
        if passed:
            reason = "passed"
            detail = f"after round {number}: {STOP_REASONS[reason]}"
            break
        if number == rounds:
            detail = f"{STOP_REASONS[reason]} ({rounds} round(s))"
            break
        current = load_onnx(out)
        loc = localize_artifact(job.model_proto, out, job.inputs, job.tolerances, batch,
                                job.localize_samples, outputs)  # fmt: skip
    best = next((r for r in history if r.passed), None)
    if best is None and history:
        best = min(history, key=lambda r: _score(r.outputs))
    artifact = Path(best.artifact) if best is not None else job.artifact
    feeds = next(split_batches(job.inputs, batch))
    before = measure_latency_ms(job.cell, job.artifact, feeds, job.threads)
    after = measure_latency_ms(job.cell, artifact, feeds, job.threads) if best else before
    kept = excluded[: best.excluded] if best is not None else []
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
