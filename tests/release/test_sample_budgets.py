"""The gate's per-sample accuracy budgets and the ``[outputs]`` section: cosine per sample (the
worst one, a low percentile, the mean), nearest-neighbour agreement, regression errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity.output_compare import compare_outputs
from optieval.parity.tolerances import ToleranceSet
from optieval.release.config_loader import parse_config
from optieval.release.run import gate
from optieval.release.sample_checks import PerSampleBudget, accuracy_budget
from optieval.stats.verdict import Verdict
from tests.parity.kind_models import make_encoder, make_regressor, token_data
from tests.release.gate_helpers import FAST_MEASURE

WIDE = ToleranceSet(atol=10.0, rtol=10.0)


def _embedding(n: int, bad: int | None = 17, noise: float = 0.01) -> object:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(n, 32))
    cand = ref + rng.normal(size=ref.shape) * noise
    if bad is not None:
        cand[bad] = -ref[bad]
    (out,) = compare_outputs({"emb": ref}, {"emb": cand}, tolerances=WIDE,
                             output_kinds={"emb": "embedding"})  # fmt: skip
    return out


def _check(key: str, limit: float, out: object, samples: int) -> object:
    budget = accuracy_budget(key, limit)
    assert isinstance(budget, PerSampleBudget) and budget.applies_to(out)
    return budget.check(out, candidate="ort-cpu:int8", samples=samples)


def test_cosine_min_fails_on_the_worst_sample_and_lists_it() -> None:
    out = _embedding(200)
    check = _check("cosine_min", 0.9, out, 200)
    assert check.verdict is Verdict.FAIL and check.judgement.value == pytest.approx(-1.0)
    assert "#17 -1.000000" in check.evidence and "1 under the budget" in check.evidence


def test_cosine_min_passes_with_a_bound_on_the_share_below() -> None:
    out = _embedding(200, bad=None)
    check = _check("cosine_min", 0.99, out, 200)
    assert check.verdict is Verdict.PASS
    # 0 of 200 below: the exact one-sided 97.5% bound is 1 - 0.025**(1/200) = 1.83%.
    assert "at most 1.83% of such inputs" in check.evidence


def test_low_percentile_is_three_way_on_its_order_statistic_interval() -> None:
    out = _embedding(200)  # one bad sample in 200 does not move p5
    assert _check("cosine_p5_min", 0.99, out, 200).verdict is Verdict.PASS
    assert _check("cosine_p5_min", 0.99999, out, 200).verdict is Verdict.FAIL
    p5 = out.cosine_per_sample.percentile(5.0)
    between = (p5.interval.low + p5.interval.high) / 2
    if p5.interval.low < between < p5.interval.high:
        assert _check("cosine_p5_min", between, out, 200).verdict is Verdict.INCONCLUSIVE
    p1 = _check("cosine_p1_min", 0.9, out, 200)  # p1 needs 299 samples for an interval
    assert p1.verdict is Verdict.INCONCLUSIVE
    assert p1.advice == "an interval needs at least 299 evaluation samples (now 200)"


def test_mean_and_knn_are_decided_on_bootstrap_intervals() -> None:
    out = _embedding(120, bad=None)
    mean = _check("cosine_mean_min", 0.99, out, 120)
    assert mean.verdict is Verdict.PASS and mean.judgement.low is not None
    knn = _check("knn_agreement_min", 0.5, out, 120)
    assert knn.verdict is Verdict.PASS and "knn_agreement@10" in knn.evidence
    noisy = _embedding(120, bad=None, noise=3.0)
    assert _check("knn_agreement_min", 0.9, noisy, 120).verdict is Verdict.FAIL


def test_regression_budget_and_keys_that_do_not_apply() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(100, 1)) + 5
    (reg,) = compare_outputs({"y": ref}, {"y": ref * 1.02}, tolerances=WIDE)
    assert _check("rel_error_p95_max", 0.05, reg, 100).verdict is Verdict.PASS
    assert _check("rel_error_p95_max", 0.01, reg, 100).verdict is Verdict.FAIL
    assert not accuracy_budget("knn_agreement_min", 0.5).applies_to(reg)
    assert not accuracy_budget("rel_error_p95_max", 0.5).applies_to(_embedding(20))


def _config(text: str) -> object:
    return parse_config(__import__("tomllib").loads(text), source=Path("/tmp/r.toml"))


MODEL = '[model]\npath = "/tmp"\n'


def test_outputs_section_and_new_keys_are_read_and_checked() -> None:
    cfg = _config(MODEL + '[outputs]\nemb = "embedding"\n"*" = "regression"\n'
                  '[[target]]\nbackend = "ort-cpu"\naccuracy = { cosine_p5_min = 0.99, '
                  "knn_agreement_min = 0.9, rel_error_p95_max = 0.1 }\n")  # fmt: skip
    assert cfg.output_kinds == {"emb": "embedding", "*": "regression"}
    assert {type(b).__name__ for b in cfg.targets[0].accuracy} == {"PerSampleBudget"}
    assert cfg.to_json()["outputs"] == {"emb": "embedding", "*": "regression"}
    with pytest.raises(InputError) as info:
        _config(MODEL + '[outputs]\nemb = "embeding"\nx = 3\n[[target]]\nbackend = "ort-cpu"\n'
                "accuracy = { knn_agreement_min = 1.5 }\n")  # fmt: skip
    text = str(info.value)
    assert "outputs.emb: unknown output kind 'embeding'" in text
    assert "outputs.x: must be a kind" in text
    assert "target[0].accuracy.knn_agreement_min" in text and "[0, 1]" in text


def test_gate_judges_an_embedding_per_sample(tmp_path: Path) -> None:
    make_encoder(tmp_path / "enc.onnx", output="out")
    token_data(tmp_path / "eval.npz", 64)
    token_data(tmp_path / "calib.npz", 64, seed=1)
    (tmp_path / "r.toml").write_text(
        '[model]\npath = "enc.onnx"\n[data]\nevaluation = "eval.npz"\n'
        f'calibration = "calib.npz"\n[outputs]\nout = "embedding"\n{FAST_MEASURE}\n'
        '[[target]]\nbackend = "ort-cpu"\nprecision = "int8"\n'
        "accuracy = { cosine_min = 0.99, cosine_p5_min = 0.99, knn_agreement_min = 0.5 }\n"
    )
    report = gate(tmp_path / "r.toml", out_dir=tmp_path / "o")
    checks = {c.key: c for c in report.checks}
    assert set(checks) == {"cosine_min", "cosine_p5_min", "knn_agreement_min"}
    assert checks["cosine_min"].verdict is Verdict.PASS
    assert "worst sample's cosine" in checks["cosine_min"].evidence
    (out,) = report.parity["results"][0]["outputs"]
    assert out["kind"] == "embedding" and out["kind_reason"] == "given"
    assert len(out["cosine_per_sample"]["worst"]) == 5 and out["neighbours"]["k"] == 10
    # A score budget on an embedding is refused, naming the key and the kinds.
    (tmp_path / "bad.toml").write_text(
        '[model]\npath = "enc.onnx"\n[data]\nevaluation = "eval.npz"\n[outputs]\n'
        f'out = "embedding"\n{FAST_MEASURE}\n[[target]]\nbackend = "ort-cpu"\n'
        "accuracy = { top1_agreement_min = 0.9 }\n"
    )
    with pytest.raises(InputError, match="no output of the model has top1_agreement") as info:
        gate(tmp_path / "bad.toml", out_dir=tmp_path / "o2")
    assert "[outputs]" in (info.value.hint or "")


def test_gate_refuses_a_kind_that_does_not_fit(tmp_path: Path) -> None:
    make_regressor(tmp_path / "reg.onnx")
    (tmp_path / "r.toml").write_text(
        f'[model]\npath = "reg.onnx"\n[outputs]\ny = "embedding"\n{FAST_MEASURE}\n'
        '[[target]]\nbackend = "ort-cpu"\naccuracy = { cosine_min = 0.9 }\n'
    )
    with pytest.raises(InputError, match="'y' cannot be embedding") as info:
        gate(tmp_path / "r.toml", out_dir=tmp_path / "o")
    assert info.value.where == "outputs"
