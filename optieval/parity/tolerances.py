"""Tolerances per output and per precision, and task budgets on accuracy.

An output passes its tolerance when every element finite in both tensors satisfies
``|candidate - reference| <= atol + rtol * |reference|`` (numpy's ``allclose`` rule). Defaults
reflect what each precision can reach against an FP32 reference:

=========  =======  =======  =====================================================
precision  atol     rtol     why
=========  =======  =======  =====================================================
fp32       1e-4     1e-4     same math, different kernels or summation order
bf16       5e-2     5e-2     8 mantissa bits
fp16       1e-2     1e-2     11 mantissa bits, accumulated over layers
int8       1e-1     1e-1     per-tensor activation scales: ~1/254 of a range per layer
=========  =======  =======  =====================================================

``atol`` / ``rtol`` replace the default for every output; ``tol`` (``OUTPUT:ATOL:RTOL``)
replaces it for one output (and wins over ``atol``/``rtol``).

Task budgets (:class:`TaskBudget`) judge task accuracy against labels: absolute
(``accuracy_delta >= -max_accuracy_drop``) or relative like MLPerf's (``accuracy_ratio >=
min_accuracy_ratio``, e.g. 0.99), and optionally argmax agreement (class scores only); the
worst sample's cosine (``min_cosine``, every output) and nearest-neighbour agreement
(``min_knn_agreement``, embeddings). ``compare`` judges them on the point estimates and reports
the intervals beside them; the gate decides on the intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optieval.core import PRECISIONS
from optieval.errors import InputError


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance for one output, and where it came from
    (``default:fp16``, ``--atol/--rtol``, ``--tol``: these recorded labels keep their old
    spelling, which reports and saved JSON carry)."""

    atol: float
    rtol: float
    source: str = "default"

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {"atol": self.atol, "rtol": self.rtol, "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tolerance:
        """Inverse of :meth:`to_json`."""
        return cls(float(data["atol"]), float(data["rtol"]), str(data.get("source", "default")))


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(1e-4, 1e-4, "default:fp32"),
    "bf16": Tolerance(5e-2, 5e-2, "default:bf16"),
    "fp16": Tolerance(1e-2, 1e-2, "default:fp16"),
    "int8": Tolerance(1e-1, 1e-1, "default:int8"),
}


DEFAULT_EMBEDDING_COSINE: dict[str, float] = {
    "fp32": 0.9999,
    "bf16": 0.99,
    "fp16": 0.999,
    "int8": 0.95,
}
"""The worst sample's cosine an embedding output must keep when no ``min_cosine`` is given.

Element tolerances say little about an embedding (a unit vector of a few hundred elements of
~0.05 each passes ``atol = 0.1`` whatever its direction), so embeddings are also judged on
direction. Measured on MiniLM-L6 (100 sentences): fp16's worst sample 0.9999994; int8's 0.967
(dynamic) and 0.947 (portable symmetric).
"""


def default_tolerance(precision: str) -> Tolerance:
    """The default tolerance for a candidate precision; InputError for an unknown one."""
    try:
        return DEFAULT_TOLERANCES[precision]
    except KeyError:
        raise InputError(
            f"unknown precision {precision!r}",
            where="candidates",
            hint=f"choose from {', '.join(PRECISIONS)}",
        ) from None


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{text!r} is not a number", where=where) from None
    if math.isnan(value) or value < 0:
        raise InputError(f"{text!r} must be a number >= 0", where=where)
    return value


def parse_tol(text: str) -> tuple[str, Tolerance]:
    """Parse one ``tol`` entry, ``OUTPUT:ATOL:RTOL`` (the output name may itself contain ``:``).

    Raises InputError naming ``tol`` when it is malformed or a number is negative.
    """
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise InputError(
            f"{text!r} is not OUTPUT:ATOL:RTOL", where="tol", hint="e.g. `tol` logits:1e-3:1e-2"
        )
    name, atol, rtol = parts
    return name, Tolerance(_number(atol, "tol"), _number(rtol, "tol"), "--tol")


@dataclass(frozen=True)
class ToleranceSet:
    """Tolerances for every output of one comparison.

    Args:
        precision: the candidate's precision (picks the default).
        atol, rtol: replace the default's atol / rtol for every output (None: keep it).
        per_output: output name -> Tolerance (``tol``), wins over everything else.
    """

    precision: str = "fp32"
    atol: float | None = None
    rtol: float | None = None
    per_output: Mapping[str, Tolerance] = field(default_factory=dict)

    def for_output(self, name: str) -> Tolerance:
        """The tolerance that applies to output ``name``."""
        if name in self.per_output:
            return self.per_output[name]
        base = default_tolerance(self.precision)
        if self.atol is None and self.rtol is None:
            return base
        return Tolerance(
            base.atol if self.atol is None else self.atol,
            base.rtol if self.rtol is None else self.rtol,
            "--atol/--rtol",
        )

    def embedding_cosine(self) -> float | None:
        """The default worst-sample cosine for embedding outputs of this precision."""
        return DEFAULT_EMBEDDING_COSINE.get(self.precision)

    def check_outputs(self, outputs: Iterable[str]) -> None:
        """InputError naming ``tol`` when a per-output tolerance names no output."""
        known = list(outputs)
        unknown = sorted(set(self.per_output) - set(known))
        if unknown:
            raise InputError(
                f"the model has no output called {', '.join(unknown)}",
                where="tol",
                hint=f"the outputs are {', '.join(known)}",
            )


@dataclass(frozen=True)
class MetricCheck:
    """One judged criterion on an output's metric: its name, value, limit and verdict."""

    name: str
    passed: bool
    value: float | None
    limit: float | None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "limit": self.limit,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricCheck:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            bool(data["passed"]),
            data.get("value"),
            data.get("limit"),
            str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class TaskBudget:
    """Budgets on task accuracy and argmax agreement for classification-shaped outputs.

    Args:
        max_accuracy_drop: absolute budget: ``accuracy_delta >= -max_accuracy_drop``
            (e.g. 0.01 for one point); needs labels.
        min_accuracy_ratio: relative budget like MLPerf's: ``accuracy_ratio >= value``
            (e.g. 0.99); needs labels.
        min_top1_agreement: ``top1_agreement >= value``; needs no labels.
        min_cosine: every sample's cosine with the reference ``>= value`` (the worst sample's,
            ``cosine_per_sample.min``).
        min_knn_agreement: nearest-neighbour agreement (recall@k) ``>= value``; embeddings.
    """

    max_accuracy_drop: float | None = None
    min_accuracy_ratio: float | None = None
    min_top1_agreement: float | None = None
    min_cosine: float | None = None
    min_knn_agreement: float | None = None

    @property
    def empty(self) -> bool:
        """True when no budget is set."""
        return all(v is None for v in self.to_json().values())

    @property
    def score_budgets(self) -> tuple[str, ...]:
        """The budgets set that only class scores have (argmax and accuracy)."""
        names = ("max_accuracy_drop", "min_accuracy_ratio", "min_top1_agreement")
        return tuple(n for n in names if getattr(self, n) is not None)

    def checks(
        self,
        *,
        accuracy_delta: float | None,
        accuracy_ratio: float | None,
        top1_agreement: float | None,
        cosine: float | None = None,
        knn_agreement: float | None = None,
    ) -> list[MetricCheck]:
        """The checks that apply to one output's metrics (a budget whose metric is None, e.g.
        accuracy without labels, yields no check)."""
        out: list[MetricCheck] = []
        if self.max_accuracy_drop is not None and accuracy_delta is not None:
            limit = -self.max_accuracy_drop
            out.append(
                MetricCheck("accuracy_delta", accuracy_delta >= limit, accuracy_delta, limit)
            )
        if self.min_accuracy_ratio is not None and accuracy_ratio is not None:
            out.append(
                MetricCheck(
                    "accuracy_ratio",
                    accuracy_ratio >= self.min_accuracy_ratio,
                    accuracy_ratio,
                    self.min_accuracy_ratio,
                )
            )
        if self.min_top1_agreement is not None and top1_agreement is not None:
            out.append(
                MetricCheck(
                    "top1_agreement",
                    top1_agreement >= self.min_top1_agreement,
                    top1_agreement,
                    self.min_top1_agreement,
                )
            )
        if self.min_cosine is not None and cosine is not None:
            out.append(MetricCheck("cosine", cosine >= self.min_cosine, cosine, self.min_cosine,
                                   "worst sample's cosine with the reference"))  # fmt: skip
        if self.min_knn_agreement is not None and knn_agreement is not None:
            out.append(MetricCheck("knn_agreement", knn_agreement >= self.min_knn_agreement,
                                   knn_agreement, self.min_knn_agreement,
                                   "nearest-neighbour agreement (recall@k)"))  # fmt: skip
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "max_accuracy_drop": self.max_accuracy_drop,
            "min_accuracy_ratio": self.min_accuracy_ratio,
            "min_top1_agreement": self.min_top1_agreement,
            "min_cosine": self.min_cosine,
            "min_knn_agreement": self.min_knn_agreement,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskBudget:
        """Inverse of :meth:`to_json`."""
        return cls(
            data.get("max_accuracy_drop"),
            data.get("min_accuracy_ratio"),
            data.get("min_top1_agreement"),
            data.get("min_cosine"),
            data.get("min_knn_agreement"),
        )
