"""Time a gate spends measuring (issue 15): the sequential design against the fixed durations
it replaced, on the bundled demo and on a tiny model whose p99 sits 1000x inside its budget,
with and without another optieval process running beside it.

Before the sequential design every cell measured at least ``duration_s`` (and at least the 299
samples a p99 interval needs); now a cell stops at the first look where every check is decided.
"Before" below is that floor, ``duration_s`` per cell (both models here reach 299 samples in a
fraction of it); "after" is the measured seconds the cells' timed loops report
(``Cell.options["measured_s"]``, summed over looks and blocks). Verdicts must not change.

    python benchmarks/measuring_time.py
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optieval
from optieval.stats import rank_autocorrelation_time
from tests.conftest import make_onnx_mlp

DEMO = Path(__file__).resolve().parents[1] / "optieval" / "assets" / "demo.toml"

TINY = """[model]
path = "mlp.onnx"

[measure]
duration_s = {duration}
max_duration_s = 30.0

[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = 1
threads = 1
latency = {{ p99_ms_max = {budget}, p50_ms_max = {budget} }}
"""


def _run(config: Path, out: Path, fixed_s: float) -> None:
    started = time.perf_counter()
    report = optieval.gate(config, out_dir=out)
    wall = time.perf_counter() - started
    measured = 0.0
    for cell in report.cells:
        cell_s = float((cell.options or {}).get("measured_s", sum(cell.times_ms) / 1e3))
        measured += cell_s
        print(f"  {cell.label:22s} {cell.samples:6d} samples, tau "
              f"{rank_autocorrelation_time(cell.times_ms):5.1f}, {cell_s:5.2f} s")  # fmt: skip
    fixed = fixed_s * len(report.cells)
    verdicts = sorted({c.verdict.value for c in report.checks})
    print(f"  verdict {report.verdict.value} (checks: {', '.join(verdicts)}); measuring "
          f"{measured:.2f} s vs {fixed:.2f} s fixed: {fixed / measured:.1f}x less; wall "
          f"{wall:.0f} s; load {os.getloadavg()[0]:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--neighbour", action="store_true",
                        help="run another optieval bench loop beside the gates")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model = make_onnx_mlp(root / "mlp.onnx", features=64, classes=10)
        neighbour = None
        if args.neighbour:
            loop = (f"while true; do {sys.executable} -m optieval bench {model} --batch 64 "
                    "--duration 10 >/dev/null 2>&1; done")  # fmt: skip
            neighbour = subprocess.Popen(["bash", "-c", loop], start_new_session=True)
            time.sleep(3.0)
        try:
            print("optieval demo (6 cells, duration_s = 1, max_duration_s = 4):")
            _run(DEMO, root / "demo", 1.0)
            # The tiny MLP's p99 is about 0.02 ms here: a 20 ms budget is 1000x above it.
            config = root / "tiny.toml"
            config.write_text(TINY.format(duration=3.0, budget=20.0))
            print("tiny model, p99 and p50 budgets 20 ms (duration_s = 3, the default):")
            _run(config, root / "tiny", 3.0)
        finally:
            if neighbour is not None:
                os.killpg(neighbour.pid, signal.SIGTERM)
                neighbour.wait()


if __name__ == "__main__":
    main()
