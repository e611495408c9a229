"""Measurement code of the real-model suite (``benchmarks/real_models.py``).

Builds the artifacts (optieval's fp16 and every int8 format; ONNX Runtime's ``quantize_static``
and ``quantize_dynamic`` as anchors), runs every artifact in a plain ``InferenceSession`` with
default options (as a user deploys it), and measures all of them with the same functions:
top-1 agreement or per-sample embedding cosine and nearest-neighbour agreement against fp32,
and interleaved p50 latency with the ratio to fp32. Also wraps ``optieval.compare`` and
``optieval.gate`` so that their verdicts land in the same JSON.
"""

from __future__ import annotations

import inspect
import os
import platform
import re
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# --keep reuses the exports and ONNX Runtime anchors already in the folder (optieval's own
# artifacts come from its cache there), for re-running the measurements only.
REUSE: dict[str, bool] = {"on": False}

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


@dataclass
class Artifact:
    """One ONNX file the suite measures, and how it was made."""

    label: str
    path: Path | None
    maker: str
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and self.error is None

    def to_json(self) -> dict[str, Any]:
        size = self.path.stat().st_size / 1e6 if self.ok and self.path else None
        return {
            "label": self.label,
            "maker": self.maker,
            "path": str(self.path) if self.path else None,
            "mb": size,
            "build_s": round(self.seconds, 2),
            "error": self.error,
            **self.info,
        }


def _short_error(exc: BaseException) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {line}"[:300]


def build(
    label: str,
    maker: str,
    fn: Callable[[], tuple[Path, dict[str, Any]]],
    reuse: Path | None = None,
) -> Artifact:
    if REUSE["on"] and reuse is not None and reuse.exists():
        print(f"  reused {label:22s} {reuse.name}", flush=True)
        return Artifact(label, reuse, maker, info={"reused": True})
    started = time.perf_counter()
    try:
        path, info = fn()
        art = Artifact(label, path, maker, info=info)
    except Exception as exc:  # every failure becomes a row: the run goes on
        art = Artifact(label, None, maker, error=_short_error(exc))
        if os.environ.get("REAL_MODELS_DEBUG"):
            traceback.print_exc()
    art.seconds = time.perf_counter() - started
    status = "ok" if art.ok else f"FAILED ({art.error})"
    print(f"  built {label:22s} {art.seconds:6.1f} s  {status}", flush=True)
    return art


# --- artifacts ----------------------------------------------------------------------------


def optieval_artifacts(
    fp32: Path, calib: Path, work: Path, fp16: bool = True, skip: tuple[str, ...] = ()
) -> list[Artifact]:
    """fp16 and int8 in every format ``optieval.convert`` offers, plus its ort-cpu choice."""
    import optieval

    params = inspect.signature(optieval.convert).parameters
    formats: tuple[str, ...] = ()
    if "int8_format" in params:
        from optieval.precision import INT8_FORMATS

        formats = tuple(INT8_FORMATS)

    def convert(precision: str, name: str, **kw: Any) -> tuple[Path, dict[str, Any]]:
        out = work / f"{fp32.stem}.{name}.onnx"
        result = optieval.convert(fp32, precision, output=out, **kw)
        info = {
            "int8_format": getattr(result, "int8_format", None),
            "census": _census_line(result.census.to_json()),
            "warnings": list(result.warnings),
        }
        try:
            from optieval.precision import artifact_session_options

            info["session_options"] = artifact_session_options(out)
        except Exception:  # older optieval: no recorded session settings
            pass
        return out, info

    arts = [build("optieval fp16", "optieval", lambda: convert("fp16", "fp16"))] if fp16 else []
    for fmt in (f for f in formats if f not in skip):
        kw: dict[str, Any] = {"int8_format": fmt}
        if fmt != "dynamic":
            kw["calib"] = calib
        arts.append(
            build(
                f"optieval int8 {fmt}",
                "optieval",
                lambda kw=kw, f=fmt: convert("int8", f"int8-{f}", **kw),
            )
        )
    if "backend" in params:
        best = build(
            "optieval int8 ort-cpu",
            "optieval",
            lambda: convert("int8", "int8-ortcpu", calib=calib, backend="ort-cpu"),
        )
        same = [
            a for a in arts if a.ok and a.info.get("int8_format") == best.info.get("int8_format")
        ]
        if best.ok and same:
            # The same format as a row above: report which, measure it once.
            same[0].label += " (= ort-cpu)"
        else:
            arts.append(best)
    if not formats:
        arts.append(
            build("optieval int8", "optieval", lambda: convert("int8", "int8", calib=calib))
        )
    return arts


def _census_line(census: dict[str, Any]) -> str:
    """A short census summary: the census JSON's counts of compute nodes per precision."""
    counts = census.get("compute") or census.get("counts") or census.get("by_precision")
    if isinstance(counts, dict):
        return ", ".join(f"{k} {v}" for k, v in counts.items())
    return ""


class _Reader:
    """ONNX Runtime CalibrationDataReader over an .npz's inputs, 16 samples at a time."""

    def __init__(self, arrays: dict[str, np.ndarray], names: list[str]) -> None:
        n = len(next(iter(arrays.values())))
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{k: arrays[k][i : i + 16] for k in names} for i in range(0, n, 16)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def ort_anchors(fp32: Path, calib: Path, work: Path, dynamic: bool = True) -> list[Artifact]:
    """ONNX Runtime's own quantizers on the same model with the same calibration data."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    names = [
        i.name
        for i in ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()
    ]
    arrays = dict(np.load(calib))

    def static() -> tuple[Path, dict[str, Any]]:
        out = work / f"{fp32.stem}.ort-static-qu8.onnx"
        quantize_static(
            str(fp32),
            str(out),
            _Reader(arrays, names),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # Named: ONNX Runtime 1.31's default activation type is QInt8, which its x86 CPU
            # kernels fuse only in part; U8 activations with S8 weights is its fast CPU form.
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return out, {
            "options": "quantize_static(QDQ, per_channel=True, activation_type=QUInt8, "
            "weight_type=QInt8; MinMax)"
        }

    def make_dynamic() -> tuple[Path, dict[str, Any]]:
        out = work / f"{fp32.stem}.ort-dynamic.onnx"
        try:
            quantize_dynamic(str(fp32), str(out))
            return out, {"options": "quantize_dynamic(defaults)"}
        except Exception as exc:
            # ONNX Runtime's documented remedy: its pre-processing (shape inference, fusion).
            from onnxruntime.quantization.shape_inference import quant_pre_process

            first = _short_error(exc)
            pre = work / f"{fp32.stem}.ort-preprocessed.onnx"
            quant_pre_process(str(fp32), str(pre))
            quantize_dynamic(str(pre), str(out))
            return out, {
                "options": "quant_pre_process, then quantize_dynamic(defaults)",
                "plain_call_failed": first,
            }

    out = work / f"{fp32.stem}.ort-static-qu8.onnx"
    arts = [build("ORT quantize_static U8S8", "onnxruntime", static, out)]
    if dynamic:
        out = work / f"{fp32.stem}.ort-dynamic.onnx"
        arts.append(build("ORT quantize_dynamic", "onnxruntime", make_dynamic, out))
    return arts


# --- running ------------------------------------------------------------------------------


def plain_session(path: Path) -> Any:
    """A session exactly as a user deploys the file: default options, CPU provider."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_all(session: Any, feeds: dict[str, np.ndarray], batch: int) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    outs = [
        session.run(None, {k: v[i : i + batch] for k, v in feeds.items()})[0]
        for i in range(0, n, batch)
    ]
    return np.concatenate(outs).astype(np.float64)


def latency(
    sessions: dict[str, Any], feeds: dict[str, np.ndarray], rounds: int, round_s: float
) -> dict[str, list[float]]:
    """Per-run wall times (ms) of each session on ``feeds``, rounds interleaved across sessions so
    that a busy spell on a shared machine falls on all of them alike."""
    labels = list(sessions)
    times: dict[str, list[float]] = {k: [] for k in labels}
    per_run: dict[str, float] = {}
    for label in labels:
        for _ in range(3):
            sessions[label].run(None, feeds)
        t0 = time.perf_counter()
        sessions[label].run(None, feeds)
        per_run[label] = max(time.perf_counter() - t0, 1e-4)
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            iters = max(3, int(round_s / per_run[label]))
            session = sessions[label]
            for _ in range(iters):
                t0 = time.perf_counter()
                session.run(None, feeds)
                times[label].append((time.perf_counter() - t0) * 1e3)
    return times


def latency_table(
    arts: list[Artifact], cells: dict[str, dict[str, np.ndarray]], rounds: int, round_s: float
) -> dict[str, dict[str, Any]]:
    """p50 ms and ratio to fp32 (95% interval) per artifact per cell."""
    from optieval.stats import median_ratio_ci

    ok = [a for a in arts if a.ok]
    sessions = {}
    for a in ok:
        try:
            sessions[a.label] = plain_session(a.path)  # type: ignore[arg-type]
        except Exception as exc:
            a.error = f"plain session: {_short_error(exc)}"
    out: dict[str, dict[str, Any]] = {}
    for cell, feeds in cells.items():
        times = latency(sessions, feeds, rounds, round_s)
        base = np.asarray(times["fp32"])
        out[cell] = {}
        for label, t in times.items():
            arr = np.asarray(t)
            entry: dict[str, Any] = {"p50_ms": float(np.median(arr)), "n": int(arr.size)}
            if label != "fp32":
                est = median_ratio_ci(arr, base)
                entry["ratio"] = float(est.ratio)
                entry["ratio_ci"] = list(est.interval) if est.interval else None
            out[cell][label] = entry
        print(
            f"  latency {cell}: "
            + ", ".join(f"{k} {v['p50_ms']:.2f}" for k, v in out[cell].items()),
            flush=True,
        )
    return out


def _proportion(k: int, n: int) -> dict[str, Any]:
    from optieval.stats import clopper_pearson_interval, wilson_interval

    w, c = wilson_interval(k, n), clopper_pearson_interval(k, n)
    return {
        "k": k,
        "n": n,
        "rate": k / n,
        "wilson": [w.low, w.high],
        "clopper_pearson": [c.low, c.high],
    }


def cnn_accuracy(arts: list[Artifact], images: np.ndarray) -> dict[str, dict[str, Any]]:
    """Top-1 agreement with fp32 on every artifact, batch 50."""
    logits = {}
    for a in arts:
        if a.ok:
            try:
                logits[a.label] = run_all(plain_session(a.path), {"image": images}, 50)
            except Exception as exc:
                a.error = f"run: {_short_error(exc)}"
    ref = logits["fp32"].argmax(1)
    return {
        label: {"top1_agreement": _proportion(int((v.argmax(1) == ref).sum()), len(ref))}
        for label, v in logits.items()
    }


def embedding_accuracy(
    arts: list[Artifact], feeds: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Per-sentence cosine with fp32 and nearest-neighbour agreement, batch 10."""
    emb = {}
    for a in arts:
        if a.ok:
            try:
                emb[a.label] = run_all(plain_session(a.path), feeds, 10)
            except Exception as exc:
                a.error = f"run: {_short_error(exc)}"
    ref = emb["fp32"] / np.linalg.norm(emb["fp32"], axis=1, keepdims=True)

    def neighbours(e: np.ndarray, k: int) -> np.ndarray:
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :k]

    ref_nn = neighbours(ref, 5)
    out = {}
    for label, e in emb.items():
        unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        cos = (unit * ref).sum(axis=1)
        nn = neighbours(unit, 5)
        recall5 = float(
            np.mean([len(set(a) & set(b)) / 5 for a, b in zip(nn, ref_nn, strict=True)])
        )
        out[label] = {
            "cosine_mean": float(cos.mean()),
            "cosine_min": float(cos.min()),
            "cosine_p5": float(np.percentile(cos, 5)),
            "nn_top1_agreement": _proportion(int((nn[:, 0] == ref_nn[:, 0]).sum()), len(cos)),
            "recall_at_5": recall5,
        }
    return out


# --- compare and gate through optieval ------------------------------------------------------


def optieval_compare(
    fp32: Path, data: Path, calib: Path, kinds: dict[str, str] | None
) -> dict[str, Any]:
    """``optieval.compare`` of fp16 and int8 on ort-cpu: its verdict and headline metrics."""
    import optieval

    kw: dict[str, Any] = {"data": data, "calib": calib}
    if kinds and "output_kinds" in inspect.signature(optieval.compare).parameters:
        kw["output_kinds"] = kinds
    started = time.perf_counter()
    try:
        report = optieval.compare(fp32, ["ort-cpu:fp16", "ort-cpu:int8"], **kw)
    except Exception as exc:
        return {"error": _short_error(exc), "seconds": time.perf_counter() - started}
    data_json = report.to_json()
    summary = {}
    for res in data_json["results"]:
        metrics: dict[str, Any] = {"passed": res.get("passed")}
        for out in res.get("outputs", []):
            per = out.get("cosine_per_sample") or {}
            nn = out.get("neighbours") or {}
            found = {
                "kind": out.get("kind"),
                "top1_agreement": out.get("top1_agreement"),
                "cosine_mean": per.get("mean"),
                "cosine_min": per.get("min"),
                "knn_agreement": nn.get("agreement"),
                "nn_top1": nn.get("top1"),
            }
            metrics.update({k: v for k, v in found.items() if v is not None})
        summary[res["candidate"]] = metrics
    return {
        "passed": data_json["passed"],
        "seconds": time.perf_counter() - started,
        "candidates": summary,
        "report": data_json,
    }


def optieval_gate(config: Path, out_dir: Path) -> dict[str, Any]:
    """``optieval.gate`` on ``config``: exit code and each check's verdict."""
    import optieval

    started = time.perf_counter()
    try:
        report = optieval.gate(config, out_dir=out_dir)
    except Exception as exc:
        return {"error": _short_error(exc), "seconds": time.perf_counter() - started}
    data = report.to_json()
    checks = []
    for check in data.get("checks", []):
        judgement = check.get("judgement") or {}
        checks.append(
            {
                "subject": check.get("subject") or check.get("target"),
                "key": check.get("key"),
                "verdict": check.get("verdict"),
                "value": judgement.get("value"),
                "budget": judgement.get("budget"),
            }
        )
    return {
        "exit_code": report.exit_code,
        "seconds": time.perf_counter() - started,
        "checks": checks,
    }


def cpu_info() -> dict[str, Any]:
    model = platform.processor()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"Model name:\s*(.+)", text)
        model = found.group(1).strip() if found else model
    except (OSError, subprocess.SubprocessError):
        pass
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    import onnxruntime as ort

    return {
        "model": model,
        "cpus": os.cpu_count(),
        "flags": {f: f in flags for f in CPU_FLAGS},
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
    }
