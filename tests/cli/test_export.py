"""`optieval export`: the parity table, --json, exit 1 on parity failure, and every bad input in
issue 3 as exit 2 with one line naming the thing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from optieval.cli import app
from tests.export import torch_zoo

runner = CliRunner()
ROOT = Path(torch_zoo.__file__).parents[2]
ZOO = "tests.export.torch_zoo"


def _run(*args: str) -> object:
    return runner.invoke(app, ["export", *args, "--base-dir", str(ROOT)])


def _one_line_error(result: object, *needles: str) -> str:
    text = result.output  # type: ignore[attr-defined]
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], text
    return lines[0]


def test_export_renders_parity_and_writes_json(tmp_path: Path) -> None:
    result = _run(
        f"{ZOO}:tiny_linear_examples",
        "-o",
        str(tmp_path / "m.onnx"),
        "--dynamic",
        "batch",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.exit_code == 0, result.output
    assert "parity: onnxruntime CPU vs PyTorch" in result.output and "PASSED" in result.output
    assert "batch=1" in result.output and "x: float32[batchx4]" in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["kind"] == "onnx-model" and data["schema_version"] == 1
    assert data["parity"]["passed"] is True
    assert (tmp_path / "m.onnx.json").is_file()


def test_export_torchscript_with_inputs_ranges_and_tolerances(tmp_path: Path) -> None:
    result = _run(
        f"{ZOO}:tiny_linear",
        "-o",
        str(tmp_path / "m.onnx"),
        "--input",
        "x:3x4",
        "--input-range",
        "x:-1:1",
        "--exporter",
        "torchscript",
        "--atol",
        "1e-5",
        "--rtol",
        "1e-4",
        "--opset",
        "17",
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "m.onnx.json").read_text())
    assert manifest["opset"] == 17 and manifest["exporter"]["name"] == "torchscript"
    assert manifest["provenance"]["inputs"][0]["range"] == [-1.0, 1.0]
    assert manifest["parity"]["atol"] == 1e-5


def test_parity_failure_exits_1_with_table(tmp_path: Path) -> None:
    result = _run(
        f"{ZOO}:shape_branch",
        "-o",
        str(tmp_path / "m.onnx"),
        "--dynamic",
        "batch",
        "--exporter",
        "torchscript",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    _one_line_error(result, "parity check failed", "m.onnx")
    assert json.loads((tmp_path / "r.json").read_text())["parity"]["passed"] is False
    assert (tmp_path / "m.onnx").is_file()


def _weights(tmp_path: Path) -> dict[str, Path]:
    good = torch_zoo.tiny_linear().state_dict()
    torch.save({"fc.weight": good["fc.weight"], "head.bias": torch.zeros(3)}, tmp_path / "bad.pt")
    torch.save(torch_zoo.tiny_linear(), tmp_path / "pickled.pt")
    return {"bad": tmp_path / "bad.pt", "pickled": tmp_path / "pickled.pt"}


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["no_such_pkg_optieval.nets:build"], ["cannot import", "No module named"]),
        ([f"{ZOO}:missing_factory"], ["factory 'missing_factory' not found"]),
        ([f"{ZOO}:not_a_module"], ["not an nn.Module"]),
        ([f"{ZOO}:tiny_linear", "--input", "x:2x7"], ["x: float32[2x7]", "shapes cannot be"]),
        (
            [f"{ZOO}:tiny_linear", "--input", "x:2x4", "--checkpoint", "{bad}"],
            ["checkpoint keys do not match", "missing (1): fc.bias", "unexpected (1): head.bias"],
        ),
        (
            [f"{ZOO}:tiny_linear", "--input", "x:2x4", "--checkpoint", "{pickled}"],
            ["pickled Python objects", "weights_only=True"],
        ),
        (
            [f"{ZOO}:custom_op", "--exporter", "torchscript"],
            ["optieval_test::mystery", "opset", "--exporter dynamo"],
        ),
        ([f"{ZOO}:tiny_linear", "--input", "x2x4"], ["--input x2x4", "NAME:SHAPE"]),
        ([f"{ZOO}:tiny_linear", "--input", "x:2x4", "--dynamic", "x:one"], ["--dynamic x:one"]),
        ([f"{ZOO}:tiny_linear", "--exporter", "magic"], ["--exporter", "magic"]),
        ([f"{ZOO}:tiny_linear"], ["without example inputs", "--input"]),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    files = _weights(tmp_path)
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    result = _run(*args, "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2, result.output
    _one_line_error(result, *needles)
    assert not (tmp_path / "m.onnx").exists()


def test_output_not_writable_exits_2(tmp_path: Path) -> None:
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir()
        locked.chmod(0o500)
    try:
        result = _run(f"{ZOO}:tiny_linear_examples", "-o", str(locked / "m.onnx"))
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)
    assert result.exit_code == 2, result.output
    _one_line_error(result, "output path not writable", str(locked / "m.onnx"))
    result = _run(f"{ZOO}:tiny_linear_examples", "-o", str(tmp_path / "nope" / "m.onnx"))
    assert result.exit_code == 2
    _one_line_error(result, "does not exist")
