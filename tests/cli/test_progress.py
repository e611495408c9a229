"""Issue 18, item 9: progress shows the count of cells done out of a fixed total and an
estimate of the time left; a long single step shows a spinner."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from optieval.cli import app
from optieval.cli.progress import EtaColumn

runner = CliRunner()


def _eta(total: float | None, completed: float, **fields: float | None) -> str:
    progress = Progress(EtaColumn(), console=Console(file=io.StringIO()))
    task_id = progress.add_task("x", total=total, **fields)
    progress.update(task_id, completed=completed)
    return EtaColumn().render(progress.tasks[0]).plain


def test_eta_is_the_mean_pace_times_the_cells_left_counting_down() -> None:
    now = time.monotonic()
    # 2 of 6 cells took 40 s (20 s each): 4 left = 80 s, 10 s of which have passed since.
    eta = _eta(6, 2, counting_since=now - 50, last_done=now - 10)
    minutes, seconds = map(int, eta.removeprefix("ETA ").split(":"))
    assert 69 <= minutes * 60 + seconds <= 71
    assert _eta(6, 0, counting_since=now, last_done=None) == "ETA -:--"  # nothing done yet
    assert _eta(None, 0, counting_since=None, last_done=None) == "ETA -:--"  # total unknown
    late = _eta(3, 2, counting_since=now - 20, last_done=now - 15)  # slower than the pace
    assert late == "ETA 0:00"


def test_bench_counts_cells_out_of_the_total(mlp_onnx: Path) -> None:
    fast = ["--warmup", "0", "--duration", "0.05", "--min-samples", "20", "--no-isolate"]
    result = runner.invoke(app, ["bench", str(mlp_onnx), *fast, "--batch", "1,2,3",
                                 "--precision", "fp32,fp16"])  # fmt: skip
    assert result.exit_code == 0, result.output
    counts = [line.split("]")[0] + "]" for line in result.stderr.splitlines()
              if line.startswith("[")]  # fmt: skip
    assert counts == [f"[{i}/6]" for i in range(1, 7)]
