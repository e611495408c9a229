"""One GPU check of optieval, ready for the first GPU machine at hand (issue 16).

    PYTHONPATH=. python scripts/gpu_check.py [--out gpu_check.json] [--budget-s 330]
    PYTHONPATH=. python scripts/gpu_check.py --dry-run   # everything but the device, on CPU

Runs from the source tree on a bare GPU machine (Python 3.12, a CUDA build of torch, CPU
onnxruntime, no network) and writes one JSON summary:

- torch-cuda fp32 and fp16 on a ResNet-50-sized CNN (batch 32, 224x224) and a BERT-base-sized
  transformer encoder (batch 8, 128 tokens, 12 layers, width 768): optieval's CUDA-event p50
  (``TorchCudaBackend.device_runner``) against a bare torch CUDA-event loop on the same module
  and inputs (the ratio should be close to 1), the host p50 of optieval's timed callable, the
  fp16/fp32 speed-up, and fp16 parity against fp32 (max abs and relative error, cosine, top-1
  agreement);
- the environment fingerprint (GPU, driver, clocks, throttle reasons) before and after;
- ort-cuda and tensorrt on the same models exported to ONNX, when they are usable here (else
  the reason).

Each step is guarded: a failure is recorded in ``problems`` and the check goes on. The budget
(default 330 s) skips what would not fit, so the whole run ends within 6 minutes. The dry run
uses tiny shapes on the CPU, perf_counter instead of CUDA events, bf16 autocast for the "fp16"
leg and ort-cpu for the ONNX leg: it proves the script, not the GPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "optieval-gpu-check/1"


# -- models ------------------------------------------------------------------------------------
def resnet50(classes: int = 1000, width: int = 64) -> Any:
    """ResNet-50's layout (Bottleneck blocks [3, 4, 6, 3], 25.6 M parameters at width 64),
    random weights: torchvision may be absent on a bare machine."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, mid: int, stride: int) -> None:
            super().__init__()
            cout = mid * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.down = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: Any) -> Any:
            return self.relu(self.body(x) + self.down(x))

    layers: list[Any] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = width
    for i, (blocks, mid) in enumerate(
        zip((3, 4, 6, 3), (width, width * 2, width * 4, width * 8), strict=True)
    ):
        for b in range(blocks):
            layers.append(Bottleneck(cin, mid, 2 if b == 0 and i > 0 else 1))
            cin = mid * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers).eval()


def encoder(width: int = 768, layers: int = 12, heads: int = 12) -> Any:
    """A BERT-base-sized transformer encoder (pre-LN off, GELU, batch first)."""
    from torch import nn

    layer = nn.TransformerEncoderLayer(
        width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()


def workloads(dry: bool) -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    """name -> (module factory, input shape)."""
    if dry:
        return {
            "resnet50": (lambda: resnet50(classes=10, width=8), (1, 3, 32, 32)),
            "encoder": (lambda: encoder(width=32, layers=2, heads=4), (2, 16, 32)),
        }
    return {
        "resnet50": (resnet50, (32, 3, 224, 224)),
        "encoder": (encoder, (8, 128, 768)),
    }


# -- timing ------------------------------------------------------------------------------------
class Clock:
    """CUDA events on the GPU; perf_counter in the dry run. ``autocast`` is the fp16 context
    (bf16 on the CPU in the dry run, whose torch has no fp16 autocast)."""

    def __init__(self, dry: bool) -> None:
        import torch

        self.torch = torch
        self.dry = dry
        self.device = "cpu" if dry else "cuda"
        self.warmup = 2 if dry else 10  # iterations before each timing

    def synchronize(self) -> None:
        if not self.dry:
            self.torch.cuda.synchronize()

    def time_ms(self, call: Callable[[], Any]) -> float:
        if self.dry:
            began = time.perf_counter()
            call()
            return (time.perf_counter() - began) * 1e3
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def autocast(self, half: bool) -> Any:
        import contextlib

        if not half:
            return contextlib.nullcontext()
        if self.dry:
            return self.torch.autocast("cpu", dtype=self.torch.bfloat16)
        return self.torch.autocast("cuda", dtype=self.torch.float16)


def p50(samples: list[float]) -> float:
    return float(np.median(np.asarray(samples, dtype=np.float64)))


def repeat(call: Callable[[], float], warmup: int, iters: int, deadline: float) -> list[float]:
    """Warm up, then collect ``iters`` samples (fewer when the deadline comes)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iters):
        samples.append(float(call()))
        if time.monotonic() > deadline:
            break
    return samples


# -- the checks --------------------------------------------------------------------------------
def torch_leg(
    name: str, module: Any, shape: tuple[int, ...], clock: Clock, iters: int, deadline: float
) -> dict[str, Any]:
    """fp32 and fp16 through optieval's torch backend and a bare loop, speed-up and parity."""
    import torch

    from optieval.runtime import create_backend

    rng = np.random.default_rng(0)
    array = rng.standard_normal(shape).astype(np.float32)
    module = module.to(clock.device)
    x = torch.from_numpy(array).to(clock.device)
    result: dict[str, Any] = {"input_shape": list(shape), "iterations": iters}
    outputs: dict[str, np.ndarray] = {}
    for precision in ("fp32", "fp16"):
        half = precision == "fp16"
        leg: dict[str, Any] = {}
        if not clock.dry:  # strict fp32 reference, as TorchCudaBackend sets it
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

        def bare(half: bool = half) -> float:
            with torch.inference_mode(), clock.autocast(half):
                return clock.time_ms(lambda: module(x))

        bare_samples = repeat(bare, clock.warmup, iters, deadline)
        leg["bare_event_p50_ms"] = p50(bare_samples)
        leg["bare_samples"] = len(bare_samples)
        loaded = types.SimpleNamespace(module=module, example_inputs={"x": x})
        backend_name = "torch-cpu" if clock.dry else "torch-cuda"
        if clock.dry and half:
            leg["optieval"] = "skipped in the dry run: torch backends run fp16 on CUDA only"
            with torch.inference_mode(), clock.autocast(True):
                outputs[precision] = module(x).float().cpu().numpy()
        else:
            with create_backend(backend_name, None, loaded=loaded, precision=precision) as b:
                feeds = {b.signature.inputs[0].name: array}
                run = b.runner(feeds)
                timed_run = functools.partial(clock.time_ms, run)
                # optieval's CUDA-event timing (device_runner); perf_counter in the dry run
                device_call = timed_run if clock.dry else b.device_runner(feeds)  # type: ignore[attr-defined]
                device_samples = repeat(device_call, clock.warmup, iters, deadline)
                host = repeat(timed_run, 1, max(3, iters // 2), deadline)
                leg["optieval_event_p50_ms"] = p50(device_samples)
                leg["optieval_samples"] = len(device_samples)
                leg["optieval_host_p50_ms"] = p50(host)
                leg["ratio_optieval_to_bare"] = leg["optieval_event_p50_ms"] / max(
                    leg["bare_event_p50_ms"], 1e-9
                )
                leg["backend_options"] = {
                    k: v for k, v in b.options.items() if isinstance(v, str | int | float | bool)
                }
                outputs[precision] = next(iter(b.infer(feeds).values())).astype(np.float32)
        result[precision] = leg
    fp32, fp16 = result["fp32"], result["fp16"]
    key = "optieval_event_p50_ms" if "optieval_event_p50_ms" in fp16 else "bare_event_p50_ms"
    result["fp16_speedup"] = fp32[key] / max(fp16[key], 1e-9)
    result["fp16_speedup_basis"] = key
    result["fp16_parity"] = parity(outputs["fp32"], outputs["fp16"])
    if clock.dry:
        result["fp16_leg"] = "bf16 autocast on the CPU (dry run)"
    return result


def parity(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """How far ``other`` is from ``reference``."""
    a = reference.reshape(reference.shape[0], -1).astype(np.float64)
    b = other.reshape(other.shape[0], -1).astype(np.float64)
    diff = np.abs(a - b)
    cos = float(
        np.mean(
            np.sum(a * b, axis=1)
            / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        )
    )
    return {
        "max_abs": float(diff.max()),
        "max_rel": float((diff / np.maximum(np.abs(a), 1e-6)).max()),
        "mean_abs": float(diff.mean()),
        "cosine": cos,
        "top1_agreement": float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))),
    }


def onnx_leg(
    name: str,
    module: Any,
    shape: tuple[int, ...],
    clock: Clock,
    iters: int,
    deadline: float,
    folder: Path,
) -> dict[str, Any]:
    """ort-cuda (ort-cpu in the dry run) and tensorrt on the model exported to ONNX, each when
    usable here."""
    import torch

    from optieval.runtime import availability, create_backend

    backends = ["ort-cpu"] if clock.dry else ["ort-cuda", "tensorrt"]
    states = {b: availability(b) for b in backends}
    result: dict[str, Any] = {}
    if not any(s.usable for s in states.values()):
        return {b: {"skipped": s.reason} for b, s in states.items()}
    path = folder / f"{name}.onnx"
    module = module.float().cpu()
    example = torch.zeros(shape)
    with warnings.catch_warnings():  # the TorchScript exporter: no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=False
        )
    array = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.inference_mode():
        reference = module(torch.from_numpy(array)).numpy()
    for backend_name, state in states.items():
        if not state.usable:
            result[backend_name] = {"skipped": state.reason}
            continue
        options: dict[str, Any] = {"shapes": {"x": [shape]}} if backend_name == "tensorrt" else {}
        try:
            with create_backend(backend_name, path, precision="fp32", **options) as b:
                feeds = {"x": array}
                timed_run = functools.partial(clock.time_ms, b.runner(feeds))
                host = repeat(timed_run, clock.warmup, iters, deadline)
                leg: dict[str, Any] = {"host_p50_ms": p50(host), "samples": len(host)}
                device_runner = getattr(b, "device_runner", None)
                if device_runner is not None:
                    leg["event_p50_ms"] = p50(
                        repeat(device_runner(feeds), clock.warmup, iters, deadline)
                    )
                leg["cold_start_ms"] = b.cold_start_ms
                leg["parity_vs_torch_fp32"] = parity(reference, b.infer(feeds)["y"])
                leg["options"] = {
                    k: v for k, v in b.options.items() if isinstance(v, str | int | float | bool)
                }
                result[backend_name] = leg
        except Exception as exc:  # recorded; the check goes on
            result[backend_name] = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def gpu_state() -> list[dict[str, Any]]:
    """Clocks, throttle reasons, temperature and power of each GPU (nvidia-smi), now."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    fields = (
        "index,name,clocks.sm,clocks.max.sm,clocks.mem,clocks_event_reasons.active,"
        "temperature.gpu,power.draw,utilization.gpu,persistence_mode"
    )
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [{"error": str(exc)}]
    keys = fields.split(",")
    return [
        dict(zip(keys, (p.strip() for p in line.split(",")), strict=False))
        for line in out.strip().splitlines()
    ]


def environment(clock: Clock) -> dict[str, Any]:
    from optieval.core import fingerprint

    torch = clock.torch
    env: dict[str, Any] = {"fingerprint": fingerprint()}
    env["torch"] = torch.__version__
    env["torch_cuda"] = torch.version.cuda
    if not clock.dry:
        env["device"] = torch.cuda.get_device_name(0)
        env["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu_check.json", help="the JSON summary to write")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, no device")
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop starting steps after")
    parser.add_argument("--iters", type=int, default=None, help="samples per timing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    deadline = started + args.budget_s
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device through torch: run with --dry-run on a CPU machine", file=sys.stderr)
        return 3
    if args.dry_run:
        torch.set_num_threads(1)  # CI-sized: the dry run proves the script, not a speed
    clock = Clock(args.dry_run)
    iters = args.iters or (5 if args.dry_run else 200)
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "dry_run": args.dry_run,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "problems": [],
        "models": {},
        "onnx": {},
    }
    summary["environment"] = environment(clock)
    summary["environment"]["gpu_state_before"] = gpu_state()
    with tempfile.TemporaryDirectory(prefix="optieval-gpu-check-") as tmp:
        for name, (factory, shape) in workloads(args.dry_run).items():
            if time.monotonic() > deadline:
                summary["problems"].append(f"{name}: skipped, budget of {args.budget_s} s spent")
                continue
            torch.manual_seed(0)
            module = factory()
            common = (name, module, shape, clock, iters, deadline)
            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("models", functools.partial(torch_leg, *common)),
                ("onnx", functools.partial(onnx_leg, *common, Path(tmp))),
            ]
            for part, step in steps:
                try:
                    summary[part][name] = step()
                except Exception as exc:  # recorded; the check goes on
                    where = traceback.format_exc(limit=3)
                    summary["problems"].append(
                        f"{part}/{name}: {type(exc).__name__}: {exc}\n{where}"
                    )
            del module
            if not args.dry_run:
                torch.cuda.empty_cache()
    summary["environment"]["gpu_state_after"] = gpu_state()
    summary["elapsed_s"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for name, leg in summary["models"].items():
        fp32 = leg["fp32"]
        print(
            f"{name}: fp32 bare {fp32['bare_event_p50_ms']:.3f} ms, optieval/bare "
            f"{fp32.get('ratio_optieval_to_bare', float('nan')):.3f}; fp16 speed-up "
            f"{leg['fp16_speedup']:.2f}x, fp16 max abs err {leg['fp16_parity']['max_abs']:.3g}"
        )
    for problem in summary["problems"]:
        print(f"problem: {problem.splitlines()[0]}", file=sys.stderr)
    print(f"wrote {out} in {summary['elapsed_s']} s")
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
