"""The gate on a detector (``[task] kind = "detection"``): detection budgets on the shipped shape
detector, the keys each task accepts, and ground truth for the mAP budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from optieval.assets import DETECTOR_DATA, DETECTOR_ONNX
from optieval.errors import InputError
from optieval.release.config_loader import load_config
from optieval.release.run import gate
from optieval.stats.verdict import Verdict
from tests.release.gate_helpers import FAST_MEASURE, json_of

TASK = '[task]\nkind = "detection"\nboxes = "boxes"\nscores = "scores"\n'


def _config(folder: Path, accuracy: str, *, task: str = TASK, data: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data_block = (
        f'[data]\ncalibration = "{DETECTOR_DATA}"\nevaluation = "{DETECTOR_DATA}"\n' if data else ""
    )
    text = (
        f'[model]\npath = "{DETECTOR_ONNX}"\n\n{task}\n{data_block}\n{FAST_MEASURE}\n'
        '[[target]]\nbackend = "ort-cpu"\nprecision = "int8"\nbatch = 1\nthreads = 1\n'
        f"latency = {{ p99_ms_max = 1000.0 }}\naccuracy = {{ {accuracy} }}\n"
    )
    path = folder / "release.toml"
    path.write_text(text, encoding="utf-8")
    return path


# About 5 s here (two gate runs sharing one INT8 artifact).
def test_detector_gate_passes_generous_budgets_and_fails_an_impossible_one(
    tmp_path: Path,
) -> None:
    generous = _config(
        tmp_path / "ok",
        "map_drop_max = 0.5, map50_drop_max = 0.5, box_match_min = 0.5, mean_iou_min = 0.5, "
        "extra_rate_max = 0.5, score_diff_max = 0.5",
    )
    report = gate(generous, out_dir=tmp_path / "out-ok")
    assert report.exit_code == 0, [c.evidence for c in report.checks]
    accuracy = {c.key: c for c in report.checks if c.group == "accuracy"}
    assert set(accuracy) == {"map_drop_max", "map50_drop_max", "box_match_min",
                             "mean_iou_min", "extra_rate_max", "score_diff_max"}  # fmt: skip
    assert accuracy["box_match_min"].judgement.basis == "interval"
    assert accuracy["map_drop_max"].judgement.low is not None
    assert accuracy["score_diff_max"].judgement.basis == "point"
    data = json_of(tmp_path / "out-ok" / "report.json")
    assert data["config"]["task"]["kind"] == "detection"
    assert data["parity"]["task"] == "detection"
    assert (tmp_path / "out-ok" / "report.html").is_file()

    # INT8 reproduces about 97% of the reference's boxes (95% interval under 0.99).
    impossible = _config(tmp_path / "bad", "box_match_min = 0.999")
    report = gate(impossible, out_dir=tmp_path / "out-bad")
    assert report.exit_code == 1
    (check,) = [c for c in report.checks if c.key == "box_match_min"]
    assert check.verdict is Verdict.FAIL
    assert "fraction of reference detections" in check.evidence


def _problems(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_config(path)
    return info.value.message


def test_detection_keys_need_a_detection_task(tmp_path: Path) -> None:
    message = _problems(_config(tmp_path, "box_match_min = 0.9", task=""))
    assert (
        'target[0].accuracy.box_match_min: a detection budget: set [task] kind = "detection"'
        in (message)
    )


def test_classification_keys_are_refused_for_a_detector(tmp_path: Path) -> None:
    message = _problems(_config(tmp_path, "top1_agreement_min = 0.9, box_mach_min = 0.9"))
    assert "target[0].accuracy.top1_agreement_min: a tensor-wise (classification) budget" in message
    assert "target[0].accuracy.box_mach_min: unknown key (hint: did you mean 'box_match_min'?)" in (
        message
    )


def test_map_budgets_need_ground_truth(tmp_path: Path) -> None:
    message = _problems(_config(tmp_path, "map_drop_max = 0.05, box_match_min = 0.9", data=False))
    assert "target[0].accuracy.map_drop_max: needs ground truth" in message
    assert "box_match_min" not in message
    with_gt = TASK + f'ground_truth = "{DETECTOR_DATA}"\n'
    config = _config(tmp_path / "gt", "map_drop_max = 0.05", task=with_gt, data=False)
    parsed = load_config(config)
    assert parsed.task is not None and parsed.task.ground_truth == DETECTOR_DATA.resolve()


def test_bad_task_table_is_reported_with_its_key_path(tmp_path: Path) -> None:
    message = _problems(_config(tmp_path, "box_match_min = 0.9", task=TASK + "match_iou = 2.0\n"))
    assert "task.match_iou" in message


def test_example_detection_config_parses() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "detection.toml"
    config = load_config(example)
    assert config.task is not None
    assert {b.key for t in config.targets for b in t.accuracy} >= {"map_drop_max", "box_match_min"}
