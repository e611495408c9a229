"""The foundation's CLI: doctor, bench and demo, their exit codes and bad inputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.conftest import make_onnx_mlp

runner = CliRunner()
FAST = ["--warmup", "0", "--duration", "0.05", "--min-samples", "20", "--no-isolate"]


def _one_line_error(result, *needles: str) -> None:
    text = result.output
    assert "Traceback" not in text
    error_lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, text
    for needle in needles:
        assert needle in error_lines[0], text


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from optieval.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'tensorrt') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optieval", "--help"], capture_output=True, text=True, check=True
    )
    assert "bench" in out.stdout


def test_doctor_lists_every_backend(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "d.json").read_text())
    names = [b["name"] for b in data["backends"]]
    assert names == ["torch-cpu", "torch-cuda", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt"]
    ort_cpu = next(b for b in data["backends"] if b["name"] == "ort-cpu")
    assert ort_cpu["usable"] is True
    for backend in data["backends"]:
        assert backend["usable"] or backend["reason"], backend
    assert data["env"]["cpu"]["logical_cores"] >= 1
    assert "onnxruntime" in data["env"]["versions"]


def test_bench_json_has_the_core_schema(mlp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app, ["bench", str(mlp_onnx), "--batch", "1,4", *FAST, "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1
    assert "cpu" in data["env"]
    assert [(c["backend"], c["precision"], c["batch"]) for c in data["results"]] == [
        ("ort-cpu", "fp32", 1),
        ("ort-cpu", "fp32", 4),
    ]
    for cell in data["results"]:
        assert cell["status"] == "ok"
        assert cell["samples"] >= 20 == 20 or cell["samples"] >= 20
        assert len(cell["times_ms"]) == cell["samples"]
        lat = cell["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert lat["mean"] > 0
    assert data["results"][1]["shapes"] == {"x": [4, 4]}


def test_bench_shape_option_sets_full_shape(mlp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    result = runner.invoke(
        app, ["bench", str(mlp_onnx), "--shape", "x:3x4", *FAST, "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    cell = json.loads(out.read_text())["results"][0]
    assert cell["batch"] == 3 and cell["shapes"] == {"x": [3, 4]}


@pytest.mark.parametrize(
    ("make", "args", "needles"),
    [
        (lambda d: d / "missing.onnx", [], ["missing.onnx", "not found"]),
        (lambda d: _write(d / "text.onnx", b"hello, not onnx"), [], ["text.onnx", "ONNX"]),
        (lambda d: _truncated(d), [], ["trunc.onnx"]),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--backend", "nope"], ["--backend", "nope"]),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--shape", "x:2x5"], ["--shape x", "fixed at 4"]),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--shape", "y:2x4"], ["no input 'y'"]),
        (
            lambda d: make_onnx_mlp(d / "m.onnx"),
            ["--shape", "x:2x4", "--batch", "3"],
            ["--shape x", "--batch is 3"],
        ),
        (
            lambda d: make_onnx_mlp(d / "m.onnx", batch=1),
            ["--batch", "8"],
            ["--batch", "static batch of 1"],
        ),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--batch", "0"], ["--batch"]),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--precision", "fp64"], ["--precision"]),
        (lambda d: make_onnx_mlp(d / "m.onnx"), ["--duration", "-1"], ["--duration"]),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, make, args, needles) -> None:
    model = make(tmp_path)
    result = runner.invoke(app, ["bench", str(model), *FAST, *args])
    assert result.exit_code == 2, result.output
    _one_line_error(result, *needles)


def test_unusable_cuda_backend_exits_3(mlp_onnx: Path) -> None:
    from optieval.runtime import availability

    if availability("ort-cuda").usable:
        pytest.skip("CUDA provider works here")
    result = runner.invoke(app, ["bench", str(mlp_onnx), "--backend", "ort-cuda", *FAST])
    assert result.exit_code == 3, result.output
    _one_line_error(result, "ort-cuda")


def test_matrix_with_unusable_backend_is_skipped_row(mlp_onnx: Path, tmp_path: Path) -> None:
    from optieval.runtime import availability

    if availability("ort-cuda").usable:
        pytest.skip("CUDA provider works here")
    out = tmp_path / "m.json"
    result = runner.invoke(
        app, ["bench", str(mlp_onnx), "--backend", "ort-cpu,ort-cuda", *FAST, "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    cells = json.loads(out.read_text())["results"]
    assert [c["status"] for c in cells] == ["ok", "skipped"]
    assert cells[1]["reason"]


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "bench", str(tmp_path / "missing.onnx")])
    assert result.exit_code != 0
    assert result.exception is not None


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(folder: Path) -> Path:
    full = make_onnx_mlp(folder / "full.onnx")
    data = full.read_bytes()
    return _write(folder / "trunc.onnx", data[: len(data) // 2])
