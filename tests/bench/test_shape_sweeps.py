"""Dynamic dimensions in bench (issue 17): `--shape` sweeps are shape sets (the i-th shape of
each input together, inputs left out follow tied dimensions), and data gives every dynamic
dimension, batched by length when sentences vary. On a real exported transformer-like encoder
(tests/text_encoder.py)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.bench import MeasureSettings, benchmark
from optieval.cli import app
from optieval.errors import InputError
from tests.text_encoder import encoder_onnx, padded, sentences

QUICK = MeasureSettings(warmup_s=0.0, warmup_iters=2, duration_s=0.05, min_samples=30)
FAST = ["--warmup", "0", "--duration", "0.05", "--min-samples", "30", "--no-isolate"]
runner = CliRunner()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoder_onnx(tmp_path_factory)


def test_sets_pair_inputs_and_a_left_out_input_follows(encoder: Path) -> None:
    both = benchmark(
        encoder,
        batches=[],
        shapes={"input_ids": [(1, 16), (1, 64)], "attention_mask": [(1, 16), (1, 64)]},
        settings=QUICK,
    )
    assert [c.status for c in both.results] == ["ok", "ok"]
    assert [c.shapes for c in both.results] == [
        {"input_ids": [1, 16], "attention_mask": [1, 16]},
        {"input_ids": [1, 64], "attention_mask": [1, 64]},
    ]
    assert [c.label for c in both.results] == ["ort-cpu:fp32 b1 seq=16", "ort-cpu:fp32 b1 seq=64"]
    only_ids = benchmark(encoder, batches=[], shapes={"input_ids": [(2, 16), (2, 64)]},
                         settings=QUICK)  # fmt: skip
    assert [c.shapes["attention_mask"] for c in only_ids.results] == [[2, 16], [2, 64]]
    assert [c.batch for c in only_ids.results] == [2, 2]
    # The label travels through the JSON and back.
    again = json.loads(json.dumps(only_ids.to_json()))["results"]
    assert [c["shape_set"] for c in again] == ["seq=16", "seq=64"]


def test_bad_sets_are_exit_2_naming_what(encoder: Path) -> None:
    with pytest.raises(InputError, match="input_ids: 3, attention_mask: 2"):
        benchmark(encoder, batches=[], settings=QUICK, shapes={
            "input_ids": [(1, 16), (1, 64), (1, 128)],
            "attention_mask": [(1, 16), (1, 64)],
        })  # fmt: skip
    sweep = ["--shape", "input_ids:1x16,1x64", "--shape", "attention_mask:1x16,1x32"]
    result = runner.invoke(app, ["bench", str(encoder), *FAST, *sweep])
    assert result.exit_code == 2
    assert "--shape" in result.output and "dimension 'seq'" in result.output
    assert "shape set 2 of 2" in result.output
    result = runner.invoke(app, ["bench", str(encoder), *FAST])
    assert result.exit_code == 2 and "only --shape can fill" in result.output


def test_data_gives_every_dynamic_dimension(encoder: Path, tmp_path: Path) -> None:
    data = padded(tmp_path / "padded.npz", count=12, length=24)
    report = benchmark(encoder, batches=[1, 4], settings=QUICK, data=str(data))
    assert [c.status for c in report.results] == ["ok", "ok"]
    assert [c.shapes["input_ids"] for c in report.results] == [[1, 24], [4, 24]]
    assert [c.label for c in report.results] == ["ort-cpu:fp32 b1 seq=24", "ort-cpu:fp32 b4 seq=24"]
    with pytest.raises(InputError, match="exclude each other"):
        benchmark(encoder, settings=QUICK, data=str(data), shapes={"input_ids": [(1, 8)]})


def test_sentences_of_several_lengths_are_batched_by_length(encoder: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "sentences", [5, 9, 5, 17, 9, 5, 17, 30])
    report = benchmark(encoder, batches=[2], settings=QUICK, data=str(folder))
    (cell,) = report.results
    assert cell.status == "ok", cell.reason
    assert cell.shape_set == "data seq=5..30"
    assert any("4 shapes" in note for note in cell.notes)
    assert cell.flops is None  # one count cannot describe several shapes
    result = runner.invoke(
        app, ["bench", str(encoder), *FAST, "--data", str(folder), "--batch", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "data seq=5..30" in result.output


def test_tensorrt_profiles_span_every_length_of_the_data(encoder: Path, tmp_path: Path) -> None:
    from optieval.bench import CellRequest
    from optieval.bench.cell import _profile_shapes

    folder = sentences(tmp_path / "sentences", [5, 9, 5, 17])
    request = CellRequest(str(encoder), "tensorrt", "fp32", 2,
                          {"input_ids": (2, 5), "attention_mask": (2, 5)}, QUICK,
                          data=str(folder))  # fmt: skip
    assert _profile_shapes(request)["attention_mask"] == [[2, 5], [2, 9], [2, 17]]
