"""Output kinds: parsed, inferred from names, shapes and values, and refused where they do not
fit the output's shape."""

from __future__ import annotations

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity.kinds import fits, infer_kind, parse_output_kinds, resolve_kinds

rng = np.random.default_rng(0)


def _unit(n: int, d: int) -> np.ndarray:
    a = rng.normal(size=(n, d))
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def test_parse_named_and_bare_kinds() -> None:
    assert parse_output_kinds(["emb=embedding", "regression"]) == {
        "emb": "embedding",
        "*": "regression",
    }
    assert parse_output_kinds({"a:b": "logits"}) == {"a:b": "logits"}
    # An output name may itself hold "=": the kind is after the last one.
    assert parse_output_kinds(["x=y=tensor"]) == {"x=y": "tensor"}


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (["emb=embeding"], "unknown output kind 'embeding'"),
        (["boxes=detection"], "compared as boxes"),
        (["a=logits", "a=embedding"], "two kinds"),
    ],
)
def test_parse_refuses(entries: list[str], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        parse_output_kinds(entries)
    assert info.value.where == "output_kinds"


@pytest.mark.parametrize(
    ("name", "array", "kind", "why"),
    [
        ("sentence_embedding", rng.normal(size=(8, 32)), "embedding", "'sentence'"),
        ("pooler_output", rng.normal(size=(8, 32)), "embedding", "'pooler'"),
        ("logits", _unit(8, 32), "logits", "'logit'"),
        ("probs", rng.random(size=(8, 3)), "probabilities", "'prob'"),
        ("out", _unit(8, 32), "embedding", "unit L2 norm"),
        ("out", np.full((8, 4), 0.25, np.float32), "probabilities", "sums to 1"),
        ("out", rng.normal(size=(8, 10)), "logits", "class scores"),
        ("out", rng.normal(size=(8, 1)), "regression", "one value per sample"),
        ("out", rng.normal(size=(8,)), "regression", "one value per sample"),
        ("out", rng.normal(size=(8, 3, 4)), "tensor", "neither scores nor one vector"),
        # A name that hints at a kind the shape cannot be falls through to the shape rules.
        ("logits", rng.normal(size=(8, 1)), "regression", "one value per sample"),
    ],
)
def test_inferred_kind_and_reason(name: str, array: np.ndarray, kind: str, why: str) -> None:
    choice = infer_kind(name, array)
    assert choice.kind == kind
    assert why in choice.reason


def test_kinds_that_do_not_fit_the_shape() -> None:
    assert fits("logits", np.zeros((4, 1), np.float32)) is not None
    assert fits("embedding", np.zeros((4,), np.float32)) is not None
    assert fits("embedding", np.zeros((4, 3), np.int64)) is not None
    assert fits("regression", np.zeros((4, 3), np.float32)) is None
    assert fits("embedding", np.zeros((4, 6, 8), np.float32)) is None


def test_resolve_names_every_problem_at_once() -> None:
    ref = {"score": np.zeros((4, 1), np.float32), "vec": np.zeros((4,), np.float32)}
    with pytest.raises(InputError) as info:
        resolve_kinds(ref, {"score": "logits", "vec": "embedding"})
    text = str(info.value)
    assert "'score' cannot be logits" in text and "'vec' cannot be embedding" in text
    assert info.value.where == "output_kinds"
    with pytest.raises(InputError, match="no output called nope"):
        resolve_kinds(ref, {"nope": "embedding"})


def test_resolve_star_applies_to_the_rest() -> None:
    ref = {"a": rng.normal(size=(4, 5)), "b": rng.normal(size=(4, 5))}
    kinds = resolve_kinds(ref, {"*": "embedding", "b": "regression"})
    assert kinds["a"].kind == "embedding" and kinds["a"].reason == "given"
    assert kinds["b"].kind == "regression"
