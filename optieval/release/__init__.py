"""The release gate: the TOML config, declarative budgets, the run that judges them, and the
reports (JSON, Markdown, JUnit, HTML).

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.release.budgets import Check as Check
    from optieval.release.evidence import VERDICT_COLOURS as VERDICT_COLOURS
    from optieval.release.evidence import budget_text as budget_text
    from optieval.release.evidence import format_bound as format_bound
    from optieval.release.evidence import interval_text as interval_text
    from optieval.release.evidence import ordered_checks as ordered_checks
    from optieval.release.gate_report import GateReport as GateReport
    from optieval.release.run import gate as gate
    from optieval.release.steps import Progress as Progress

_EXPORTS = {
    "Check": "optieval.release.budgets",
    "GateReport": "optieval.release.gate_report",
    "Progress": "optieval.release.steps",
    "VERDICT_COLOURS": "optieval.release.evidence",
    "budget_text": "optieval.release.evidence",
    "format_bound": "optieval.release.evidence",
    "gate": "optieval.release.run",
    "interval_text": "optieval.release.evidence",
    "ordered_checks": "optieval.release.evidence",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
