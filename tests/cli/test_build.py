"""`optieval build`: a deployable TensorRT engine; here TensorRT is absent, so exit 3 with why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_build_on_device_1_records_its_gpu_and_refuses_another(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--device 1` builds on device 1 (an L4 behind the strict stand-in; device 0 is an H200):
    the manifest records the L4, the engine loads on device 1 and is refused (exit 3) on
    device 0."""
    import json

    from optieval.errors import BackendUnavailable
    from optieval.runtime.tensorrt.backend import TensorrtBackend
    from tests.runtime import fake_cuda
    from tests.runtime.conftest import install_fake

    install_fake(monkeypatch)
    devices = fake_cuda.install(monkeypatch)
    plan, out = tmp_path / "m.plan", tmp_path / "build.json"
    args = ["build", str(mlp_onnx), "--shape", "x:2x4", "--device", "1", "-o", str(plan)]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "device 1 NVIDIA L4 sm 8.9" in result.output
    manifest = json.loads(Path(str(plan) + ".json").read_text())
    assert manifest["gpu"] == {"name": "NVIDIA L4", "compute_capability": "8.9"}
    assert json.loads(out.read_text())["gpu"]["name"] == "NVIDIA L4"
    with TensorrtBackend(plan, device_id=1) as backend:
        assert backend.infer({"x": np.ones((2, 4), np.float32)})["logits"].shape[0] == 2
    assert devices[-1].device_id == 1
    with pytest.raises(BackendUnavailable, match="built for NVIDIA L4") as info:
        TensorrtBackend(plan, device_id=0).load()
    assert info.value.exit_code == 3


def test_build_default_device_is_0(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.runtime.conftest import install_fake

    install_fake(monkeypatch)
    plan = tmp_path / "m.plan"
    result = runner.invoke(app, ["build", str(mlp_onnx), "--shape", "x:2x4", "-o", str(plan)])
    assert result.exit_code == 0, result.output
    assert json.loads(Path(str(plan) + ".json").read_text())["gpu"]["name"] == "NVIDIA H200"


def test_build_negative_device_is_exit_2_naming_the_flag(mlp_onnx: Path, tmp_path: Path) -> None:
    plan = tmp_path / "m.plan"
    result = runner.invoke(app, ["build", str(mlp_onnx), "--device", "-1", "-o", str(plan)])
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    assert "no CUDA device -1" in line and "--device" in line
    assert not plan.exists()


def test_device_beyond_the_machine_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU machine, a device index past the last one is exit 2, not torch's assertion."""
    import torch

    from optieval.errors import InputError
    from optieval.runtime.tensorrt.library import gpu_identity

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(InputError, match="no CUDA device 2; this machine has 2") as info:
        gpu_identity(2)
    assert info.value.exit_code == 2
