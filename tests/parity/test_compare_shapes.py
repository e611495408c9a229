"""compare on a model with a dynamic sequence dimension (issue 17): generated inputs take
`--shape` (one set; inputs left out follow tied dimensions), data gives every dimension, and
data whose lengths vary runs grouped by length."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.parity import compare
from tests.text_encoder import encoder_onnx, padded, sentences

runner = CliRunner()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoder_onnx(tmp_path_factory)


def test_generated_inputs_take_the_shape_and_data_gives_it(encoder: Path, tmp_path: Path) -> None:
    report = compare(encoder, ["ort-cpu:fp32"], shapes={"input_ids": (1, 12)}, samples=8)
    assert report.passed and report.results[0].samples == 8
    data = padded(tmp_path / "padded.npz", count=10, length=20)
    assert compare(encoder, ["ort-cpu:fp32"], data=str(data)).passed
    result = runner.invoke(app, ["compare", str(encoder), "-c", "ort-cpu:fp32",
                                 "--shape", "input_ids:1x12", "--samples", "8"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_missing_or_swept_shapes_are_exit_2_and_varying_lengths_run(
    encoder: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["compare", str(encoder), "-c", "ort-cpu:fp32"])
    assert result.exit_code == 2 and "only --shape can fill" in result.output
    result = runner.invoke(app, ["compare", str(encoder), "-c", "ort-cpu:fp32",
                                 "--shape", "input_ids:1x12,1x16"])  # fmt: skip
    assert result.exit_code == 2 and "one shape per input" in result.output
    # Data whose lengths vary is grouped by length (tests/parity/test_compare_lengths.py).
    folder = sentences(tmp_path / "sentences", [4, 9, 4, 13])
    result = runner.invoke(app, ["compare", str(encoder), "-c", "ort-cpu:fp32",
                                 "--data", str(folder)])  # fmt: skip
    assert result.exit_code == 0, result.output
