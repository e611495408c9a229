"""Parity results: frozen, typed data with a versioned JSON form (docs/reference/parity-json.md),
and the checks on two sets of outputs that every comparison makes first (names, shapes, labels).

JSON (``schema_version`` 2)::

    {"schema_version": 2, "model": ..., "model_sha256": ..., "reference": "ort-cpu:fp32",
     "passed": false,
     "results": [{"candidate": "ort-cpu:int8", "reference": "ort-cpu:fp32", "passed": false,
                  "samples": 64, "outputs": [{"name": "logits", "passed": false,
                  "kind": "logits", "kind_reason": "given",
                  "max_abs": ..., "max_rel": ..., "mean_abs": ..., "rmse": ..., "cosine": ...,
                  "snr_db": ..., "nan_count": 0, "inf_count": 0,
                  "cosine_per_sample": {"mean": ..., "min": ..., "worst": [...], ...},
                  "neighbours": {...} | null, "errors": {...} | null,
                  "top1_agreement": ..., "top5_agreement": null, "flip_rate": ...,
                  "flip_rate_ci": {"low": ..., "high": ..., "confidence": 0.95,
                                   "method": "wilson"},
                  "accuracy_reference": ..., "accuracy_delta": ..., "accuracy_delta_ci": {...},
                  "accuracy_ratio": ..., "worst_samples": [3, 17], "checks": [...]}],
                  "localization": {...} | null, "auto_exclude": {...} | null}]}

Non-finite floats (an ``snr_db`` of ``inf`` for identical outputs) are written as the strings
``"inf"``, ``"-inf"`` and ``"nan"`` so that the file stays strict JSON.

History: 1 — first version. 2 — output kinds (``kind``, ``kind_reason``), per-sample cosine,
nearest-neighbour agreement and per-sample errors; auto-exclude rounds and stop reason. Version 1
files are still read (the new fields are null).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optieval.errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from optieval.parity.localize import Localization
from optieval.parity.metrics import Interval
from optieval.parity.sample_metrics import CosineStats, ErrorStats, NeighbourStats
from optieval.parity.tolerances import MetricCheck, TaskBudget, Tolerance

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


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

    ``kind`` is the output's kind (:mod:`optieval.parity.kinds`) and ``kind_reason`` why it
    was chosen. The element-wise metrics are those of
    :class:`~optieval.parity.metrics.TensorMetrics` (``cosine`` is one cosine over the whole
    flattened output, never gated: ``cosine_per_sample`` is what budgets judge);
    ``cosine_per_sample`` (every float output), ``neighbours`` (embeddings) and ``errors``
    (regression) are :mod:`optieval.parity.sample_metrics`'; the classification ones (None
    unless the output's kind is class scores) those of
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
    kind: str = "tensor"
    kind_reason: str = ""
    cosine_per_sample: CosineStats | None = None
    neighbours: NeighbourStats | None = None
    errors: ErrorStats | None = None

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
        data["kind"] = self.kind
        data["kind_reason"] = self.kind_reason
        for key in ("cosine_per_sample", "neighbours", "errors"):
            value = getattr(self, key)
            data[key] = None if value is None else value.to_json()
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
            # Version 1 had no kinds: its argmax metrics were there for batch x classes.
            "kind": str(
                data.get("kind") or ("logits" if data.get("flip_rate") is not None else "tensor")
            ),
            "kind_reason": str(data.get("kind_reason", "")),
        }
        for key, kind in (("cosine_per_sample", CosineStats), ("neighbours", NeighbourStats),
                          ("errors", ErrorStats)):  # fmt: skip
            value = data.get(key)
            kwargs[key] = None if value is None else kind.from_json(value)
        for key in cls._FLOATS:
            kwargs[key] = float_from_json(data.get(key))
        for key in cls._INTS:
            kwargs[key] = int(data.get(key, 0))
        for key in cls._INTERVALS:
            kwargs[key] = _interval(data.get(key))
        return cls(**kwargs)


@dataclass(frozen=True)
class ExcludeRound:
    """One round of ``auto_exclude``: the nodes it tried in float (``added``), how it chose them
    (``chosen_by``: ``localization``, ``producers`` of the breaking nodes, or ``largest error``
    among the nodes still quantized), the size of the float list it tried, every output's
    metrics on the re-quantized artifact (``outputs``), and whether the round was ``kept`` (it
    improved on the best so far; otherwise its nodes were rejected)."""

    round: int
    added: tuple[str, ...]
    chosen_by: str
    excluded: int
    passed: bool
    outputs: tuple[OutputParity, ...]
    artifact: str
    kept: bool = True

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "round": self.round,
            "kept": self.kept,
            "added": list(self.added),
            "chosen_by": self.chosen_by,
            "excluded": self.excluded,
            "passed": self.passed,
            "artifact": self.artifact,
            "outputs": [o.to_json() for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExcludeRound:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["round"]), tuple(data.get("added", ())), str(data.get("chosen_by", "")),
                   int(data.get("excluded", 0)), bool(data.get("passed", False)),
                   tuple(OutputParity.from_json(o) for o in data.get("outputs", ())),
                   str(data.get("artifact", "")), bool(data.get("kept", True)))  # fmt: skip


STOP_REASONS = {
    "passed": "tolerance and budgets hold",
    "max_rounds": "ran every round allowed (`max_exclude_rounds`) and it still fails",
    "no_candidates": "no quantized node is left to try: the nodes localization compares, and "
    "the quantized nodes feeding them, are in float or were rejected",
    "no_quantized_nodes": "every compute node is already kept in float, or would be",
}
"""Why ``auto_exclude`` stopped: code -> meaning (``AutoExcludeResult.stop_reason``)."""


@dataclass(frozen=True)
class AutoExcludeResult:
    """What ``auto_exclude`` did: the nodes it kept in float (``excluded``), the rounds it ran
    (``rounds``, of ``max_rounds`` allowed) with each round's metrics (``history``), whether
    tolerance and budgets then held, why it stopped (``stop_reason``, a key of
    :data:`STOP_REASONS`, with ``stop_detail`` saying it in full), the artifact it kept (the
    passing round's, else the round whose checks failed least) and the speed it cost (ONNX
    Runtime CPU latency of one batch, median, before and after)."""

    excluded: tuple[str, ...]
    rounds: int
    passed: bool
    artifact: str
    latency_ms_before: float | None
    latency_ms_after: float | None
    max_rounds: int = 0
    stop_reason: str = ""
    stop_detail: str = ""
    history: tuple[ExcludeRound, ...] = ()
    best_round: int | None = None

    @property
    def slowdown(self) -> float | None:
        """``latency_ms_after / latency_ms_before`` (None when not measured)."""
        if not self.latency_ms_before or self.latency_ms_after is None:
            return None
        return self.latency_ms_after / self.latency_ms_before

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "excluded": list(self.excluded),
            "rounds": self.rounds,
            "max_rounds": self.max_rounds,
            "passed": self.passed,
            "stop_reason": self.stop_reason,
            "stop_detail": self.stop_detail,
            "best_round": self.best_round,
            "artifact": self.artifact,
            "latency_ms_before": self.latency_ms_before,
            "latency_ms_after": self.latency_ms_after,
            "slowdown": self.slowdown,
            "history": [r.to_json() for r in self.history],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutoExcludeResult:
        """Inverse of :meth:`to_json`."""
        best = data.get("best_round")
        return cls(
            tuple(data.get("excluded", ())),
            int(data.get("rounds", 0)),
            bool(data.get("passed", False)),
            str(data.get("artifact", "")),
            data.get("latency_ms_before"),
            data.get("latency_ms_after"),
            int(data.get("max_rounds", 0)),
            str(data.get("stop_reason", "")),
            str(data.get("stop_detail", "")),
            tuple(ExcludeRound.from_json(r) for r in data.get("history", ())),
            None if best is None else int(best),
        )


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

    def records(self) -> list[dict[str, Any]]:
        """One plain row per candidate and output: verdict, error metrics, argmax agreement
        and accuracy (what ``optieval compare`` prints)."""
        rows = []
        for res in self.results:
            for out in res.outputs:
                rows.append({
                    "candidate": res.candidate, "reference": res.reference, "output": out.name,
                    "passed": out.passed, "samples": res.samples, "max_abs": out.max_abs,
                    "max_rel": out.max_rel, "cosine": out.cosine, "snr_db": out.snr_db,
                    "outside_tolerance": out.violations, "flip_rate": out.flip_rate,
                    "accuracy_reference": out.accuracy_reference,
                    "accuracy_candidate": out.accuracy_candidate,
                    "accuracy_delta": out.accuracy_delta, "worst_metric": out.worst_metric,
                })  # fmt: skip
        return rows

    def to_dataframe(self) -> Any:
        """:meth:`records` as a ``pandas.DataFrame`` (pandas is optional: InputError without)."""
        from optieval.core import records_frame

        return records_frame(self.records())

    def _repr_html_(self) -> str:
        from optieval.core import records_html

        verdict = "PASS" if self.passed else "FAIL"
        return records_html(f"optieval compare: {self.model} vs {self.reference}: {verdict}",
                            self.records())  # fmt: skip

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
        if version not in READABLE_VERSIONS:
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
