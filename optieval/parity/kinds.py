"""Output kinds: what an output holds decides which metrics describe it.

=================  =============================================================================
kind               metrics
=================  =============================================================================
``logits``         class scores (batch x classes): argmax agreement, flip rate, top-5, accuracy
``probabilities``  the same, for scores that are already a softmax
``embedding``      per-sample cosine (mean, worst, a low percentile, with intervals) and
                   nearest-neighbour agreement (recall@k against the reference's neighbours)
``regression``     per-sample errors: max abs, relative error percentiles and the worst samples
``tensor``         anything else: element-wise metrics and per-sample cosine only
=================  =============================================================================

Every kind gets the element-wise metrics and the per-sample cosine; only class scores get argmax
metrics. Detection outputs are compared as boxes by the detection compare (``task``), not here.

A kind is given per output (``{"emb": "embedding"}``; ``"*"`` for every output not named) or
inferred, first rule that matches (:func:`infer_kind`):

1. the name: ``embed``, ``pooler``, ``pooled``, ``sentence``, ``feature``, ``hidden``, ``encod``
   or ``vector`` -> embedding; ``logit``, ``class`` or ``score`` -> logits; ``prob`` or
   ``softmax`` -> probabilities; ``regress``, ``depth`` or ``value`` -> regression;
2. the shape: one value per sample (``(batch,)`` or ``(batch, 1)``) -> regression; three or more
   dimensions -> tensor;
3. the reference's values, for (batch x N) outputs: every row of unit L2 norm -> embedding (a
   softmax row is never unit-norm with more than one non-zero); rows of non-negative values
   summing to 1 -> probabilities; otherwise logits.

The kind used and the reason are recorded with every output (``kind``, ``kind_reason``), so a
guess that is wrong is visible and can be overridden. A kind that does not fit the output's shape
(argmax over one value, a cosine over one number) is an InputError naming ``output_kinds``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optieval.errors import InputError

OUTPUT_KINDS = ("logits", "probabilities", "embedding", "regression", "tensor")
"""The output kinds ``compare`` and the gate know (detection has its own compare)."""

SCORE_KINDS = frozenset({"logits", "probabilities"})
"""Kinds whose outputs are class scores: the only ones with argmax metrics."""

ALL_OUTPUTS = "*"
"""The key of an ``output_kinds`` mapping that applies to every output not named."""

_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"embed|pooler|pooled|sentence|feature|hidden|encod|vector", "embedding"),
    (r"prob|softmax", "probabilities"),
    (r"logit|class|score", "logits"),
    (r"regress|depth|value", "regression"),
)
_UNIT_NORM_TOL = 1e-3


@dataclass(frozen=True)
class KindChoice:
    """The kind of one output and why: ``reason`` is ``"given"`` (asked for by name or for all
    outputs) or a short sentence on the rule that chose it."""

    kind: str
    reason: str


def parse_output_kinds(entries: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["emb=embedding", "regression"]`` (or a mapping) -> ``{"emb": "embedding",
    "*": "regression"}``: ``NAME=KIND`` for one output, a bare ``KIND`` for every output not
    named. InputError naming ``output_kinds`` for an unknown kind or a name given twice."""
    pairs: list[tuple[str, str]] = []
    if isinstance(entries, Mapping):
        pairs = [(str(k), str(v)) for k, v in entries.items()]
    else:
        for entry in entries or ():
            name, sep, kind = str(entry).rpartition("=")
            pairs.append((name if sep else ALL_OUTPUTS, kind.strip()))
    out: dict[str, str] = {}
    for name, kind in pairs:
        name = name.strip() or ALL_OUTPUTS
        check_kind_name(kind, where="output_kinds")
        if name in out and out[name] != kind:
            what = "every output" if name == ALL_OUTPUTS else f"output {name!r}"
            raise InputError(f"{what} is given two kinds, {out[name]} and {kind}",
                             where="output_kinds")  # fmt: skip
        out[name] = kind
    return out


def check_kind_name(kind: str, *, where: str) -> None:
    """InputError naming ``where`` when ``kind`` is not one of :data:`OUTPUT_KINDS`."""
    if kind in OUTPUT_KINDS:
        return
    if kind in ("detection", "boxes"):
        raise InputError(f"output kind {kind!r} is compared as boxes, not tensors", where=where,
                         hint="use the detection compare (`task` detection)")  # fmt: skip
    raise InputError(f"unknown output kind {kind!r}", where=where,
                     hint=f"choose from {', '.join(OUTPUT_KINDS)}")  # fmt: skip


def infer_kind(name: str, reference: np.ndarray) -> KindChoice:
    """The kind of output ``name`` from its name, shape and the reference's values (see the
    module docstring for the rules, applied in order)."""
    a = np.asarray(reference)
    dims = "x".join(map(str, a.shape[1:])) or "one value"
    per_sample = int(np.prod(a.shape[1:])) if a.ndim >= 1 else 1
    for pattern, kind in _NAME_RULES:
        match = re.search(pattern, name.lower())
        if match and fits(kind, a) is None:
            return KindChoice(kind, f"its name contains {match.group(0)!r}")
    if a.ndim <= 1 or per_sample == 1:
        return KindChoice("regression", "one value per sample")
    if a.ndim >= 3:
        return KindChoice("tensor", f"{dims} per sample: neither scores nor one vector")
    if not np.issubdtype(a.dtype, np.floating):
        return KindChoice("tensor", f"{a.dtype} values")
    rows = a.astype(np.float64).reshape(a.shape[0], -1)
    finite = rows[np.all(np.isfinite(rows), axis=1)]
    if finite.size:
        norms = np.linalg.norm(finite, axis=1)
        if np.all(np.abs(norms - 1.0) <= _UNIT_NORM_TOL):
            return KindChoice("embedding", f"every row of {dims} values has unit L2 norm")
        sums = finite.sum(axis=1)
        if finite.min() >= 0 and np.all(np.abs(sums - 1.0) <= _UNIT_NORM_TOL):
            return KindChoice("probabilities", f"every row of {dims} values sums to 1")
    return KindChoice("logits", f"{dims} values per sample, taken as class scores")


def fits(kind: str, reference: np.ndarray) -> str | None:
    """None when an output shaped like ``reference`` can be of ``kind``, else why not."""
    a = np.asarray(reference)
    shape = "x".join(map(str, a.shape)) or "a scalar"
    per_sample = int(np.prod(a.shape[1:])) if a.ndim >= 1 else 1
    if kind in SCORE_KINDS:
        if a.ndim != 2 or a.shape[1] < 2:
            return f"{kind} need (batch x classes) with 2 classes or more; the output is {shape}"
        if not np.issubdtype(a.dtype, np.floating):
            return f"{kind} need float scores; the output holds {a.dtype}"
    elif kind == "embedding":
        if a.ndim < 2 or per_sample < 2:
            return f"an embedding needs a vector per sample (batch x dim); the output is {shape}"
        if not np.issubdtype(a.dtype, np.floating):
            return f"an embedding needs float values; the output holds {a.dtype}"
    elif kind in ("regression", "tensor") and a.ndim < 1:
        return f"{kind} needs a sample axis; the output is a scalar"
    return None


def resolve_kinds(
    reference: Mapping[str, np.ndarray], given: Mapping[str, str] | None = None
) -> dict[str, KindChoice]:
    """The kind of every output of ``reference`` (name -> array): the one ``given`` for it (or
    for ``"*"``), else :func:`infer_kind`'s.

    Raises:
        InputError: naming ``output_kinds``: a name that is no output, an unknown kind, or a
            kind that does not fit the output's shape (all such problems in one message).
    """
    given = dict(given or {})
    for wanted in given.values():
        check_kind_name(wanted, where="output_kinds")
    unknown = sorted(set(given) - set(reference) - {ALL_OUTPUTS})
    if unknown:
        raise InputError(f"the model has no output called {', '.join(unknown)}",
                         where="output_kinds",
                         hint=f"the outputs are {', '.join(reference)}")  # fmt: skip
    chosen: dict[str, KindChoice] = {}
    problems: list[str] = []
    for name, value in reference.items():
        kind = given.get(name, given.get(ALL_OUTPUTS))
        if kind is None:
            chosen[name] = infer_kind(name, value)
            continue
        why = fits(kind, value)
        if why is not None:
            problems.append(f"output {name!r} cannot be {kind}: {why}")
        chosen[name] = KindChoice(kind, "given")
    if problems:
        raise InputError(
            "; ".join(problems),
            where="output_kinds",
            hint=f"give each output a kind that fits: {', '.join(OUTPUT_KINDS)}",
        )
    return chosen


__all__ = [
    "ALL_OUTPUTS",
    "OUTPUT_KINDS",
    "SCORE_KINDS",
    "KindChoice",
    "check_kind_name",
    "fits",
    "infer_kind",
    "parse_output_kinds",
    "resolve_kinds",
]
