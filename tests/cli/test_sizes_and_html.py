"""Issue 18, item 11: sizes read the same in inspect, export and the gate (table, report.md,
report.html); the HTML report writes out the environment's values and names each artifact by
its source model, precision and format."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from optieval.cli import app
from tests.release.gate_helpers import write_config

runner = CliRunner()

SIZE = re.compile(r"\b\d+(\.\d+)? (B|KiB|MiB|GiB)\b")


def test_inspect_prints_a_binary_size(mlp_onnx: Path) -> None:
    result = runner.invoke(app, ["inspect", str(mlp_onnx)])
    assert result.exit_code == 0, result.output
    size_line = next(line for line in result.stdout.splitlines() if "size" in line)
    assert SIZE.search(size_line), size_line
    assert " MB" not in result.stdout and " kB" not in result.stdout


def test_gate_sizes_and_html_environment_and_artifact_names(tmp_path: Path) -> None:
    target = """
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = 1
threads = 1
latency.memory_mb_max = 100000.0
latency.artifact_mb_max = 100.0
"""
    config = write_config(tmp_path, target)
    out = tmp_path / "out"
    result = runner.invoke(app, ["gate", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "artifact_mb_max" in line)
    assert "476 B" in row and "≤ 100 MiB" in row  # the MLP's 476 bytes, not 0.0004539
    memory = next(line for line in result.stdout.splitlines() if "memory_mb_max" in line)
    assert "MiB" in memory and "≤ 97.7 GiB" in memory
    markdown = (out / "report.md").read_text()
    assert "| 476 B |" in markdown and "≤ 100 MiB" in markdown
    page = (out / "report.html").read_text()
    assert "entries" not in page
    load = re.search(r"<b>load_average</b>: ([^<]*)</li>", page)
    assert load and re.fullmatch(r"[\d.]+, [\d.]+, [\d.]+", load.group(1)), page[-2000:]
    assert ">mlp fp32 (ONNX)</td>" in page
    assert "<td class=num>476 B</td>" in page
