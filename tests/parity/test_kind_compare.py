"""``compare`` on outputs that are not class scores, end to end: real ONNX Runtime sessions, real
fp16 and int8 artifacts; and ``auto_exclude`` rounds with their metrics and stop reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity import ParityReport, TaskBudget, compare
from tests.parity.kind_models import make_encoder, make_regressor, token_data
from tests.parity.test_comparison import _hostile


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("encoder")
    return (
        make_encoder(folder / "enc.onnx"),
        token_data(folder / "eval.npz", 64),
        token_data(folder / "calib.npz", 64, seed=1),
    )


def test_embedding_fp16_and_int8(encoder: tuple[Path, Path, Path]) -> None:
    model, data, calib = encoder
    report = compare(model, ["ort-cpu:fp16", "ort-cpu:int8"], data=data, calib=calib)
    for res in report.results:
        (out,) = res.outputs
        assert out.kind == "embedding" and "'sentence'" in out.kind_reason
        assert out.top1_agreement is None and out.flip_rate_ci is None  # not class scores
        cos = out.cosine_per_sample
        assert cos is not None and cos.samples == 64 and len(cos.worst) == 5
        assert cos.min <= cos.mean <= 1.0 and cos.min > 0.99
        assert out.neighbours is not None and out.neighbours.k == 10
        assert 0.0 <= out.neighbours.agreement <= 1.0
    fp16 = report.result("ort-cpu:fp16").outputs[0]
    int8 = report.result("ort-cpu:int8").outputs[0]
    assert fp16.cosine_per_sample.min > int8.cosine_per_sample.min  # int8 is the coarser one
    data_json = json.loads(json.dumps(report.to_json()))
    assert data_json["schema_version"] == 2
    assert ParityReport.from_json(data_json) == report


def test_cosine_budget_fails_and_names_the_worst_samples(
    encoder: tuple[Path, Path, Path],
) -> None:
    model, data, calib = encoder
    budget = TaskBudget(min_cosine=0.999999, min_knn_agreement=0.0)
    (res,) = compare(model, ["ort-cpu:int8"], data=data, calib=calib, atol=1.0, rtol=1.0,
                     budget=budget).results  # fmt: skip
    (out,) = res.outputs
    assert not res.passed and out.worst_metric == "cosine"
    check = next(c for c in out.checks if c.name == "cosine")
    index, value = out.cosine_per_sample.worst[0]
    assert check.value == value and 0 <= index < 64


def test_unit_norm_output_is_inferred_an_embedding(tmp_path: Path) -> None:
    model = make_encoder(tmp_path / "enc.onnx", output="out")
    data = token_data(tmp_path / "d.npz", 16)
    (res,) = compare(model, ["ort-cpu:fp32"], data=data).results
    assert res.outputs[0].kind == "embedding"
    assert "unit L2 norm" in res.outputs[0].kind_reason
    (res,) = compare(model, ["ort-cpu:fp32"], data=data, output_kinds=["logits"]).results
    assert res.outputs[0].kind == "logits" and res.outputs[0].top1_agreement == 1.0


def test_regression_head_int8(tmp_path: Path) -> None:
    model = make_regressor(tmp_path / "reg.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(40, 8)).astype(np.float32))
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(40, 8)).astype(np.float32))
    (res,) = compare(model, ["ort-cpu:int8"], data=tmp_path / "d.npz",
                     calib=tmp_path / "c.npz").results  # fmt: skip
    (out,) = res.outputs
    assert out.kind == "regression" and out.top1_agreement is None
    assert out.errors is not None and out.errors.samples == 40
    assert 0 < out.errors.rel_max < np.inf and len(out.errors.worst) == 5
    assert out.errors.worst[0][1] == out.errors.rel_max


@pytest.mark.parametrize(
    ("kinds", "match"),
    [
        (["y=logits"], "'y' cannot be logits"),
        (["embedding"], "'y' cannot be embedding"),
        (["z=regression"], "no output called z"),
    ],
)
def test_kind_that_does_not_fit_is_input_error(
    tmp_path: Path, kinds: list[str], match: str
) -> None:
    model = make_regressor(tmp_path / "reg.onnx")
    with pytest.raises(InputError, match=match) as info:
        compare(model, ["ort-cpu:fp32"], samples=8, output_kinds=kinds)
    assert info.value.where == "output_kinds"


def _hostile_data(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(48, 8)).astype(np.float32))
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32))
    return _hostile(tmp_path / "h.onnx"), tmp_path / "d.npz", tmp_path / "c.npz"


def test_auto_exclude_records_every_round_and_why_it_stopped(tmp_path: Path) -> None:
    model, data, calib = _hostile_data(tmp_path)
    (res,) = compare(model, ["ort-cpu:int8"], data=data, calib=calib, auto_exclude=True).results
    auto = res.auto_exclude
    assert auto is not None and auto.passed and auto.stop_reason == "passed"
    assert auto.rounds == len(auto.history) >= 1 and auto.max_rounds == 5
    last = auto.history[-1]
    assert last.passed and last.kept and last.outputs[0].name == "logits" and last.added
    assert auto.best_round == last.round and set(auto.excluded) >= set(last.added)
    # An activation is tried with the quantized node that feeds it (the quantizer fuses them).
    assert {"relu1", "fc1"} <= set(auto.excluded)
    assert f"round {last.round}" in auto.stop_detail
    data_json = res.to_json()["auto_exclude"]
    assert data_json["history"][0]["outputs"][0]["checks"]
    assert data_json["stop_reason"] == "passed" and data_json["history"][0]["kept"] is True


def test_auto_exclude_runs_out_of_rounds(tmp_path: Path) -> None:
    from tests.parity.parity_helpers import make_deep_mlp

    model = make_deep_mlp(tmp_path / "deep.onnx", layers=12)
    _, data, calib = _hostile_data(tmp_path)
    # A budget nothing short of fp32 reaches: every round runs, and the stop says so.
    (res,) = compare(model, ["ort-cpu:int8"], data=data, calib=calib, auto_exclude=True,
                     max_exclude_rounds=2, budget=TaskBudget(min_cosine=1.0)).results  # fmt: skip
    auto = res.auto_exclude
    assert auto is not None and not auto.passed
    assert auto.stop_reason == "max_rounds" and auto.rounds == 2 == len(auto.history)
    assert [r.round for r in auto.history] == [1, 2]
    assert "(2 round(s))" in auto.stop_detail


def test_auto_exclude_rejects_a_round_that_does_not_help(tmp_path: Path) -> None:
    model, data, calib = _hostile_data(tmp_path)
    # Tolerance so wide that no node breaks it, and a budget that still fails: the node with the
    # largest error is tried, does not help, is rejected, and nothing else is left to try.
    (res,) = compare(model, ["ort-cpu:int8"], data=data, calib=calib, auto_exclude=True,
                     atol=1e6, rtol=1e6, budget=TaskBudget(min_cosine=1.0)).results  # fmt: skip
    auto = res.auto_exclude
    assert auto is not None and not auto.passed and auto.rounds >= 1
    assert auto.history[0].chosen_by == "largest error"
    if not any(r.kept for r in auto.history):
        assert auto.best_round is None and auto.artifact == res.artifact
        assert auto.excluded == () and "no round improved" in auto.stop_detail
    assert auto.stop_reason in ("no_candidates", "no_quantized_nodes", "max_rounds")
