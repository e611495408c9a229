"""The gate's report (:class:`GateReport`, versioned JSON that also serves as a baseline) and how
a set of checks becomes a verdict (:func:`overall`) and an exit code (:func:`exit_code_for`).

Exit codes (docs/design.md): 0 when every check passes; 1 when any fails or is inconclusive (0 for
inconclusive with ``allow_inconclusive``); 3 when a check could not be made because its backend
failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from optieval.bench import GATE_REPORT_SCHEMA_VERSION, Cell
from optieval.errors import (
    EXIT_BACKEND,
    EXIT_CHECK_FAILED,
    EXIT_OK,
    InputError,
    combined_exit_code,
)
from optieval.release.budgets import Check
from optieval.stats import Verdict

__all__ = ["GATE_REPORT_KIND", "GateReport", "exit_code_for", "overall"]

GATE_REPORT_KIND = "gate-report"


@dataclass(frozen=True)
class GateReport:
    """What a gate run found: the verdict, every check with its evidence, every cell (in the
    bench cell shape, so the report serves as a baseline), the artifacts and the parity results.

    Attributes:
        verdict: PASS, FAIL or INCONCLUSIVE (the worst check; PASS when there are none).
        exit_code: 0, 1 or 3 (docs/design.md; 2 is raised as InputError before a report exists).
        allow_inconclusive: whether INCONCLUSIVE exits 0.
        config: the validated config (:meth:`GateConfig.to_json`).
        env: the machine's fingerprint.
        model: path, sha256, spec and export parity of the gated model.
        artifacts: per precision: path, sha256, bytes and precision census.
        cells: every bench cell (:class:`optieval.bench.results.Cell`).
        checks: every :class:`optieval.release.budgets.Check`.
        parity: the parity report's JSON (None when the model was refused).
        baseline: the baseline comparison's JSON (None without ``[baseline]``).
        warnings: environment and data warnings worth reading.
        reports: the files written (``{"json": path, "md": ..., "junit": ..., "html": ...}``).
        seconds: wall time of the run.
        executor: where the cells ran (:meth:`optieval.execution.Executor.describe`).
    """

    verdict: Verdict
    exit_code: int
    allow_inconclusive: bool
    config: dict[str, Any]
    env: dict[str, Any]
    model: dict[str, Any]
    artifacts: tuple[dict[str, Any], ...]
    cells: tuple[Cell, ...]
    checks: tuple[Check, ...]
    parity: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    reports: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    executor: dict[str, Any] = field(default_factory=dict)

    def count(self, verdict: Verdict) -> int:
        """How many checks have ``verdict``."""
        return sum(1 for c in self.checks if c.verdict is verdict)

    @property
    def summary(self) -> str:
        """``"FAIL: 7 checks, 5 passed, 1 failed, 1 inconclusive"``."""
        n = len(self.checks)
        return (
            f"{self.verdict.value}: {n} check{'s' if n != 1 else ''}, "
            f"{self.count(Verdict.PASS)} passed, {self.count(Verdict.FAIL)} failed, "
            f"{self.count(Verdict.INCONCLUSIVE)} inconclusive"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data with ``schema_version`` and ``kind: "gate-report"``; cells sit under
        ``cells`` in the bench cell shape (:func:`optieval.bench.results.load_baseline` reads
        them)."""
        return {
            "schema_version": GATE_REPORT_SCHEMA_VERSION,
            "kind": GATE_REPORT_KIND,
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "allow_inconclusive": self.allow_inconclusive,
            "summary": self.summary,
            "counts": {v.value: self.count(v) for v in Verdict},
            "seconds": round(self.seconds, 3),
            "config": self.config,
            "env": self.env,
            "model": self.model,
            "artifacts": list(self.artifacts),
            "checks": [c.to_json() for c in self.checks],
            "cells": [c.to_json() for c in self.cells],
            "parity": self.parity,
            "baseline": self.baseline,
            "warnings": list(self.warnings),
            "reports": dict(self.reports),
            "executor": dict(self.executor),
        }

    def records(self) -> list[dict[str, Any]]:
        """One plain row per check, failures first: verdict, check, value, interval, budget
        and evidence (what ``optieval gate`` prints)."""
        from optieval.release.evidence import ordered_checks

        return [
            {
                "verdict": c.verdict.value,
                "check": c.name,
                "target": c.target,
                "key": c.key,
                "value": c.judgement.value,
                "low": c.judgement.low,
                "high": c.judgement.high,
                "budget": c.judgement.budget,
                "evidence": c.evidence,
            }
            for c in ordered_checks(self.checks)
        ]

    def to_dataframe(self) -> Any:
        """:meth:`records` as a ``pandas.DataFrame`` (pandas is optional: InputError without)."""
        from optieval.core import records_frame

        return records_frame(self.records())

    def _repr_html_(self) -> str:
        from optieval.core import records_html

        return records_html(f"optieval gate: {self.summary} (exit {self.exit_code})",
                            self.records())  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = "gate report") -> GateReport:
        """Read a gate report; refuses another kind or schema version with what to do."""
        if not isinstance(data, dict) or data.get("kind") != GATE_REPORT_KIND:
            raise InputError("not a gate report", where=where,
                             hint="pass a report.json written by `optieval gate`")  # fmt: skip
        version = data.get("schema_version")
        if version != GATE_REPORT_SCHEMA_VERSION:
            raise InputError(
                f"gate report schema_version {version!r} is not {GATE_REPORT_SCHEMA_VERSION}",
                where=where,
                hint="re-run the gate with this optieval version",
            )
        try:
            return cls(
                verdict=Verdict(data["verdict"]),
                exit_code=int(data["exit_code"]),
                allow_inconclusive=bool(data.get("allow_inconclusive", False)),
                config=dict(data.get("config") or {}),
                env=dict(data.get("env") or {}),
                model=dict(data.get("model") or {}),
                artifacts=tuple(data.get("artifacts") or ()),
                cells=tuple(Cell.from_json(c) for c in data.get("cells") or ()),
                checks=tuple(Check.from_json(c) for c in data.get("checks") or ()),
                parity=data.get("parity"),
                baseline=data.get("baseline"),
                warnings=tuple(data.get("warnings") or ()),
                reports=dict(data.get("reports") or {}),
                seconds=float(data.get("seconds", 0.0)),
                executor=dict(data.get("executor") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed gate report ({exc})", where=where) from exc


def overall(checks: Iterable[Check]) -> Verdict:
    """The worst verdict among ``checks``: FAIL, then INCONCLUSIVE, else PASS."""
    verdicts = {c.verdict for c in checks}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def exit_code_for(checks: Iterable[Check], *, allow_inconclusive: bool = False) -> int:
    """docs/design.md's exit code for a set of checks: 3 when a check could not be made because its
    backend failed, else 1 for FAIL (or INCONCLUSIVE unless allowed), else 0."""
    codes = []
    for check in checks:
        if check.error:
            codes.append(EXIT_BACKEND)
        elif check.verdict is Verdict.FAIL or (
            check.verdict is Verdict.INCONCLUSIVE and not allow_inconclusive
        ):
            codes.append(EXIT_CHECK_FAILED)
        else:
            codes.append(EXIT_OK)
    return combined_exit_code(codes)
