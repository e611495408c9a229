"""Baseline regressions: the ratio interval, the verdict rule and the pairing of cells."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from optieval.bench.baseline import (
    BaselineComparison,
    Regression,
    compare_to_baseline,
    env_differences,
    regression_verdict,
)
from optieval.errors import InputError
from optieval.stats import median_ratio_ci, summarize


def _times(rng: np.random.Generator, n: int, scale: float = 1.0, sigma: float = 0.3) -> np.ndarray:
    return scale * rng.lognormal(np.log(5.0), sigma, n)


def test_equal_distributions_are_no_significant_change_in_at_least_95_percent() -> None:
    rng = np.random.default_rng(100)
    trials = 600
    verdicts = Counter(
        regression_verdict(median_ratio_ci(_times(rng, 300), _times(rng, 300)))
        for _ in range(trials)
    )
    assert verdicts[Regression.NO_CHANGE] / trials >= 0.95
    assert verdicts[Regression.SLOWER] / trials <= 0.01


def test_ratio_interval_covers_one_at_about_its_rate() -> None:
    rng = np.random.default_rng(101)
    trials, hits = 800, 0
    for _ in range(trials):
        r = median_ratio_ci(_times(rng, 500, sigma=0.5), _times(rng, 400, sigma=0.5))
        assert r.low is not None and r.high is not None
        hits += r.low <= 1.0 <= r.high
    assert 0.92 <= hits / trials <= 0.99


def test_twenty_percent_slower_is_slower() -> None:
    # p99-sized runs (299+ samples) with a latency spread typical of a CPU (sigma 0.2)
    rng = np.random.default_rng(102)
    verdicts = Counter(
        regression_verdict(
            median_ratio_ci(_times(rng, 300, 1.2, sigma=0.2), _times(rng, 300, sigma=0.2))
        )
        for _ in range(200)
    )
    assert verdicts[Regression.SLOWER] == 200


def test_twenty_percent_faster_is_faster() -> None:
    rng = np.random.default_rng(103)
    r = median_ratio_ci(_times(rng, 1000, 0.8), _times(rng, 1000))
    assert regression_verdict(r) == "faster"
    assert r.ratio == pytest.approx(0.8, rel=0.05)


def test_ratio_point_is_ratio_of_reported_p50s() -> None:
    rng = np.random.default_rng(104)
    new, old = _times(rng, 1000, 1.1), _times(rng, 800)
    r = median_ratio_ci(new, old)
    p50_new = summarize(new, batch=1).percentile(50).point
    p50_old = summarize(old, batch=1).percentile(50).point
    assert (r.new_median_ms, r.old_median_ms) == (p50_new, p50_old)
    assert r.ratio == pytest.approx(p50_new / p50_old)
    assert r.low is not None and r.high is not None and r.low < r.ratio < r.high


def test_ratio_is_fast_for_1e5_samples() -> None:
    rng = np.random.default_rng(105)
    new, old = _times(rng, 100_000), _times(rng, 100_000)
    start = time.perf_counter()
    r = median_ratio_ci(new, old)
    assert time.perf_counter() - start < 0.2
    assert r.high is not None and r.low is not None and r.high - r.low < 0.02


def test_too_few_samples_give_no_interval_and_no_verdict() -> None:
    r = median_ratio_ci([5.0] * 5, [1.0] * 5)
    assert not r.supported and r.interval is None
    assert r.ratio == 5.0
    assert regression_verdict(r) == Regression.NO_CHANGE


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0, 2.0]])
def test_bad_samples_raise(bad: list[float]) -> None:
    with pytest.raises(InputError):
        median_ratio_ci(bad, [1.0, 2.0])


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ((1.06, 1.30), "slower"),
        ((1.0501, 1.06), "slower"),
        ((1.05, 1.10), "possible regression"),  # touches 1 + threshold: not wholly above it
        ((1.01, 1.20), "possible regression"),
        ((1.01, 1.02), "possible regression"),
        ((1.00, 1.20), "no significant change"),  # reaches 1
        ((0.99, 1.20), "no significant change"),
        ((0.90, 0.96), "no significant change"),
        ((0.95, 0.99), "no significant change"),
        ((0.80, 0.9499), "faster"),
        (None, "no significant change"),
    ],
)
def test_verdict_rule(interval: tuple[float, float] | None, expected: str) -> None:
    assert regression_verdict(interval, 0.05) == expected


def test_verdict_threshold_is_a_parameter() -> None:
    assert regression_verdict((1.06, 1.2), threshold=0.10) == "possible regression"
    assert regression_verdict((1.01, 1.2), threshold=0.0) == "slower"


@pytest.mark.parametrize(("interval", "threshold"), [((1.2, 1.1), 0.05), ((1.0, 1.1), 1.5)])
def test_verdict_bad_input(interval: tuple[float, float], threshold: float) -> None:
    with pytest.raises(InputError):
        regression_verdict(interval, threshold)


# --------------------------------------------------------------------------- pairing


def _cell(backend: str, precision: str, batch: int, times: Any, **extra: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "backend": backend,
        "precision": precision,
        "batch": batch,
        "shapes": {"x": [batch, 3, 32, 32], "mask": [batch, 32]},
        "status": "ok",
        "times_ms": list(map(float, times)),
    }
    cell.update(extra)
    return cell


def test_compare_pairs_cells_and_reports_the_rest() -> None:
    rng = np.random.default_rng(106)
    new = [
        _cell("ort-cpu", "fp32", 1, _times(rng, 400, 1.3)),
        _cell("ort-cpu", "int8", 1, _times(rng, 400)),
        _cell("ort-cpu", "fp16", 1, [], status="skipped", reason="no"),
        _cell("ort-cpu", "fp32", 8, _times(rng, 400)),
    ]
    old_fp32 = _cell("ort-cpu", "fp32", 1, _times(rng, 400))
    old_fp32["shapes"] = {"mask": [1, 32], "x": [1, 3, 32, 32]}  # key order must not matter
    old = [
        old_fp32,
        _cell("ort-cpu", "int8", 1, _times(rng, 400)),
        _cell("ort-cpu", "fp16", 1, _times(rng, 400)),
        _cell("ort-cuda", "fp32", 1, _times(rng, 400)),
    ]
    result = compare_to_baseline(
        new,
        old,
        new_env={
            "cpu": {"model": "A", "cores": 2},
            "versions": {"onnxruntime": "1.32"},
            "timestamp": "t1",
        },
        old_env={
            "cpu": {"model": "A", "cores": 4},
            "versions": {"onnxruntime": "1.31"},
            "timestamp": "t0",
            "gpu": "none",
        },
    )
    verdicts = {c.label: c.verdict for c in result.cells}
    assert verdicts == {
        "ort-cpu:fp32 batch 1 mask:1x32,x:1x3x32x32": Regression.SLOWER,
        "ort-cpu:int8 batch 1 mask:1x32,x:1x3x32x32": Regression.NO_CHANGE,
    }
    assert result.any_slower and len(result.slower) == 1
    assert result.unmatched_new == ("ort-cpu:fp32 batch 8 mask:8x32,x:8x3x32x32",)
    assert result.unmatched_old == ("ort-cuda:fp32 batch 1 mask:1x32,x:1x3x32x32",)
    assert result.not_compared == (
        ("ort-cpu:fp16 batch 1 mask:1x32,x:1x3x32x32", "new cell is skipped"),
    )
    assert result.env_differences == ("cpu.cores", "gpu", "versions.onnxruntime")
    doc = json.loads(json.dumps(result.to_json()))
    assert BaselineComparison.from_json(doc) == result
    assert doc["cells"][0]["verdict"] == "slower"


def test_no_shared_cell_is_exit_2_naming_baseline() -> None:
    rng = np.random.default_rng(107)
    new = [_cell("ort-cpu", "fp32", 1, _times(rng, 50))]
    old = [_cell("ort-cpu", "fp32", 2, _times(rng, 50))]
    with pytest.raises(InputError) as info:
        compare_to_baseline(new, old)
    assert info.value.where == "baseline"
    assert info.value.exit_code == 2
    assert "batch 2" in (info.value.hint or "")


def test_cell_without_key_fields_is_bad_input() -> None:
    with pytest.raises(InputError) as info:
        compare_to_baseline([{"backend": "ort-cpu"}], [])
    assert info.value.where == "baseline"


def test_env_differences_ignores_run_specific_keys() -> None:
    assert env_differences({"a": 1, "load_average": [1, 2, 3]}, {"a": 1, "load_average": [0]}) == ()
    assert env_differences(None, {"a": {"b": 1}}) == ("a.b",)


def test_cells_holding_numpy_arrays_are_compared() -> None:
    rng = np.random.default_rng(108)
    new = [{"backend": "ort-cpu", "precision": "fp32", "batch": 1, "times_ms": _times(rng, 200)}]
    old = [{"backend": "ort-cpu", "precision": "fp32", "batch": 1, "times_ms": _times(rng, 200)}]
    result = compare_to_baseline(new, old)
    assert [c.label for c in result.cells] == ["ort-cpu:fp32 batch 1"]


def test_scenario_cells_pair_only_with_the_same_scenario() -> None:
    from optieval.bench.baseline import cell_key

    plain = {"backend": "ort-cpu", "precision": "fp32", "batch": 1, "shapes": {"x": [1, 4]}}
    single = dict(plain, scenario="single-stream", scenario_params={})
    server = dict(plain, scenario="server", scenario_params={"qps": 200.0})
    server_other = dict(plain, scenario="server", scenario_params={"qps": 400.0})
    assert cell_key(plain) == cell_key(single)  # files from before scenarios still pair
    assert cell_key(server) != cell_key(single)
    assert cell_key(server) != cell_key(server_other)
    assert "server qps=200.0" in cell_key(server)[3]
