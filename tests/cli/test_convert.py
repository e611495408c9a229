"""`optieval convert` and `optieval inspect` in-process: outputs, JSON, and every bad input
(exit 2, one line naming the input, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.conftest import calib_array

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _one_line_error(code: int, output: str) -> str:
    assert code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_convert_int8_writes_artifact_manifest_and_json(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model.int8.onnx"
    report = tmp_path / "convert.json"
    code, output = _invoke(
        "convert",
        str(cnn_onnx),
        "--precision",
        "int8",
        "--calib",
        str(calib_npz),
        "-o",
        str(out),
        "--calib-repeats",
        "2",
        "--json",
        str(report),
    )
    assert code == 0, output
    assert out.is_file() and out.with_name(out.name + ".json").is_file()
    data = json.loads(report.read_text())
    assert data["schema_version"] == 1 and data["census"]["compute"]["int8"] == 3
    assert data["spread"]["repeats"] == 2
    assert "calibration spread" in output and "precision census" in output


def test_convert_fp16_default_output(cnn_onnx: Path) -> None:
    code, output = _invoke("convert", str(cnn_onnx), "-p", "fp16")
    assert code == 0, output
    assert cnn_onnx.with_name("cnn.fp16.onnx").is_file()


def test_random_calibration_warns_loudly(cnn_onnx: Path) -> None:
    code, output = _invoke("convert", str(cnn_onnx), "-p", "int8", "--calib", "random")
    assert code == 0, output
    assert "WARNING" in output and "RANDOM" in output


def test_inspect_shows_io_census_and_provenance(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    out = tmp_path / "q.onnx"
    assert (
        _invoke("convert", str(cnn_onnx), "-p", "int8", "--calib", str(calib_npz), "-o", str(out))[
            0
        ]
        == 0
    )
    report = tmp_path / "inspect.json"
    code, output = _invoke("inspect", str(out), "--json", str(report))
    assert code == 0, output
    assert "x: float32[batchx1x8x8]" in output and "precision-artifact" in output
    assert "optieval convert" in output and "Conv" in output
    data = json.loads(report.read_text())
    assert data["census"]["compute"]["int8"] == 3
    assert data["provenance"]["precision"] == "int8" and data["opset"] == {"ai.onnx": 17}
    code, output = _invoke("inspect", str(cnn_onnx))
    assert code == 0 and "none beside the file" in output


def _npz(tmp_path: Path, name: str, **arrays: np.ndarray) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return str(path)


def test_bad_calibration_data_exit_2(cnn_onnx: Path, tmp_path: Path) -> None:
    nan = calib_array(4)
    nan[0, 0, 0, 0] = np.inf
    empty = tmp_path / "empty"
    empty.mkdir()
    raising = tmp_path / "raising.py"
    raising.write_text("def samples():\n    raise OSError('no images')\n    yield {}\n")
    cases = {
        "missing input": (_npz(tmp_path, "m.npz", y=calib_array(4)), "'x' is missing"),
        "wrong dtype": (_npz(tmp_path, "d.npz", x=calib_array(4).astype(np.float16)), "float16"),
        "wrong shape": (_npz(tmp_path, "s.npz", x=np.zeros((4, 2, 8, 8), np.float32)), "2x8x8"),
        "nan or inf": (_npz(tmp_path, "n.npz", x=nan), "NaN/Inf"),
        "empty dir": (str(empty), "no .npy or .npz"),
        "loader raises": (f"{raising}:samples", "OSError"),
    }
    for label, (calib, expected) in cases.items():
        line = _one_line_error(*_invoke("convert", str(cnn_onnx), "-p", "int8", "--calib", calib))
        assert expected in line, (label, line)
        assert calib in line or "'x'" in line, (label, line)


def test_fewer_samples_than_asked(cnn_onnx: Path, calib_npz: Path) -> None:
    line = _one_line_error(
        *_invoke(
            "convert",
            str(cnn_onnx),
            "-p",
            "int8",
            "--calib",
            str(calib_npz),
            "--calib-samples",
            "100",
        )
    )
    assert "--calib-samples" in line and "has 24" in line


def test_already_converted_and_exclude_naming_nothing(cnn_onnx: Path, calib_npz: Path) -> None:
    assert _invoke("convert", str(cnn_onnx), "-p", "fp16")[0] == 0
    fp16 = str(cnn_onnx.with_name("cnn.fp16.onnx"))
    line = _one_line_error(*_invoke("convert", fp16, "-p", "fp16"))
    assert "already computes in fp16" in line and fp16 in line
    line = _one_line_error(*_invoke("convert", str(cnn_onnx), "-p", "fp16", "--exclude", "ghost"))
    assert "--exclude" in line and "ghost" in line
    line = _one_line_error(
        *_invoke(
            "convert",
            str(cnn_onnx),
            "-p",
            "int8",
            "--calib",
            str(calib_npz),
            "--exclude",
            "Conv",
            "--exclude",
            "Gemm",
        )
    )
    assert "no compute in int8" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "int8"], "INT8 needs calibration data"),
        (["-p", "int4"], "--precision"),
        (["-p", "int8", "--calib", "random", "--calib-method", "magic"], "--calib-method"),
    ],
)
def test_bad_options_exit_2(cnn_onnx: Path, args: list[str], expected: str) -> None:
    line = _one_line_error(*_invoke("convert", str(cnn_onnx), *args))
    assert expected in line


def test_missing_and_broken_models_exit_2(tmp_path: Path) -> None:
    line = _one_line_error(*_invoke("inspect", str(tmp_path / "nope.onnx")))
    assert "nope.onnx" in line
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx at all")
    assert "broken.onnx" in _one_line_error(*_invoke("convert", str(broken), "-p", "fp16"))


def test_convert_fp16_time_limit(tmp_path: Path) -> None:
    from tests.conftest import make_onnx_cnn

    cnn_onnx = make_onnx_cnn(tmp_path / "slow.onnx", seed=11)  # not in the test cache yet
    out = tmp_path / "cnn.fp16.onnx"
    code, output = _invoke(
        "convert", str(cnn_onnx), "-p", "fp16", "-o", str(out), "--time-limit", "1e-9"
    )
    assert code == 3 and "Traceback" not in output, output
    assert "FP16 conversion passed its time limit of 1e-09 s in" in output
    assert "--time-limit" in output and not out.exists()
    line = _one_line_error(*_invoke("convert", str(cnn_onnx), "-p", "fp16", "--time-limit", "0"))
    assert "--time-limit" in line and "must be positive" in line
    code, output = _invoke("convert", str(cnn_onnx), "-p", "fp16", "-o", str(out))
    assert code == 0 and out.is_file(), output
