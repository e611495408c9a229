"""Reading a result file back: a bench JSON, a compare (parity or detection) JSON or a gate
report, recognised by its content (docs/reference/: bench-json.md, parity-json.md,
gate-report.md), for ``optieval show`` and ``optieval diff``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optieval.errors import InputError

__all__ = ["RESULT_KINDS", "ResultFile", "read_result"]

RESULT_KINDS = ("bench", "compare", "detection", "gate")
"""What :func:`read_result` recognises: a bench JSON, a compare JSON (classification parity),
a detection compare JSON, a gate report."""

_HINT = (
    "pass a file written by `optieval bench --json`, `optieval compare --json` or "
    "`optieval gate` (its report.json, or the report folder)"
)


@dataclass(frozen=True)
class ResultFile:
    """A result file read back.

    Attributes:
        path: the file read (``report.json`` when a gate's report folder was given).
        kind: one of :data:`RESULT_KINDS`.
        report: the result object (:class:`optieval.bench.BenchReport`,
            :class:`optieval.parity.ParityReport`, :class:`optieval.detection.DetectionReport`
            or :class:`GateReport`).
        data: the file's JSON as read.
    """

    path: Path
    kind: str
    report: Any
    data: dict[str, Any]

    @property
    def cells(self) -> list[dict[str, Any]]:
        """The bench cells (bench JSON ``results``, gate report ``cells``) as plain data."""
        if self.kind == "bench":
            return [dict(c) for c in self.data.get("results") or []]
        if self.kind == "gate":
            return [dict(c) for c in self.data.get("cells") or []]
        return []

    @property
    def env(self) -> dict[str, Any]:
        """The environment fingerprint the result was measured in (empty for compare JSON)."""
        return dict(self.data.get("env") or {})


def read_result(path: str | os.PathLike[str]) -> ResultFile:
    """Read ``path``: a bench JSON, a compare JSON, a detection compare JSON or a gate report
    (a gate's report folder reads its ``report.json``).

    Raises:
        InputError (where the path): missing, not JSON, not one of these results, or of a
            schema version this optieval cannot read.
    """
    from optieval.core import read_json

    file = Path(path)
    if file.is_dir() and (file / "report.json").is_file():
        file = file / "report.json"
    elif file.is_dir():
        raise InputError("a folder without report.json", where=str(file), hint=_HINT)
    if file.suffix.lower() in (".onnx", ".engine", ".plan", ".pt", ".pt2"):
        raise InputError("a model, not a result file", where=str(file),
                         hint="`optieval inspect` describes models; " + _HINT)  # fmt: skip
    try:
        data = read_json(file, what="result file")
    except OSError as exc:  # unreadable (permissions, a device, ...)
        raise InputError(f"cannot read it ({exc.strerror or exc})", where=str(file),
                         hint=_HINT) from None  # fmt: skip
    where = str(file)
    if not isinstance(data, dict):
        raise InputError("not a result file (not a JSON object)", where=where, hint=_HINT)
    kind = _kind(data, where)
    try:
        report = _parse(kind, data, where)
    except InputError as exc:
        if exc.where:
            raise
        raise InputError(exc.message, where=where, hint=exc.hint) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"malformed {kind} result ({type(exc).__name__}: {exc})",
                         where=where, hint=_HINT) from None  # fmt: skip
    return ResultFile(file, kind, report, data)


def _kind(data: dict[str, Any], where: str) -> str:
    if data.get("kind") == "bench":
        return "bench"
    if data.get("kind") == "gate-report":
        return "gate"
    if data.get("task") == "detection":
        return "detection"
    if "reference" in data and isinstance(data.get("results"), list):
        return "compare"
    if "kind" not in data and isinstance(data.get("results"), list):
        return "bench"  # bench JSON written before it carried a kind
    what = f"kind {data['kind']!r}" if "kind" in data else "no kind"
    raise InputError(f"not a bench JSON, compare JSON or gate report ({what})", where=where,
                     hint=_HINT)  # fmt: skip


def _parse(kind: str, data: dict[str, Any], where: str) -> Any:
    if kind == "bench":
        from optieval.bench import BenchReport

        return BenchReport.from_json(data, where=where)
    if kind == "gate":
        from optieval.release.gate_report import GateReport

        return GateReport.from_json(data, where=where)
    if kind == "detection":
        from optieval.detection import DetectionReport

        return DetectionReport.from_json(data)
    from optieval.parity import ParityReport

    return ParityReport.from_json(data)
