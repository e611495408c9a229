"""``optieval gate`` and ``optieval demo`` in-process: exit codes, one-line errors, reports."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.release.gate_helpers import (
    GENEROUS,
    STRADDLING,
    STRADDLING_MEASURE,
    UNMEETABLE,
    FixedLatencyBackend,
    UnusableBackend,
    use_backend,
    write_config,
)

runner = CliRunner()


def _one_line_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_generous_config_exits_0_with_a_verdict_table(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rel", GENEROUS)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["gate", str(config), "--out", str(out), "--json",
                                 str(tmp_path / "gate.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "p99_ms_max" in result.output
    assert str(out / "report.html") in result.output
    assert json.loads((tmp_path / "gate.json").read_text())["verdict"] == "PASS"
    assert (out / "junit.xml").is_file()


def test_unmeetable_budget_exits_1_with_a_failing_junit_case(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rel", UNMEETABLE, data=False)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["gate", str(config), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    failures = [
        case
        for case in ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert [case.get("name") for case in failures] == ["ort-cpu:fp32 b1 p50_ms_max"]
    assert "budget <= 1e-06" in (failures[0].find("failure").get("message") or "")  # type: ignore[union-attr]


def test_inconclusive_exits_1_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(monkeypatch, "ort-cpu", FixedLatencyBackend)
    config = write_config(tmp_path / "rel", STRADDLING, data=False,
                          measure=STRADDLING_MEASURE.replace("1.0", "0.2"))  # fmt: skip
    result = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1, result.output
    assert "INCONCLUSIVE" in result.output
    allowed = runner.invoke(
        app, ["gate", str(config), "--out", str(tmp_path / "b"), "--allow-inconclusive"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "INCONCLUSIVE" in allowed.output


def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "rel", UNMEETABLE.replace("p99_ms_max", "p99_ms_mx"), data=False
    )
    result = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = _one_line_error(result.output)
    assert "target[0].latency.p99_ms_mx" in line and "did you mean 'p99_ms_max'?" in line


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "config file not found" in _one_line_error(result.output)


def test_unusable_target_backend_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend(monkeypatch, "tensorrt", UnusableBackend)
    config = write_config(tmp_path / "rel", UNMEETABLE.replace("ort-cpu", "tensorrt"), data=False)
    result = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3
    line = _one_line_error(result.output)
    assert "tensorrt" in line and "fake: no such device here" in line


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--duration", "0.3"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and str(out / "report.html") in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "PASS"
    assert {a["precision"] for a in report["artifacts"]} == {"fp32", "fp16", "int8"}
    assert {(c["precision"], c["batch"]) for c in report["cells"]} == {
        (p, b) for p in ("fp32", "fp16", "int8") for b in (1, 8)
    }
    assert report["model"]["export_parity"]["passed"] is True
    assert (out / "model.onnx").is_file()
    accuracy = [c for c in report["checks"] if c["group"] == "accuracy"]
    assert accuracy and all(c["verdict"] == "PASS" for c in accuracy)
