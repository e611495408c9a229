"""A/A baseline comparisons across separate invocations (issue 15): the same model benched
against one baseline JSON again and again while another optieval process runs beside it, counting
``slower`` verdicts with one process per cell (``--blocks 1``, the behaviour before blocks),
with blocks against the baseline's recorded samples (``--no-interleave``), and with the
baseline's model measured again in blocks alternating with the new run's (the default when
the model is at hand). Every verdict but "no significant change" is a false alarm: nothing
changed between runs.

    python benchmarks/between_runs.py --runs 20 --duration 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import make_onnx_mlp

OPTIEVAL = [sys.executable, "-m", "optieval"]


def _bench(model: Path, out: Path, duration: float, *extra: str) -> tuple[int, dict]:
    cmd = [*OPTIEVAL, "bench", str(model), "--batch", "32", "--duration", str(duration),
           "--json", str(out), *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if not out.is_file():
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-800:]}")
    return done.returncode, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--no-neighbour", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model = make_onnx_mlp(root / "mlp.onnx", features=256, classes=64)
        base1, base3 = root / "base1.json", root / "base3.json"
        neighbour = None
        if not args.no_neighbour:
            # Another optieval process runs throughout, the baselines' runs included: an A/A
            # comparison measures both sides under the same conditions.
            loop = (f"while true; do {' '.join(OPTIEVAL)} bench {model} --batch 64 "
                    f"--duration 10 >/dev/null 2>&1; done")  # fmt: skip
            neighbour = subprocess.Popen(["bash", "-c", loop], start_new_session=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        conditions = {
            "before: --blocks 1, recorded baseline without blocks": (base1, "1", "--no-interleave"),
            "3 blocks, recorded baseline with 3 blocks": (base3, "3", "--no-interleave"),
            "3 blocks, baseline model measured beside (default)": (base3, "3", "--interleave"),
        }
        rows: dict[str, list[tuple[int, dict]]] = {name: [] for name in conditions}
        try:
            _bench(model, base1, args.duration)
            _bench(model, base3, args.duration, "--blocks", "3")
            for i in range(args.runs):
                for name, (base, blocks, interleave) in conditions.items():
                    out = root / f"run{i}.json"
                    code, payload = _bench(model, out, args.duration, "--baseline", str(base),
                                           "--blocks", blocks, interleave)  # fmt: skip
                    cell = payload["baseline"]["cells"][0]
                    rows[name].append((code, cell))
                    ratio = cell["ratio"]
                    print(f"run {i + 1:2d} {name}: {ratio['ratio']:.3f} "
                          f"[{ratio['ci'][0]:.3f}, {ratio['ci'][1]:.3f}] {cell['verdict']} "
                          f"(exit {code})", flush=True)  # fmt: skip
        finally:
            if neighbour is not None:
                os.killpg(neighbour.pid, signal.SIGTERM)
                neighbour.wait()
        print(f"\n{args.runs} invocations per condition, --duration {args.duration}, "
              f"neighbour: {'none' if args.no_neighbour else 'optieval bench loop'}")  # fmt: skip
        print("| condition | slower (exit 1) | possible regression | faster | ratio range "
              "| median interval width |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name, results in rows.items():
            ratios = [c["ratio"]["ratio"] for _, c in results]
            widths = [c["ratio"]["ci"][1] - c["ratio"]["ci"][0] for _, c in results]
            slower = sum(c["verdict"] == "slower" for _, c in results)
            possible = sum(c["verdict"] == "possible regression" for _, c in results)
            faster = sum(c["verdict"] == "faster" for _, c in results)
            exits = sum(code == 1 for code, _ in results)
            print(f"| {name} | {slower} ({exits}) | {possible} | {faster} | {min(ratios):.3f}-"
                  f"{max(ratios):.3f} | {statistics.median(widths):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
