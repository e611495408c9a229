"""Issue 18: outputs checked before any work, ``--json -`` on stdout, ``--debug`` after the
command, ``-h``, and stale gate reports."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.release.gate_helpers import GENEROUS, UNMEETABLE, write_config

runner = CliRunner()

FAST = ["--warmup", "0", "--duration", "0.05", "--min-samples", "20", "--no-isolate"]


def _unwritable(tmp_path: Path) -> Path:
    """A path that can never be created, as root too: its parent is a regular file."""
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder")
    return blocker / "out"


def test_unwritable_json_fails_before_measuring(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optieval.bench

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured before checking the outputs")

    monkeypatch.setattr(optieval.bench, "benchmark", never)
    target = _unwritable(tmp_path) / "bench.json"
    result = runner.invoke(app, ["bench", str(mlp_onnx), *FAST, "--json", str(target)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--json" in lines[0] and "Traceback" not in result.output


def test_read_only_folder_is_refused(mlp_onnx: Path, tmp_path: Path) -> None:
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (covered by a file parent)")
        result = runner.invoke(app, ["convert", str(mlp_onnx), "-p", "fp16", "-o",
                                     str(folder / "m.onnx")])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "--output" in result.output
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "MODEL", "-p", "fp16", "-o", "BAD/m.onnx"],
        ["gate", "CONFIG", "--out", "BAD"],
        ["inspect", "MODEL", "--json", "BAD/i.json"],
    ],
)
def test_every_output_flag_is_checked(mlp_onnx: Path, tmp_path: Path, args: list[str]) -> None:
    bad = str(_unwritable(tmp_path))
    config = write_config(tmp_path / "rel", UNMEETABLE, data=False)
    argv = [
        a.replace("BAD", bad).replace("MODEL", str(mlp_onnx)).replace("CONFIG", str(config))
        for a in args
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "not writable" in result.output and "Traceback" not in result.output


def test_json_dash_writes_json_to_stdout(mlp_onnx: Path) -> None:
    result = runner.invoke(app, ["bench", str(mlp_onnx), *FAST, "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # only the JSON on stdout; the table went to stderr
    assert data["results"][0]["backend"] == "ort-cpu"
    assert "ort-cpu" in result.stderr
    assert not Path("-").exists()


def test_debug_after_the_command_and_dash_h(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", str(tmp_path / "missing.onnx"), "--debug"])
    assert result.exit_code != 0
    assert result.exception is not None and not isinstance(result.exception, SystemExit)
    plain = runner.invoke(app, ["bench", str(tmp_path / "missing.onnx")])
    assert plain.exit_code == 2 and isinstance(plain.exception, SystemExit)
    for command in ("bench", "gate", "convert", "export", "compare", "build", "inspect"):
        short = runner.invoke(app, [command, "-h"])
        assert short.exit_code == 0 and "Usage" in short.output, (command, short.output)
    assert runner.invoke(app, ["-h"]).exit_code == 0


def test_bad_gate_run_removes_the_earlier_pass_report(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    good = write_config(tmp_path / "good", GENEROUS)
    assert runner.invoke(app, ["gate", str(good), "--out", str(out)]).exit_code == 0
    assert "PASS" in (out / "report.md").read_text()
    (out / "keep.txt").write_text("not a report")

    bad = write_config(tmp_path / "bad", UNMEETABLE.replace("p99_ms_max", "p99_ms_mx"), data=False)
    result = runner.invoke(app, ["gate", str(bad), "--out", str(out)])
    assert result.exit_code == 2, result.output
    for name in ("report.md", "report.json", "junit.xml", "report.html"):
        assert not (out / name).exists(), name
    assert (out / "keep.txt").is_file()


def test_gate_failing_after_the_config_writes_a_failed_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optieval.release import steps

    out = tmp_path / "reports"
    good = write_config(tmp_path / "good", GENEROUS)
    assert runner.invoke(app, ["gate", str(good), "--out", str(out)]).exit_code == 0

    def interrupted(self: object, *args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(steps.GateRun, "artifacts", interrupted)
    result = runner.invoke(app, ["gate", str(good), "--out", str(out)])
    assert result.exit_code != 0
    assert not (out / "report.json").exists() and not (out / "report.html").exists()
    assert "optieval gate did not finish: interrupted" in (out / "report.md").read_text()
    root = ElementTree.parse(out / "junit.xml").getroot()
    assert root.get("errors") == "1"
    assert [c.find("error") is not None for c in root.iter("testcase")] == [True]


def test_output_that_fails_at_the_end_goes_to_a_printed_fallback_file(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder was writable when checked, and is gone (a file now) when the results come."""
    import optieval.bench

    folder = tmp_path / "out"
    folder.mkdir()
    real = optieval.bench.benchmark

    def measure_then_lose_the_folder(*args: object, **kwargs: object) -> object:
        report = real(*args, **kwargs)
        folder.rmdir()
        folder.write_text("now a file")
        return report

    monkeypatch.setattr(optieval.bench, "benchmark", measure_then_lose_the_folder)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    target = folder / "b.json"
    result = runner.invoke(app, ["bench", str(mlp_onnx), *FAST, "--json", str(target)])
    assert result.exit_code == 2, result.output
    assert "ort-cpu:fp32" in result.stdout  # the table was still printed
    line = next(x for x in result.stderr.splitlines() if "cannot write" in x)
    fallback = Path(line.split("the results are in ", 1)[1].strip())
    assert fallback.parent == tmp_path / "tmp"
    data = json.loads(fallback.read_text())
    assert data["kind"] == "bench" and data["results"][0]["status"] == "ok"
