"""``optieval compare``: exit codes 0/1/2/3, one-line errors, JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.core.files import sha256_file
from optieval.parity.golden import Golden, save_golden

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["compare", *args])
    return result.exit_code, result.output


def test_pass_writes_json(tmp_path: Path, mlp_onnx: Path) -> None:
    out = tmp_path / "parity.json"
    code, text = _run(
        str(mlp_onnx), "--candidate", "ort-cpu:fp32", "--samples", "8", "--json", str(out)
    )
    assert code == 0, text
    assert "PASS" in text and "logits" in text
    data = json.loads(out.read_text())
    assert data["schema_version"] == 2
    (res,) = data["results"]
    assert res["candidate"] == "ort-cpu:fp32" and res["reference"] == "ort-cpu:fp32"
    assert res["passed"] is True
    assert {"name", "passed", "max_abs", "flip_rate", "flip_rate_ci"} <= set(res["outputs"][0])


def test_failing_candidate_exits_1(mlp_onnx: Path) -> None:
    code, text = _run(str(mlp_onnx), "-c", "ort-cpu:fp16", "--tol", "logits:0:0", "--samples", "8")
    assert code == 1, text
    assert "FAIL" in text and "Traceback" not in text


def test_golden_round_trip_cli(tmp_path: Path, mlp_onnx: Path) -> None:
    g = tmp_path / "golden"
    assert (
        _run(str(mlp_onnx), "-c", "ort-cpu:fp32", "--samples", "4", "--save-golden", str(g))[0] == 0
    )
    code, text = _run(str(mlp_onnx), "-c", "ort-cpu:fp32", "--golden", str(g))
    assert code == 0, text and "golden:" in text


def _golden_with_wrong_shape(folder: Path, model: Path) -> Path:
    save_golden(folder, Golden(
        model_sha256=sha256_file(model), reference="ort-cpu:fp32",
        inputs={"x": np.zeros((4, 4), np.float32)},
        outputs={"logits": np.zeros((4, 5), np.float32)},
    ))  # fmt: skip
    return folder


@pytest.mark.parametrize(
    "case",
    [
        "tol",
        "labels_length",
        "labels_type",
        "missing_input",
        "golden_other",
        "output_shape",
        "bad_cell",
        "golden_and_save",
    ],
)
def test_bad_inputs_exit_2(tmp_path: Path, mlp_onnx: Path, case: str) -> None:
    from tests.conftest import make_onnx_mlp

    model = str(mlp_onnx)
    data = tmp_path / "d.npz"
    args = [model, "-c", "ort-cpu:fp32"]
    if case == "tol":
        args += ["--tol", "nope:1:1", "--samples", "4"]
    elif case == "labels_length":
        np.savez(data, x=np.zeros((4, 4), np.float32), y=np.zeros(3, np.int64))
        args += ["--data", str(data), "--labels", "y"]
    elif case == "labels_type":
        np.savez(data, x=np.zeros((4, 4), np.float32), y=np.array(["a", "b", "c", "d"]))
        args += ["--data", str(data), "--labels", "y"]
    elif case == "missing_input":
        np.savez(data, z=np.zeros((4, 4), np.float32))
        args += ["--data", str(data)]
    elif case == "golden_other":
        other = make_onnx_mlp(tmp_path / "other.onnx", seed=7)
        _golden_with_wrong_shape(tmp_path / "g", other)
        args += ["--golden", str(tmp_path / "g")]
    elif case == "output_shape":
        _golden_with_wrong_shape(tmp_path / "g", mlp_onnx)
        args += ["--golden", str(tmp_path / "g")]
    elif case == "bad_cell":
        args = [model, "-c", "ort-cpu:fp8"]
    elif case == "golden_and_save":
        args += ["--golden", str(tmp_path / "a"), "--save-golden", str(tmp_path / "b")]
    code, text = _run(*args)
    assert code == 2, text
    assert "error:" in text and "Traceback" not in text
    assert len([line for line in text.splitlines() if "error:" in line]) == 1


def test_unusable_backend_exits_3(mlp_onnx: Path) -> None:
    code, text = _run(str(mlp_onnx), "-c", "tensorrt:fp32", "--samples", "4")
    assert code == 3, text
    assert "error:" in text and "Traceback" not in text


def test_embedding_kind_is_printed_with_its_worst_samples(tmp_path: Path) -> None:
    from tests.parity.kind_models import make_encoder, token_data

    model = make_encoder(tmp_path / "enc.onnx", output="out")
    data = token_data(tmp_path / "d.npz", 24)
    out = tmp_path / "p.json"
    code, text = _run(str(model), "-c", "ort-cpu:fp16", "--data", str(data),
                      "--output-kind", "out=embedding", "--min-cosine", "0.99",
                      "--min-knn-agreement", "0.5", "--knn-k", "4", "--json", str(out))  # fmt: skip
    assert code == 0, text
    assert "out: embedding (given)" in text and "worst samples by cosine: #" in text
    assert "nearest-neighbour agreement@4 over 24 samples" in text
    assert "flip rate" not in text  # not class scores: no argmax metrics
    res = json.loads(out.read_text())["results"][0]["outputs"][0]
    assert res["kind"] == "embedding" and res["neighbours"]["k"] == 4
    assert res["top1_agreement"] is None and len(res["cosine_per_sample"]["worst"]) == 5
    assert {c["name"] for c in res["checks"]} >= {"cosine", "knn_agreement"}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("logits=embedding", "--output-kind: output 'logits' cannot be embedding"),
        ("logits=boxes", "--output-kind: output kind 'boxes' is compared as boxes"),
        ("embeding", "--output-kind: unknown output kind 'embeding'"),
    ],
)
def test_output_kind_that_does_not_fit_exits_2(tmp_path: Path, kind: str, message: str) -> None:
    from tests.parity.kind_models import make_regressor

    model = make_regressor(tmp_path / "reg.onnx", name="logits")  # (batch x 1)
    code, text = _run(str(model), "-c", "ort-cpu:fp32", "--samples", "4", "--output-kind", kind)
    assert code == 2, text
    assert message in text and "Traceback" not in text


def test_score_budget_on_an_embedding_exits_2(tmp_path: Path) -> None:
    from tests.parity.kind_models import make_encoder, token_data

    model = make_encoder(tmp_path / "enc.onnx")
    data = token_data(tmp_path / "d.npz", 8)
    code, text = _run(str(model), "-c", "ort-cpu:fp32", "--data", str(data),
                      "--min-top1-agreement", "0.9")  # fmt: skip
    assert code == 2, text
    assert "--min-top1-agreement" in text and "no output is scores" in text


def test_auto_exclude_prints_each_round_and_why_it_stopped(tmp_path: Path) -> None:
    from tests.parity.parity_helpers import make_deep_mlp

    model = make_deep_mlp(tmp_path / "h.onnx", layers=12)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(48, 8)).astype(np.float32))
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(64, 8)).astype(np.float32))
    out = tmp_path / "p.json"
    code, text = _run(str(model), "-c", "ort-cpu:int8", "--data", str(tmp_path / "d.npz"),
                      "--calib", str(tmp_path / "c.npz"), "--auto-exclude",
                      "--max-exclude-rounds", "2", "--min-cosine", "1.0",
                      "--json", str(out))  # fmt: skip
    assert code == 1, text
    assert "auto-exclude (2 of 2 round(s) run)" in text
    assert "round 1: +" in text and "round 2: +" in text and "-> logits FAIL: cosine" in text
    assert "stopped: ran every round allowed (--max-exclude-rounds)" in text
    auto = json.loads(out.read_text())["results"][0]["auto_exclude"]
    assert auto["stop_reason"] == "max_rounds" and len(auto["history"]) == 2
