"""The pure comparison of two sets of outputs (no model is run): each output's kind decides its
metrics (:mod:`optieval.parity.kinds`), every judged criterion becomes a
:class:`~optieval.parity.tolerances.MetricCheck`, and the result is an
:class:`~optieval.parity.results.OutputParity` per output."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from optieval.errors import InputError
from optieval.parity.kinds import SCORE_KINDS, KindChoice, resolve_kinds
from optieval.parity.metrics import (
    DEFAULT_CONFIDENCE,
    accuracy_metrics,
    classification_metrics,
    tensor_metrics,
    tolerance_violations,
    worst_samples,
)
from optieval.parity.results import OutputParity, check_labels, check_output_match
from optieval.parity.sample_metrics import (
    DEFAULT_KNN_K,
    cosine_stats,
    error_stats,
    neighbour_stats,
)
from optieval.parity.tolerances import MetricCheck, TaskBudget, Tolerance, ToleranceSet

_LOWER_IS_BETTER = frozenset({"tolerance", "finite"})


def _worst_metric(checks: list[MetricCheck]) -> str | None:
    if not checks:
        return None
    failed = [c for c in checks if not c.passed]
    pool = failed or checks
    return max(pool, key=check_excess).name


def check_excess(check: MetricCheck) -> float:
    """How far ``check`` is past its limit, relative to it, in the direction that fails
    (negative when within it; infinite when it has no value and failed)."""
    if check.value is None or check.limit is None:
        return math.inf if not check.passed else -math.inf
    scale = max(abs(check.limit), 1e-12)
    if check.name in _LOWER_IS_BETTER:
        return (check.value - check.limit) / scale
    return (check.limit - check.value) / scale


def compare_output(
    name: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    tolerance: Tolerance,
    labels: np.ndarray | None = None,
    budget: TaskBudget | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    kind: KindChoice | None = None,
    knn_k: int = DEFAULT_KNN_K,
    default_min_cosine: float | None = None,
) -> OutputParity:
    """Compare one output; see :class:`OutputParity`. ``labels`` must already be checked
    (:func:`check_labels`) and are used only when the output holds class scores. ``kind``
    defaults to the inferred one (:func:`optieval.parity.kinds.infer_kind`).
    ``default_min_cosine`` judges an embedding's worst sample when ``budget`` sets no
    ``min_cosine`` (:data:`~optieval.parity.tolerances.DEFAULT_EMBEDDING_COSINE`)."""
    budget = budget or TaskBudget()
    if kind is None:
        kind = resolve_kinds({name: reference})[name]
    tm = tensor_metrics(reference, candidate)
    violations = tolerance_violations(reference, candidate, tolerance.atol, tolerance.rtol)
    checks = [
        MetricCheck("finite", tm.new_nonfinite == 0, float(tm.new_nonfinite), 0.0,
                    "NaN/Inf in the candidate where the reference is finite"),
        MetricCheck("tolerance", violations == 0, float(violations), 0.0,
                    f"elements with |c-r| > {tolerance.atol:g} + {tolerance.rtol:g}*|r|"),
    ]  # fmt: skip
    extra: dict[str, Any] = {}
    ref = np.asarray(reference)
    floating = np.issubdtype(ref.dtype, np.floating) and ref.ndim >= 1
    cos = cosine_stats(reference, candidate, confidence)[0] if floating else None
    neighbours = None
    if kind.kind == "embedding":
        neighbours = neighbour_stats(reference, candidate, knn_k, confidence)
    if kind.kind == "regression":
        extra["errors"] = error_stats(reference, candidate, confidence)
    top1: float | None = None
    if kind.kind in SCORE_KINDS:
        cm = classification_metrics(reference, candidate, confidence)
        top1 = cm.top1_agreement
        extra.update(top1_agreement=cm.top1_agreement, top5_agreement=cm.top5_agreement,
                     flip_rate=cm.flip_rate, flip_rate_ci=cm.flip_rate_ci)  # fmt: skip
        if labels is not None and (labels.size == 0 or labels.max() < ref.shape[1]):
            am = accuracy_metrics(reference, candidate, labels, confidence)
            extra.update(
                accuracy_reference=am.accuracy_reference,
                accuracy_reference_ci=am.accuracy_reference_ci,
                accuracy_candidate=am.accuracy_candidate,
                accuracy_candidate_ci=am.accuracy_candidate_ci,
                accuracy_delta=am.accuracy_delta,
                accuracy_delta_ci=am.accuracy_delta_ci,
                accuracy_ratio=am.accuracy_ratio,
                accuracy_ratio_ci=am.accuracy_ratio_ci,
            )
    checks.extend(
        budget.checks(
            accuracy_delta=extra.get("accuracy_delta"),
            accuracy_ratio=extra.get("accuracy_ratio"),
            top1_agreement=top1,
            cosine=None if cos is None else cos.min,
            knn_agreement=None if neighbours is None else neighbours.agreement,
        )
    )
    if (kind.kind == "embedding" and budget.min_cosine is None and cos is not None
            and default_min_cosine is not None):  # fmt: skip
        checks.append(MetricCheck("cosine", cos.min >= default_min_cosine, cos.min,
                                  default_min_cosine, "worst sample's cosine with the reference "
                                  "(the default for this precision's embeddings)"))  # fmt: skip
    return OutputParity(
        name=name,
        passed=all(c.passed for c in checks),
        shape=tuple(int(d) for d in ref.shape),
        tolerance=tolerance,
        violations=violations,
        max_abs=tm.max_abs,
        max_rel=tm.max_rel,
        mean_abs=tm.mean_abs,
        rmse=tm.rmse,
        cosine=tm.cosine,
        snr_db=tm.snr_db,
        nan_count=tm.nan_count,
        inf_count=tm.inf_count,
        reference_nan_count=tm.reference_nan_count,
        reference_inf_count=tm.reference_inf_count,
        new_nonfinite=tm.new_nonfinite,
        worst_samples=tuple(worst_samples(reference, candidate)),
        checks=tuple(checks),
        worst_metric=_worst_metric(checks),
        kind=kind.kind,
        kind_reason=kind.reason,
        cosine_per_sample=cos,
        neighbours=neighbours,
        **extra,
    )


def _check_budgets(budget: TaskBudget, kinds: Mapping[str, KindChoice]) -> None:
    """A budget that no output has is an error, not a silent pass."""
    described = ", ".join(f"{n}={k.kind}" for n, k in kinds.items())
    scores = [n for n, k in kinds.items() if k.kind in SCORE_KINDS]
    for name in budget.score_budgets:
        if not scores:
            raise InputError(
                f"this budget judges class scores, and no output is scores ({described})",
                where=name,
                hint="give the output's kind as logits if it holds class scores "
                "(`output_kinds`), or drop the budget",
            )
    if budget.min_knn_agreement is not None and not any(
        k.kind == "embedding" for k in kinds.values()
    ):
        raise InputError(
            f"this budget judges embeddings, and no output is one ({described})",
            where="min_knn_agreement",
            hint="give the output's kind as embedding (`output_kinds`), or drop the budget",
        )


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    *,
    tolerances: ToleranceSet | None = None,
    labels: np.ndarray | None = None,
    budget: TaskBudget | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    reference_label: str = "reference",
    candidate_label: str = "candidate",
    output_kinds: Mapping[str, str] | None = None,
    knn_k: int = DEFAULT_KNN_K,
) -> tuple[OutputParity, ...]:
    """Compare every output of a candidate with the reference's (pure; no model is run).

    Args:
        reference, candidate: output name -> array, samples along axis 0.
        tolerances: per-output tolerances (default: fp32 defaults).
        labels: class indices (samples,) or None; checked here.
        budget: task budgets (default: none).
        confidence: of every interval (default 0.95).
        reference_label, candidate_label: names used in error messages.
        output_kinds: output name (or ``"*"``) -> kind; the rest are inferred
            (:mod:`optieval.parity.kinds`).
        knn_k: neighbours per sample for the nearest-neighbour agreement of embeddings.

    Returns:
        One :class:`OutputParity` per output, in the reference's order.

    Raises:
        InputError: different output names or shapes, a ``tol`` naming no output, labels
            of the wrong length or type, labels or argmax budgets but no output of class
            scores, a neighbour budget but no embedding, a kind that does not fit its output.
    """
    tolerances = tolerances or ToleranceSet()
    budget = budget or TaskBudget()
    check_output_match(
        reference, candidate, reference_label=reference_label, candidate_label=candidate_label
    )
    tolerances.check_outputs(reference)
    kinds = resolve_kinds(reference, output_kinds)
    _check_budgets(budget, kinds)
    checked: np.ndarray | None = None
    if labels is not None:
        first = next(iter(reference.values()), np.zeros((0,)))
        checked = check_labels(labels, int(np.shape(first)[0]) if np.ndim(first) else 0)
        classes = [int(np.shape(reference[n])[1]) for n, k in kinds.items()
                   if k.kind in SCORE_KINDS]  # fmt: skip
        if not classes:
            raise InputError(
                "labels were given but no output holds class scores (batch x classes); kinds: "
                + ", ".join(f"{n}={k.kind}" for n, k in kinds.items()),
                where="labels",
            )
        if checked.size and int(checked.max()) >= max(classes):
            raise InputError(
                f"labels reach class {int(checked.max())} but the outputs have at most "
                f"{max(classes)} classes",
                where="labels",
                hint="labels must be class indices into the model's output",
            )
    return tuple(
        compare_output(
            name,
            reference[name],
            candidate[name],
            tolerance=tolerances.for_output(name),
            labels=checked,
            budget=budget,
            confidence=confidence,
            kind=kinds[name],
            knn_k=knn_k,
            default_min_cosine=tolerances.embedding_cosine(),
        )
        for name in reference
    )


__all__ = ["check_excess", "compare_output", "compare_outputs"]
