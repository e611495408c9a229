"""`optieval build`: a deployable TensorRT engine; here TensorRT is absent, so exit 3 with why."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.runtime import availability

runner = CliRunner()


def _error_line(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_build_without_tensorrt_is_exit_3(mlp_onnx: Path, tmp_path: Path) -> None:
    if availability("tensorrt").usable:
        pytest.skip("TensorRT runs here")
    plan = tmp_path / "mlp.plan"
    result = runner.invoke(
        app,
        [
            "build",
            str(mlp_onnx),
            "--backend",
            "tensorrt",
            "--precision",
            "fp32",
            "--profile",
            "x:1x4:8x4:32x4",
            "-o",
            str(plan),
        ],
    )
    assert result.exit_code == 3, result.output
    assert "TensorRT is not installed" in _error_line(result.output)
    assert not plan.exists() and not Path(str(plan) + ".json").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--profile", "x:1x4:8x4"], "NAME:MIN:OPT:MAX"),
        (["--profile", "x:8x4:1x4:32x4"], "min <= opt <= max"),
        (["--precision", "fp16"], "computes in fp32"),
        (["--backend", "ort-cpu"], "does not build"),
        (["--backend", "nope"], "unknown backend"),
        (["--shape", "x"], "NAME:D0xD1"),
    ],
)
def test_build_bad_input_is_exit_2(
    mlp_onnx: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    result = runner.invoke(app, ["build", str(mlp_onnx), "-o", str(tmp_path / "m.plan"), *args])
    assert result.exit_code == 2, result.output
    assert needle in _error_line(result.output)


def test_build_missing_model_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["build", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "m.plan")]
    )
    assert result.exit_code == 2, result.output
    assert "not found" in _error_line(result.output)


@pytest.mark.tensorrt
def test_build_writes_plan_and_manifest(mlp_onnx: Path, tmp_path: Path) -> None:
    import json

    plan = tmp_path / "mlp.plan"
    result = runner.invoke(
        app, ["build", str(mlp_onnx), "--profile", "x:1x4:8x4:32x4", "-o", str(plan)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path(str(plan) + ".json").read_text())
    assert manifest["kind"] == "tensorrt-engine"
    assert manifest["profiles"][0]["max"] == [32, 4]
    assert manifest["precision"]["requested"] == "fp32"
    assert {"version"} <= set(manifest["tensorrt"]) and manifest["gpu"]["compute_capability"]


def test_build_renders_what_it_wrote(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a recording stand-in for TensorRT: exit 0, one summary line, --json written."""
    import json
    import sys

    from optieval.runtime.base import Availability
    from optieval.runtime.tensorrt import library
    from tests.runtime.fake_tensorrt import make_fake

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake())
    monkeypatch.setattr(library, "trt_availability", lambda: Availability(True))
    monkeypatch.setattr(library, "gpu_identity", lambda device_id=0: ("NVIDIA H200", "9.0"))
    plan, out = tmp_path / "m.plan", tmp_path / "build.json"
    result = runner.invoke(
        app, ["build", str(mlp_onnx), "--shape", "x:8x4", "-o", str(plan), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "TensorRT 10.13.0" in result.output and "read back fp32" in result.output
    data = json.loads(out.read_text())
    assert data["plan"] == str(plan) and data["gpu"]["compute_capability"] == "9.0"
