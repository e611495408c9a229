"""What the Ray executor costs against the local one on this machine.

1. Wall time of one gate of eight CPU cells (ort-cpu fp32 and int8 at batch 1, 2, 4, 8; one
   thread each) plus its parity, through ``--executor local`` and ``--executor ray`` (a Ray
   instance started here, bound to 127.0.0.1; its start-up is timed apart). The first Ray gate
   starts Ray's workers; later ones find them warm.
2. The latency of the same cell (ort-cpu fp32, batch 8, one thread) under both executors,
   alternating runs: p50 and p99 each with its 95% interval, and the ratio of the p50s.

Run: ``python benchmarks/bench_executors.py [--duration 1.0] [--repeats 3]``. Needs ``ray``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray on loopback only (see tests)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _model(path: Path, features: int = 256, hidden: int = 512, classes: int = 10) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shapes = {"w1": (features, hidden), "w2": (hidden, hidden), "w3": (hidden, classes)}
    init = [
        numpy_helper.from_array((rng.normal(size=s) / np.sqrt(s[0])).astype(np.float32), n)
        for n, s in shapes.items()
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "w2"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["r2"]),
        helper.make_node("MatMul", ["r2", "w3"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    x = rng.normal(size=(256, features)).astype(np.float32)
    np.savez(path.parent / "eval.npz", x=x, labels=rng.integers(0, classes, 256))
    return path


CONFIG = """
[model]
path = "mlp.onnx"

[data]
calibration = "eval.npz"
evaluation = "eval.npz"
labels = "labels"

[measure]
warmup_s = 0.2
duration_s = {duration}
max_duration_s = {duration}

[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = [1, 2, 4, 8]
threads = 1
latency = {{ p99_ms_max = 1000.0 }}
accuracy = {{ cosine_min = 0.5 }}

[[target]]
backend = "ort-cpu"
precision = "int8"
batch = [1, 2, 4, 8]
threads = 1
latency = {{ p99_ms_max = 1000.0 }}
accuracy = {{ cosine_min = 0.5 }}
"""


def _cell(model: Path, duration: float, executor: Any) -> Any:
    from optieval.bench.latency import MeasureSettings
    from optieval.bench.runner import benchmark

    report = benchmark(
        model,
        batches=[8],
        threads=1,
        settings=MeasureSettings(warmup_s=0.2, duration_s=duration, max_duration_s=duration),
        isolate=True,
        executor=executor,
    )
    return report.results[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--ray-cpus", type=int, default=2, help="CPUs Ray offers (1: one cell at a time)"
    )
    parser.add_argument("--skip-local", action="store_true", help="only the Ray runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="optieval-bench-executors-"))
    os.environ["OPTIEVAL_CACHE"] = str(work / "cache")
    model = _model(work / "mlp.onnx")
    config = work / "release.toml"
    config.write_text(CONFIG.format(duration=args.duration), encoding="utf-8")

    import ray

    from optieval.execution import RayExecutor
    from optieval.release.run import gate

    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    for i in range(0 if args.skip_local else args.repeats):
        start = time.perf_counter()
        report = gate(config, out_dir=work / f"local{i}")
        walls["local"].append(time.perf_counter() - start)
        print(f"local gate {i}: {walls['local'][-1]:.1f} s, {report.summary}", flush=True)

    start = time.perf_counter()
    ray.init(
        address="local",
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=100 * 2**20,
        num_cpus=args.ray_cpus,
        log_to_driver=False,
    )
    ray_start = time.perf_counter() - start
    print(f"ray.init: {ray_start:.1f} s", flush=True)
    with RayExecutor() as executor:
        for i in range(args.repeats):
            start = time.perf_counter()
            report = gate(config, out_dir=work / f"ray{i}", executor=executor)
            walls["ray"].append(time.perf_counter() - start)
            pinned = sum(bool((c.placement or {}).get("pinning", {}).get("pinned"))
                         for c in report.cells)  # fmt: skip
            print(f"ray gate {i}: {walls['ray'][-1]:.1f} s, {report.summary}, "
                  f"{pinned}/{len(report.cells)} cells pinned", flush=True)  # fmt: skip

        cells: dict[str, list[Any]] = {"local": [], "ray": []}
        for _ in range(args.repeats):  # alternating, so that drifting load hits both
            if not args.skip_local:
                cells["local"].append(_cell(model, args.duration, None))
            cells["ray"].append(_cell(model, args.duration, executor))
    ray.shutdown()
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)

    print("\n| executor | gate wall per run (s) | median |")
    print("| --- | --- | --- |")
    for name, values in walls.items():
        if not values:
            continue
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {runs} | {statistics.median(values):.1f} |")
    print(f"\nray.init (once): {ray_start:.1f} s")

    print("\n| executor | run | samples | p50 ms [95% CI] | p99 ms [95% CI] |")
    print("| --- | --- | --- | --- | --- |")
    p50: dict[str, list[float]] = {"local": [], "ray": []}
    for name, runs in cells.items():
        for i, cell in enumerate(runs):
            lat, ci = cell.latency_ms or {}, cell.ci95_ms or {}
            p50[name].append(lat["p50"])

            def fmt(key: str, lat: dict[str, Any] = lat, ci: dict[str, Any] = ci) -> str:
                low, high = ci.get(key) or (float("nan"), float("nan"))
                return f"{lat[key]:.4f} [{low:.4f}, {high:.4f}]"

            print(f"| {name} | {i} | {cell.samples} | {fmt('p50')} | {fmt('p99')} |")
    if not p50["local"]:
        return
    ratio = statistics.median(p50["ray"]) / statistics.median(p50["local"])
    spread = [r / loc for r in p50["ray"] for loc in p50["local"]]
    print(
        f"\nratio of median p50 (ray / local): {ratio:.3f} "
        f"(over every pair of runs: {min(spread):.3f} to {max(spread):.3f})"
    )


if __name__ == "__main__":
    main()
