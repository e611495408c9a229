"""Issue 18, item 6: ``--quiet`` and ``--verbose`` (before or after the command), and shell
completion that can be shown and installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.release.gate_helpers import GENEROUS, write_config

runner = CliRunner()

FAST = ["--warmup", "0", "--duration", "0.05", "--min-samples", "20", "--no-isolate"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_leaves_results_and_errors_only(mlp_onnx: Path, tmp_path: Path, where: str) -> None:
    out = tmp_path / "b.json"
    argv = ["bench", str(mlp_onnx), *FAST, "--json", str(out)]
    argv = ["-q", *argv] if where == "before" else [*argv, "--quiet"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "ort-cpu:fp32 b1" in result.stdout  # the table: a result
    assert result.stderr == ""  # no "wrote", no warning, no progress
    assert out.is_file()
    normal = runner.invoke(app, ["bench", str(mlp_onnx), *FAST, "--json", str(out)])
    assert "wrote" in normal.stderr
    failed = runner.invoke(app, ["-q", "bench", str(tmp_path / "missing.onnx")])
    assert failed.exit_code == 2
    assert "error:" in failed.stderr and "missing.onnx" in failed.stderr


def test_verbose_shows_each_cell_and_every_check(mlp_onnx: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", str(mlp_onnx), *FAST, "--batch", "1,2", "-v"])
    assert result.exit_code == 0, result.output
    cells = [line for line in result.stderr.splitlines() if "bench: ort-cpu" in line]
    assert len(cells) == 2 and all("p50" in line and "samples" in line for line in cells)
    assert cells[0].startswith("[1/2] ") and cells[1].startswith("[2/2] ")  # done of a total
    config = write_config(tmp_path / "cfg", GENEROUS)
    gate = runner.invoke(app, ["--verbose", "gate", str(config), "--out", str(tmp_path / "o")])
    assert gate.exit_code == 0, gate.output
    assert "PASS ort-cpu:fp32 b1 p99_ms_max:" in gate.stderr  # evidence of a passing check
    plain = runner.invoke(app, ["gate", str(config), "--out", str(tmp_path / "o2")])
    assert "PASS ort-cpu:fp32 b1 p99_ms_max:" not in plain.stderr


def test_quiet_and_verbose_exclude_each_other() -> None:
    result = runner.invoke(app, ["-q", "-v", "doctor"])
    assert result.exit_code == 2


def _optieval(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optieval", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_completion_is_shown_installed_and_completes(tmp_path: Path) -> None:
    shown = _optieval(["--show-completion", "bash"], {})
    assert shown.returncode == 0, shown.stderr
    assert "_OPTIEVAL_COMPLETE" in shown.stdout
    installed = _optieval(["--install-completion", "bash"], {"HOME": str(tmp_path)})
    assert installed.returncode == 0, installed.stderr
    assert "_OPTIEVAL_COMPLETE" in (tmp_path / ".bashrc").read_text() + "".join(
        p.read_text() for p in tmp_path.rglob("*optieval*") if p.is_file()
    )
    env = {"_OPTIEVAL_COMPLETE": "complete_bash", "COMP_WORDS": "optieval bench --dur",
           "COMP_CWORD": "2"}  # fmt: skip
    script = str(Path(sys.executable).parent / "optieval")
    completed = subprocess.run([script], env={**os.environ, **env}, capture_output=True,
                               text=True, timeout=120)  # fmt: skip
    assert completed.stdout.split() == ["--duration"], completed.stderr
