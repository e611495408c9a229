"""Measure optieval's precision artifacts on this CPU (issue 4).

1. Latency: a ResNet-18-sized CNN (built here, random weights; 3x224x224 input) exported to ONNX,
   converted to FP16 and INT8 (QDQ) with optieval.convert, then run on ONNX Runtime CPU at batch 8.
   The three sessions are timed in interleaved blocks (fp32, fp16, int8, fp32, ...) so that load
   from other processes hits all of them alike; the script prints each p50 and the ratios
   int8/fp32 and fp16/fp32. Calibration data does not change speed, so random calibration is used
   for this model only (optieval warns about it, as it should).
2. Agreement: a small CNN trained here on scikit-learn's digits (8x8 images upsampled to 32x32),
   calibrated on 200 training images, then top-1 agreement of INT8 (and FP16) with FP32 and
   accuracy of each, on the 597 held-out images.

Run from the repository root:  python benchmarks/bench_precision.py [--rounds 30] [--threads 2]
Needs scikit-learn (a test dependency, not a core one). Prints the CPU flags with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

import optieval

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared resnet module
from resnet import ResNet18

from optieval.core.data import Dataset


def cpu_summary() -> dict[str, str]:
    """CPU model, cores and the instruction-set flags that decide INT8 speed."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass

    def has(*names: str) -> str:
        return "yes" if any(n in flags for n in names) else "no"

    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "AVX2": has("avx2"),
        "AVX-512F": has("avx512f"),
        "AVX512-VNNI": has("avx512_vnni"),
        "AVX-VNNI": has("avx_vnni"),
        "AMX-INT8": has("amx_int8"),
        "AVX512-FP16": has("avx512_fp16"),
    }


# -- models -------------------------------------------------------------------------------------


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU()
            )

        self.features = nn.Sequential(block(1, 16, 1), block(16, 32, 2), block(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def export(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return path


# -- measurements -------------------------------------------------------------------------------


def session(path: str, threads: int, disabled: list[str] | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if disabled:
        return ort.InferenceSession(
            path, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
        )
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


# ORT's common-subexpression elimination merges the artifact's dedicated Q/DQ pairs again; a
# shared int8 QuantizeLinear is then not turned into uint8 on x86, and the Convs behind it stay
# in float. With it disabled every Conv becomes a QLinearConv.
NO_CSE = ["CommonSubexpressionElimination"]


def uint8_reference(model: Path, work: Path) -> str:
    """ORT's preferred x86 CPU format: uint8 asymmetric activations. Not an optieval artifact
    (TensorRT accepts only zero point 0): it shows what the symmetric artifact costs on ORT CPU."""
    import logging

    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    logging.disable(logging.WARNING)
    pre, out = work / "r18.pre.onnx", work / "r18.uint8.onnx"
    quant_pre_process(str(model), str(pre))
    rng = np.random.default_rng(0)
    feeds = iter([{"x": rng.normal(size=(8, 3, 224, 224)).astype(np.float32)} for _ in range(2)])

    class Reader:
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    logging.disable(logging.NOTSET)
    return str(out)


def latency(paths: dict[str, str], threads: int, rounds: int, block: int) -> dict[str, list[float]]:
    x = np.random.default_rng(0).normal(size=(8, 3, 224, 224)).astype(np.float32)
    sessions = {
        name: session(p, threads, NO_CSE if name.endswith("CSE off)") else None)
        for name, p in paths.items()
    }
    for s in sessions.values():  # warm-up, discarded
        for _ in range(3):
            s.run(None, {"x": x})
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, s in sessions.items():
            for _ in range(block):
                start = time.perf_counter_ns()
                s.run(None, {"x": x})
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    return times


def digits_agreement(work: Path) -> dict[str, float]:
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    images = torch.from_numpy((digits.images / 16.0).astype(np.float32))[:, None]
    images = nn.functional.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    x_all = ((images - 0.5) / 0.5).numpy().astype(np.float32)
    y_all = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y_all))
    train, held = order[:1200], order[1200:]
    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_all[train]), torch.from_numpy(y_all[train])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=5e-3, total_steps=25 * ((len(train) + 63) // 64)
    )
    for _ in range(25):
        model.train()
        perm = torch.randperm(len(train))
        for start in range(0, len(train), 64):
            idx = perm[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            optimizer.step()
            scheduler.step()
    fp32 = export(model, torch.from_numpy(x_all[:2]), work / "digits.onnx")
    calib = Dataset({"x": x_all[train[:200]]}, None, [], "digits train[:200]")
    artifacts = {"fp32": fp32, "fp16": Path(optieval.convert(fp32, "fp16").output)}
    for method in ("minmax", "entropy", "percentile"):
        out = work / f"digits.int8.{method}.onnx"
        optieval.convert(fp32, "int8", calib=calib, calib_method=method, output=out)
        artifacts[f"int8 {method}"] = out
    held_x, held_y = x_all[held], y_all[held]
    predictions = {
        name: session(str(p), 2).run(None, {"x": held_x})[0].argmax(1)
        for name, p in artifacts.items()
    }
    figures = {"held_out": float(len(held))}
    for name, predicted in predictions.items():
        figures[f"accuracy {name}"] = float((predicted == held_y).mean())
        figures[f"agreement {name}"] = float((predicted == predictions["fp32"]).mean())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--block", type=int, default=3, help="iterations per cell per round")
    parser.add_argument("--threads", type=int, default=2, help="ORT intra-op threads")
    parser.add_argument("--skip-digits", action="store_true", help="latency only")
    args = parser.parse_args()

    cpu = cpu_summary()
    print("CPU: " + "; ".join(f"{k} {v}" for k, v in cpu.items()))
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.setdefault("OPTIEVAL_CACHE", str(work / "cache"))
        agreement = {} if args.skip_digits else digits_agreement(work)
        if agreement:
            print(f"digits CNN (trained here), {agreement.pop('held_out'):.0f} held-out images:")
        for name in [k.split(" ", 1)[1] for k in agreement if k.startswith("accuracy")]:
            print(
                f"  {name:16s} top-1 agreement with fp32 {agreement['agreement ' + name]:.4f}, "
                f"accuracy {agreement['accuracy ' + name]:.4f}"
            )

        torch.manual_seed(0)
        resnet = export(ResNet18(), torch.randn(2, 3, 224, 224), work / "resnet18.onnx")
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random calibration: speed only, stated above
            int8 = optieval.convert(resnet, "int8", calib="random", calib_samples=16)
        fp16 = optieval.convert(resnet, "fp16")
        print(
            f"ResNet-18 artifacts built in {time.perf_counter() - started:.1f} s; "
            f"int8 census: {int8.census.describe()}"
        )
        times = latency(
            {
                "fp32": str(resnet),
                "fp16": fp16.output,
                "int8": int8.output,
                "int8 (CSE off)": int8.output,
                "uint8 asym (reference)": uint8_reference(resnet, work),
            },
            args.threads,
            args.rounds,
            args.block,
        )
    p50 = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        q = statistics.quantiles(t, n=10)
        print(
            f"ResNet-18 batch 8 {name}: p50 {p50[name]:.1f} ms (p10 {q[0]:.1f}, p90 {q[-1]:.1f}; "
            f"{len(t)} runs)"
        )
    print(
        f"ratio int8/fp32 p50: {p50['int8'] / p50['fp32']:.2f} (default session), "
        f"{p50['int8 (CSE off)'] / p50['fp32']:.2f} (CSE off); target <= 0.40"
    )
    print(
        f"ratio uint8-asymmetric reference/fp32 p50: "
        f"{p50['uint8 asym (reference)'] / p50['fp32']:.2f} (not TensorRT-compatible)"
    )
    print(f"ratio fp16/fp32 p50: {p50['fp16'] / p50['fp32']:.2f} (fp16 runs through casts on x86)")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
