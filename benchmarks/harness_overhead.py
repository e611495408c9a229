"""How much time does optieval's timed loop add over a bare ``session.run`` loop?

Interleaved blocks in one process, on one ONNX Runtime session: bare loop, optieval's
``measure`` loop, bare, optieval, ... so that drift in the machine's state hits both alike.
Per block we take the median iteration time; the overhead is the paired difference of block
medians (optieval minus the bare block before it), reported with a 95% interval over blocks
(Student t), and the ratio of the overall p50s.

Target (issue 6): at most 2 microseconds per iteration.

Run:  python benchmarks/harness_overhead.py [--blocks 20] [--block-iters 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from optieval.bench.latency import MeasureSettings, measure
from optieval.core.environment import fingerprint
from optieval.runtime.ort import OrtCpuBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared resnet module
from resnet import ResNet18


def tiny_model(folder: Path) -> Path:
    """A few-microsecond model: one small Gemm."""
    path = folder / "tiny.onnx"
    torch.onnx.export(
        nn.Linear(16, 4),
        (torch.zeros(2, 16),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
    )
    return path


def resnet18_like(folder: Path) -> Path:
    """ResNet-18's layout at 112x112 input."""
    model = ResNet18().eval()
    path = folder / "resnet18.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 112, 112),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
    )
    return path


def bare_block(session: ort.InferenceSession, feeds: dict, iters: int) -> np.ndarray:
    perf = time.perf_counter_ns
    run = session.run
    times = np.empty(iters, dtype=np.int64)
    for i in range(iters):
        a = perf()
        run(None, feeds)
        times[i] = perf() - a
    return times


def optieval_block(runner, iters: int) -> np.ndarray:
    settings = MeasureSettings(
        warmup_s=0.0, warmup_iters=0, duration_s=1e-6, min_samples=iters, max_duration_s=3600
    )
    return measure([runner], settings).times_ns[:iters]


def run(path: Path, shape: tuple[int, ...], blocks: int, iters: int) -> None:
    backend = OrtCpuBackend(path, threads=1).load()
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    session = backend.session
    runner = backend.runner(feeds)
    bare_block(session, feeds, iters)  # warm-up
    diffs, bare_all, opt_all = [], [], []
    for _ in range(blocks):
        bare = bare_block(session, feeds, iters)
        mine = optieval_block(runner, iters)
        diffs.append((np.median(mine) - np.median(bare)) / 1e3)
        bare_all.append(bare)
        opt_all.append(mine)
    mean = statistics.fmean(diffs)
    half = 2.09 * statistics.stdev(diffs) / len(diffs) ** 0.5  # t(0.975, ~19 df)
    bare_p50 = np.median(np.concatenate(bare_all)) / 1e3
    opt_p50 = np.median(np.concatenate(opt_all)) / 1e3
    print(
        f"{path.stem:>9} input {'x'.join(map(str, shape))}: bare p50 {bare_p50:9.2f} us, "
        f"optieval p50 {opt_p50:9.2f} us, overhead {mean:+.3f} us "
        f"[{mean - half:+.3f}, {mean + half:+.3f}] (95%, {blocks} block pairs of {iters}), "
        f"ratio of p50s {opt_p50 / bare_p50:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-iters", type=int, default=2000)
    args = parser.parse_args()
    env = fingerprint(include_providers=False)
    print(
        f"machine: {env['cpu']['model']}, {env['cpu']['usable_cores']} cores, "
        f"flags {','.join(env['cpu']['flags'])}; Python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}; 1 intra-op thread"
    )
    with tempfile.TemporaryDirectory() as folder:
        run(tiny_model(Path(folder)), (2, 16), args.blocks, args.block_iters)
        run(
            resnet18_like(Path(folder)),
            (1, 3, 112, 112),
            args.blocks,
            max(20, args.block_iters // 100),
        )


if __name__ == "__main__":
    main()
