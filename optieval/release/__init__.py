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
    from optieval.release.run import GateReport as GateReport
    from optieval.release.run import Progress as Progress
    from optieval.release.run import gate as gate

_EXPORTS = {
    "Check": "optieval.release.budgets",
    "GateReport": "optieval.release.run",
    "Progress": "optieval.release.run",
    "gate": "optieval.release.run",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
