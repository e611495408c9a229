"""``optieval compare --task detection``: exit codes and one-line messages; end to end on the
shipped detector (raw head and NMS-in-graph) on ORT CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optieval.assets import DETECTOR_DATA, DETECTOR_NMS_ONNX, DETECTOR_ONNX
from optieval.cli import app

runner = CliRunner()
DATA = str(DETECTOR_DATA)


def _compare(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["compare", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_int8_vs_fp32_reports_box_matching_and_map_delta(tmp_path: Path) -> None:
    out = tmp_path / "det.json"
    code, text = _compare(
        str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:int8", "--data", DATA,
        "--samples", "48", "--boxes-output", "boxes", "--scores-output", "scores",
        "--box-format", "xyxy", "--json", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert "box match" in text and "mAP@.5:.95" in text
    report = json.loads(out.read_text())
    assert report["task"] == "detection" and report["schema_version"] == 1
    (result,) = report["results"]
    assert 0.8 <= result["box_match"] <= 1.0
    assert result["map_delta_ci"]["low"] <= result["map_delta"] <= result["map_delta_ci"]["high"]
    assert report["ground_truth"] == DATA


def test_nms_in_graph_model_with_a_failing_budget(tmp_path: Path) -> None:
    code, text = _compare(
        str(DETECTOR_NMS_ONNX), "--task", "detection", "-c", "ort-cpu:int8", "--data", DATA,
        "--samples", "32", "--box-match-min", "1.0", "--map-drop-max", "0.0", "--batch", "8",
    )  # fmt: skip
    assert code == 1, text
    assert "FAIL" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--boxes-output", "nope"], "--boxes-output 'nope' is not an output"),
        (["--iou", "0"], "outside (0, 1]"),
        (["--iou", "1.5"], "outside (0, 1]"),
        (["--classes-output", "scores", "--scores-output", "boxes", "--boxes-output", "scores"],
         "more than one role"),
        (["--box-format", "yxyx"], "unknown box format"),
    ],
)  # fmt: skip
def test_bad_detection_options_exit_2(args: list[str], message: str) -> None:
    code, text = _compare(str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
                          "--data", DATA, *args)  # fmt: skip
    assert code == 2, text
    assert message in text


def test_bad_ground_truth_exits_2(tmp_path: Path) -> None:
    beyond = tmp_path / "gt.npz"
    np.savez(beyond, gt_boxes=np.zeros((1, 4)), gt_classes=np.zeros(1, int), gt_image=[500])
    code, text = _compare(str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
                          "--data", DATA, "--gt", str(beyond))  # fmt: skip
    assert code == 2 and "names image(s) 500 but the data holds 128 images" in text
    bad = tmp_path / "bad.npz"
    np.savez(bad, gt_boxes=np.zeros((1, 3)), gt_classes=np.zeros(1, int), gt_image=[0])
    code, text = _compare(str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
                          "--data", DATA, "--gt", str(bad))  # fmt: skip
    assert code == 2 and "not (M, 4)" in text


def test_boxes_not_shaped_4_and_classes_not_integers_exit_2() -> None:
    # Naming the scores [B,N,3] as boxes: not (..., 4).
    code, text = _compare(str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
                          "--data", DATA, "--samples", "4", "--boxes-output", "scores",
                          "--scores-output", "boxes")  # fmt: skip
    assert code == 2 and "not (..., 4)" in text
    # Naming float scores as classes on the NMS model: not integers.
    code, text = _compare(str(DETECTOR_NMS_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
                          "--data", DATA, "--samples", "4", "--classes-output", "scores",
                          "--scores-output", "classes")  # fmt: skip
    assert code == 2 and "not integers" in text


def test_detection_options_need_the_task_and_a_known_task() -> None:
    code, text = _compare(str(DETECTOR_ONNX), "-c", "ort-cpu:fp16", "--boxes-output", "boxes")
    assert code == 2 and "--boxes-output need --task detection" in text
    code, text = _compare(str(DETECTOR_ONNX), "-c", "ort-cpu:fp16", "--task", "segmentation")
    assert code == 2 and "unknown task" in text
