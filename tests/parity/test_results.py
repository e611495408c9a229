"""Tolerances, budgets, the pure comparison and the versioned JSON of parity results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity.output_compare import compare_outputs
from optieval.parity.results import (
    SCHEMA_VERSION,
    CandidateParity,
    ParityReport,
    check_labels,
)
from optieval.parity.tolerances import (
    DEFAULT_TOLERANCES,
    TaskBudget,
    Tolerance,
    ToleranceSet,
    parse_tol,
)
from tests.parity.parity_helpers import logits_with_flips

FIXTURE = Path(__file__).parent / "fixtures" / "parity_report_v1.json"


def test_defaults_loosen_with_precision() -> None:
    fp32, fp16, int8 = (DEFAULT_TOLERANCES[p] for p in ("fp32", "fp16", "int8"))
    assert fp32.atol < fp16.atol < int8.atol
    assert fp32.rtol < fp16.rtol < int8.rtol


def test_tolerance_resolution_order() -> None:
    tols = ToleranceSet("fp16", atol=0.5, per_output={"b": Tolerance(1.0, 2.0, "--tol")})
    assert tols.for_output("a") == Tolerance(0.5, DEFAULT_TOLERANCES["fp16"].rtol, "--atol/--rtol")
    assert tols.for_output("b").atol == 1.0
    assert ToleranceSet("int8").for_output("a") == DEFAULT_TOLERANCES["int8"]


def test_parse_tol() -> None:
    assert parse_tol("logits:1e-3:0.01") == ("logits", Tolerance(1e-3, 0.01, "--tol"))
    assert parse_tol("ns:out:1:2")[0] == "ns:out"
    for bad in ("logits", "logits:1", ":1:2", "logits:x:1", "logits:-1:1"):
        with pytest.raises(InputError, match="^tol: "):
            parse_tol(bad)


def test_tol_naming_unknown_output_is_input_error() -> None:
    tols = ToleranceSet(per_output={"nope": Tolerance(1, 1)})
    with pytest.raises(InputError, match="nope") as info:
        compare_outputs({"y": np.zeros((2, 2))}, {"y": np.zeros((2, 2))}, tolerances=tols)
    assert info.value.where == "tol"


def test_mismatched_names_and_shapes_collected_once() -> None:
    ref = {"a": np.zeros((2, 3)), "b": np.zeros(2)}
    cand = {"a": np.zeros((2, 4)), "c": np.zeros(2)}
    with pytest.raises(InputError) as info:
        compare_outputs(ref, cand)
    text = str(info.value)
    assert "lacks output(s) b" in text and "extra output(s) c" in text and "2x3" in text


def test_nan_fails_whatever_the_tolerance() -> None:
    ref = np.ones((4, 3))
    cand = ref.copy()
    cand[0, 0] = np.nan
    huge = ToleranceSet(atol=1e9, rtol=1e9)
    (out,) = compare_outputs({"y": ref}, {"y": cand}, tolerances=huge)
    assert not out.passed and out.nan_count == 1 and out.worst_metric == "finite"
    (ok,) = compare_outputs({"y": ref}, {"y": ref.copy()}, tolerances=huge)
    assert ok.passed


def test_classification_output_gets_flip_and_accuracy() -> None:
    ref, cand, _ = logits_with_flips(200, 6, 0.1)
    labels = np.argmax(ref, axis=1)
    (out,) = compare_outputs(
        {"logits": ref},
        {"logits": cand},
        tolerances=ToleranceSet(atol=100, rtol=0),
        labels=labels,
        budget=TaskBudget(max_accuracy_drop=0.05, min_accuracy_ratio=0.99),
    )
    assert out.flip_rate == pytest.approx(0.1) and out.flip_rate_ci is not None
    assert out.accuracy_reference == 1.0 and out.accuracy_delta == pytest.approx(-0.1)
    assert out.accuracy_ratio == pytest.approx(0.9)
    names = {c.name: c.passed for c in out.checks}
    assert names == {
        "finite": True,
        "tolerance": True,
        "accuracy_delta": False,
        "accuracy_ratio": False,
    }
    assert not out.passed and out.worst_metric in ("accuracy_delta", "accuracy_ratio")


def test_budget_passes_within_drop() -> None:
    ref, cand, _ = logits_with_flips(100, 4, 0.01)
    labels = np.argmax(ref, axis=1)
    (out,) = compare_outputs(
        {"logits": ref},
        {"logits": cand},
        tolerances=ToleranceSet(atol=100, rtol=0),
        labels=labels,
        budget=TaskBudget(max_accuracy_drop=0.02, min_top1_agreement=0.98),
    )
    assert out.passed


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros(5, dtype=np.int64), "5 labels for 4 samples"),
        (np.array(["a", "b", "c", "d"]), "dtype"),
        (np.array([0.5, 1, 2, 0]), "whole numbers"),
        (np.array([0, -1, 1, 1]), "negative"),
    ],
)
def test_bad_labels(labels: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_labels(labels, 4)


def test_labels_beyond_the_classes() -> None:
    with pytest.raises(InputError, match="class 7"):
        compare_outputs({"y": np.zeros((2, 3))}, {"y": np.zeros((2, 3))}, labels=np.array([0, 7]))


def test_one_hot_labels_accepted() -> None:
    assert check_labels(np.eye(3)[[2, 0, 1]], 3).tolist() == [2, 0, 1]


def test_labels_without_classification_output() -> None:
    with pytest.raises(InputError, match="class scores"):
        compare_outputs({"y": np.zeros((4,))}, {"y": np.zeros((4,))}, labels=np.zeros(4))


def _report() -> ParityReport:
    ref, cand, _ = logits_with_flips(50, 6, 0.04)
    outputs = compare_outputs(
        {"logits": ref},
        {"logits": cand},
        labels=np.argmax(ref, axis=1),
        tolerances=ToleranceSet("int8"),
    )
    result = CandidateParity(
        candidate="ort-cpu:int8",
        reference="ort-cpu:fp32",
        passed=all(o.passed for o in outputs),
        samples=50,
        outputs=outputs,
        inputs="generated:seed=0",
    )
    return ParityReport("m.onnx", "ab" * 32, "ort-cpu:fp32", (result,))


def test_json_round_trip_and_strict_json() -> None:
    report = _report()
    data = report.to_json()
    text = json.dumps(data, allow_nan=False)  # no NaN/Infinity literals
    again = ParityReport.from_json(json.loads(text))
    assert again == report
    assert data["schema_version"] == SCHEMA_VERSION
    out = data["results"][0]["outputs"][0]
    for key in (
        "name",
        "passed",
        "max_abs",
        "max_rel",
        "mean_abs",
        "rmse",
        "cosine",
        "snr_db",
        "nan_count",
        "inf_count",
        "top1_agreement",
        "top5_agreement",
        "flip_rate",
        "flip_rate_ci",
        "accuracy_reference",
        "accuracy_candidate",
        "accuracy_delta",
        "accuracy_delta_ci",
        "accuracy_ratio",
        "accuracy_ratio_ci",
        "worst_samples",
    ):
        assert key in out


def test_infinite_snr_round_trips() -> None:
    ref = np.ones((3, 2))
    outputs = compare_outputs({"y": ref}, {"y": ref.copy()})
    res = CandidateParity("ort-cpu:fp32", "ort-cpu:fp32", True, 3, outputs)
    data = ParityReport("m", "h", "ort-cpu:fp32", (res,)).to_json()
    assert data["results"][0]["outputs"][0]["snr_db"] == "inf"
    assert math.isinf(ParityReport.from_json(data).results[0].outputs[0].snr_db)


def test_unknown_schema_version_refused() -> None:
    data = _report().to_json()
    data["schema_version"] = 99
    with pytest.raises(InputError, match="schema_version 99") as info:
        ParityReport.from_json(data)
    assert info.value.hint and "re-run" in info.value.hint


def test_released_v1_fixture_still_loads() -> None:
    report = ParityReport.from_json(json.loads(FIXTURE.read_text()))
    assert report.results[0].candidate == "ort-cpu:int8"
    assert report.results[0].outputs[0].flip_rate_ci is not None
    # Version 1 had no kinds: an output with argmax metrics reads back as logits, the
    # per-sample fields as absent.
    out = report.results[0].outputs[0]
    assert out.kind == "logits" and out.cosine_per_sample is None and out.neighbours is None
    assert ParityReport.from_json(report.to_json()) == report
