"""Helpers for the gate tests: release configs around the tiny MLP, and a fake backend (for
tests only) whose latencies come from a fixed distribution."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optieval.runtime import registry
from optieval.runtime.base import Availability
from optieval.runtime.ort import OrtCpuBackend
from tests.conftest import make_onnx_mlp

# Fast settings for tests: cells in this process (so a monkeypatched backend is seen), short.
FAST_MEASURE = """
[measure]
warmup_s = 0.0
warmup_iters = 5
duration_s = 0.2
max_duration_s = 0.8
isolate = false
"""

BASE_MS = 1.0
SPIKE_MS = 50.0
SPIKE_EVERY = 100


class FixedLatencyBackend(OrtCpuBackend):
    """ONNX Runtime CPU for outputs, but each timed call takes a fixed latency: ``BASE_MS``,
    except every ``SPIKE_EVERY``-th call, which takes ``SPIKE_MS`` (1% of calls).

    The p99 then lies on the boundary between the two values: its order-statistic interval
    reaches from ``BASE_MS`` to ``SPIKE_MS`` at any sample count, so a budget between them is
    INCONCLUSIVE however long the cell is measured. Sleeps (not busy waits) keep it cheap on a
    shared machine; a sleep only overshoots, by far less than the gap to the budget.
    """

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        self.check_feeds(feeds)
        count = [0]

        def run() -> None:
            count[0] += 1
            time.sleep((SPIKE_MS if count[0] % SPIKE_EVERY == 0 else BASE_MS) / 1000.0)

        return run


class UnusableBackend(OrtCpuBackend):
    """A backend that is never usable here (as TensorRT on a machine without a GPU)."""

    @classmethod
    def availability(cls) -> Availability:
        return Availability(False, "fake: no such device here", {"hint": "use a GPU machine"})


def use_backend(monkeypatch: pytest.MonkeyPatch, name: str, cls: type) -> None:
    """Register ``cls`` as backend ``name`` for this test only."""
    monkeypatch.setitem(registry._CLASSES, name, f"{cls.__module__}:{cls.__qualname__}")


def write_data(folder: Path, samples: int = 120, seed: int = 0) -> Path:
    """An evaluation .npz for the MLP: ``x`` [N, 4] float32 and ``labels`` [N] int64 (the
    labels are the fp32 model's own argmax on most samples, so accuracy is high)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=samples).astype(np.int64)
    path = folder / "eval.npz"
    np.savez(path, x=x, labels=labels)
    return path


def write_config(
    folder: Path,
    targets: str,
    *,
    model_name: str = "mlp.onnx",
    extra: str = "",
    measure: str = FAST_MEASURE,
    data: bool = True,
) -> Path:
    """A release config beside a fresh MLP model (and evaluation data); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / model_name).exists():
        make_onnx_mlp(folder / model_name)
    data_block = ""
    if data:
        write_data(folder)
        data_block = (
            '[data]\ncalibration = "eval.npz"\nevaluation = "eval.npz"\nlabels = "labels"\n'
        )
    text = (
        f"[model]\npath = {_toml_string(model_name)}\n\n{data_block}\n{measure}\n{extra}\n"
        f"{targets}\n"
    )
    path = folder / "release.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


GENEROUS = """
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = [1, 4]
threads = 1
latency.p99_ms_max = 1000.0
latency.p50_ms_max = 1000.0
latency.mean_ms_max = 1000.0
latency.throughput_min = 1.0
latency.cold_start_ms_max = 60000.0
latency.memory_mb_max = 100000.0
latency.artifact_mb_max = 100.0
accuracy.top1_agreement_min = 0.5
accuracy.flip_rate_max = 0.5
accuracy.cosine_min = 0.9
accuracy.max_abs_max = 1.0
accuracy.snr_db_min = 10.0
accuracy.accuracy_drop_max = 0.5
accuracy.accuracy_ratio_min = 0.5
"""

UNMEETABLE = """
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = 1
threads = 1
latency = { p50_ms_max = 0.000001, p99_ms_max = 1000.0 }
"""

STRADDLING_MEASURE = FAST_MEASURE.replace("max_duration_s = 0.8", "max_duration_s = 1.0")

STRADDLING = f"""
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = 1
latency = {{ p99_ms_max = {(BASE_MS + SPIKE_MS) / 2} }}
"""


def read(path: Path) -> str:
    """A report file's text."""
    return path.read_text(encoding="utf-8")


def json_of(path: Path) -> Any:
    """A JSON report's content."""
    import json

    return json.loads(read(path))


class CrashingBackend(OrtCpuBackend):
    """Runs outputs fine (parity works) but crashes in the timed loop."""

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        def run() -> None:
            raise RuntimeError("simulated crash in the timed loop")

        return run
