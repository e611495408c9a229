"""The baseline's model measured again beside the new one (issue 15): blocks alternate between
the two models, so slow changes of the machine cancel within each pair of blocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from optieval.bench import (
    MeasureSettings,
    baseline_model_at_hand,
    benchmark,
    check_against_baseline,
    compare_to_baseline,
    setup_differences,
)
from optieval.bench.baseline import Regression
from optieval.bench.results import BenchReport
from optieval.core import fingerprint
from optieval.errors import InputError
from optieval.stats import INTERLEAVED_METHOD, interleaved_ratio_ci, median_ratio_ci
from tests.conftest import make_onnx_mlp

FAST = MeasureSettings(warmup_s=0.0, warmup_iters=2, duration_s=0.12, max_duration_s=0.5,
                       min_samples=60, target_percentile=50.0)  # fmt: skip


def _pairs(
    rng: np.random.Generator, k: int, *, shared: float, own: float, ratio: float = 1.0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``k`` pairs of blocks: each pair shares a machine factor (sd ``shared`` in logs), each
    block adds its own (sd ``own``), 400 lognormal samples each."""
    new, old = [], []
    for _ in range(k):
        machine = np.exp(rng.normal(0.0, shared))
        new.append(ratio * machine * np.exp(rng.normal(0.0, own)) * rng.lognormal(0, 0.2, 400))
        old.append(machine * np.exp(rng.normal(0.0, own)) * rng.lognormal(0, 0.2, 400))
    return new, old


CELL = {"backend": "ort-cpu", "precision": "fp32", "batch": 1, "shapes": {"x": [1, 4]}}


def _record(blocks: list[np.ndarray]) -> dict:
    """A bench cell (JSON form) measured in ``blocks``."""
    return {**CELL, "times_ms": np.concatenate(blocks).tolist(),
            "block_samples": [b.size for b in blocks],
            "block_medians_ms": [float(np.median(b)) for b in blocks]}  # fmt: skip


def test_a_machine_that_changes_between_pairs_does_not_widen_the_interval() -> None:
    rng = np.random.default_rng(3)
    # The machine runs 1.5x slower in some pairs than in others: the same model on both sides.
    new, old = _pairs(rng, 3, shared=0.4, own=0.0)
    paired = interleaved_ratio_ci(new, old)
    unpaired = median_ratio_ci(np.concatenate(new), np.concatenate(old),
                               new_blocks=[float(np.median(b)) for b in new],
                               old_blocks=[float(np.median(b)) for b in old])  # fmt: skip
    assert paired.low is not None and paired.high is not None
    assert paired.low < 1.0 < paired.high
    assert paired.high / paired.low < 1.12
    assert unpaired.low is not None and unpaired.high is not None
    assert unpaired.high / unpaired.low > 2 * (paired.high / paired.low)
    assert paired.method == INTERLEAVED_METHOD and paired.blocks_new == 3
    assert paired.between is not None and "3 interleaved pairs" in paired.between


@pytest.mark.parametrize(("k", "own"), [(3, 0.0), (3, 0.03), (5, 0.06)])
def test_each_side_misses_at_most_alpha_over_two(k: int, own: float) -> None:
    rng = np.random.default_rng(100 + k)
    reps, above, below = 300, 0, 0
    for _ in range(reps):
        new, old = _pairs(rng, k, shared=0.3, own=own)
        r = interleaved_ratio_ci(new, old)
        assert r.low is not None and r.high is not None
        above += r.low > 1.0
        below += r.high < 1.0
    # 2.5% per side plus three Monte Carlo standard errors.
    limit = 0.025 + 3 * np.sqrt(0.025 * 0.975 / reps)
    assert above / reps <= limit and below / reps <= limit


def test_a_real_slowdown_is_found_through_a_changing_machine() -> None:
    rng = np.random.default_rng(4)
    new, old = _pairs(rng, 3, shared=0.4, own=0.0, ratio=1.2)
    r = interleaved_ratio_ci(new, old)
    assert r.low is not None and r.low > 1.05


def test_interleaved_input_errors() -> None:
    block = np.full(50, 2.0)
    with pytest.raises(InputError) as info:
        interleaved_ratio_ci([block], [block])
    assert info.value.where == "blocks"
    with pytest.raises(InputError):
        interleaved_ratio_ci([block, block], [block])
    with pytest.raises(InputError) as info:
        interleaved_ratio_ci([block, block], [block, block], confidence=1.0)
    assert info.value.where == "confidence"
    few = interleaved_ratio_ci([block[:5], block[:5]], [block[:5], block[:5]])
    assert not few.supported and few.interval is None


def test_compare_judges_cells_with_an_interleaved_rerun_on_their_pairs() -> None:
    rng = np.random.default_rng(5)
    new, old = _pairs(rng, 3, shared=0.03, own=0.0)
    # The recorded baseline ran on a machine 1.4x faster: against it, a false "slower".
    recorded = {**CELL, "times_ms": (np.concatenate(old) / 1.4).tolist()}
    plain = compare_to_baseline([{**CELL, "times_ms": _record(new)["times_ms"]}], [recorded])
    assert plain.cells[0].verdict is Regression.SLOWER
    paired = compare_to_baseline([_record(new)], [recorded], interleaved=[_record(old)])
    assert paired.cells[0].ratio.method == INTERLEAVED_METHOD
    assert paired.cells[0].verdict is Regression.NO_CHANGE


def test_setup_differences_ignore_the_moment_and_name_the_software() -> None:
    env = fingerprint()
    busy = {**env, "load_average": [9.0, 9.0, 9.0]}
    assert setup_differences(env, busy) == ()
    gpu = {"name": "H200", "driver_version": "575", "sm_clock_mhz": 1980}
    assert setup_differences({**env, "gpus": [gpu]},
                             {**env, "gpus": [{**gpu, "sm_clock_mhz": 345}]}) == ()  # fmt: skip
    upgraded = {**env, "versions": {**env["versions"], "onnxruntime": "0.0.1"}}
    assert setup_differences(env, upgraded) == ("versions.onnxruntime",)


def _bench_json(model: Path, out: Path, **kwargs: object) -> Path:
    report = benchmark(model, settings=FAST, isolate=False, **kwargs)  # type: ignore[arg-type]
    out.write_text(json.dumps(report.to_json()))
    return out


def test_baseline_model_at_hand_says_when_and_why_not(tmp_path: Path) -> None:
    old = make_onnx_mlp(tmp_path / "old.onnx")
    base = _bench_json(old, tmp_path / "base.json")
    env = fingerprint()
    path, why = baseline_model_at_hand(base, env)
    assert path == old and "alternating" in why
    upgraded = {**env, "versions": {**env["versions"], "onnxruntime": "0.0.1"}}
    path, why = baseline_model_at_hand(base, upgraded)
    assert path is None and "versions.onnxruntime" in why
    make_onnx_mlp(old, seed=1)  # the file changed since the baseline
    path, why = baseline_model_at_hand(base, env)
    assert path is None and "changed" in why
    old.unlink()
    path, why = baseline_model_at_hand(base, env)
    assert path is None and "not here" in why


def test_baseline_model_at_hand_needs_blocks_and_local_cells(tmp_path: Path) -> None:
    old = make_onnx_mlp(tmp_path / "old.onnx")
    base = _bench_json(old, tmp_path / "base.json")
    env = fingerprint()
    path, why = baseline_model_at_hand(base, env, blocks=1)
    assert path is None and "one block" in why
    path, why = baseline_model_at_hand(base, env, local=False)
    assert path is None and "elsewhere" in why
    with pytest.raises(InputError, match="cannot interleave: one block") as info:
        baseline_model_at_hand(base, env, blocks=1, required=True, where="--interleave")
    assert info.value.where == "--interleave"


def test_benchmark_measures_the_baseline_model_beside_in_alternating_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optieval.bench.runner as runner_module

    new_model = make_onnx_mlp(tmp_path / "new.onnx", seed=1)
    old_model = make_onnx_mlp(tmp_path / "old.onnx")
    base = _bench_json(old_model, tmp_path / "base.json")
    order: list[str] = []
    real = runner_module.run_cell_request

    def recording(request, isolate=True, timeout_s=None):  # type: ignore[no-untyped-def]
        order.append(Path(request.model).stem)
        return real(request, isolate, timeout_s)

    monkeypatch.setattr(runner_module, "run_cell_request", recording)
    report = benchmark(new_model, settings=FAST, isolate=False, blocks=3,
                       baseline_model=old_model)  # fmt: skip
    assert order == ["new", "old", "old", "new", "new", "old"]
    assert report.baseline_model is not None and report.baseline_model["path"] == str(old_model)
    (again,) = report.baseline_results
    assert again.status == "ok" and again.block_samples is not None
    assert len(again.block_samples) == 3
    comparison = check_against_baseline(report, base)
    assert comparison.cells[0].ratio.method == INTERLEAVED_METHOD
    read = BenchReport.from_json(json.loads(json.dumps(report.to_json())))
    assert read.baseline_model == report.baseline_model
    assert read.baseline_results[0].times_ms == again.times_ms


def test_benchmark_refuses_a_baseline_model_it_cannot_pair(tmp_path: Path) -> None:
    model = make_onnx_mlp(tmp_path / "new.onnx")
    other = make_onnx_mlp(tmp_path / "other.onnx", features=6)
    with pytest.raises(InputError) as info:
        benchmark(model, settings=FAST, isolate=False, blocks=3, baseline_model=other)
    assert info.value.where == "baseline_model" and "inputs or outputs" in info.value.message
    with pytest.raises(InputError) as info:
        benchmark(model, settings=FAST, isolate=False, blocks=1, baseline_model=model)
    assert "two or more blocks" in info.value.message


def test_cli_interleaves_by_default_and_says_so(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from optieval.cli import app

    model = make_onnx_mlp(tmp_path / "m.onnx")
    fast = ["--warmup", "0", "--duration", "0.15", "--min-samples", "40", "--no-isolate"]
    runner = CliRunner()
    base, out = tmp_path / "base.json", tmp_path / "new.json"
    assert runner.invoke(app, ["bench", str(model), *fast, "--json", str(base)]).exit_code == 0
    result = runner.invoke(
        app, ["bench", str(model), *fast, "--baseline", str(base), "--json", str(out)]
    )
    assert result.exit_code in (0, 1), result.output
    assert "measuring the baseline's model m.onnx again" in result.output
    data = json.loads(out.read_text())
    assert data["baseline"]["interleaved"] is True
    assert data["baseline"]["cells"][0]["ratio"]["method"] == INTERLEAVED_METHOD
    assert len(data["baseline_run"]["results"][0]["block_samples"]) == 3

    result = runner.invoke(app, ["bench", str(model), *fast, "--baseline", str(base),
                                 "--no-interleave", "--json", str(out)])  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    data = json.loads(out.read_text())
    assert data["baseline"]["interleaved"] is False and "baseline_run" not in data

    moved = tmp_path / "moved.onnx"
    shutil.move(model, moved)
    result = runner.invoke(app, ["bench", str(moved), *fast, "--baseline", str(base),
                                 "--interleave"])  # fmt: skip
    assert result.exit_code == 2
    assert "cannot interleave" in result.output and "is not here" in result.output
    assert "Traceback" not in result.output


def test_pairs_to_decide_grows_with_the_spread_and_stops_at_the_cap() -> None:
    from optieval.stats import MAX_PAIRS, pairs_to_decide

    rng = np.random.default_rng(6)
    new, old = _pairs(rng, 3, shared=0.0, own=0.04)
    r = interleaved_ratio_ci(new, old)
    assert r.low is not None and r.high is not None
    limit = r.high * 0.99  # just inside the interval: a few more pairs decide it
    more = pairs_to_decide(r, limit)
    assert more is not None and 3 < more <= MAX_PAIRS
    assert pairs_to_decide(r, r.ratio * 1.0005) is None  # on the ratio: no count decides
    plain = median_ratio_ci(np.concatenate(new), np.concatenate(old))
    assert pairs_to_decide(plain, limit) is None  # not interleaved


def test_an_undecided_interleaved_baseline_check_advises_more_blocks() -> None:
    from optieval.release.baseline_check import decided
    from optieval.release.budgets import RegressionBudget

    rng = np.random.default_rng(7)
    new, old = _pairs(rng, 3, shared=0.0, own=0.05)
    comparison = compare_to_baseline([_record(new)], [_record(old)], interleaved=[_record(old)])
    (pair,) = comparison.cells
    assert pair.ratio.high is not None
    check = decided(RegressionBudget(pair.ratio.high - 1.0 - 0.01).check(pair), pair.ratio)
    assert check.verdict.value == "INCONCLUSIVE"
    assert "interleaved pairs of blocks" in check.evidence
    assert check.advice is not None and "blocks per model" in check.advice
    assert check.decision is not None and check.decision["samples_to_decide"] is None
    assert check.decision["blocks_to_decide"] is not None
