"""Issue 15: COCO ``iscrowd`` regions are ignored as pycocotools ignores them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optieval.detection.boxes import Detections
from optieval.detection.ground_truth import GroundTruth, load_ground_truth
from optieval.detection.metrics import average_precisions, evaluate, mean_average_precision

CROWD = [0.0, 0.0, 100.0, 100.0]
INSIDE = [10.0, 10.0, 20.0, 20.0]  # IoU 0.01 with CROWD, but all of it lies inside
PERSON = [200.0, 200.0, 210.0, 210.0]


def _coco(tmp_path: Path) -> Path:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1},
            {"image_id": 1, "category_id": 1, "bbox": [200, 200, 10, 10], "iscrowd": 0},
        ],
    }))  # fmt: skip
    return path


def test_coco_reader_keeps_the_crowd_flag(tmp_path: Path) -> None:
    truth = load_ground_truth(_coco(tmp_path), 1)
    assert list(truth.is_crowd) == [True, False]
    assert list(truth.head(1).is_crowd) == [True, False]


def test_detection_in_a_crowd_region_is_neither_tp_nor_fp(tmp_path: Path) -> None:
    truth = load_ground_truth(_coco(tmp_path), 1)
    # the crowd detection scores highest: were it a false positive, AP would be ~0.5
    found = Detections.make(np.array([INSIDE, PERSON]), [0.9, 0.8], [0, 0])
    table = evaluate([found], truth)
    assert table.gt_counts.tolist() == [[1]]  # the crowd box is not ground truth to find
    assert table.ignored is not None and table.ignored[0][0].all()
    scores = mean_average_precision([found], truth)
    assert scores.map50 == pytest.approx(1.0) and scores.map50_95 == pytest.approx(1.0)


def test_crowd_box_takes_many_detections_but_a_regular_match_wins() -> None:
    truth = GroundTruth(np.array([CROWD, [5.0, 5.0, 15.0, 15.0]]), np.array([0, 0]),
                        np.array([0, 0]), 1, crowd=np.array([True, False]))  # fmt: skip
    # the first takes the regular box; the next two land in the crowd region (ignored)
    found = Detections.make(np.array([[5.0, 5.0, 15.0, 15.0], INSIDE, [30.0, 30.0, 40.0, 40.0]]),
                            [0.9, 0.8, 0.7], [0, 0, 0])  # fmt: skip
    table = evaluate([found], truth)
    assert table.per_class[0][1][:, 0].tolist() == [True, False, False]
    assert table.ignored is not None and table.ignored[0][:, 0].tolist() == [False, True, True]
    assert average_precisions(table)[0, 0] == pytest.approx(1.0)


def test_without_crowd_nothing_changes() -> None:
    truth = GroundTruth(np.array([PERSON]), np.array([0]), np.array([0]), 1)
    found = Detections.make(np.array([INSIDE, PERSON]), [0.9, 0.8], [0, 0])
    table = evaluate([found], truth)
    assert table.ignored is None
    assert average_precisions(table)[0, 0] < 1.0  # INSIDE is a false positive here
