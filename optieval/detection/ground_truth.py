"""Ground truth of a detection data set: a flat ``.npz`` (``gt_boxes`` (M, 4) xyxy pixels,
``gt_classes`` (M,), ``gt_image`` (M,) sample indices) or COCO annotations (``.json``), read
into one flat :class:`GroundTruth` and checked against the data it describes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optieval.errors import InputError

__all__ = ["GroundTruth", "has_ground_truth", "load_ground_truth"]


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth boxes of a data set, flat: ``boxes`` (M, 4) xyxy pixels, ``classes`` (M,)
    int64, ``image`` (M,) int64 (each box's sample index); ``images`` samples in all;
    ``crowd`` (M,) bool, COCO's ``iscrowd`` (None: no crowd boxes). Crowd boxes are not ground
    truth to find: detections matched to them count neither as true nor as false positives
    (as pycocotools evaluates them)."""

    boxes: np.ndarray
    classes: np.ndarray
    image: np.ndarray
    images: int
    source: str = ""
    crowd: np.ndarray | None = None

    @property
    def is_crowd(self) -> np.ndarray:
        """(M,) bool: which boxes are crowd regions (all False when there are none)."""
        if self.crowd is None:
            return np.zeros(len(self.classes), dtype=bool)
        return np.asarray(self.crowd, dtype=bool)

    def for_image(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, classes) of one image, crowd boxes included (see :meth:`crowd_of`)."""
        sel = self.image == index
        return self.boxes[sel], self.classes[sel]

    def crowd_of(self, index: int) -> np.ndarray:
        """(k,) bool: the crowd flags of :meth:`for_image`'s boxes."""
        return self.is_crowd[self.image == index]

    def head(self, images: int) -> GroundTruth:
        """The ground truth of the first ``images`` samples."""
        sel = self.image < images
        crowd = None if self.crowd is None else self.is_crowd[sel]
        return GroundTruth(self.boxes[sel], self.classes[sel], self.image[sel], images,
                           self.source, crowd)  # fmt: skip


def has_ground_truth(path: str | Path) -> bool:
    """True when ``path`` is an ``.npz`` holding ``gt_boxes``."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() != ".npz":
        return False
    try:
        with np.load(p, allow_pickle=False) as archive:
            return "gt_boxes" in archive.files
    except Exception:
        return False


def load_ground_truth(path: str | Path, images: int) -> GroundTruth:
    """Load ground truth for a data set of ``images`` samples.

    Args:
        path: an ``.npz`` with ``gt_boxes`` (M, 4) xyxy pixels, ``gt_classes`` (M,) integers
            and ``gt_image`` (M,) sample indices; or a COCO annotations ``.json``: its
            ``images`` list gives the samples in order (the i-th entry is sample i), an
            annotation's ``bbox`` is [x, y, w, h] in pixels, and its class index is the
            position of its ``category_id`` among the ``categories`` sorted by id; an
            annotation with ``iscrowd: 1`` is a crowd region (ignored, as by pycocotools).
        images: the number of samples in the data.

    Raises:
        InputError: a missing or unreadable file; missing keys; boxes not (M, 4), non-finite or
            with x2 < x1 or y2 < y1; classes that are not non-negative integers; lengths that
            differ; a box on an image that is not in the data (all problems listed once).
    """
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise InputError("ground-truth file not found", where=where, hint="give an .npz or .json")
    crowd: np.ndarray | None = None
    if p.suffix.lower() == ".json":
        boxes, classes, image, crowd = _read_coco(p, images)
    elif p.suffix.lower() == ".npz":
        boxes, classes, image = _read_gt_npz(p)
    else:
        raise InputError(
            "a ground-truth file must be an .npz (gt_boxes, gt_classes, gt_image) or a COCO .json",
            where=where,
        )
    problems: list[str] = []
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        problems.append(f"gt_boxes has shape {boxes.shape}, not (M, 4)")
    elif boxes.dtype.kind not in "iuf":
        problems.append(f"gt_boxes has dtype {boxes.dtype}")
    else:
        if not np.all(np.isfinite(boxes)):
            problems.append("gt_boxes holds NaN or Inf")
        elif np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            problems.append("gt_boxes has boxes with x2 < x1 or y2 < y1 (xyxy pixels expected)")
    for key, arr in (("gt_classes", classes), ("gt_image", image)):
        if arr.ndim != 1:
            problems.append(f"{key} has shape {arr.shape}, not (M,)")
        elif arr.dtype.kind not in "iu" and not (
            arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
        ):
            problems.append(f"{key} holds {arr.dtype} values that are not integers")
        elif arr.size and arr.min() < 0:
            problems.append(f"{key} holds negative values")
    if not problems and not (len(boxes) == len(classes) == len(image)):
        problems.append(
            f"gt_boxes ({len(boxes)}), gt_classes ({len(classes)}) and gt_image ({len(image)}) "
            "differ in length"
        )
    if not problems and image.size and image.max() >= images:
        bad = sorted({int(i) for i in image[image >= images]})
        problems.append(
            f"ground truth names image(s) {', '.join(map(str, bad[:5]))}"
            f"{' ...' if len(bad) > 5 else ''} but the data holds {images} images"
        )
    if problems:
        raise InputError(
            "; ".join(problems),
            where=where,
            hint="flat layout: gt_boxes (M,4) xyxy pixels, gt_classes (M,), gt_image (M,) "
            "indexing the data's samples",
        )
    return GroundTruth(
        boxes.astype(np.float64),
        classes.astype(np.int64),
        image.astype(np.int64),
        images,
        where,
        crowd if crowd is not None and crowd.any() else None,
    )


def _read_gt_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise InputError(
            f"not a readable .npz ({type(exc).__name__}: {exc})", where=str(path)
        ) from exc
    missing = [k for k in ("gt_boxes", "gt_classes", "gt_image") if k not in arrays]
    if missing:
        raise InputError(
            f"no {', '.join(missing)} in the ground truth",
            where=str(path),
            hint=f"its keys are {', '.join(sorted(arrays)) or 'none'}",
        )
    return (np.asarray(arrays["gt_boxes"]), np.asarray(arrays["gt_classes"]),
            np.asarray(arrays["gt_image"]))  # fmt: skip


def _read_coco(path: Path, images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    where = str(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"not readable JSON ({exc})", where=where) from exc
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise InputError(
            "not a COCO annotations file (lists images, annotations, categories expected)",
            where=where,
        )
    try:
        index = {img["id"]: i for i, img in enumerate(data["images"])}
        category = {
            c["id"]: i for i, c in enumerate(sorted(data["categories"], key=lambda c: c["id"]))
        }
        rows = [(a["bbox"], a["category_id"], a["image_id"]) for a in data["annotations"]]
        crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in data["annotations"]], dtype=bool)
    except (KeyError, TypeError) as exc:
        raise InputError(f"malformed COCO annotations (missing {exc})", where=where) from exc
    problems = []
    if len(index) > images:
        problems.append(f"it lists {len(index)} images but the data holds {images}")
    unknown_images = sorted({str(r[2]) for r in rows if r[2] not in index})
    if unknown_images:
        problems.append(
            f"annotations name image ids not in its images: {', '.join(unknown_images[:5])}"
        )
    unknown_cats = sorted({str(r[1]) for r in rows if r[1] not in category})
    if unknown_cats:
        problems.append(f"annotations name unknown category ids: {', '.join(unknown_cats[:5])}")
    if not all(isinstance(r[0], list) and len(r[0]) == 4 for r in rows):
        problems.append("an annotation's bbox is not [x, y, w, h]")
    if problems:
        raise InputError("; ".join(problems), where=where)
    xywh = np.asarray([r[0] for r in rows], dtype=np.float64).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    classes = np.asarray([category[r[1]] for r in rows], dtype=np.int64)
    image = np.asarray([index[r[2]] for r in rows], dtype=np.int64)
    return boxes, classes, image, crowd
