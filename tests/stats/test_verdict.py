"""The interval-vs-budget rule shared by gate checks."""

from __future__ import annotations

import json

import pytest

from optieval.errors import InputError
from optieval.stats.verdict import (
    Judgement,
    Verdict,
    judge,
    judge_max,
    judge_min,
    judge_point_max,
    judge_point_min,
)

P, F, INC = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("low", "high", "budget", "expected"),
    [
        (8.0, 9.0, 10.0, P),
        (8.0, 10.0, 10.0, P),  # boundary counts as within
        (9.0, 11.0, 10.0, INC),
        (10.0, 11.0, 10.0, INC),  # low at the budget is not over it
        (10.5, 11.0, 10.0, F),
        (10.0, 10.0, 10.0, P),
        (None, None, 10.0, INC),  # unsupported interval
        (None, 9.0, 10.0, P),  # only the upper side known
        (11.0, None, 10.0, F),
        (None, 11.0, 10.0, INC),
        (9.0, None, 10.0, INC),
    ],
)
def test_judge_max(low: float | None, high: float | None, budget: float, expected: Verdict) -> None:
    assert judge_max(low, high, budget) is expected


@pytest.mark.parametrize(
    ("low", "high", "budget", "expected"),
    [
        (210.0, 250.0, 200.0, P),
        (200.0, 250.0, 200.0, P),
        (190.0, 250.0, 200.0, INC),
        (150.0, 199.0, 200.0, F),
        (150.0, 200.0, 200.0, INC),
        (None, None, 200.0, INC),
        (201.0, None, 200.0, P),
        (None, 150.0, 200.0, F),
    ],
)
def test_judge_min(low: float | None, high: float | None, budget: float, expected: Verdict) -> None:
    assert judge_min(low, high, budget) is expected


def test_points_are_never_inconclusive() -> None:
    assert judge_point_max(5.0, 5.0) is P
    assert judge_point_max(5.1, 5.0) is F
    assert judge_point_min(0.99, 0.99) is P
    assert judge_point_min(0.98, 0.99) is F


@pytest.mark.parametrize(
    "call",
    [
        lambda: judge_max(2.0, 1.0, 5.0),
        lambda: judge_max(float("nan"), 1.0, 5.0),
        lambda: judge_min(1.0, 2.0, float("inf")),
        lambda: judge_point_max(float("nan"), 1.0),
        lambda: judge("x", "max", 1.0, basis="point"),
        lambda: judge("x", "between", 1.0, value=1.0),  # type: ignore[arg-type]
    ],
)
def test_bad_input_raises(call: object) -> None:
    with pytest.raises(InputError):
        call()  # type: ignore[operator]


def test_verdict_is_a_string() -> None:
    assert Verdict.PASS == "PASS" and json.dumps(Verdict.FAIL.value) == '"FAIL"'


def test_judgement_carries_evidence_and_its_basis() -> None:
    j = judge("p99_ms", "max", 40.0, value=38.0, low=36.5, high=41.2, confidence=0.95)
    assert j.verdict is INC and j.basis == "interval"
    assert "95% interval [36.5, 41.2]" in j.evidence and "straddles" in j.evidence
    point = judge("cold_start_ms", "max", 500.0, value=120.0, basis="point")
    assert point.verdict is P and point.basis == "point" and "point, no interval" in point.evidence
    unsupported = judge("p99_ms", "max", 40.0, value=38.0)
    assert unsupported.verdict is INC and "no interval" in unsupported.evidence
    for item in (j, point, unsupported):
        assert Judgement.from_json(json.loads(json.dumps(item.to_json()))) == item


def test_judgement_from_json_refuses_garbage() -> None:
    with pytest.raises(InputError):
        Judgement.from_json({"metric": "x"})
