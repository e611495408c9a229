"""Detection: output roles, box formats, post-processing, box matching and COCO-style mAP.

Pure functions over numpy arrays; nothing here runs a model (the runs are in
:mod:`optieval.detection.compare`).

- Roles: which outputs hold boxes, scores, classes (and, for flat NMS outputs, each detection's
  image in the batch). Conventional names are recognised (:data:`ROLE_NAMES`).
- Layouts, told apart by the scores' rank: raw head (``scores`` [B, N, C]: optieval applies
  score threshold, class-aware NMS and top-k, the same for reference and candidate);
  padded per image (``scores`` [B, K], classes [B, K], optional ``num_detections`` [B]); flat
  NMS output (``scores`` [K], classes [K], ``batch_index`` [K] or batch 1).
- Box formats: ``xyxy``, ``xywh``, ``cxcywh``, in pixels or normalized to [0, 1]
  (``"cxcywh:normalized"``); everything becomes xyxy pixels inside.
- Ground truth: a flat ``.npz`` (``gt_boxes``, ``gt_classes``, ``gt_image``) or COCO ``.json``
  (:mod:`optieval.detection.ground_truth`).

Matching and mAP are in :mod:`optieval.detection.metrics`, results in
:mod:`optieval.detection.results`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optieval.errors import InputError

BOX_LAYOUTS = ("xyxy", "xywh", "cxcywh")
MAX_DETECTIONS = 100

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "boxes": ("boxes", "bboxes", "det_boxes", "pred_boxes", "detection_boxes"),
    "scores": ("scores", "det_scores", "confidences", "pred_scores", "detection_scores"),
    "classes": (
        "classes", "labels", "det_classes", "class_ids", "pred_classes", "detection_classes",
    ),
    "batch_index": ("batch_index", "batch_indices", "det_batch", "image_index"),
    "num_detections": ("num_detections", "num_dets", "valid_detections"),
}  # fmt: skip
"""Output names recognised for each role when no option names it (first match wins)."""


# -- box formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxFormat:
    """How boxes are written: ``layout`` (xyxy, xywh, cxcywh) and whether coordinates are
    normalized to [0, 1] (by the image width and height) or in pixels."""

    layout: str = "xyxy"
    normalized: bool = False

    @property
    def label(self) -> str:
        """``xyxy:pixels`` or ``cxcywh:normalized``."""
        return f"{self.layout}:{'normalized' if self.normalized else 'pixels'}"


def parse_box_format(text: str, *, where: str = "box_format") -> BoxFormat:
    """Parse ``LAYOUT[:pixels|:normalized]`` (e.g. ``xyxy``, ``cxcywh:normalized``).

    Raises InputError for an unknown layout or unit."""
    layout, _, units = text.strip().lower().partition(":")
    if layout not in BOX_LAYOUTS or units not in ("", "pixels", "normalized"):
        raise InputError(
            f"unknown box format {text!r}",
            where=where,
            hint="use xyxy, xywh or cxcywh, optionally with :pixels (default) or :normalized",
        )
    return BoxFormat(layout, units == "normalized")


def to_xyxy_pixels(boxes: np.ndarray, fmt: BoxFormat, image_hw: tuple[int, int]) -> np.ndarray:
    """Convert boxes (..., 4) in ``fmt`` to xyxy pixels (float64)."""
    b = np.asarray(boxes, dtype=np.float64)
    if fmt.layout == "xywh":
        b = np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)
    elif fmt.layout == "cxcywh":
        half = b[..., 2:] / 2
        b = np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)
    if fmt.normalized:
        h, w = image_hw
        b = b * np.array([w, h, w, h], dtype=np.float64)
    return b


def image_size_of(shape: Sequence[int]) -> tuple[int, int]:
    """(height, width) of an image batch: NCHW when dim 1 is at most 4, NHWC otherwise."""
    if len(shape) != 4:
        raise InputError(
            f"the image input has shape {tuple(shape)}; normalized boxes need a 4-D image input",
            where="box_format",
            hint="use a pixel box format, or an NCHW/NHWC image input",
        )
    return (int(shape[2]), int(shape[3])) if shape[1] <= 4 else (int(shape[1]), int(shape[2]))


# -- roles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Roles:
    """Which output holds which part of the detections (None: absent)."""

    boxes: str
    scores: str
    classes: str | None = None
    batch_index: str | None = None
    num_detections: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "boxes": self.boxes,
            "scores": self.scores,
            "classes": self.classes,
            "batch_index": self.batch_index,
            "num_detections": self.num_detections,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Roles:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["boxes"]),
            str(data["scores"]),
            data.get("classes"),
            data.get("batch_index"),
            data.get("num_detections"),
        )


def resolve_roles(
    outputs: Sequence[str],
    *,
    boxes: str | None = None,
    scores: str | None = None,
    classes: str | None = None,
    batch_index: str | None = None,
    num_detections: str | None = None,
) -> Roles:
    """Name the output of each role: the given name, else a conventional one (ROLE_NAMES).

    Raises:
        InputError: a given name that is no output, two roles on one output, or no boxes or
            scores output found (every problem listed once).
    """
    given = {
        "boxes": boxes,
        "scores": scores,
        "classes": classes,
        "batch_index": batch_index,
        "num_detections": num_detections,
    }
    lowered = {o.lower(): o for o in outputs}
    problems: list[str] = []
    found: dict[str, str | None] = {}
    for role, name in given.items():
        if name is not None:
            if name not in outputs:
                problems.append(f"`{role}` {name!r} is not an output of the model")
            found[role] = name
            continue
        found[role] = next((lowered[n] for n in ROLE_NAMES[role] if n in lowered), None)
    for role in ("boxes", "scores"):
        if found[role] is None:
            problems.append(f"no {role} output found (`{role}` names it)")
    named = [n for n in found.values() if n is not None]
    dupes = sorted({n for n in named if named.count(n) > 1})
    if dupes:
        problems.append(f"output(s) {', '.join(dupes)} given more than one role")
    if problems:
        raise InputError(
            "; ".join(problems),
            where="options",
            hint=f"the outputs are {', '.join(outputs)}",
        )
    return Roles(
        str(found["boxes"]),
        str(found["scores"]),
        found["classes"],
        found["batch_index"],
        found["num_detections"],
    )


# -- detections and post-processing -----------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """One image's detections: ``boxes`` (k, 4) xyxy pixels, ``scores`` (k,), ``classes`` (k,)
    int64, sorted by descending score."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def make(cls, boxes: Any, scores: Any, classes: Any) -> Detections:
        """Detections from arrays, sorted by descending score (stable)."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        order = np.argsort(-s, kind="mergesort")
        return cls(
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order],
            s[order],
            np.asarray(classes).astype(np.int64).reshape(-1)[order],
        )

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0,), dtype=np.int64))


@dataclass(frozen=True)
class PostProcess:
    """optieval's post-processing, applied alike to reference and candidate.

    Args:
        score_threshold: drop detections scoring below this (default 0.05).
        nms_iou: class-aware NMS on raw-head outputs at this IoU (default 0.5); NMS outputs of
            the model are not suppressed again.
        top_k: keep at most this many detections per image, by score (default 100).
    """

    score_threshold: float = 0.05
    nms_iou: float = 0.5
    top_k: int = 100

    def validate(self) -> PostProcess:
        """Self, or InputError for values out of range."""
        problems = []
        if not 0.0 <= self.score_threshold <= 1.0:
            problems.append(f"score threshold {self.score_threshold} is outside [0, 1]")
        if not 0.0 < self.nms_iou <= 1.0:
            problems.append(f"NMS IoU {self.nms_iou} is outside (0, 1]")
        if self.top_k < 1:
            problems.append(f"top-k {self.top_k} must be at least 1")
        if problems:
            raise InputError("; ".join(problems), where="postprocess")
        return self

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "score_threshold": self.score_threshold,
            "nms_iou": self.nms_iou,
            "top_k": self.top_k,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PostProcess:
        """Inverse of :meth:`to_json`."""
        return cls(float(data["score_threshold"]), float(data["nms_iou"]), int(data["top_k"]))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy; (n, m).

    Boxes of zero area have IoU 0 with everything."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (one class): indices kept, by descending score; a box goes when its IoU with
    a kept box is above ``iou_threshold``."""
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    ious = iou_matrix(boxes[order], boxes[order])
    keep: list[int] = []
    removed = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        removed |= ious[i] > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


def postprocess_raw(boxes: np.ndarray, scores: np.ndarray, post: PostProcess) -> Detections:
    """One image of a raw head: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N, C) per class ->
    score threshold, class-aware NMS, top-k."""
    kept_boxes, kept_scores, kept_classes = [], [], []
    for c in range(scores.shape[1]):
        s = scores[:, c]
        idx = np.flatnonzero(s >= post.score_threshold)
        if idx.size == 0:
            continue
        sel = idx[nms(boxes[idx], s[idx], post.nms_iou)]
        kept_boxes.append(boxes[sel])
        kept_scores.append(s[sel])
        kept_classes.append(np.full(sel.size, c, dtype=np.int64))
    if not kept_scores:
        return Detections.empty()
    dets = Detections.make(
        np.concatenate(kept_boxes), np.concatenate(kept_scores), np.concatenate(kept_classes)
    )
    return _top_k(dets, post.top_k)


def _top_k(dets: Detections, k: int) -> Detections:
    return Detections(dets.boxes[:k], dets.scores[:k], dets.classes[:k])


def _check_classes(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise InputError(
        f"classes output {name!r} holds {array.dtype} values that are not integers",
        where="classes",
        hint="name the output of class indices (integers)",
    )


def decode_batch(
    outputs: Mapping[str, np.ndarray],
    roles: Roles,
    batch: int,
    fmt: BoxFormat,
    image_hw: tuple[int, int] | None,
    post: PostProcess,
) -> list[Detections]:
    """Turn one batch of model outputs into per-image detections (see the module docstring
    for the layouts).

    Args:
        outputs: output name -> array of one run.
        roles: the outputs' roles.
        batch: the images in this run.
        fmt: the boxes' format.
        image_hw: (height, width) for normalized boxes (None for pixel formats).
        post: post-processing (NMS only on raw-head outputs).

    Raises:
        InputError: a role's output missing from the run, boxes not shaped (..., 4), classes
            that are not integers, sizes that disagree, batch indices out of range, a flat
            layout without batch indices at batch > 1.
    """
    missing = [n for n in roles.to_json().values() if n is not None and n not in outputs]
    if missing:
        raise InputError(f"the run gave no output {', '.join(missing)}", where="options")
    boxes = np.asarray(outputs[roles.boxes])
    scores = np.asarray(outputs[roles.scores])
    if boxes.ndim < 2 or boxes.shape[-1] != 4:
        raise InputError(
            f"boxes output {roles.boxes!r} has shape {boxes.shape}, not (..., 4)",
            where="boxes",
            hint="name the output holding 4 coordinates per box",
        )
    if fmt.normalized and image_hw is None:
        raise InputError("normalized boxes need the image size", where="box_format")
    pixels = to_xyxy_pixels(boxes, fmt, image_hw or (1, 1))
    classes = None
    if roles.classes is not None:
        classes = _check_classes(np.asarray(outputs[roles.classes]), roles.classes)
    if scores.ndim == 3:
        if pixels.shape[:2] != scores.shape[:2] or scores.shape[0] != batch:
            raise InputError(
                f"raw head: boxes {boxes.shape} and scores {scores.shape} do not agree on "
                f"(batch={batch}, anchors)",
                where="scores",
            )
        if classes is not None:
            # A raw head with its own class output: scores are per class, classes ignored.
            pass
        return [
            postprocess_raw(pixels[i], scores[i].astype(np.float64), post) for i in range(batch)
        ]
    if classes is None:
        if scores.ndim == 2 and scores.shape[-1] > 1 and pixels.ndim == 2:
            raise InputError(
                f"scores {scores.shape} with boxes {boxes.shape}: no classes output",
                where="classes",
            )
        classes = np.zeros(scores.shape, dtype=np.int64)
    if scores.ndim == 2 and pixels.ndim == 3:
        # Padded per image: [B, K] (+ num_detections [B]).
        if pixels.shape[:2] != scores.shape or classes.shape != scores.shape:
            raise InputError(
                f"padded detections: boxes {boxes.shape}, scores {scores.shape} and classes "
                f"{classes.shape} do not agree",
                where="options",
            )
        counts = np.full(scores.shape[0], scores.shape[1], dtype=np.int64)
        if roles.num_detections is not None:
            counts = np.asarray(outputs[roles.num_detections]).reshape(-1).astype(np.int64)
        result = []
        for i in range(scores.shape[0]):
            k = int(counts[i])
            keep = scores[i, :k] >= post.score_threshold
            dets = Detections.make(pixels[i, :k][keep], scores[i, :k][keep], classes[i, :k][keep])
            result.append(_top_k(dets, post.top_k))
        return result
    if scores.ndim == 1 and pixels.ndim == 2:
        if pixels.shape[0] != scores.shape[0] or classes.shape != scores.shape:
            raise InputError(
                f"flat detections: boxes {boxes.shape}, scores {scores.shape} and classes "
                f"{classes.shape} do not agree",
                where="options",
            )
        if roles.batch_index is not None:
            image = np.asarray(outputs[roles.batch_index]).reshape(-1).astype(np.int64)
            if image.shape != scores.shape or (
                image.size and (image.min() < 0 or image.max() >= batch)
            ):
                raise InputError(
                    f"batch index output {roles.batch_index!r} does not give an image in "
                    f"0..{batch - 1} for each detection",
                    where="batch_index",
                )
        elif batch == 1:
            image = np.zeros(scores.shape, dtype=np.int64)
        else:
            raise InputError(
                "flat detections without a batch index output can only be run at batch 1",
                where="batch",
                hint="use `batch` 1 or name the output with `batch_index`",
            )
        result = []
        for i in range(batch):
            sel = (image == i) & (scores >= post.score_threshold)
            result.append(
                _top_k(Detections.make(pixels[sel], scores[sel], classes[sel]), post.top_k)
            )
        return result
    raise InputError(
        f"boxes {boxes.shape} and scores {scores.shape} fit no detection layout",
        where="options",
        hint="raw head: boxes [B,N,4] + scores [B,N,C]; padded: [B,K,4] + [B,K]; flat: [K,4] + [K]",
    )


def check_iou(value: float, where: str = "match_iou") -> float:
    """``value``, or InputError when it is outside (0, 1]."""
    if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
        raise InputError(f"IoU threshold {value} is outside (0, 1]", where=where, hint="e.g. 0.5")
    return float(value)
