"""Detection pure parts: formats, roles, post-processing, layouts, ground truth, matching, mAP
(hand-computed cases and pycocotools when installed), bootstrap, budgets, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optieval.detection.boxes import (
    BoxFormat,
    Detections,
    PostProcess,
    Roles,
    check_iou,
    decode_batch,
    nms,
    parse_box_format,
    postprocess_raw,
    resolve_roles,
    to_xyxy_pixels,
)
from optieval.detection.ground_truth import GroundTruth, load_ground_truth
from optieval.detection.metrics import (
    average_precisions,
    bootstrap_intervals,
    evaluate,
    match_detections,
    mean_average_precision,
)
from optieval.detection.results import (
    DetectionBudget,
    DetectionReport,
    compare_detections,
)
from optieval.errors import InputError

BOX = [0.0, 0.0, 10.0, 10.0]
FAR = [20.0, 20.0, 30.0, 30.0]


def dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections.make(np.array(boxes).reshape(-1, 4), scores, classes)


def gt(boxes: list[list[float]], classes: list[int], image: list[int], images: int) -> GroundTruth:
    return GroundTruth(np.array(boxes, float).reshape(-1, 4), np.array(classes), np.array(image),
                       images)  # fmt: skip


# -- formats and roles --------------------------------------------------------------------------


def test_box_formats_convert_to_xyxy_pixels() -> None:
    xyxy = np.array([[2.0, 4.0, 6.0, 12.0]])
    assert parse_box_format("xyxy") == BoxFormat("xyxy", False)
    np.testing.assert_allclose(to_xyxy_pixels(np.array([[2, 4, 4, 8]]), BoxFormat("xywh"), (1, 1)),
                               xyxy)  # fmt: skip
    np.testing.assert_allclose(
        to_xyxy_pixels(np.array([[4, 8, 4, 8]]), parse_box_format("cxcywh:pixels"), (1, 1)), xyxy
    )
    norm = parse_box_format("xyxy:normalized")
    np.testing.assert_allclose(
        to_xyxy_pixels(np.array([[0.1, 0.2, 0.3, 0.6]]), norm, (20, 20)), xyxy
    )
    with pytest.raises(InputError, match="unknown box format"):
        parse_box_format("yxyx")


def test_roles_by_option_and_by_convention() -> None:
    assert resolve_roles(["boxes", "scores"]) == Roles("boxes", "scores")
    found = resolve_roles(["det_boxes", "det_scores", "det_classes", "num_dets"])
    assert found == Roles("det_boxes", "det_scores", "det_classes", None, "num_dets")
    assert resolve_roles(["a", "b"], boxes="a", scores="b").boxes == "a"
    with pytest.raises(InputError, match="`boxes` 'nope' is not an output"):
        resolve_roles(["boxes", "scores"], boxes="nope")
    with pytest.raises(InputError, match="no scores output found"):
        resolve_roles(["boxes", "x"])
    with pytest.raises(InputError, match="more than one role"):
        resolve_roles(["a", "b"], boxes="a", scores="a")


# -- post-processing and layouts ----------------------------------------------------------------


def test_nms_and_class_aware_postprocessing() -> None:
    boxes = np.array([BOX, [0, 0, 10, 9], FAR], float)
    assert list(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)) == [0, 2]
    scores = np.array([[0.9, 0.0], [0.0, 0.8], [0.01, 0.7]])
    out = postprocess_raw(boxes, scores, PostProcess(0.05, 0.5, 100))
    # Overlapping boxes of different classes both stay; the 0.01 score goes.
    assert list(out.classes) == [0, 1, 1] and list(out.scores) == [0.9, 0.8, 0.7]
    assert len(postprocess_raw(boxes, scores, PostProcess(0.05, 0.5, 2))) == 2


def test_decode_layouts() -> None:
    post = PostProcess()
    raw = {"boxes": np.array([[BOX, FAR]]), "scores": np.array([[[0.9, 0.1], [0.2, 0.6]]])}
    (one,) = decode_batch(raw, Roles("boxes", "scores"), 1, BoxFormat(), None, post)
    assert list(one.classes) == [0, 1, 0, 1]
    padded = {
        "b": np.array([[BOX, FAR], [FAR, BOX]]),
        "s": np.array([[0.9, 0.8], [0.7, 0.0]]),
        "c": np.array([[1, 2], [0, 0]], dtype=np.int32),
        "n": np.array([2, 1]),
    }
    a, b = decode_batch(padded, Roles("b", "s", "c", None, "n"), 2, BoxFormat(), None, post)
    assert list(a.classes) == [1, 2] and len(b) == 1
    flat = {"b": np.array([BOX, FAR]), "s": np.array([0.5, 0.9]), "c": np.array([1.0, 0.0]),
            "i": np.array([1, 0])}  # fmt: skip
    a, b = decode_batch(flat, Roles("b", "s", "c", "i"), 2, BoxFormat(), None, post)
    np.testing.assert_allclose(a.boxes, [FAR])
    np.testing.assert_allclose(b.boxes, [BOX])


def test_decode_bad_outputs() -> None:
    post = PostProcess()
    with pytest.raises(InputError, match=r"not \(\.\.\., 4\)"):
        decode_batch({"b": np.zeros((1, 5, 3)), "s": np.zeros((1, 5, 2))}, Roles("b", "s"), 1,
                     BoxFormat(), None, post)  # fmt: skip
    with pytest.raises(InputError, match="not integers"):
        decode_batch({"b": np.zeros((2, 4)), "s": np.zeros(2), "c": np.array([0.5, 1.0])},
                     Roles("b", "s", "c"), 1, BoxFormat(), None, post)  # fmt: skip
    with pytest.raises(InputError, match="batch 1"):
        decode_batch({"b": np.zeros((2, 4)), "s": np.zeros(2), "c": np.zeros(2, int)},
                     Roles("b", "s", "c"), 2, BoxFormat(), None, post)  # fmt: skip
    with pytest.raises(InputError, match="outside"):
        check_iou(0.0)
    with pytest.raises(InputError, match="outside"):
        check_iou(1.5)


# -- ground truth -------------------------------------------------------------------------------


Z4, Z1 = np.zeros((1, 4)), np.zeros(1, int)


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "gt.npz"
    np.savez(path, **arrays)
    return path


def test_ground_truth_npz_and_coco(tmp_path: Path) -> None:
    path = _npz(tmp_path, gt_boxes=np.array([BOX, FAR]), gt_classes=np.array([0, 1]),
                gt_image=np.array([0, 2]))  # fmt: skip
    truth = load_ground_truth(path, 3)
    assert truth.images == 3 and list(truth.classes) == [0, 1]
    coco = tmp_path / "gt.json"
    coco.write_text(json.dumps({
        "images": [{"id": 7}, {"id": 9}],
        "categories": [{"id": 5}, {"id": 3}],
        "annotations": [{"image_id": 9, "category_id": 5, "bbox": [1, 2, 3, 4]}],
    }))  # fmt: skip
    truth = load_ground_truth(coco, 2)
    np.testing.assert_allclose(truth.boxes, [[1, 2, 4, 6]])
    assert list(truth.classes) == [1] and list(truth.image) == [1]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"gt_boxes": Z4, "gt_classes": Z1}, "no gt_image"),
        ({"gt_boxes": np.zeros((1, 3)), "gt_classes": Z1, "gt_image": Z1},
         r"not \(M, 4\)"),
        ({"gt_boxes": Z4, "gt_classes": np.array([0.5]), "gt_image": Z1},
         "not integers"),
        ({"gt_boxes": np.array([[5, 0, 1, 1]]), "gt_classes": Z1,
          "gt_image": Z1}, "x2 < x1"),
        ({"gt_boxes": Z4, "gt_classes": Z1, "gt_image": np.array([4])},
         "names image"),
        ({"gt_boxes": np.zeros((2, 4)), "gt_classes": Z1, "gt_image": Z1},
         "differ in length"),
    ],
)  # fmt: skip
def test_malformed_ground_truth(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        load_ground_truth(_npz(tmp_path, **arrays), 3)


def test_coco_naming_unknown_images(tmp_path: Path) -> None:
    coco = tmp_path / "gt.json"
    coco.write_text(json.dumps({"images": [{"id": 1}], "categories": [{"id": 1}],
        "annotations": [{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}))  # fmt: skip
    with pytest.raises(InputError, match="image ids not in its images"):
        load_ground_truth(coco, 1)
    coco.write_text(json.dumps({"images": [{"id": 1}, {"id": 2}], "categories": [],
                                "annotations": []}))  # fmt: skip
    with pytest.raises(InputError, match="data holds 1"):
        load_ground_truth(coco, 1)
    with pytest.raises(InputError, match="not found"):
        load_ground_truth(tmp_path / "none.npz", 1)


# -- matching -----------------------------------------------------------------------------------


def test_match_is_same_class_greedy_by_score() -> None:
    ref = dets([BOX, FAR, [40, 40, 50, 50]], [0.9, 0.8, 0.7], [0, 0, 1])
    cand = dets([[0, 0, 10, 8], BOX, FAR], [0.6, 0.85, 0.5], [0, 0, 1])
    m = match_detections(ref, cand, 0.5)
    # BOX (0.9) takes the identical box (IoU 1, not the 0.8 one); FAR's candidate is class 1.
    assert (m.reference, m.candidate, m.matched, m.extra, m.missed) == (3, 3, 1, 2, 2)
    assert m.iou_sum == pytest.approx(1.0)
    assert m.score_diff_sum == pytest.approx(0.05)


# -- mAP: hand-computed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detections", "truth", "map50", "map50_95"),
    [
        # A true positive ranked above a false positive: precision 1 at every recall.
        ([dets([BOX, FAR], [0.9, 0.8], [0, 0])], ([BOX], [0], [0]), 1.0, 1.0),
        # The false positive first: precision 0.5 at recall 1, envelope 0.5 everywhere.
        ([dets([BOX, FAR], [0.8, 0.9], [0, 0])], ([BOX], [0], [0]), 0.5, 0.5),
        # One of two boxes found: recall points 0..0.5 (51 of 101) at precision 1.
        ([dets([BOX], [0.9], [0])], ([BOX, FAR], [0, 0], [0, 0]), 51 / 101, 51 / 101),
        # IoU 0.72: a hit at t = 0.50..0.70 (5 of 10 thresholds).
        ([dets([[0, 0, 10, 7.2]], [0.9], [0])], ([BOX], [0], [0]), 1.0, 0.5),
        # Class 1 has ground truth and no detection (AP 0); class 2 has no ground truth (left out).
        ([dets([BOX, FAR], [0.9, 0.9], [0, 2])], ([BOX, FAR], [0, 1], [0, 0]), 0.5, 0.5),
        # Two images: the second image's box is missed, its false positive outranks nothing.
        ([dets([BOX], [0.9], [0]), dets([FAR], [0.95], [0])], ([BOX, BOX], [0, 0], [0, 1]),
         # ranks: FP (0.95), TP (0.9): precision [0, 0.5], recall [0, 0.5]: 51 points at 0.5.
         0.5 * 51 / 101, 0.5 * 51 / 101),
    ],
)  # fmt: skip
def test_map_hand_computed(
    detections: list[Detections], truth: tuple[list, list, list], map50: float, map50_95: float
) -> None:
    scores = mean_average_precision(detections, gt(*truth, images=len(detections)))
    assert scores.map50 == pytest.approx(map50)
    assert scores.map50_95 == pytest.approx(map50_95)


def test_map_matches_pycocotools_on_random_boxes() -> None:
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    coco_mod = pytest.importorskip("pycocotools.coco")
    import contextlib
    import io

    rng = np.random.default_rng(3)
    images, truth_rows, results = 12, [], []
    detections = []
    for i in range(images):
        k = int(rng.integers(0, 5))
        xy = rng.uniform(0, 40, (k, 2))
        wh = rng.uniform(4, 20, (k, 2))
        cls = rng.integers(0, 3, k)
        truth_rows += [(np.r_[a, a + b], int(c), i) for a, b, c in zip(xy, wh, cls, strict=True)]
        jitter = np.concatenate([xy, xy + wh], 1) + rng.normal(0, 2, (k, 4))
        extra = rng.uniform(0, 50, (2, 2))
        boxes = np.concatenate([jitter, np.concatenate([extra, extra + 8], 1)])
        d = Detections.make(boxes, rng.uniform(0.05, 1, k + 2), np.r_[cls, rng.integers(0, 3, 2)])
        detections.append(d)
        results += [{"image_id": i, "category_id": int(c), "score": float(s),
                     "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                    for b, s, c in zip(d.boxes, d.scores, d.classes, strict=True)]  # fmt: skip
    truth = gt([r[0].tolist() for r in truth_rows], [r[1] for r in truth_rows],
               [r[2] for r in truth_rows], images)  # fmt: skip
    dataset = {
        "images": [{"id": i} for i in range(images)],
        "categories": [{"id": c} for c in range(3)],
        "annotations": [
            {"id": n + 1, "image_id": i, "category_id": c, "iscrowd": 0,
             "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
             "area": float((b[2] - b[0]) * (b[3] - b[1]))}
            for n, (b, c, i) in enumerate(truth_rows)
        ],
    }  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_mod.COCO()
        coco.dataset = dataset
        coco.createIndex()
        ev = cocoeval.COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = mean_average_precision(detections, truth)
    assert ours.map50 == pytest.approx(ev.stats[1], abs=1e-9)
    assert ours.map50_95 == pytest.approx(ev.stats[0], abs=1e-9)


def test_weighted_ap_equals_duplicated_images() -> None:
    d = [dets([BOX, FAR], [0.9, 0.8], [0, 0]), dets([FAR], [0.7], [0])]
    truth = gt([BOX, FAR], [0, 0], [0, 1], 2)
    weighted = average_precisions(evaluate(d, truth), np.array([2.0, 1.0]))
    dup = gt([BOX, BOX, FAR], [0, 0, 0], [0, 1, 2], 3)
    duplicated = average_precisions(evaluate([d[0], d[0], d[1]], dup))
    np.testing.assert_allclose(weighted, duplicated)


# -- parity, bootstrap, budgets, JSON -----------------------------------------------------------


def _pair() -> tuple[list[Detections], list[Detections], GroundTruth]:
    ref = [dets([BOX], [0.9], [0]) for _ in range(10)] + [dets([FAR], [0.9], [1])] * 10
    cand = [dets([BOX], [0.88], [0]) for _ in range(10)] + [
        dets([[20, 20, 30, 27]], [0.9], [1])
    ] * 10
    truth = gt([BOX] * 10 + [FAR] * 10, [0] * 10 + [1] * 10, list(range(20)), 20)
    return ref, cand, truth


def test_compare_detections_reports_matching_and_map_delta() -> None:
    ref, cand, truth = _pair()
    budget = DetectionBudget(map_drop_max=0.1, box_match_min=0.9)
    result = compare_detections(ref, cand, gt=truth, resamples=200, budget=budget)
    assert result.box_match == 1.0 and result.extra == 0
    assert result.mean_iou == pytest.approx(0.5 * 1.0 + 0.5 * 0.7)
    assert result.map50_delta == pytest.approx(0.0)
    # Class 1's IoU 0.7 misses t = 0.70 (0.7000000000000001 in COCO's linspace) and above:
    # its AP halves, so mAP@0.5:0.95 drops by 0.25.
    assert result.map_delta == pytest.approx(-0.25)
    assert result.map_delta_ci is not None and result.map_delta_ci.low <= -0.25
    assert not result.passed and result.worst_metric == "map_drop"
    again = compare_detections(ref, cand, gt=truth, resamples=200)
    assert again.map_delta_ci == compare_detections(ref, cand, gt=truth, resamples=200).map_delta_ci


def test_bootstrap_is_seeded_and_paired() -> None:
    ref, _, truth = _pair()
    matches = [match_detections(r, r) for r in ref]
    table = evaluate(ref, truth)
    ci = bootstrap_intervals(matches, table, table, resamples=100, seed=1)
    assert ci["map_delta"] is not None and ci["map_delta"].low == ci["map_delta"].high == 0.0
    assert ci["box_match"] is not None and ci["box_match"].low == 1.0


def test_report_json_round_trip_and_schema_refusal() -> None:
    ref, cand, truth = _pair()
    result = compare_detections(ref, cand, gt=truth, resamples=50, candidate_label="ort-cpu:int8")
    report = DetectionReport("m.onnx", "abc", "ort-cpu:fp32", (result,), Roles("boxes", "scores"),
                             "xyxy:pixels", PostProcess(), 0.5, "gt.npz")  # fmt: skip
    data = json.loads(json.dumps(report.to_json()))
    assert DetectionReport.from_json(data) == report
    data["schema_version"] = 99
    with pytest.raises(InputError, match="schema_version"):
        DetectionReport.from_json(data)
    with pytest.raises(InputError, match="unknown detection budget"):
        DetectionBudget.from_json({"map_drop": 0.1})
