"""Issue 15: a seeded quick subset of ``benchmarks/verdict_conformance.py``. Each row simulates
one check kind with optieval's own decision functions (latency checks through the gate's
sequential looks) and fails when its false-verdict rate leaves ``alpha / 2`` by more than three
Monte Carlo standard errors, or when a clear case is not decided often enough."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "verdict_conformance", ROOT / "benchmarks" / "verdict_conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


vc = _module()

# (kind, data, setting, truth, replications): the boundary rows of each kind, where a false
# verdict is most likely, on the distributions that broke the old rules.
BOUNDARY = [
    ("p99_ms_max", "ar1", "fast", "at+", 60),  # autocorrelated: 48% false PASS before
    ("p99_ms_max", "lognormal", "slow", "at-", 100),
    ("p50_ms_max", "quantized", "fast", "at-", 60),
    ("mean_ms_max", "pareto", "slow", "at+", 100),
    ("throughput_min", "lognormal", "slow", "at+", 100),
    ("max_slowdown", "ar1", "n=300", "at+", 300),
    ("max_slowdown", "lognormal", "n=300", "at-", 300),
    ("flip_rate_max", "binomial", "n=200 b=0.02", "at-", 500),
    ("accuracy_drop_max", "paired", "n=1000 b=0.02", "at+", 1000),
    ("accuracy_ratio_min", "paired", "n=1000 b=0.98", "at-", 1000),
]


@pytest.mark.parametrize(("kind", "data", "setting", "truth", "reps"), BOUNDARY)
def test_false_verdicts_at_the_budget_stay_within_alpha_half(
    kind: str, data: str, setting: str, truth: str, reps: int
) -> None:
    row = vc.run_row(vc.Spec(kind, data, setting, truth), reps, np.random.default_rng(15))
    mc = 3.0 * math.sqrt(0.025 * 0.975 / reps)
    assert row.false_rate <= 0.025 + mc, row.line()


@pytest.mark.parametrize(
    ("kind", "data", "setting", "truth", "least"),
    [
        ("p99_ms_max", "lognormal", "slow", "1.25x", 0.0),  # slow p99: cannot PASS, may FAIL
        ("p99_ms_max", "bimodal", "slow", "1.25x", 0.9),  # the slow model over budget FAILs
        ("p99_ms_max", "lognormal", "fast", "1.25x", 0.9),  # power at 1.25x within 30 s
        ("p99_ms_max", "lognormal", "fast", "0.8x", 0.5),  # a PASS needs more samples
        ("mean_ms_max", "lognormal", "fast", "1.25x", 0.9),
    ],
)
def test_clear_cases_are_decided(
    kind: str, data: str, setting: str, truth: str, least: float
) -> None:
    row = vc.run_row(vc.Spec(kind, data, setting, truth), 40, np.random.default_rng(16))
    assert row.false_rate == 0.0, row.line()
    assert row.decided >= least, row.line()


def test_map_drop_false_pass_at_the_budget_stays_within_alpha_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The detection budget through the gate's own path (paired bootstrap over images,
    ``budget_value``, ``judge``) on simulated detections, the true drop a hair over the budget.
    Few images and resamples keep it quick: this catches a gross error (a one-sided interval,
    the drop's sign flipped), the full table is in the benchmark."""
    monkeypatch.setattr(vc, "TRUTH_IMAGES", 4000)
    monkeypatch.setattr(vc, "_TRUTHS", {})
    reps = 40
    spec = vc.Spec("map_drop_max", "detections", "n=60 t=0.04 r=200", "at+")
    row = vc.run_row(spec, reps, np.random.default_rng(17))
    assert row.false_rate <= 0.025 + 3.0 * math.sqrt(0.025 * 0.975 / reps), row.line()
    # Far over the budget (four times the drop it allows), 60 images decide it.
    far = vc.Spec("map_drop_max", "detections", "n=60 t=0.04 r=200", "4x")
    row = vc.run_row(far, 10, np.random.default_rng(18))
    assert row.false_rate == 0.0 and row.decided >= 0.8, row.line()
