"""Gate targets with shape sets (issue 17), on a real exported transformer-like encoder with
dynamic batch and sequence (tests/text_encoder.py): each set its own cell, checks and report
rows; evaluation data gives every dimension; bad sets are exit 2 naming the key."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.errors import InputError
from optieval.release import gate
from optieval.release.config_loader import load_config
from optieval.stats import Verdict
from tests.release.gate_helpers import FAST_MEASURE, json_of
from tests.text_encoder import encoder_onnx, padded

runner = CliRunner()
BUDGETS = """
[target.latency]
p50_ms_max = 10000.0
[target.accuracy]
cosine_min = 0.99
"""


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoder_onnx(tmp_path_factory)


def _config(folder: Path, encoder: Path, target: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "release.toml"
    path.write_text(
        f'[model]\npath = "{encoder}"\n{extra}{FAST_MEASURE}\n[[target]]\n'
        f'backend = "ort-cpu"\nprecision = "fp32"\n{target}\n{BUDGETS}'
    )
    return path


def test_a_shapes_list_gives_each_set_its_cell_checks_and_rows(
    encoder: Path, tmp_path: Path
) -> None:
    target = 'shapes = [{ input_ids = "1x8" }, { input_ids = "1x32", attention_mask = "1x32" }]'
    config = _config(tmp_path / "rel", encoder, target)
    report = gate(config, out_dir=tmp_path / "out")
    assert report.exit_code == 0, [c.judgement.evidence for c in report.checks]
    data = json_of(tmp_path / "out" / "report.json")
    assert [c["shape_set"] for c in data["cells"]] == ["seq=8", "seq=32"]
    assert [c["shapes"]["attention_mask"] for c in data["cells"]] == [[1, 8], [1, 32]]
    rows = [c.subject for c in report.checks if c.key == "p50_ms_max"]
    assert rows == ["ort-cpu:fp32 b1 seq=8", "ort-cpu:fp32 b1 seq=32"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "b1 seq=8" in markdown and "b1 seq=32" in markdown
    # Without evaluation data, parity ran on generated inputs of the first set, and says so.
    assert any("first shape set" in w for w in report.warnings)
    assert data["config"]["targets"][0]["shapes"] == [
        {"input_ids": "1x8"},
        {"input_ids": "1x32", "attention_mask": "1x32"},
    ]


def test_evaluation_data_gives_the_sequence(encoder: Path, tmp_path: Path) -> None:
    data = padded(tmp_path / "eval.npz", count=16, length=12)
    config = _config(tmp_path / "rel", encoder, "batch = 2",
                     extra=f'[data]\nevaluation = "{data}"\n')  # fmt: skip
    report = gate(config, out_dir=tmp_path / "out")
    assert report.verdict is Verdict.PASS, [c.judgement.evidence for c in report.checks]
    (cell,) = report.cells
    assert cell.shapes == {"input_ids": [2, 12], "attention_mask": [2, 12]}


def test_no_shape_and_no_data_is_exit_2_naming_the_target(encoder: Path, tmp_path: Path) -> None:
    config = _config(tmp_path / "rel", encoder, "batch = 1")
    result = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "target[0]" in result.output and "only a shape can fill" in result.output
    assert "--shape" not in result.output and "data.evaluation" in result.output


def test_a_set_whose_inputs_disagree_is_exit_2_naming_the_dimension(
    encoder: Path, tmp_path: Path
) -> None:
    target = 'shapes = [{ input_ids = "1x8" }, { input_ids = "1x32", attention_mask = "1x16" }]'
    config = _config(tmp_path / "rel", encoder, target)
    result = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "target[0].shapes" in result.output and "dimension 'seq'" in result.output
    assert "shape set 2 of 2" in result.output
    # Refused before any work: nothing was compared or measured.
    assert "comparing" not in result.output and "benchmarking" not in result.output


def test_config_shape_keys_are_validated(encoder: Path, tmp_path: Path) -> None:
    one = load_config(_config(tmp_path / "a", encoder, "shape = { input_ids = [1, 128] }"))
    assert one.targets[0].shape_sets == ({"input_ids": (1, 128)},)
    assert one.targets[0].batches == (1,)
    bad = {
        'shape = { input_ids = "1x128" }\nbatch = 4': "target[0].batch: does not go with shape",
        'shape = { input_ids = "1xq" }': "target[0].shape.input_ids",
        "shapes = []": "target[0].shapes: must be a non-empty list",
        'shapes = ["1x16"]': "target[0].shapes[0]: must be a table",
        'shape = { input_ids = "1x8" }\nshapes = [{ input_ids = "1x8" }]': "not both",
    }
    for i, (target, expected) in enumerate(bad.items()):
        with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("]", r"\]")):
            load_config(_config(tmp_path / f"b{i}", encoder, target))
