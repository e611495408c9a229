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
    from optieval.release.config import GateConfig as GateConfig
    from optieval.release.config_loader import load_config as load_config
    from optieval.release.config_loader import parse_config as parse_config
    from optieval.release.diffing import ResultDiff as ResultDiff
    from optieval.release.diffing import diff_results as diff_results
    from optieval.release.evidence import VERDICT_COLOURS as VERDICT_COLOURS
    from optieval.release.evidence import budget_text as budget_text
    from optieval.release.evidence import format_bound as format_bound
    from optieval.release.evidence import interval_text as interval_text
    from optieval.release.evidence import ordered_checks as ordered_checks
    from optieval.release.evidence import value_text as value_text
    from optieval.release.gate_report import GateReport as GateReport
    from optieval.release.readback import ResultFile as ResultFile
    from optieval.release.readback import read_result as read_result
    from optieval.release.run import gate as gate
    from optieval.release.steps import Progress as Progress

_EXPORTS = {
    "Check": "optieval.release.budgets",
    "GateConfig": "optieval.release.config",
    "GateReport": "optieval.release.gate_report",
    "Progress": "optieval.release.steps",
    "ResultDiff": "optieval.release.diffing",
    "ResultFile": "optieval.release.readback",
    "VERDICT_COLOURS": "optieval.release.evidence",
    "budget_text": "optieval.release.evidence",
    "diff_results": "optieval.release.diffing",
    "format_bound": "optieval.release.evidence",
    "gate": "optieval.release.run",
    "interval_text": "optieval.release.evidence",
    "load_config": "optieval.release.config_loader",
    "ordered_checks": "optieval.release.evidence",
    "parse_config": "optieval.release.config_loader",
    "read_result": "optieval.release.readback",
    "value_text": "optieval.release.evidence",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
