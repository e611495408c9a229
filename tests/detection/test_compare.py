"""compare_detection on the shipped detector: both deployed forms agree, INT8 error is localized
and the head can be kept in float."""

from __future__ import annotations

import json

from optieval.assets import DETECTOR_DATA, DETECTOR_NMS_ONNX, DETECTOR_ONNX
from optieval.detection.compare import compare_detection
from optieval.detection.results import DetectionBudget, DetectionReport


def test_raw_head_and_nms_in_graph_give_the_same_parity() -> None:
    raw = compare_detection(DETECTOR_ONNX, ["ort-cpu:fp16"], data=DETECTOR_DATA, samples=32,
                            resamples=100)  # fmt: skip
    nms = compare_detection(DETECTOR_NMS_ONNX, ["ort-cpu:fp16"], data=DETECTOR_DATA, samples=32,
                            resamples=100)  # fmt: skip
    a, b = raw.results[0], nms.results[0]
    assert a.reference_detections == b.reference_detections
    assert a.map_reference == b.map_reference and a.map_reference is not None
    assert raw.roles.classes is None and nms.roles.batch_index == "batch_index"


def test_failing_int8_is_localized_and_auto_excluded() -> None:
    report = compare_detection(
        DETECTOR_ONNX, ["ort-cpu:int8"], data=DETECTOR_DATA, samples=64, resamples=100,
        budget=DetectionBudget(map_drop_max=0.0), auto_exclude=True, max_exclude_rounds=1,
        localize_samples=8,
    )  # fmt: skip
    (result,) = report.results
    assert not result.passed
    assert result.localization is not None and result.localization.compared > 0
    assert result.auto_exclude is not None and result.auto_exclude.excluded
    again = DetectionReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again.results[0].auto_exclude == result.auto_exclude


def test_exclude_keeps_the_head_in_float() -> None:
    plain = compare_detection(DETECTOR_ONNX, ["ort-cpu:int8"], data=DETECTOR_DATA, samples=64,
                              resamples=50)  # fmt: skip
    head = compare_detection(DETECTOR_ONNX, ["ort-cpu:int8"], data=DETECTOR_DATA, samples=64,
                             resamples=50, exclude=["/head/Conv"])  # fmt: skip
    assert plain.results[0].artifact != head.results[0].artifact
    assert head.results[0].mean_iou is not None and plain.results[0].mean_iou is not None


def test_task_table_of_the_example_config() -> None:
    from pathlib import Path

    import pytest
    import tomllib

    from optieval.detection.compare import parse_task_table
    from optieval.errors import InputError

    example = Path(__file__).resolve().parents[2] / "examples" / "detection.toml"
    config = tomllib.loads(example.read_text())
    task = parse_task_table(config["task"], base=example.parent)
    assert task is not None and task.ground_truth == DETECTOR_DATA.resolve()
    assert task.options.boxes == "boxes" and task.options.postprocess.top_k == 100
    assert parse_task_table({"kind": "classification"}, base=example.parent) is None
    with pytest.raises(InputError) as info:
        parse_task_table({"match_iou": 0, "box_format": "yxyx", "boxs": "b"}, base=example.parent)
    text = str(info.value)
    assert "task.boxs: unknown key" in text and "task.match_iou" in text
    assert "task.box_format" in text
