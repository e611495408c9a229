"""Detection parity results: budgets, frozen typed results with a versioned JSON form, and the
pure comparison of two models' per-image detections (:func:`compare_detections`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from optieval.detection.boxes import Detections, PostProcess, Roles, check_iou
from optieval.detection.ground_truth import GroundTruth
from optieval.detection.metrics import (
    DEFAULT_MATCH_IOU,
    DEFAULT_RESAMPLES,
    MapScores,
    average_precisions,
    bootstrap_intervals,
    evaluate,
    match_detections,
)
from optieval.errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from optieval.parity import DEFAULT_CONFIDENCE, Interval, MetricCheck

SCHEMA_VERSION = 1
WORST_IMAGES = 5


# -- budgets ----------------------------------------------------------------------------------


DETECTION_BUDGET_KEYS: dict[str, str] = {
    "map_drop_max": "reference mAP@0.5:0.95 minus candidate's (needs ground truth)",
    "map50_drop_max": "reference mAP@0.5 minus candidate's (needs ground truth)",
    "box_match_min": "fraction of reference detections the candidate reproduces (same class, "
    "IoU >= match IoU)",
    "mean_iou_min": "mean IoU of matched detections",
    "extra_rate_max": "fraction of candidate detections matching no reference detection",
    "score_diff_max": "mean absolute score difference of matched detections",
}
"""Detection budget keys (the gate's budget-key rule: METRIC_max / METRIC_min) and meanings."""


@dataclass(frozen=True)
class DetectionBudget:
    """Budgets on detection parity (None: not gated); see :data:`DETECTION_BUDGET_KEYS`.

    Judged on the point values here (``optieval compare``); the gate judges them on the
    intervals."""

    map_drop_max: float | None = None
    map50_drop_max: float | None = None
    box_match_min: float | None = None
    mean_iou_min: float | None = None
    extra_rate_max: float | None = None
    score_diff_max: float | None = None

    def validate(self) -> DetectionBudget:
        """Self, or InputError for a budget outside its range."""
        problems = []
        for key in DETECTION_BUDGET_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if not math.isfinite(value) or value < 0 or (key.endswith("_min") and value > 1):
                problems.append(
                    f"{key} = {value} is outside {'[0, 1]' if key.endswith('_min') else '>= 0'}"
                )
        if problems:
            raise InputError("; ".join(problems), where="detection budgets")
        return self

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (every key, None when not set)."""
        return {key: getattr(self, key) for key in DETECTION_BUDGET_KEYS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DetectionBudget:
        """Inverse of :meth:`to_json`; InputError for an unknown key."""
        unknown = sorted(set(data) - set(DETECTION_BUDGET_KEYS))
        if unknown:
            raise InputError(
                f"unknown detection budget(s) {', '.join(unknown)}",
                where="detection budgets",
                hint=f"known: {', '.join(DETECTION_BUDGET_KEYS)}",
            )
        return cls(**{k: (None if v is None else float(v)) for k, v in data.items()})


def budget_value(parity: DetectionParity, key: str) -> tuple[float | None, Interval | None]:
    """The point value and interval that ``key`` (a :data:`DETECTION_BUDGET_KEYS` key) is
    judged on, in the key's own direction (drops as reference minus candidate)."""
    if key == "map_drop_max":
        return _drop(parity.map_delta, parity.map_delta_ci)
    if key == "map50_drop_max":
        return _drop(parity.map50_delta, parity.map50_delta_ci)
    if key == "box_match_min":
        return parity.box_match, parity.box_match_ci
    if key == "mean_iou_min":
        return parity.mean_iou, parity.mean_iou_ci
    if key == "extra_rate_max":
        return parity.extra_rate, None
    if key == "score_diff_max":
        return parity.mean_score_diff, None
    raise KeyError(key)


def _drop(delta: float | None, ci: Interval | None) -> tuple[float | None, Interval | None]:
    if delta is None:
        return None, None
    flipped = None if ci is None else Interval(-ci.high, -ci.low, ci.confidence, ci.method)
    return -delta, flipped


def _checks(parity: DetectionParity, budget: DetectionBudget) -> list[MetricCheck]:
    checks = []
    for key, meaning in DETECTION_BUDGET_KEYS.items():
        limit = getattr(budget, key)
        if limit is None:
            continue
        value, _ = budget_value(parity, key)
        metric = key.rsplit("_", 1)[0]
        if value is None:
            checks.append(MetricCheck(metric, False, None, limit, f"not measured: {meaning}"))
            continue
        ok = value <= limit if key.endswith("_max") else value >= limit
        checks.append(MetricCheck(metric, ok, value, limit, meaning))
    return checks


# -- results ----------------------------------------------------------------------------------


def _f(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _iv(value: Any) -> Interval | None:
    return None if value is None else Interval.from_json(value)


@dataclass(frozen=True)
class WorstImage:
    """An image where the candidate's detections differ most from the reference's."""

    index: int
    reference: int
    candidate: int
    matched: int
    mean_iou: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "index": self.index,
            "reference": self.reference,
            "candidate": self.candidate,
            "matched": self.matched,
            "mean_iou": self.mean_iou,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorstImage:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["index"]), int(data["reference"]), int(data["candidate"]),
                   int(data["matched"]), _f(data.get("mean_iou")))  # fmt: skip


@dataclass(frozen=True)
class DetectionParity:
    """One candidate's detections against the reference's over the same images.

    Box matching (``box_match`` = matched / reference detections, pooled over images;
    ``extra_rate`` = unmatched candidate detections / candidate detections; ``mean_iou`` and
    ``mean_score_diff`` over matches) needs no ground truth; the mAP fields (None without
    ground truth) are COCO-style, ``*_delta`` = candidate minus reference with a paired
    bootstrap interval over images."""

    candidate: str
    reference: str
    passed: bool
    images: int
    reference_detections: int
    candidate_detections: int
    matched: int
    box_match: float
    extra_rate: float
    mean_iou: float | None = None
    mean_score_diff: float | None = None
    box_match_ci: Interval | None = None
    mean_iou_ci: Interval | None = None
    map50_reference: float | None = None
    map50_candidate: float | None = None
    map50_delta: float | None = None
    map50_delta_ci: Interval | None = None
    map_reference: float | None = None
    map_candidate: float | None = None
    map_delta: float | None = None
    map_delta_ci: Interval | None = None
    worst_images: tuple[WorstImage, ...] = ()
    checks: tuple[MetricCheck, ...] = ()
    artifact: str = ""
    warnings: tuple[str, ...] = ()
    localization: Any = None  # optieval.parity.localize.Localization
    auto_exclude: Any = None  # optieval.parity.localize.AutoExcludeResult

    _FLOATS = (
        "box_match",
        "extra_rate",
        "mean_iou",
        "mean_score_diff",
        "map50_reference",
        "map50_candidate",
        "map50_delta",
        "map_reference",
        "map_candidate",
        "map_delta",
    )
    _INTERVALS = ("box_match_ci", "mean_iou_ci", "map50_delta_ci", "map_delta_ci")  # fmt: skip

    @property
    def extra(self) -> int:
        """Candidate detections that match no reference detection."""
        return self.candidate_detections - self.matched

    @property
    def worst_metric(self) -> str | None:
        """The failed check furthest past its limit (relative), or None when all passed."""
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return None

        def excess(c: MetricCheck) -> float:
            if c.value is None or c.limit is None:
                return math.inf
            return abs(c.value - c.limit) / max(abs(c.limit), 1e-12)

        return max(failed, key=excess).name

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        data: dict[str, Any] = {
            "candidate": self.candidate,
            "reference": self.reference,
            "passed": self.passed,
            "images": self.images,
            "reference_detections": self.reference_detections,
            "candidate_detections": self.candidate_detections,
            "matched": self.matched,
        }
        for key in self._FLOATS:
            data[key] = _f(getattr(self, key))
        for key in self._INTERVALS:
            value = getattr(self, key)
            data[key] = None if value is None else value.to_json()
        data["worst_images"] = [w.to_json() for w in self.worst_images]
        data["checks"] = [c.to_json() for c in self.checks]
        data["worst_metric"] = self.worst_metric
        data["artifact"] = self.artifact
        data["warnings"] = list(self.warnings)
        data["localization"] = None if self.localization is None else self.localization.to_json()
        data["auto_exclude"] = None if self.auto_exclude is None else self.auto_exclude.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionParity:
        """Inverse of :meth:`to_json`."""
        from optieval.parity import AutoExcludeResult, Localization

        kwargs: dict[str, Any] = {
            key: int(data[key])
            for key in ("images", "reference_detections", "candidate_detections", "matched")
        }
        for key in cls._FLOATS:
            kwargs[key] = _f(data.get(key))
        for key in cls._INTERVALS:
            kwargs[key] = _iv(data.get(key))
        loc = data.get("localization")
        auto = data.get("auto_exclude")
        return cls(
            candidate=str(data["candidate"]),
            reference=str(data["reference"]),
            passed=bool(data["passed"]),
            worst_images=tuple(WorstImage.from_json(w) for w in data.get("worst_images", ())),
            checks=tuple(MetricCheck.from_json(c) for c in data.get("checks", ())),
            artifact=str(data.get("artifact", "")),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
            localization=None if loc is None else Localization.from_json(loc),
            auto_exclude=None if auto is None else AutoExcludeResult.from_json(auto),
            **kwargs,
        )


@dataclass(frozen=True)
class DetectionReport:
    """Everything ``optieval compare --task detection`` found.

    JSON (``schema_version`` 1): ``{"schema_version": 1, "task": "detection", "model",
    "model_sha256", "reference", "passed", "roles": {...}, "box_format": "xyxy:pixels",
    "postprocess": {...}, "match_iou", "ground_truth": PATH | null, "inputs", "budget": {...},
    "warnings": [...],
    "results": [DetectionParity...]}``. History: 1 — first version.
    """

    model: str
    model_sha256: str
    reference: str
    results: tuple[DetectionParity, ...]
    roles: Roles
    box_format: str
    postprocess: PostProcess
    match_iou: float
    ground_truth: str | None = None
    inputs: str = ""
    budget: DetectionBudget = field(default_factory=DetectionBudget)
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every candidate passed."""
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every candidate passed, 1 otherwise."""
        return EXIT_OK if self.passed else EXIT_CHECK_FAILED

    def result(self, candidate: str) -> DetectionParity:
        """The result for ``candidate`` (KeyError if absent)."""
        for res in self.results:
            if res.candidate == candidate:
                return res
        raise KeyError(candidate)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "task": "detection",
            "model": self.model,
            "model_sha256": self.model_sha256,
            "reference": self.reference,
            "passed": self.passed,
            "roles": self.roles.to_json(),
            "box_format": self.box_format,
            "postprocess": self.postprocess.to_json(),
            "match_iou": self.match_iou,
            "ground_truth": self.ground_truth,
            "inputs": self.inputs,
            "budget": self.budget.to_json(),
            "warnings": list(self.warnings),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionReport:
        """Inverse of :meth:`to_json`; InputError for another schema version or task."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION or data.get("task") != "detection":
            raise InputError(
                f"detection report schema_version {version!r} is not {SCHEMA_VERSION}",
                hint="re-run `optieval compare --task detection` with this optieval version",
            )
        return cls(
            model=str(data.get("model", "")),
            model_sha256=str(data.get("model_sha256", "")),
            reference=str(data.get("reference", "")),
            results=tuple(DetectionParity.from_json(r) for r in data["results"]),
            roles=Roles.from_json(data["roles"]),
            box_format=str(data["box_format"]),
            postprocess=PostProcess.from_json(data["postprocess"]),
            match_iou=float(data["match_iou"]),
            ground_truth=data.get("ground_truth"),
            inputs=str(data.get("inputs", "")),
            budget=DetectionBudget.from_json(data.get("budget") or {}),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )


def compare_detections(
    reference: Sequence[Detections],
    candidate: Sequence[Detections],
    *,
    gt: GroundTruth | None = None,
    match_iou: float = DEFAULT_MATCH_IOU,
    budget: DetectionBudget | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    reference_label: str = "reference",
    candidate_label: str = "candidate",
) -> DetectionParity:
    """Compare a candidate's per-image detections with the reference's (pure).

    Args:
        reference, candidate: one :class:`Detections` per image, same images in the same order.
        gt: ground truth for mAP (None: box matching only).
        match_iou: IoU at or above which two same-class detections match (default 0.5).
        budget: detection budgets (default: none).
        resamples: bootstrap resamples over images (default 1000).
        seed: bootstrap seed.
        confidence: of every interval (default 0.95).
        reference_label, candidate_label: names in the result.

    Raises:
        InputError: different image counts; ``match_iou`` outside (0, 1].
    """
    match_iou = check_iou(match_iou)
    budget = (budget or DetectionBudget()).validate()
    if len(reference) != len(candidate):
        raise InputError(
            f"{len(reference)} reference images but {len(candidate)} candidate images",
            where=candidate_label,
        )
    matches = [match_detections(r, c, match_iou) for r, c in zip(reference, candidate, strict=True)]
    n_ref = sum(m.reference for m in matches)
    n_cand = sum(m.candidate for m in matches)
    hit = sum(m.matched for m in matches)
    ref_table = cand_table = None
    maps: dict[str, Any] = {}
    if gt is not None:
        gt = gt.head(len(reference)) if gt.images > len(reference) else gt
        ref_table, cand_table = evaluate(reference, gt), evaluate(candidate, gt)
        a = MapScores.of(average_precisions(ref_table))
        b = MapScores.of(average_precisions(cand_table))
        maps = {
            "map50_reference": _f(a.map50),
            "map50_candidate": _f(b.map50),
            "map50_delta": _f(b.map50 - a.map50),
            "map_reference": _f(a.map50_95),
            "map_candidate": _f(b.map50_95),
            "map_delta": _f(b.map50_95 - a.map50_95),
        }
    cis = bootstrap_intervals(
        matches, ref_table, cand_table, resamples=resamples, seed=seed, confidence=confidence
    )

    def badness(i: int) -> tuple[float, float]:
        m = matches[i]
        return (-(m.missed + m.extra), (m.iou_sum / m.matched) if m.matched else 1.0)

    worst = [i for i in sorted(range(len(matches)), key=badness)
             if matches[i].missed or matches[i].extra][:WORST_IMAGES]  # fmt: skip
    result = DetectionParity(
        candidate=candidate_label,
        reference=reference_label,
        passed=True,
        images=len(matches),
        reference_detections=n_ref,
        candidate_detections=n_cand,
        matched=hit,
        box_match=hit / n_ref if n_ref else 1.0,
        extra_rate=(n_cand - hit) / n_cand if n_cand else 0.0,
        mean_iou=sum(m.iou_sum for m in matches) / hit if hit else None,
        mean_score_diff=sum(m.score_diff_sum for m in matches) / hit if hit else None,
        box_match_ci=cis["box_match"],
        mean_iou_ci=cis["mean_iou"],
        map50_delta_ci=cis["map50_delta"],
        map_delta_ci=cis["map_delta"],
        worst_images=tuple(
            WorstImage(
                i,
                matches[i].reference,
                matches[i].candidate,
                matches[i].matched,
                matches[i].iou_sum / matches[i].matched if matches[i].matched else None,
            )
            for i in worst
        ),
        **maps,
    )
    checks = _checks(result, budget)
    return replace(result, checks=tuple(checks), passed=all(c.passed for c in checks))
