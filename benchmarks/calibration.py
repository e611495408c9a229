"""Calibration methods measured (issue 17): time, peak memory and accuracy of optieval's streaming
min-max, entropy and percentile calibration, against ONNX Runtime's own calibrators.

For each INT8 format and method, in a fresh subprocess (so that its peak resident memory is its
own): ``optieval.convert(model, "int8", calib=..., calib_method=..., int8_format=...)`` in an
empty cache, wall time and peak RSS (``ru_maxrss``); then top-1 agreement of the artifact with
FP32 on the evaluation images (disjoint from calibration) in a plain ONNX Runtime session, with
Clopper-Pearson 95% intervals, and how many activation scales differ from min-max's.

Anchors (``--ort``): ``onnxruntime.quantization.quantize_static`` with its own MinMax and Entropy
calibrators (symmetric activations, as the symmetric format) on the first ``--ort-samples``
calibration images: time, peak RSS, and whether Entropy's scales equal MinMax's.

Run (EfficientNet-Lite0, about 10 minutes on 2 cores)::

    python benchmarks/calibration.py --model /tmp/realmodels/effnet_lite0.onnx \\
        --calib /tmp/realmodels/effnet_calib.npz --eval /tmp/realmodels/effnet_eval.npz --ort
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _scales(path: str) -> dict[str, float]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {
        n.input[0]: float(inits[n.input[1]])
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and n.input[1] in inits
    }


def _child_convert(args: argparse.Namespace) -> None:
    """In a subprocess: convert, report time and peak RSS, then the scales and top-1."""
    from optieval.precision import convert

    out = Path(args.work) / f"{args.format}.{args.method}.onnx"
    kwargs: dict[str, Any] = {"calib": args.calib, "calib_method": args.method, "output": out}
    if args.calib_samples:
        kwargs["calib_samples"] = args.calib_samples
    if args.format:
        kwargs["int8_format"] = args.format
    started = time.perf_counter()
    convert(args.model, "int8", **kwargs)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MiB (Linux: KiB)
    print(json.dumps({"seconds": seconds, "peak_rss_mib": rss, "output": str(out)}))


def _child_ort(args: argparse.Namespace) -> None:
    """In a subprocess: ONNX Runtime's own calibrator (symmetric activations)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    data = np.load(args.calib)
    name = next(iter(data.files))
    x = data[name][: args.ort_samples]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: x[i : i + 8]} for i in range(0, len(x), 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    pre = Path(args.work) / "ort_pre.onnx"
    if not pre.exists():
        quant_pre_process(args.model, str(pre))
    out = Path(args.work) / f"ort.{args.method}.onnx"
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method[args.method],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "peak_rss_mib": rss, "output": str(out)}))


def _run_child(mode: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, f"--child-{mode}", "--model", args.model]
    command += ["--calib", args.calib, "--work", args.work]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ, OPTIEVAL_CACHE=str(Path(args.work) / f"cache-{time.time_ns()}"))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _outputs(path: str, data: Any, model: str) -> np.ndarray:
    """The first output of ``path`` on every sample of ``data`` (keys named like ``model``'s
    inputs), in batches of 16."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in ort.InferenceSession(model).get_inputs()]
    count = len(data[names[0]])
    return np.concatenate(
        [
            np.asarray(session.run(None, {n: data[n][i : i + 16] for n in names})[0])
            for i in range(0, count, 16)
        ]
    )


def _score(metric: str, ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    from optieval.stats import clopper_pearson_interval

    if metric == "top1":
        agree = int((ref.argmax(1) == got.argmax(1)).sum())
        ci = clopper_pearson_interval(agree, len(ref))
        return {"top1_agreement": agree / len(ref), "top1_ci": [ci.low, ci.high],
                "top1_agrees": (ref.argmax(1) == got.argmax(1)).tolist()}  # fmt: skip
    a = ref.reshape(len(ref), -1).astype(np.float64)
    b = got.reshape(len(got), -1).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}


def _paired(args: argparse.Namespace, data: Any, reference: np.ndarray) -> None:
    """Paired comparison of the artifacts in ``--work`` with their format's min-max artifact on
    the same images: how many images only one of the two agrees with FP32 on (an exact
    two-sided binomial (McNemar) p-value on those discordant images)."""
    print("\n| format | method | agrees, min-max does not | min-max agrees, it does not | p |")
    print("| --- | --- | --- | --- | --- |")
    for fmt in [f for f in args.formats.split(",") if f]:
        base_path = Path(args.work) / f"{fmt}.minmax.onnx"
        if not base_path.is_file():
            continue
        base = _outputs(str(base_path), data, args.model).argmax(1) == reference.argmax(1)
        for method in ("entropy", "percentile"):
            path = Path(args.work) / f"{fmt}.{method}.onnx"
            if not path.is_file():
                continue
            ok = _outputs(str(path), data, args.model).argmax(1) == reference.argmax(1)
            better, worse = int((ok & ~base).sum()), int((base & ~ok).sum())
            p = _mcnemar_p(better, worse)
            print(f"| {fmt} | {method} | {better} | {worse} | {p:.3f} |", flush=True)


def _mcnemar_p(better: int, worse: int) -> float:
    """Exact two-sided binomial p-value of ``better`` against ``worse`` discordant pairs."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--calib", required=True)
    parser.add_argument("--eval")
    parser.add_argument("--metric", choices=("top1", "cosine"), default="top1")
    parser.add_argument("--formats", default="symmetric,u8s8")
    parser.add_argument("--methods", default="minmax,entropy,percentile")
    parser.add_argument("--ort", action="store_true", help="ONNX Runtime's calibrators too")
    parser.add_argument("--ort-samples", type=int, default=32)
    parser.add_argument("--ort-methods", default="minmax,entropy")
    parser.add_argument("--calib-samples", type=int, default=0, help="0: all")
    parser.add_argument("--work")
    parser.add_argument("--json")
    parser.add_argument("--paired", action="store_true", help="paired comparison only")
    parser.add_argument("--child-convert", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-ort", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--format", default="", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="minmax", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_convert:
        _child_convert(args)
        return
    if args.child_ort:
        _child_ort(args)
        return
    holder = None
    if args.work is None:
        holder = tempfile.TemporaryDirectory(prefix="calib-bench-")
        args.work = holder.name
    data = np.load(args.eval) if args.eval else None
    reference = _outputs(args.model, data, args.model) if data is not None else None
    if args.paired:
        assert reference is not None, "--paired needs --eval"
        _paired(args, data, reference)
        return
    rows: list[dict[str, Any]] = []
    for fmt in [f for f in args.formats.split(",") if f]:
        earlier = Path(args.work) / f"{fmt}.minmax.onnx"  # from an earlier run in --work
        minmax_scales = _scales(str(earlier)) if earlier.is_file() else None
        for method in [m for m in args.methods.split(",") if m]:
            row: dict[str, Any] = {"calibrator": "optieval", "format": fmt, "method": method}
            extra = {"calib_samples": args.calib_samples} if args.calib_samples else {}
            row["samples"] = args.calib_samples or "all"
            row.update(_run_child("convert", args, format=fmt, method=method, **extra))
            if "output" in row:
                scales = _scales(row["output"])
                if method == "minmax":
                    minmax_scales = scales
                if minmax_scales is not None:
                    row["scales"] = len(scales)
                    row["scales_differing_from_minmax"] = sum(
                        scales.get(k) != v for k, v in minmax_scales.items()
                    )
                if reference is not None:
                    got = _outputs(row["output"], data, args.model)
                    row.update(_score(args.metric, reference, got))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "top1_agrees"}), flush=True)
    if args.ort:
        ort_scales = {}
        for method in [m for m in args.ort_methods.split(",") if m]:
            row = {"calibrator": "onnxruntime", "format": "symmetric", "method": method}
            row["samples"] = args.ort_samples
            row.update(_run_child("ort", args, method=method, ort_samples=args.ort_samples))
            if "output" in row:
                ort_scales[method] = _scales(row["output"])
            rows.append(row)
            print(json.dumps(row), flush=True)
        if len(ort_scales) == 2:
            same = ort_scales["minmax"] == ort_scales["entropy"]
            print(f"ONNX Runtime entropy scales identical to its min-max: {same}")
    print()
    print(
        "| calibrator | format | method | samples | convert s | peak RSS MiB "
        "| top-1 agreement [95% CI] or cosine | scales != minmax |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ci = r.get("top1_ci")
        top1 = f"{r['top1_agreement']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        if "cosine_mean" in r:
            top1 = f"cosine mean {r['cosine_mean']:.4f}, min {r['cosine_min']:.4f}"
        print(
            f"| {r['calibrator']} | {r['format']} | {r['method']} | {r.get('samples', '-')} | "
            f"{r.get('seconds', float('nan')):.1f} | {r.get('peak_rss_mib', float('nan')):.0f} | "
            f"{top1} | {r.get('scales_differing_from_minmax', '-')}"
            f"{'/' + str(r['scales']) if 'scales' in r else ''} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
