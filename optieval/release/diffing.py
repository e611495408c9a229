"""Two result files side by side (``optieval diff OLD NEW``): bench cells paired cell by cell
with the ratio of medians and its interval (:func:`optieval.bench.compare_to_baseline`, on the
samples the files hold), the checks whose verdict changed (gate reports, compare JSON), and
what differs in the environment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from optieval.release.readback import ResultFile

__all__ = ["CheckChange", "EnvChange", "ResultDiff", "diff_results"]

DIFF_SCHEMA_VERSION = 1
_ENV_SKIP = frozenset({"timestamp", "time", "date", "created", "created_at", "started_at",
                       "finished_at", "pid", "load_average", "loadavg", "load"})  # fmt: skip


@dataclass(frozen=True)
class CheckChange:
    """A check (gate) or parity check (compare) present in either file, with both verdicts
    (None where the file lacks it) and values."""

    name: str
    old: str | None
    new: str | None
    old_value: float | None = None
    new_value: float | None = None
    old_budget: str | None = None
    new_budget: str | None = None

    @property
    def changed(self) -> bool:
        """True when the verdict differs (or the check is on one side only)."""
        return self.old != self.new

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"name": self.name, "old": self.old, "new": self.new,
                "old_value": self.old_value, "new_value": self.new_value,
                "old_budget": self.old_budget, "new_budget": self.new_budget}  # fmt: skip

    @property
    def budget(self) -> str:
        """``≤ 5``, or ``≤ 5 -> ≤ 4`` when the budget changed."""
        if self.old_budget == self.new_budget or None in (self.old_budget, self.new_budget):
            return self.new_budget or self.old_budget or "-"
        return f"{self.old_budget} -> {self.new_budget}"


@dataclass(frozen=True)
class EnvChange:
    """One environment value that differs (dotted key; None where a side lacks it)."""

    key: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ResultDiff:
    """``new`` against ``old``.

    Attributes:
        old, new: the two files read (:class:`ResultFile`).
        cells: the paired bench cells (:class:`optieval.bench.BaselineComparison`), None when
            the files hold no bench cells in common (``cells_note`` says why).
        point_ratios: ``(cell, old p50 ms, new p50 ms, why no interval)`` for paired cells
            whose files hold no samples: the ratio of the printed medians, without interval.
        checks: every check of either file, paired by name; :attr:`changed_checks` filters.
        env: the environment values that differ.
    """

    old: ResultFile
    new: ResultFile
    cells: Any
    cells_note: str | None
    point_ratios: tuple[tuple[str, float, float, str], ...]
    checks: tuple[CheckChange, ...]
    env: tuple[EnvChange, ...]

    @property
    def changed_checks(self) -> tuple[CheckChange, ...]:
        """The checks whose verdict changed."""
        return tuple(c for c in self.checks if c.changed)

    def to_json(self) -> dict[str, Any]:
        """Plain data with ``schema_version`` and ``kind: "diff"``."""
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "kind": "diff",
            "old": {"path": str(self.old.path), "kind": self.old.kind},
            "new": {"path": str(self.new.path), "kind": self.new.kind},
            "cells": None if self.cells is None else self.cells.to_json(),
            "cells_note": self.cells_note,
            "point_ratios": [
                {
                    "cell": c,
                    "old_p50_ms": o,
                    "new_p50_ms": n,
                    "ratio": n / o if o else None,
                    "no_interval": why,
                }
                for c, o, n, why in self.point_ratios
            ],
            "checks_changed": [c.to_json() for c in self.changed_checks],
            "checks_unchanged": sum(1 for c in self.checks if not c.changed),
            "env": [e.to_json() for e in self.env],
        }


def diff_results(old: ResultFile, new: ResultFile, *, threshold: float = 0.05) -> ResultDiff:
    """Pair ``new`` with ``old``: bench cells (bench JSON or gate report, either side) by
    backend, precision, batch and shapes with the ratio of medians new/old and its interval and
    regression verdict at ``threshold``; checks by name; environment values by key.

    Raises:
        InputError: ``threshold`` is not a fraction in [0, 1).
    """
    from optieval.bench import compare_to_baseline
    from optieval.errors import InputError

    if not 0 <= threshold < 1:
        raise InputError(f"`threshold` {threshold} is not a fraction in [0, 1)",
                         where="threshold", hint="e.g. 0.05 for 5%")  # fmt: skip
    cells = None
    note = None
    points: list[tuple[str, float, float, str]] = []
    if not old.cells or not new.cells:
        note = "no bench cells to pair: " + (
            f"{old.path} is a {old.kind} result" if not old.cells else
            f"{new.path} is a {new.kind} result")  # fmt: skip
    else:
        try:
            cells = compare_to_baseline(new.cells, old.cells, new_env=new.env, old_env=old.env,
                                        threshold=threshold)  # fmt: skip
        except InputError as exc:
            note = exc.message
        if cells is not None:
            points = _point_ratios(cells.not_compared, old.cells, new.cells)
    return ResultDiff(
        old=old,
        new=new,
        cells=cells,
        cells_note=note,
        point_ratios=tuple(points),
        checks=_pair_checks(_checks(old), _checks(new)) if _same_checks(old, new) else (),
        env=_env_changes(old.env, new.env),
    )


def _same_checks(old: ResultFile, new: ResultFile) -> bool:
    """Gate checks pair with gate checks, compare checks with compare checks."""
    return (old.kind == "gate") == (new.kind == "gate")


def _point_ratios(
    not_compared: Any, old_cells: list[dict[str, Any]], new_cells: list[dict[str, Any]]
) -> list[tuple[str, float, float, str]]:
    from optieval.bench import cell_key, cell_label

    old_by = {cell_label(cell_key(c)): c for c in old_cells}
    new_by = {cell_label(cell_key(c)): c for c in new_cells}
    out = []
    for label, reason in not_compared:
        old_p50 = ((old_by.get(label) or {}).get("latency_ms") or {}).get("p50")
        new_p50 = ((new_by.get(label) or {}).get("latency_ms") or {}).get("p50")
        if isinstance(old_p50, (int, float)) and isinstance(new_p50, (int, float)) and old_p50:
            out.append((label, float(old_p50), float(new_p50), reason))
    return out


def _value(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_Seen = tuple[str | None, float | None, str | None]  # verdict, value, budget


def _checks(result: ResultFile) -> dict[str, _Seen]:
    """``{check name: (verdict, value, budget)}`` of a gate report or a compare JSON."""
    out: dict[str, _Seen] = {}
    if result.kind == "gate":
        from optieval.release.evidence import budget_text

        for check in result.report.checks:
            out[check.name] = (check.verdict.value, _value(check.judgement.value),
                               budget_text(check))  # fmt: skip
    elif result.kind in ("compare", "detection"):
        for cand in result.data.get("results") or []:
            name = str(cand.get("candidate", "?"))
            out[name] = ("PASS" if cand.get("passed") else "FAIL", None, None)
            for output in cand.get("outputs") or []:
                for check in output.get("checks") or []:
                    key = f"{name} {output.get('name', '?')} {check.get('name', '?')}"
                    limit = _value(check.get("limit"))
                    out[key] = ("PASS" if check.get("passed") else "FAIL",
                                _value(check.get("value")),
                                None if limit is None else f"{limit:.4g}")  # fmt: skip
    return out


def _pair_checks(old: dict[str, _Seen], new: dict[str, _Seen]) -> tuple[CheckChange, ...]:
    absent: _Seen = (None, None, None)
    names = list(new) + [n for n in old if n not in new]
    pairs = [(name, old.get(name, absent), new.get(name, absent)) for name in names]
    return tuple(CheckChange(name, o[0], n[0], o[1], n[1], o[2], n[2]) for name, o, n in pairs)


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _env_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[EnvChange, ...]:
    if not old or not new:
        return ()
    old_flat: dict[str, Any] = {}
    new_flat: dict[str, Any] = {}
    _flatten(old, "", old_flat)
    _flatten(new, "", new_flat)
    keys = sorted(set(old_flat) | set(new_flat))
    return tuple(
        EnvChange(k, old_flat.get(k), new_flat.get(k))
        for k in keys
        if k.rsplit(".", 1)[-1] not in _ENV_SKIP and old_flat.get(k) != new_flat.get(k)
    )
