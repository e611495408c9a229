"""INT8 formats as deployed (issue 17, items 3 and 4): speed in plain ONNX Runtime sessions and
accuracy on real trained models, with ONNX Runtime's own quantizers as anchors.

1. Speed: a ResNet-18 layout (random weights; benchmarks/resnet.py) exported here, batch 8,
   every artifact opened with ``onnxruntime.InferenceSession(path)`` and DEFAULT options (what a
   user deploys; no CSE switch, no thread setting), timed in interleaved rounds:
   fp32; optieval ``-p int8 --backend ort-cpu`` (u8s8 on x86); optieval's portable ``symmetric``;
   ONNX Runtime's own U8S8 artifact (``quantize_static``: QDQ, per-channel, QUInt8 activations).
   Calibration is random for this model (speed only). Prints p50s and the ratios with targets:
   ort-cpu int8 <= 1.0x ORT's U8S8 and <= 0.45x fp32; symmetric <= 0.7x fp32.
2. Accuracy (when ``--real DIR`` holds benchmarks/models' exports, default /tmp/realmodels):
   EfficientNet-Lite0: top-1 agreement with fp32 on the eval crops for optieval u8s8 and
   symmetric and for ``quantize_static`` (U8 activations, per-channel) with the same calibration
   crops; MiniLM-L6: per-sentence cosine with fp32 (mean, min) and 5-NN agreement for optieval
   dynamic and symmetric and for ``quantize_dynamic`` (its defaults); MiniLM p50 at seq 128
   (fp32 vs optieval dynamic), plain sessions.

Run from the repository root:  python benchmarks/int8_formats.py [--rounds 20]
[--parts speed,effnet,minilm]
Everything it writes lives in a temporary folder that it removes.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import optieval
from optieval.core import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared modules of this folder
from bench_precision import cpu_summary, export
from resnet import ResNet18


def plain(path: str | Path) -> ort.InferenceSession:
    """What a deployment does: default session options, the CPU provider."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def interleaved(
    sessions: dict[str, ort.InferenceSession], feeds: dict[str, np.ndarray], rounds: int
) -> dict[str, list[float]]:
    """``rounds`` rounds, each cell once per round in turn (load hits every cell alike), after
    two discarded warm-up runs per cell; milliseconds."""
    for s in sessions.values():
        for _ in range(2):
            s.run(None, feeds)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            start = time.perf_counter_ns()
            s.run(None, feeds)
            times[name].append((time.perf_counter_ns() - start) / 1e6)
    return times


def ort_u8s8(model: Path, out: Path, reader: Callable[[], object]) -> Path:
    """ONNX Runtime's own static artifact: quant_pre_process, then quantize_static with QDQ,
    per-channel int8 weights and uint8 activations (its defaults otherwise)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def reader_of(inputs: dict[str, np.ndarray], batch: int) -> Callable[[], object]:
    def make() -> object:
        count = len(next(iter(inputs.values())))
        batches = iter(
            [{k: v[i : i + batch] for k, v in inputs.items()} for i in range(0, count, batch)]
        )

        class Reader:
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(batches, None)

        return Reader()

    return make


def speed(work: Path, rounds: int) -> None:
    torch.manual_seed(0)
    model = export(ResNet18(), torch.randn(2, 3, 224, 224), work / "resnet18.onnx")
    rng = np.random.default_rng(0)
    calib = {"x": rng.normal(size=(16, 3, 224, 224)).astype(np.float32)}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random calibration: speed only, stated above
        cpu = optieval.convert(model, "int8", calib=Dataset(calib), backend="ort-cpu",
                               output=work / "r18.ort-cpu.onnx")  # fmt: skip
        portable = optieval.convert(model, "int8", calib=Dataset(calib),
                                    output=work / "r18.symmetric.onnx")  # fmt: skip
    anchor = ort_u8s8(model, work / "r18.ort_u8s8.onnx", reader_of(calib, 8))
    print(
        f"ResNet-18 artifacts built in {time.perf_counter() - started:.0f} s; "
        f"ort-cpu int8 = {cpu.int8_format}: {cpu.census.describe()}; "
        f"portable = {portable.int8_format}: {portable.census.describe()}"
    )
    paths = {
        "fp32": model,
        f"optieval int8 ort-cpu ({cpu.int8_format})": Path(cpu.output),
        "optieval int8 portable (symmetric)": Path(portable.output),
        "ORT quantize_static U8S8": anchor,
    }
    x = rng.normal(size=(8, 3, 224, 224)).astype(np.float32)
    times = interleaved({k: plain(p) for k, p in paths.items()}, {"x": x}, rounds)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    for name, t in times.items():
        q = statistics.quantiles(t, n=10)
        print(f"  {name:38s} p50 {p50[name]:7.1f} ms (p10 {q[0]:.1f}, p90 {q[-1]:.1f}; "
              f"{len(t)} runs)")  # fmt: skip
    fp32, names = p50["fp32"], list(p50)
    cpu_p50, portable_p50, anchor_p50 = (p50[n] for n in names[1:])
    print(f"  ort-cpu int8 / ORT U8S8: {cpu_p50 / anchor_p50:.2f} (target <= 1.0)")
    print(f"  ort-cpu int8 / fp32:     {cpu_p50 / fp32:.2f} (target <= 0.45)")
    print(f"  symmetric / fp32:        {portable_p50 / fp32:.2f} (target <= 0.7)")
    print(f"  ORT U8S8 / fp32:         {anchor_p50 / fp32:.2f} (reference)")


def effnet(real: Path, work: Path) -> None:
    model = real / "effnet_lite0.onnx"
    calib = dict(np.load(real / "effnet_calib.npz"))
    evaluation = np.load(real / "effnet_eval.npz")["image"]

    def top1(path: Path) -> np.ndarray:
        s = plain(path)
        return np.concatenate(
            [s.run(None, {"image": evaluation[i : i + 50]})[0].argmax(1)
             for i in range(0, len(evaluation), 50)]
        )  # fmt: skip

    reference = top1(model)
    results = {}
    for fmt in ("u8s8", "symmetric"):
        started = time.perf_counter()
        made = optieval.convert(model, "int8", calib=real / "effnet_calib.npz", int8_format=fmt,
                                output=work / f"effnet.{fmt}.onnx")  # fmt: skip
        results[f"optieval {fmt}"] = (Path(made.output), time.perf_counter() - started)
    started = time.perf_counter()
    anchor = ort_u8s8(model, work / "effnet.ort_u8s8.onnx", reader_of(calib, 16))
    results["ORT quantize_static U8S8"] = (anchor, time.perf_counter() - started)
    print(f"EfficientNet-Lite0, {len(evaluation)} eval crops, calibration "
          f"{len(calib['image'])} crops; top-1 agreement with fp32:")  # fmt: skip
    for name, (path, seconds) in results.items():
        agree = float((top1(path) == reference).mean())
        low, high = _wilson(agree, len(reference))
        print(f"  {name:28s} {agree:.4f} [{low:.3f}, {high:.3f}]  (built in {seconds:.0f} s)")


def minilm(real: Path, work: Path, rounds: int) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = real / "minilm.onnx"
    ev = dict(np.load(real / "minilm_eval.npz"))
    feeds = {k: ev[k] for k in ("input_ids", "attention_mask")}
    count = len(feeds["input_ids"])

    def embed(path: Path) -> np.ndarray:
        s = plain(path)
        return np.concatenate(
            [s.run(None, {k: v[i : i + 20] for k, v in feeds.items()})[0]
             for i in range(0, count, 20)]
        )  # fmt: skip

    reference = embed(model)
    anchor = work / "minilm.ort_dynamic.onnx"
    started = time.perf_counter()
    quantize_dynamic(str(model), str(anchor), weight_type=QuantType.QInt8)
    paths = {"ORT quantize_dynamic": (anchor, time.perf_counter() - started)}
    for fmt in ("dynamic", "symmetric"):
        started = time.perf_counter()
        made = optieval.convert(model, "int8", calib=real / "minilm_calib.npz", int8_format=fmt,
                                output=work / f"minilm.{fmt}.onnx")  # fmt: skip
        paths[f"optieval {fmt}"] = (Path(made.output), time.perf_counter() - started)
    print(f"MiniLM-L6, {count} eval sentences at seq 128; per-sentence cosine with fp32 "
          "and 5-NN agreement:")  # fmt: skip
    for name, (path, seconds) in paths.items():
        out = embed(path)
        cos = np.sum(out * reference, 1) / (
            np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1)
        )
        print(f"  {name:24s} mean {cos.mean():.4f}  min {cos.min():.4f}  "
              f"5-NN {_knn(out, reference):.3f}  (built in {seconds:.0f} s)")  # fmt: skip
    one = {k: v[:1] for k, v in feeds.items()}
    cells = {"fp32": plain(model), "optieval dynamic": plain(paths["optieval dynamic"][0]),
             "ORT quantize_dynamic": plain(anchor)}  # fmt: skip
    times = interleaved(cells, one, rounds)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    print(f"MiniLM-L6 batch 1, seq 128, plain sessions, {rounds} interleaved runs each:")
    for name, value in p50.items():
        print(f"  {name:24s} p50 {value:7.2f} ms  ({value / p50['fp32']:.2f}x fp32)")


def _knn(out: np.ndarray, reference: np.ndarray, k: int = 5) -> float:
    def neighbours(e: np.ndarray) -> np.ndarray:
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        sims = e @ e.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    a, b = neighbours(reference), neighbours(out)
    return float(np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(a))]))


def _wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds per cell")
    parser.add_argument("--real", type=Path, default=Path("/tmp/realmodels"),
                        help="folder of benchmarks/models exports")  # fmt: skip
    parser.add_argument("--parts", default="speed,effnet,minilm",
                        help="comma-separated: speed, effnet, minilm")  # fmt: skip
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    logging.disable(logging.WARNING)  # onnxruntime.quantization logs freely
    print("CPU: " + "; ".join(f"{k} {v}" for k, v in cpu_summary().items()))
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, default session options")
    with tempfile.TemporaryDirectory(prefix="int8-formats-") as tmp:
        work = Path(tmp)
        os.environ["OPTIEVAL_CACHE"] = str(work / "cache")
        if "speed" in parts:
            speed(work, args.rounds)
        if parts & {"effnet", "minilm"} and not (args.real / "minilm.onnx").is_file():
            print(f"no real models in {args.real}: accuracy part skipped")
        else:
            if "effnet" in parts:
                effnet(args.real, work)
            if "minilm" in parts:
                minilm(args.real, work, args.rounds)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
