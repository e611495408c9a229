"""What running a cell in its own process costs: the same ORT CPU cell (load a small MLP, run
once) in this process and through ``run_isolated``; prints medians and the ratio.

    python benchmarks/isolation_overhead.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optieval.execution.isolation import infer_cell, run_isolated
from tests.conftest import make_onnx_mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = make_onnx_mlp(Path(folder) / "mlp.onnx", features=64, classes=10)
        payload = {"backend": "ort-cpu", "model": str(model), "shapes": {"x": [8, 64]}}
        infer_cell(payload)  # warm imports in this process
        inproc, isolated = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            infer_cell(payload)
            inproc.append(time.perf_counter() - start)
            start = time.perf_counter()
            outcome = run_isolated(
                "optieval.execution.isolation:infer_cell", payload, timeout_s=120
            )
            isolated.append(time.perf_counter() - start)
            assert outcome.ok, outcome
        a, b = statistics.median(inproc) * 1e3, statistics.median(isolated) * 1e3
        print(
            f"in process: {a:.1f} ms  isolated: {b:.1f} ms  overhead: {b - a:.0f} ms "
            f"({b / a:.1f}x) per cell, median of {args.repeats}"
        )
        print(f"child imported: {outcome.value['imported']}")


if __name__ == "__main__":
    main()
