"""Between-run variation in the baseline check (issue 15): cells measured in blocks, each in its
own process, and a ratio interval that widens when the blocks disagree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optieval.bench import MeasureSettings, benchmark, compare_to_baseline
from optieval.bench.baseline import Regression
from optieval.bench.blocks import block_settings, check_blocks, pool_blocks
from optieval.bench.results import BenchReport, Cell
from optieval.errors import InputError
from optieval.stats import RatioEstimate, median_ratio_ci
from optieval.stats.between import t_quantile


def _blocks(rng: np.random.Generator, shifts: list[float], n: int = 400) -> list[np.ndarray]:
    return [s * rng.lognormal(np.log(5.0), 0.2, n) for s in shifts]


def _medians(blocks: list[np.ndarray]) -> list[float]:
    return [float(np.sort(b)[(b.size + 1) // 2 - 1]) for b in blocks]


def _width(r: RatioEstimate) -> float:
    assert r.low is not None and r.high is not None
    return float(np.log(r.high / r.low))


def test_t_quantile_matches_tables() -> None:
    assert t_quantile(0.95, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(0.95, 2) == pytest.approx(4.3027, abs=1e-3)
    assert t_quantile(0.95, 4) == pytest.approx(2.7764, abs=1e-3)
    assert t_quantile(0.99, 10) == pytest.approx(3.1693, abs=1e-3)


def test_blocks_that_disagree_widen_the_interval_and_quiet_a_false_slower() -> None:
    rng = np.random.default_rng(7)
    # Same model; the new run's processes happened to land 8-12% slower than the baseline's
    # two fast ones and one slow one: process-to-process variation, not a regression.
    new = _blocks(rng, [1.08, 1.12, 0.98])
    old = _blocks(rng, [0.97, 1.0, 1.10])
    plain = median_ratio_ci(np.concatenate(new), np.concatenate(old))
    blocked = median_ratio_ci(
        np.concatenate(new), np.concatenate(old), new_blocks=_medians(new), old_blocks=_medians(old)
    )
    assert blocked.ratio == plain.ratio
    assert _width(blocked) > 3 * _width(plain)
    assert blocked.blocks_new == 3 and blocked.blocks_old == 3
    assert blocked.between is not None and "widened" in blocked.between
    assert "Welch" in blocked.method


def test_blocks_that_agree_keep_about_the_within_run_interval() -> None:
    rng = np.random.default_rng(8)
    widths = []
    for _ in range(40):
        new, old = _blocks(rng, [1.0, 1.0, 1.0]), _blocks(rng, [1.0, 1.0, 1.0])
        plain = median_ratio_ci(np.concatenate(new), np.concatenate(old))
        blocked = median_ratio_ci(
            np.concatenate(new),
            np.concatenate(old),
            new_blocks=_medians(new),
            old_blocks=_medians(old),
        )
        assert _width(blocked) >= _width(plain)
        widths.append(_width(blocked) / _width(plain))
    # Welch on 3 + 3 blocks pays for its few degrees of freedom, no more: the median widening
    # stays small when the blocks vary only by sampling noise.
    assert float(np.median(widths)) < 1.3


def test_identical_block_medians_keep_the_within_run_interval_exactly() -> None:
    rng = np.random.default_rng(9)
    new, old = rng.lognormal(1.0, 0.2, 900), rng.lognormal(1.0, 0.2, 900)
    plain = median_ratio_ci(new, old)
    blocked = median_ratio_ci(new, old, new_blocks=[2.7, 2.7, 2.7], old_blocks=[2.7, 2.7, 2.7])
    assert (blocked.low, blocked.high) == (plain.low, plain.high)
    assert blocked.between is not None and "kept" in blocked.between


def test_a_baseline_without_blocks_takes_the_new_runs_block_spread() -> None:
    rng = np.random.default_rng(10)
    new = _blocks(rng, [1.06, 1.10, 1.02])
    old = rng.lognormal(np.log(5.0), 0.2, 1200)
    plain = median_ratio_ci(np.concatenate(new), old)
    blocked = median_ratio_ci(np.concatenate(new), old, new_blocks=_medians(new))
    assert _width(blocked) > _width(plain)
    assert blocked.blocks_old == 1
    assert blocked.between is not None and "the baseline has none" in blocked.between


def test_a_real_slowdown_is_still_slower_with_blocks() -> None:
    rng = np.random.default_rng(11)
    new = _blocks(rng, [1.25, 1.26, 1.24])
    old = _blocks(rng, [1.0, 1.01, 0.99])
    cell = {"backend": "ort-cpu", "precision": "fp32", "batch": 1, "shapes": {"x": [1, 4]}}
    comparison = compare_to_baseline(
        [{**cell, "times_ms": np.concatenate(new).tolist(), "block_medians_ms": _medians(new)}],
        [{**cell, "times_ms": np.concatenate(old).tolist(), "block_medians_ms": _medians(old)}],
    )
    assert comparison.cells[0].verdict is Regression.SLOWER


def test_compare_reads_cells_without_blocks_and_ignores_malformed_ones() -> None:
    rng = np.random.default_rng(12)
    cell = {"backend": "ort-cpu", "precision": "fp32", "batch": 1, "shapes": {"x": [1, 4]}}
    times = rng.lognormal(1.0, 0.2, 400).tolist()
    comparison = compare_to_baseline(
        [{**cell, "times_ms": times, "block_medians_ms": "three"}], [{**cell, "times_ms": times}]
    )
    ratio = comparison.cells[0].ratio
    assert ratio.between is None and ratio.blocks_new == 1
    # A ratio record written before blocks existed still reads.
    old_record = {k: v for k, v in ratio.to_json().items() if k not in ("blocks_new", "between")}
    assert RatioEstimate.from_json(old_record).blocks_new == 1
    assert RatioEstimate.from_json(json.loads(json.dumps(ratio.to_json()))) == ratio


def test_block_settings_split_the_time_and_blocks_are_checked() -> None:
    settings = MeasureSettings(duration_s=3.0, max_duration_s=30.0, min_samples=1000)
    one = block_settings(settings, 3)
    assert (one.duration_s, one.max_duration_s, one.min_samples) == (1.0, 10.0, 334)
    assert block_settings(settings, 1) is settings
    for bad in (0, 33, 2.5, True):
        with pytest.raises(InputError) as info:
            check_blocks(bad)  # type: ignore[arg-type]
        assert info.value.where == "blocks"


def test_pool_blocks_names_the_block_that_failed() -> None:
    ok = Cell("ort-cpu", "fp32", 1, {"x": [1, 4]}, "ok", samples=3, times_ms=[1.0, 2.0, 3.0])
    bad = Cell("ort-cpu", "fp32", 1, {"x": [1, 4]}, "error", reason="crashed")
    pooled = pool_blocks([ok, bad], MeasureSettings())
    assert pooled.status == "error" and pooled.reason == "block 2 of 2: crashed"


def test_benchmark_in_blocks_records_block_medians_and_round_trips(mlp_onnx: Path) -> None:
    settings = MeasureSettings(warmup_s=0.0, warmup_iters=2, duration_s=0.15, max_duration_s=0.6,
                               min_samples=60, target_percentile=50.0)  # fmt: skip
    report = benchmark(mlp_onnx, settings=settings, isolate=False, blocks=3)
    cell = report.results[0]
    assert cell.status == "ok"
    assert cell.block_medians_ms is not None and len(cell.block_medians_ms) == 3
    assert cell.block_samples is not None and sum(cell.block_samples) == len(cell.times_ms)
    assert cell.samples == len(cell.times_ms)
    assert report.settings["blocks"] == 3 and cell.options["blocks"] == 3
    again = BenchReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again.results[0].block_medians_ms == cell.block_medians_ms
    # A cell from a file written before blocks (no such keys) still reads.
    plain = {k: v for k, v in cell.to_json().items() if not k.startswith("block_")}
    assert Cell.from_json(plain).block_medians_ms is None
    comparison = compare_to_baseline([cell.to_json()], [plain])
    assert comparison.cells[0].ratio.blocks_new == 3


def test_cli_baseline_measures_in_three_blocks_by_default(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from optieval.assets import DIGITS_ONNX
    from optieval.cli import app

    fast = ["--warmup", "0", "--duration", "0.09", "--min-samples", "30", "--no-isolate"]
    runner = CliRunner()
    base, out = tmp_path / "base.json", tmp_path / "new.json"
    result = runner.invoke(app, ["bench", str(DIGITS_ONNX), *fast, "--json", str(base)])
    assert result.exit_code == 0, result.output
    assert json.loads(base.read_text())["results"][0]["block_medians_ms"] is None
    result = runner.invoke(
        app,
        ["bench", str(DIGITS_ONNX), *fast, "--baseline", str(base), "--no-interleave",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    data = json.loads(out.read_text())
    assert len(data["results"][0]["block_medians_ms"]) == 3
    ratio = data["baseline"]["cells"][0]["ratio"]
    assert ratio["blocks_new"] == 3 and "the baseline has none" in ratio["between"]
    result = runner.invoke(
        app, ["bench", str(DIGITS_ONNX), *fast, "--baseline", str(base), "--blocks", "0"]
    )
    assert result.exit_code == 2 and "--blocks" in result.output


def test_blocks_run_round_by_round_across_cells(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optieval.bench.runner as runner_module

    order: list[int] = []
    real = runner_module.run_cell_request

    def recording(request, isolate=True, timeout_s=None):  # type: ignore[no-untyped-def]
        order.append(request.batch)
        return real(request, isolate, timeout_s)

    monkeypatch.setattr(runner_module, "run_cell_request", recording)
    settings = MeasureSettings(warmup_s=0.0, warmup_iters=2, duration_s=0.1, max_duration_s=0.4,
                               min_samples=40, target_percentile=50.0)  # fmt: skip
    shown: list[Cell] = []
    report = benchmark(mlp_onnx, batches=[1, 2], settings=settings, isolate=False, blocks=2,
                       on_cell=shown.append)  # fmt: skip
    # Block 1 of every cell, then block 2: a cell's blocks are spread over the run.
    assert order == [1, 2, 1, 2]
    assert [c.batch for c in report.results] == [1, 2]
    assert [c.batch for c in shown] == [1, 2]
    assert all(len(c.block_medians_ms or []) == 2 for c in report.results)
