"""Measure the shipped detector on ONNX Runtime CPU (issue 9).

1. Latency: fp32, fp16 and int8 at batch 1 and 8, on the evaluation images (``--data``, cycled
   through), for both deployed forms: the raw head (optieval post-processes) and NMS in the
   graph (output sizes depend on the images), through ``optieval.benchmark``. INT8 is
   calibrated on the evaluation images.
2. Accuracy: for each precision, box matching against fp32 and the mAP delta (COCO-style
   mAP@0.5 and @0.5:0.95) with its 95% paired bootstrap interval over the 128 images, through
   ``compare_detection``; also INT8 with the box head (``/head/Conv``) kept in float.

Run from the repository root:  python benchmarks/bench_detection.py [--threads 2] [--duration 3]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_precision import cpu_summary

import optieval
from optieval.assets import DETECTOR_DATA, DETECTOR_NMS_ONNX, DETECTOR_ONNX
from optieval.bench.latency import MeasureSettings
from optieval.detection.compare import compare_detection


def latency(threads: int, duration: float) -> None:
    print("| model | precision | batch | p50 ms [95% CI] | p99 ms | images/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model in (DETECTOR_ONNX, DETECTOR_NMS_ONNX):
        report = optieval.benchmark(
            model,
            precisions=("fp32", "fp16", "int8"),
            batches=(1, 8),
            data=DETECTOR_DATA,
            calib=DETECTOR_DATA,
            threads=threads,
            settings=MeasureSettings(duration_s=duration),
        )
        for cell in report.results:
            if cell.status != "ok" or cell.latency_ms is None:
                print(f"| {model.name} | {cell.precision} | {cell.batch} | {cell.status}: "
                      f"{cell.reason} | | |")  # fmt: skip
                continue
            ci = (cell.ci95_ms or {}).get("p50") or [float("nan")] * 2
            rate = (cell.throughput or {}).get("items_per_s", float("nan"))
            print(
                f"| {model.name} | {cell.precision} | {cell.batch} | "
                f"{cell.latency_ms['p50']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | "
                f"{cell.latency_ms['p99']:.3f} | {rate:,.0f} |"
            )


def accuracy(threads: int) -> None:
    print(
        "| candidate | box match [95% CI] | mean IoU | mAP@.5 Δ [95% CI] | mAP@.5:.95 Δ [95% CI] |"
    )
    print("| --- | --- | --- | --- | --- |")
    runs = [(["ort-cpu:fp16", "ort-cpu:int8"], ()), (["ort-cpu:int8"], ("/head/Conv",))]
    for candidates, exclude in runs:
        report = compare_detection(DETECTOR_ONNX, candidates, data=DETECTOR_DATA,
                                   exclude=exclude, threads=threads)  # fmt: skip
        for r in report.results:
            label = r.candidate + (f" (--exclude {','.join(exclude)})" if exclude else "")

            def iv(value: float | None, ci: object) -> str:
                if value is None or ci is None:
                    return "-"
                return f"{value:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"  # type: ignore[attr-defined]

            box_ci = r.box_match_ci
            box = f"{r.box_match:.4f}" + (
                f" [{box_ci.low:.3f}, {box_ci.high:.3f}]" if box_ci else ""
            )
            deltas = f"{iv(r.map50_delta, r.map50_delta_ci)} | {iv(r.map_delta, r.map_delta_ci)}"
            print(f"| {label} | {box} | {r.mean_iou or float('nan'):.4f} | {deltas} |")
    ref = report.results[0]
    print(f"\nfp32 reference: mAP@0.5 {ref.map50_reference:.4f}, mAP@0.5:0.95 "
          f"{ref.map_reference:.4f} on {ref.images} images")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("machine:", ", ".join(f"{k}: {v}" for k, v in cpu_summary().items()))
    print("onnxruntime", __import__("onnxruntime").__version__, f"threads {args.threads}\n")
    latency(args.threads, args.duration)
    print()
    accuracy(args.threads)


if __name__ == "__main__":
    main()
