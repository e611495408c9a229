"""Detection metrics: box matching between two models, COCO-style mAP, bootstrap intervals.

- Parity per image (:func:`match_detections`): reference detections, by descending score, each
  take the unmatched candidate detection of the same class with the highest IoU >= a threshold.
- mAP as COCO computes it (pycocotools ``COCOeval``, bbox, area "all", maxDets 100):
  per image and class, detections sorted by score are matched to the unmatched ground-truth box
  of highest IoU >= t, regular boxes before crowd boxes (``iscrowd``); a crowd box's overlap is
  intersection over the detection's area, it may take any number of detections, those
  detections count neither as true nor as false positives, and crowd boxes are not counted as
  ground truth; per class, precision is made monotone and read at 101 recall points;
  AP averages them; mAP averages the classes that have ground truth; @0.5:0.95 averages
  t = 0.50, 0.55, ..., 0.95 (:func:`evaluate`, :func:`average_precisions`).
- Intervals (:func:`bootstrap_intervals`): percentile bootstrap over images (seeded), resampling
  the same images for the reference and the candidate (paired). A resample is a vector of image
  weights, so the per-image matching is done once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optieval.detection.boxes import Detections, iou_matrix
from optieval.detection.ground_truth import GroundTruth
from optieval.stats import (
    DEFAULT_CONFIDENCE,
    Interval,
    bootstrap_weights,
    percentile_interval,
)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100
DEFAULT_MATCH_IOU = 0.5
DEFAULT_RESAMPLES = 1000
BOOTSTRAP_METHOD = "bootstrap-percentile over images"


# -- matching (parity) ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageMatch:
    """One image: reference and candidate counts, matches, and sums over the matches."""

    reference: int
    candidate: int
    matched: int
    iou_sum: float
    score_diff_sum: float

    @property
    def extra(self) -> int:
        """Candidate detections matched to no reference detection."""
        return self.candidate - self.matched

    @property
    def missed(self) -> int:
        """Reference detections the candidate did not reproduce."""
        return self.reference - self.matched


def match_detections(
    reference: Detections, candidate: Detections, iou_threshold: float = DEFAULT_MATCH_IOU
) -> ImageMatch:
    """Greedy same-class matching: reference detections by descending score each take the
    unmatched candidate detection of the same class with the highest IoU >= ``iou_threshold``."""
    matched = 0
    iou_sum = 0.0
    score_sum = 0.0
    if len(reference) and len(candidate):
        ious = iou_matrix(reference.boxes, candidate.boxes)
        ious[reference.classes[:, None] != candidate.classes[None, :]] = -1.0
        taken = np.zeros(len(candidate), dtype=bool)
        for r in range(len(reference)):
            row = np.where(taken, -1.0, ious[r])
            c = int(np.argmax(row))
            if row[c] >= iou_threshold:
                taken[c] = True
                matched += 1
                iou_sum += float(row[c])
                score_sum += abs(float(reference.scores[r]) - float(candidate.scores[c]))
    return ImageMatch(len(reference), len(candidate), matched, iou_sum, score_sum)


# -- mAP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalTable:
    """Per-detection evaluation against ground truth, ready for (re-weighted) AP.

    ``per_class[c]`` = (image index, true-positive flags (D, T)) of class ``c``'s detections
    in COCO's global score order; ``gt_counts`` (images, classes) non-crowd ground-truth boxes
    per image and class; ``ignored[c]`` (D, T) flags of the detections matched to crowd boxes
    (neither true nor false positives; None: none are)."""

    per_class: tuple[tuple[np.ndarray, np.ndarray], ...]
    gt_counts: np.ndarray
    ignored: tuple[np.ndarray, ...] | None = None


def evaluate(
    detections: Sequence[Detections],
    gt: GroundTruth,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
    max_detections: int = MAX_DETECTIONS,
) -> EvalTable:
    """Match every image's detections to the ground truth at each IoU threshold (COCO rule:
    by descending score, each detection takes the unmatched ground-truth box of the same class
    with the highest IoU >= t; at most ``max_detections`` per image and class)."""
    n_classes = 1 + max(
        int(gt.classes.max()) if gt.classes.size else -1,
        max((int(d.classes.max()) for d in detections if len(d)), default=-1),
    )
    counts = np.zeros((len(detections), n_classes), dtype=np.int64)
    crowd = gt.is_crowd
    if gt.classes.size:
        keep = (gt.image < len(detections)) & ~crowd
        np.add.at(counts, (gt.image[keep], gt.classes[keep]), 1)
    n_t = len(iou_thresholds)
    parts: list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = [
        [] for _ in range(n_classes)
    ]
    any_ignored = False
    for i, dets in enumerate(detections):
        gt_boxes, gt_classes = gt.for_image(i)
        gt_crowd = crowd[gt.image == i]
        for c in np.unique(dets.classes):
            sel = dets.classes == c
            boxes, scores = dets.boxes[sel][:max_detections], dets.scores[sel][:max_detections]
            in_class = gt_classes == c
            # pycocotools sorts regular boxes before crowd boxes (stable).
            order = np.argsort(gt_crowd[in_class], kind="mergesort")
            g, g_crowd = gt_boxes[in_class][order], gt_crowd[in_class][order]
            tp = np.zeros((len(scores), n_t), dtype=bool)
            ig = np.zeros((len(scores), n_t), dtype=bool)
            if len(g):
                ious = _coco_ious(boxes, g, g_crowd)
                for t, thr in enumerate(iou_thresholds):
                    taken = np.zeros(len(g), dtype=bool)
                    for d in range(len(scores)):
                        best, best_iou = -1, min(float(thr), 1 - 1e-10)
                        for k in range(len(g)):
                            if taken[k] and not g_crowd[k]:
                                continue
                            if best > -1 and not g_crowd[best] and g_crowd[k]:
                                break
                            if ious[d, k] >= best_iou:
                                best, best_iou = k, float(ious[d, k])
                        if best >= 0:
                            taken[best] = True
                            if g_crowd[best]:
                                ig[d, t] = True
                            else:
                                tp[d, t] = True
            any_ignored = any_ignored or bool(ig.any())
            parts[int(c)].append((i, scores, tp, ig))
    per_class = []
    ignored = []
    for c in range(n_classes):
        if not parts[c]:
            per_class.append((np.zeros(0, np.int64), np.zeros((0, n_t), bool)))
            ignored.append(np.zeros((0, n_t), bool))
            continue
        image = np.concatenate([np.full(len(s), i, np.int64) for i, s, _, _ in parts[c]])
        scores = np.concatenate([s for _, s, _, _ in parts[c]])
        tp = np.concatenate([t for _, _, t, _ in parts[c]])
        ig = np.concatenate([g for _, _, _, g in parts[c]])
        # COCO concatenates images in order, then sorts all scores stably (mergesort).
        order = np.argsort(-scores, kind="mergesort")
        per_class.append((image[order], tp[order]))
        ignored.append(ig[order])
    return EvalTable(tuple(per_class), counts, tuple(ignored) if any_ignored else None)


def _coco_ious(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of detections with ground-truth boxes; against a crowd box, pycocotools uses the
    intersection over the detection's own area."""
    ious = iou_matrix(dets, gts)
    if crowd.any():
        d = np.asarray(dets, dtype=np.float64).reshape(-1, 4)
        g = np.asarray(gts, dtype=np.float64).reshape(-1, 4)[crowd]
        lt = np.maximum(d[:, None, :2], g[None, :, :2])
        rb = np.minimum(d[:, None, 2:], g[None, :, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=2)
        area = np.clip(d[:, 2:] - d[:, :2], 0, None).prod(axis=1)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ious[:, crowd] = np.where(area > 0, inter / area, 0.0)
    return ious


def average_precisions(table: EvalTable, weights: np.ndarray | None = None) -> np.ndarray:
    """AP per class and IoU threshold (classes, T); NaN for classes without ground truth.

    ``weights`` (images,) counts each image that many times (bootstrap resamples); default 1."""
    n_images, n_classes = table.gt_counts.shape
    w = np.ones(n_images) if weights is None else np.asarray(weights, dtype=np.float64)
    n_t = table.per_class[0][1].shape[1] if table.per_class else len(IOU_THRESHOLDS)
    out = np.full((n_classes, n_t), np.nan)
    for c, (image, tp) in enumerate(table.per_class):
        npos = float(w @ table.gt_counts[:, c])
        if npos == 0:
            continue
        if len(image) == 0:
            out[c] = 0.0
            continue
        dw = w[image][:, None]
        counted = ~tp if table.ignored is None else ~tp & ~table.ignored[c]
        tps = np.cumsum(dw * tp, axis=0)
        fps = np.cumsum(dw * counted, axis=0)
        recall = tps / npos
        precision = tps / (tps + fps + np.spacing(1))
        envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
        for t in range(n_t):
            idx = np.searchsorted(recall[:, t], RECALL_POINTS, side="left")
            q = np.where(idx < len(image), envelope[np.minimum(idx, len(image) - 1), t], 0.0)
            out[c, t] = q.mean()
    return out


@dataclass(frozen=True)
class MapScores:
    """mAP@0.5 and mAP@0.5:0.95 (COCO: mean over classes with ground truth)."""

    map50: float
    map50_95: float

    @classmethod
    def of(cls, ap: np.ndarray) -> MapScores:
        """From an AP table (classes, 10 thresholds); NaN when no class has ground truth."""
        rows = ap[~np.isnan(ap[:, 0])] if ap.size else ap
        if rows.size == 0:
            return cls(math.nan, math.nan)
        return cls(float(rows[:, 0].mean()), float(rows.mean()))


def mean_average_precision(detections: Sequence[Detections], gt: GroundTruth) -> MapScores:
    """mAP@0.5 and mAP@0.5:0.95 of ``detections`` (one per sample) against ``gt``."""
    return MapScores.of(average_precisions(evaluate(detections, gt)))


# -- intervals --------------------------------------------------------------------------------


def bootstrap_intervals(
    matches: Sequence[ImageMatch],
    reference: EvalTable | None = None,
    candidate: EvalTable | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, Interval | None]:
    """Paired percentile-bootstrap intervals over images (the same resampled images for the
    reference and the candidate).

    Returns intervals for ``box_match`` (pooled matched / reference detections), ``mean_iou``
    and, with both tables, ``map50_delta`` and ``map_delta`` (candidate minus reference).
    """
    n = len(matches)
    ref_n = np.array([m.reference for m in matches], dtype=np.float64)
    hit = np.array([m.matched for m in matches], dtype=np.float64)
    iou = np.array([m.iou_sum for m in matches], dtype=np.float64)
    stats = np.full((resamples, 4), np.nan)
    for r, w in enumerate(bootstrap_weights(n, resamples, seed=seed)):
        total, got = w @ ref_n, w @ hit
        stats[r, 0] = got / total if total else np.nan
        stats[r, 1] = (w @ iou) / got if got else np.nan
        if reference is not None and candidate is not None:
            a = MapScores.of(average_precisions(reference, w))
            b = MapScores.of(average_precisions(candidate, w))
            stats[r, 2] = b.map50 - a.map50
            stats[r, 3] = b.map50_95 - a.map50_95
    names = ("box_match", "mean_iou", "map50_delta", "map_delta")
    out = {
        name: percentile_interval(stats[:, i], confidence, BOOTSTRAP_METHOD)
        for i, name in enumerate(names)
    }
    if reference is None or candidate is None:
        out["map50_delta"] = out["map_delta"] = None
    return out
