"""Accuracy parity: candidates against a reference, per output and per sample; metrics,
tolerances, golden outputs and localization of INT8 error.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.parity.comparison import DEFAULT_BATCH as DEFAULT_BATCH
    from optieval.parity.comparison import DEFAULT_EXCLUDE_ROUNDS as DEFAULT_EXCLUDE_ROUNDS
    from optieval.parity.comparison import DEFAULT_REFERENCE as DEFAULT_REFERENCE
    from optieval.parity.comparison import Cell as Cell
    from optieval.parity.comparison import compare as compare
    from optieval.parity.comparison import parse_cell as parse_cell
    from optieval.parity.localize import DEFAULT_LOCALIZE_SAMPLES as DEFAULT_LOCALIZE_SAMPLES
    from optieval.parity.localize import AutoExcludeResult as AutoExcludeResult
    from optieval.parity.localize import Localization as Localization
    from optieval.parity.metrics import DEFAULT_CONFIDENCE as DEFAULT_CONFIDENCE
    from optieval.parity.metrics import Interval as Interval
    from optieval.parity.results import CandidateParity as CandidateParity
    from optieval.parity.results import OutputParity as OutputParity
    from optieval.parity.results import ParityReport as ParityReport
    from optieval.parity.tolerances import Check as Check
    from optieval.parity.tolerances import TaskBudget as TaskBudget
    from optieval.parity.tolerances import ToleranceSet as ToleranceSet

_EXPORTS = {
    "AutoExcludeResult": "optieval.parity.localize",
    "CandidateParity": "optieval.parity.results",
    "Cell": "optieval.parity.comparison",
    "Check": "optieval.parity.tolerances",
    "DEFAULT_BATCH": "optieval.parity.comparison",
    "DEFAULT_CONFIDENCE": "optieval.parity.metrics",
    "DEFAULT_EXCLUDE_ROUNDS": "optieval.parity.comparison",
    "DEFAULT_LOCALIZE_SAMPLES": "optieval.parity.localize",
    "DEFAULT_REFERENCE": "optieval.parity.comparison",
    "Interval": "optieval.parity.metrics",
    "Localization": "optieval.parity.localize",
    "OutputParity": "optieval.parity.results",
    "ParityReport": "optieval.parity.results",
    "TaskBudget": "optieval.parity.tolerances",
    "ToleranceSet": "optieval.parity.tolerances",
    "compare": "optieval.parity.comparison",
    "parse_cell": "optieval.parity.comparison",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
