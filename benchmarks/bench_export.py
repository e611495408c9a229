"""Time `optieval export` of a ResNet-18-sized model with each exporter.

The model is built here (torchvision does not import beside CI's CPU torch): the ResNet-18
layout, BasicBlocks [2, 2, 2, 2], 11.7 M parameters, 224x224 input, dynamic batch. For each
exporter it reports, over ``--repeats`` runs (median, min, max), the time of

* ``torch.onnx.export`` alone (``torch-only``: capture + conversion, in memory), and
* ``optieval.export_model`` end to end (export, save, onnx.checker + shape inference,
  parity against PyTorch on ONNX Runtime CPU at batch 2 and 1, manifest),

plus the parity split reported by optieval and the file size. The first export in a process
pays one-off import and registry costs, so an untimed warm-up export runs first.

``--large-gib N`` instead exports one MLP with about N GiB of weights (past ONNX's 2 GB
per-file limit from 2): the path through external data (``NAME.onnx.data``), the checker by path
and ONNX Runtime parity, with its time and peak memory.

Usage::

    python benchmarks/bench_export.py [--repeats 3] [--exporters dynamo,torchscript]
    python benchmarks/bench_export.py --large-gib 2.25
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

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optieval import export_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared resnet module
from resnet import ResNet18


def resnet18() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The factory the benchmark exports (spec ``benchmarks/bench_export.py:resnet18``)."""
    torch.manual_seed(0)
    return ResNet18().eval(), (torch.randn(2, 3, 224, 224),)


class WideMLP(nn.Module):
    """Square 8192-wide layers: 256 MiB of float32 weights each."""

    def __init__(self, layers: int, width: int = 8192) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def large_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The large model's factory. optieval imports this file anew from the spec, so the layer
    count travels in an environment variable, not a global."""
    torch.manual_seed(0)
    layers = int(os.environ.get("OPTIEVAL_BENCH_LARGE_LAYERS", "9"))
    return WideMLP(layers).eval(), (torch.randn(2, 8192),)


def _large(gib: float) -> None:
    import resource

    layers = max(1, round(gib * 4))
    os.environ["OPTIEVAL_BENCH_LARGE_LAYERS"] = str(layers)
    print(
        f"MLP, {layers} layers 8192x8192, {layers / 4:.2f} GiB of weights, "
        "input 2x8192, dynamic batch, dynamo exporter"
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = export_model(
            f"{Path(__file__).resolve()}:large_mlp", Path(tmp) / "large.onnx", dynamic=["batch"]
        )
        total = time.perf_counter() - started
        for name in result.files:
            print(f"  {name}: {(Path(tmp) / name).stat().st_size / 2**20:,.1f} MiB")
        print(f"  external data: {result.external_data}, parity passed: {result.passed}")
        print(
            f"  total {total:.1f} s; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"  peak resident memory {peak:.1f} GiB")


def _torch_only(exporter: str) -> float:
    model, (x,) = resnet18()
    started = time.perf_counter()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                input_names=["x"],
                dynamic_shapes={"x": {0: batch}},
                verbose=False,
            )
        else:
            torch.onnx.export(
                model,
                (x,),
                str(Path(tmp) / "m.onnx"),
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch"}},
            )
    return time.perf_counter() - started


def _optieval(exporter: str, folder: Path) -> tuple[float, dict[str, float], int]:
    spec = f"{Path(__file__).resolve()}:resnet18"
    started = time.perf_counter()
    result = export_model(
        spec, folder / f"resnet18_{exporter}.onnx", dynamic=["batch"], exporter=exporter
    )
    total = time.perf_counter() - started
    size = sum((folder / name).stat().st_size for name in result.files)
    assert result.passed
    return total, result.timings, size


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exporters", default="dynamo,torchscript")
    parser.add_argument("--large-gib", type=float, default=None)
    args = parser.parse_args()
    if args.large_gib:
        _large(args.large_gib)
        return
    exporters = [e.strip() for e in args.exporters.split(",") if e.strip()]
    params = sum(p.numel() for p in resnet18()[0].parameters())
    print(f"ResNet-18 layout, {params / 1e6:.1f} M parameters, input 2x3x224x224, dynamic batch")
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _optieval("torchscript", folder)  # warm-up: imports, exporter registries
        _torch_only("dynamo")
        for exporter in exporters:
            raw = [_torch_only(exporter) for _ in range(args.repeats)]
            runs = [_optieval(exporter, folder) for _ in range(args.repeats)]
            totals = [r[0] for r in runs]
            parity = [r[1].get("parity_s", 0.0) for r in runs]
            check = [r[1].get("check_s", 0.0) for r in runs]
            print(f"\n{exporter} (n={args.repeats})")
            print(f"  torch.onnx.export only : {_stats(raw)}")
            print(f"  optieval export total  : {_stats(totals)}")
            print(f"    of which check       : {_stats(check)}")
            print(f"    of which parity      : {_stats(parity)}")
            print(f"  file size              : {runs[-1][2] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
