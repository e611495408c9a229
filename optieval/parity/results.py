"""Parity results: frozen, typed data with a versioned JSON form, and the pure comparison that
turns two sets of outputs into them (:func:`compare_outputs`).

JSON (``schema_version`` 1)::

    {"schema_version": 1, "model": ..., "model_sha256": ..., "reference": "ort-cpu:fp32",
     "passed": false,
     "results": [{"candidate": "ort-cpu:int8", "reference": "ort-cpu:fp32", "passed": false,
                  "samples": 64, "outputs": [{"name": "logits", "passed": false,
                  "max_abs": ..., "max_rel": ..., "mean_abs": ..., "rmse": ..., "cosine": ...,
                  "snr_db": ..., "nan_count": 0, "inf_count": 0,
                  "top1_agreement": ..., "top5_agreement": null, "flip_rate": ...,
                  "flip_rate_ci": {"low": ..., "high": ..., "confidence": 0.95,
                                   "method": "wilson"},
                  "accuracy_reference": ..., "accuracy_delta": ..., "accuracy_delta_ci": {...},
                  "accuracy_ratio": ..., "worst_samples": [3, 17], "checks": [...]}],
                  "localization": {...} | null, "auto_exclude": {...} | null}]}

Non-finite floats (an ``snr_db`` of ``inf`` for identical outputs) are written as the strings
``"inf"``, ``"-inf"`` and ``"nan"`` so that the file stays strict JSON.

History: 1 — first version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optieval.errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from optieval.parity.localize import AutoExcludeResult, Localization
from optieval.parity.metrics import (
    DEFAULT_CONFIDENCE,
    Interval,
    accuracy_metrics,
    classification_metrics,
    is_classification_shaped,
    tensor_metrics,
    tolerance_violations,
    worst_samples,
)
from optieval.parity.tolerances import MetricCheck, TaskBudget, Tolerance, ToleranceSet

SCHEMA_VERSION = 1


def float_to_json(value: float | None) -> float | str | None:
    """A float for strict JSON: non-finite values become ``"inf"``, ``"-inf"``, ``"nan"``."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def float_from_json(value: Any) -> float | None:
    """Inverse of :func:`float_to_json`."""
    return None if value is None else float(value)


def _interval(data: Any) -> Interval | None:
    return None if data is None else Interval.from_json(data)


def _interval_json(value: Interval | None) -> dict[str, Any] | None:
    if value is None:
        return None
    data = value.to_json()
    data["high"] = float_to_json(value.high)
    return data


@dataclass(frozen=True)
class OutputParity:
    """How one output of a candidate compares with the reference's.

    The element-wise metrics are those of :class:`~optieval.parity.metrics.TensorMetrics`;
    the classification ones (None unless the output is batch x classes) those of
    :class:`~optieval.parity.metrics.ClassificationMetrics`; the accuracy ones (None
    without labels) those of :class:`~optieval.parity.metrics.AccuracyMetrics`.
    ``checks`` lists every judged criterion (``finite``, ``tolerance``, task budgets);
    ``passed`` is True when all of them passed. ``worst_metric`` names the failed check that is
    furthest past its limit (or, when all passed, the one closest to it).
    """

    name: str
    passed: bool
    shape: tuple[int, ...]
    tolerance: Tolerance
    violations: int
    max_abs: float
    max_rel: float
    mean_abs: float
    rmse: float
    cosine: float
    snr_db: float
    nan_count: int
    inf_count: int
    reference_nan_count: int = 0
    reference_inf_count: int = 0
    new_nonfinite: int = 0
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    flip_rate: float | None = None
    flip_rate_ci: Interval | None = None
    accuracy_reference: float | None = None
    accuracy_reference_ci: Interval | None = None
    accuracy_candidate: float | None = None
    accuracy_candidate_ci: Interval | None = None
    accuracy_delta: float | None = None
    accuracy_delta_ci: Interval | None = None
    accuracy_ratio: float | None = None
    accuracy_ratio_ci: Interval | None = None
    worst_samples: tuple[int, ...] = ()
    checks: tuple[MetricCheck, ...] = ()
    worst_metric: str | None = None

    _FLOATS = (
        "max_abs",
        "max_rel",
        "mean_abs",
        "rmse",
        "cosine",
        "snr_db",
        "top1_agreement",
        "top5_agreement",
        "flip_rate",
        "accuracy_reference",
        "accuracy_candidate",
        "accuracy_delta",
        "accuracy_ratio",
    )
    _INTS = (
        "violations",
        "nan_count",
        "inf_count",
        "reference_nan_count",
        "reference_inf_count",
        "new_nonfinite",
    )
    _INTERVALS = (
        "flip_rate_ci",
        "accuracy_reference_ci",
        "accuracy_candidate_ci",
        "accuracy_delta_ci",
        "accuracy_ratio_ci",
    )

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (see the module docstring)."""
        data: dict[str, Any] = {
            "name": self.name,
            "passed": self.passed,
            "shape": list(self.shape),
            "tolerance": self.tolerance.to_json(),
        }
        for key in self._FLOATS:
            data[key] = float_to_json(getattr(self, key))
        for key in self._INTS:
            data[key] = getattr(self, key)
        for key in self._INTERVALS:
            data[key] = _interval_json(getattr(self, key))
        data["worst_samples"] = list(self.worst_samples)
        data["checks"] = [c.to_json() for c in self.checks]
        data["worst_metric"] = self.worst_metric
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputParity:
        """Inverse of :meth:`to_json`."""
        kwargs: dict[str, Any] = {
            "name": str(data["name"]),
            "passed": bool(data["passed"]),
            "shape": tuple(int(d) for d in data.get("shape", ())),
            "tolerance": Tolerance.from_json(data["tolerance"]),
            "worst_samples": tuple(int(i) for i in data.get("worst_samples", ())),
            "checks": tuple(MetricCheck.from_json(c) for c in data.get("checks", ())),
            "worst_metric": data.get("worst_metric"),
        }
        for key in cls._FLOATS:
            kwargs[key] = float_from_json(data.get(key))
        for key in cls._INTS:
            kwargs[key] = int(data.get(key, 0))
        for key in cls._INTERVALS:
            kwargs[key] = _interval(data.get(key))
        return cls(**kwargs)


@dataclass(frozen=True)
class CandidateParity:
    """One candidate (``backend:precision``) against the reference, over the same inputs.

    ``inputs`` says where the inputs came from (``data:PATH``, ``generated:seed=0``,
    ``golden:DIR``); ``warnings`` are things a reader should know (random inputs for INT8, a
    manifest that recorded a failed export parity...).
    """

    candidate: str
    reference: str
    passed: bool
    samples: int
    outputs: tuple[OutputParity, ...]
    artifact: str = ""
    inputs: str = ""
    warnings: tuple[str, ...] = ()
    budget: TaskBudget = field(default_factory=TaskBudget)
    localization: Localization | None = None
    auto_exclude: AutoExcludeResult | None = None

    def output(self, name: str) -> OutputParity:
        """The result of output ``name`` (KeyError if absent)."""
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "passed": self.passed,
            "samples": self.samples,
            "artifact": self.artifact,
            "inputs": self.inputs,
            "warnings": list(self.warnings),
            "budget": self.budget.to_json(),
            "outputs": [o.to_json() for o in self.outputs],
            "localization": None if self.localization is None else self.localization.to_json(),
            "auto_exclude": None if self.auto_exclude is None else self.auto_exclude.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CandidateParity:
        """Inverse of :meth:`to_json`."""
        loc = data.get("localization")
        auto = data.get("auto_exclude")
        return cls(
            candidate=str(data["candidate"]),
            reference=str(data["reference"]),
            passed=bool(data["passed"]),
            samples=int(data.get("samples", 0)),
            outputs=tuple(OutputParity.from_json(o) for o in data["outputs"]),
            artifact=str(data.get("artifact", "")),
            inputs=str(data.get("inputs", "")),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
            budget=TaskBudget.from_json(data.get("budget") or {}),
            localization=None if loc is None else Localization.from_json(loc),
            auto_exclude=None if auto is None else AutoExcludeResult.from_json(auto),
        )


@dataclass(frozen=True)
class ParityReport:
    """Everything ``optieval compare`` found: one :class:`CandidateParity` per candidate."""

    model: str
    model_sha256: str
    reference: str
    results: tuple[CandidateParity, ...]
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every candidate passed."""
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every candidate passed, 1 otherwise."""
        return EXIT_OK if self.passed else EXIT_CHECK_FAILED

    def result(self, candidate: str) -> CandidateParity:
        """The result for ``candidate`` (``backend:precision``; KeyError if absent)."""
        for res in self.results:
            if res.candidate == candidate:
                return res
        raise KeyError(candidate)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "reference": self.reference,
            "passed": self.passed,
            "warnings": list(self.warnings),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParityReport:
        """Inverse of :meth:`to_json`; InputError for another schema version."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise InputError(
                f"parity report schema_version {version!r} is not {SCHEMA_VERSION}",
                hint="re-run `optieval compare` with this optieval version",
            )
        return cls(
            model=str(data.get("model", "")),
            model_sha256=str(data.get("model_sha256", "")),
            reference=str(data.get("reference", "")),
            results=tuple(CandidateParity.from_json(r) for r in data["results"]),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )


def check_labels(labels: Any, samples: int, *, where: str = "labels") -> np.ndarray:
    """Return ``labels`` as int64 class indices (batch,), accepting integer labels or one-hot /
    score rows (batch x classes, argmax taken). InputError when the length or type is wrong."""
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iubf":
        raise InputError(
            f"labels have dtype {arr.dtype}; class indices (integers) are needed",
            where=where,
            hint="store labels as an integer array of shape (samples,)",
        )
    if arr.ndim == 2 and arr.shape[1] > 1:
        arr = np.argmax(arr, axis=1)
    elif arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(
            f"labels have shape {arr.shape}; (samples,) class indices are needed", where=where
        )
    if arr.shape[0] != samples:
        raise InputError(
            f"{arr.shape[0]} labels for {samples} samples",
            where=where,
            hint="labels and inputs must have the same length along axis 0",
        )
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise InputError("labels are not whole numbers; class indices are needed", where=where)
    if arr.size and arr.min() < 0:
        raise InputError("labels contain negative class indices", where=where)
    return arr.astype(np.int64)


def check_output_match(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    *,
    reference_label: str = "reference",
    candidate_label: str = "candidate",
) -> None:
    """InputError (listing every mismatch) when the two sets of outputs differ in names or
    shapes."""
    problems: list[str] = []
    missing = sorted(set(reference) - set(candidate))
    extra = sorted(set(candidate) - set(reference))
    if missing:
        problems.append(f"{candidate_label} lacks output(s) {', '.join(missing)}")
    if extra:
        problems.append(f"{candidate_label} has extra output(s) {', '.join(extra)}")
    for name in sorted(set(reference) & set(candidate)):
        rs, cs = np.shape(reference[name]), np.shape(candidate[name])
        if rs != cs:
            problems.append(
                f"output {name!r} is {'x'.join(map(str, rs)) or 'scalar'} in {reference_label} "
                f"but {'x'.join(map(str, cs)) or 'scalar'} in {candidate_label}"
            )
    if problems:
        raise InputError(
            "; ".join(problems),
            where=candidate_label,
            hint="reference and candidate must be the same model with the same outputs",
        )


def _worst_metric(checks: list[MetricCheck]) -> str | None:
    def badness(c: MetricCheck) -> float:
        if c.value is None or c.limit is None:
            return math.inf if not c.passed else -math.inf
        # How far past the limit, relative to it, in the direction that fails.
        scale = max(abs(c.limit), 1e-12)
        lower_is_better = c.name in ("tolerance", "finite")
        excess = (c.value - c.limit) if lower_is_better else (c.limit - c.value)
        return excess / scale

    if not checks:
        return None
    failed = [c for c in checks if not c.passed]
    pool = failed or checks
    return max(pool, key=badness).name


def compare_output(
    name: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    tolerance: Tolerance,
    labels: np.ndarray | None = None,
    budget: TaskBudget | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> OutputParity:
    """Compare one output; see :class:`OutputParity`. ``labels`` must already be checked
    (:func:`check_labels`) and are used only when the output is classification-shaped."""
    budget = budget or TaskBudget()
    tm = tensor_metrics(reference, candidate)
    violations = tolerance_violations(reference, candidate, tolerance.atol, tolerance.rtol)
    checks = [
        MetricCheck(
            "finite",
            tm.new_nonfinite == 0,
            float(tm.new_nonfinite),
            0.0,
            "NaN/Inf in the candidate where the reference is finite",
        ),
        MetricCheck(
            "tolerance",
            violations == 0,
            float(violations),
            0.0,
            f"elements with |c-r| > {tolerance.atol:g} + {tolerance.rtol:g}*|r|",
        ),
    ]
    extra: dict[str, Any] = {}
    if is_classification_shaped(np.asarray(reference)):
        cm = classification_metrics(reference, candidate, confidence)
        extra.update(
            top1_agreement=cm.top1_agreement,
            top5_agreement=cm.top5_agreement,
            flip_rate=cm.flip_rate,
            flip_rate_ci=cm.flip_rate_ci,
        )
        if labels is not None and (labels.size == 0 or labels.max() < np.shape(reference)[1]):
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
                top1_agreement=cm.top1_agreement,
            )
        )
    return OutputParity(
        name=name,
        passed=all(c.passed for c in checks),
        shape=tuple(int(d) for d in np.shape(reference)),
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
        **extra,
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
) -> tuple[OutputParity, ...]:
    """Compare every output of a candidate with the reference's (pure; no model is run).

    Args:
        reference, candidate: output name -> array, samples along axis 0.
        tolerances: per-output tolerances (default: fp32 defaults).
        labels: class indices (samples,) or None; checked here.
        budget: task budgets (default: none).
        confidence: of every interval (default 0.95).
        reference_label, candidate_label: names used in error messages.

    Returns:
        One :class:`OutputParity` per output, in the reference's order.

    Raises:
        InputError: different output names or shapes, a ``tol`` naming no output, labels
            of the wrong length or type, or labels given but no classification-shaped output.
    """
    tolerances = tolerances or ToleranceSet()
    check_output_match(
        reference, candidate, reference_label=reference_label, candidate_label=candidate_label
    )
    tolerances.check_outputs(reference)
    checked: np.ndarray | None = None
    if labels is not None:
        first = next(iter(reference.values()), np.zeros((0,)))
        checked = check_labels(labels, int(np.shape(first)[0]) if np.ndim(first) else 0)
        classes = [int(np.shape(v)[1]) for v in reference.values() if is_classification_shaped(v)]
        if not classes:
            raise InputError(
                "labels were given but no output is classification-shaped (batch x classes)",
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
        )
        for name in reference
    )
