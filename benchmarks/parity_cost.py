"""What parity costs, and how honest its intervals are.

1. Interval coverage by simulation: how often the 95% intervals of ``flip_rate`` (Wilson),
   ``accuracy_delta`` (Newcombe, paired) and ``accuracy_ratio`` (the delta interval over the
   reference accuracy) contain the true value, at a few sample sizes and rates.
2. Cost on a 12-layer MLP (64 -> 256 x 11 -> 100 classes): ``compare`` of an INT8 candidate on
   512 samples (reference and candidate runs + metrics), the metrics alone, and ``--localize``
   (all intermediate tensors exposed, 16 samples).

Run: ``python benchmarks/parity_cost.py`` (about 10 s on 2 cores).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def coverage(sims: int = 4000, seed: int = 0) -> None:
    from optieval.stats import (
        paired_difference_interval,
        paired_ratio_interval,
        wilson_interval,
    )

    rng = np.random.default_rng(seed)
    print("flip_rate (Wilson) coverage of the true rate, nominal 95%")
    for n in (50, 200, 1000):
        row = []
        for p in (0.005, 0.02, 0.1):
            flips = rng.binomial(n, p, size=sims)
            row.append(np.mean([wilson_interval(int(k), n).contains(p) for k in flips]))
        print(f"  n={n:5d}  p=0.005 {row[0]:.3f}  p=0.02 {row[1]:.3f}  p=0.1 {row[2]:.3f}")
    print("accuracy_delta (Newcombe paired) / accuracy_ratio (delta / acc_ref) coverage, 95%")
    for n in (100, 500, 2000):
        p_ref, p_break, p_fix = 0.8, 0.03, 0.01
        delta = -p_ref * p_break + (1 - p_ref) * p_fix
        ratio = (p_ref + delta) / p_ref
        hit_d = hit_r = 0
        for _ in range(sims // 4):
            ref_ok = rng.random(n) < p_ref
            u = rng.random(n)
            cand_ok = np.where(ref_ok, u >= p_break, u < p_fix)
            hit_d += paired_difference_interval(cand_ok, ref_ok).contains(delta)
            hit_r += paired_ratio_interval(cand_ok, ref_ok).contains(ratio)
        print(f"  n={n:5d}  delta {hit_d / (sims // 4):.3f}  ratio {hit_r / (sims // 4):.3f}")


def _mlp(
    path: Path, layers: int = 12, width: int = 256, features: int = 64, classes: int = 100
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    dims = [features] + [width] * (layers - 1) + [classes]
    inits, nodes, prev = [], [], "x"
    for i in range(layers):
        w = rng.normal(size=(dims[i], dims[i + 1])) / np.sqrt(dims[i] / 2)
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        inits.append(numpy_helper.from_array(np.zeros(dims[i + 1], np.float32), f"b{i}"))
        out = "logits" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], name=f"fc{i}"))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def cost(repeats: int = 5) -> None:
    import onnx

    from optieval.parity.comparison import compare
    from optieval.parity.localize import localize_models
    from optieval.parity.output_compare import compare_outputs
    from optieval.parity.tolerances import ToleranceSet
    from optieval.precision import artifact_for

    folder = Path(tempfile.mkdtemp())
    os.environ.setdefault("OPTIEVAL_CACHE", str(folder / "cache"))
    model = _mlp(folder / "mlp.onnx")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 64)).astype(np.float32)
    np.savez(folder / "data.npz", x=x, y=rng.integers(0, 100, 512))
    np.savez(folder / "calib.npz", x=rng.normal(size=(128, 64)).astype(np.float32))
    artifact = artifact_for(model, "int8", calib=str(folder / "calib.npz"))  # build once

    def timed(fn: object) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def run() -> object:
        return compare(
            model,
            ["ort-cpu:int8"],
            data=folder / "data.npz",
            labels_key="y",
            calib=folder / "calib.npz",
            batch=64,
            threads=1,
        )

    report = run()
    out = report.results[0].outputs[0]
    print(
        f"int8 vs fp32 on 512 samples: max_abs {out.max_abs:.3g}, flip_rate "
        f"{out.flip_rate:.3f}, cosine {out.cosine:.5f}, passed {report.passed}"
    )
    t_compare = timed(run)
    ref = np.random.default_rng(2).normal(size=(512, 100))
    cand = ref + 0.01 * np.random.default_rng(3).normal(size=ref.shape)
    labels = np.argmax(ref, axis=1)
    t_metrics = timed(lambda: compare_outputs({"logits": ref}, {"logits": cand}, labels=labels))
    ref_proto, cand_proto = onnx.load(str(model)), onnx.load(str(artifact))
    batches = [{"x": x[:16]}]
    t_loc = timed(
        lambda: localize_models(ref_proto, cand_proto, batches, tolerances=ToleranceSet("int8"))
    )
    print(f"compare (int8, 512 samples, batch 64, 1 thread): {t_compare * 1e3:.0f} ms")
    print(f"metrics alone (512 x 100 logits + labels):       {t_metrics * 1e3:.1f} ms")
    print(f"localize (23 tensors exposed, 16 samples):        {t_loc * 1e3:.0f} ms")


if __name__ == "__main__":
    coverage()
    cost()
