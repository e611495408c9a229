"""Accuracy parity: candidates against a reference, per output and per sample; metrics,
tolerances, golden outputs and localization of INT8 error; and the pieces of a parity run
(cells, inputs, batches, backends) that the detection compare is built on too.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.parity.comparison import DEFAULT_EXCLUDE_ROUNDS as DEFAULT_EXCLUDE_ROUNDS
    from optieval.parity.comparison import DEFAULT_REFERENCE as DEFAULT_REFERENCE
    from optieval.parity.comparison import compare as compare
    from optieval.parity.comparison import run_parity_shard as run_parity_shard
    from optieval.parity.kinds import OUTPUT_KINDS as OUTPUT_KINDS
    from optieval.parity.kinds import check_kind_name as check_kind_name
    from optieval.parity.kinds import parse_output_kinds as parse_output_kinds
    from optieval.parity.localize import DEFAULT_LOCALIZE_SAMPLES as DEFAULT_LOCALIZE_SAMPLES
    from optieval.parity.localize import Localization as Localization
    from optieval.parity.metrics import DEFAULT_CONFIDENCE as DEFAULT_CONFIDENCE
    from optieval.parity.metrics import Interval as Interval
    from optieval.parity.results import AutoExcludeResult as AutoExcludeResult
    from optieval.parity.results import CandidateParity as CandidateParity
    from optieval.parity.results import OutputParity as OutputParity
    from optieval.parity.results import ParityReport as ParityReport
    from optieval.parity.runs import DEFAULT_BATCH as DEFAULT_BATCH
    from optieval.parity.runs import GatheredInputs as GatheredInputs
    from optieval.parity.runs import RunCell as RunCell
    from optieval.parity.runs import fixed_batch as fixed_batch
    from optieval.parity.runs import gather_inputs as gather_inputs
    from optieval.parity.runs import localize_artifact as localize_artifact
    from optieval.parity.runs import manifest_warnings as manifest_warnings
    from optieval.parity.runs import measure_latency_ms as measure_latency_ms
    from optieval.parity.runs import open_backend as open_backend
    from optieval.parity.runs import parse_cell as parse_cell
    from optieval.parity.runs import split_batches as split_batches
    from optieval.parity.tolerances import MetricCheck as MetricCheck
    from optieval.parity.tolerances import TaskBudget as TaskBudget
    from optieval.parity.tolerances import ToleranceSet as ToleranceSet

_EXPORTS = {
    "AutoExcludeResult": "optieval.parity.results",
    "CandidateParity": "optieval.parity.results",
    "DEFAULT_BATCH": "optieval.parity.runs",
    "DEFAULT_CONFIDENCE": "optieval.parity.metrics",
    "DEFAULT_EXCLUDE_ROUNDS": "optieval.parity.comparison",
    "DEFAULT_LOCALIZE_SAMPLES": "optieval.parity.localize",
    "DEFAULT_REFERENCE": "optieval.parity.comparison",
    "GatheredInputs": "optieval.parity.runs",
    "Interval": "optieval.parity.metrics",
    "Localization": "optieval.parity.localize",
    "OUTPUT_KINDS": "optieval.parity.kinds",
    "MetricCheck": "optieval.parity.tolerances",
    "OutputParity": "optieval.parity.results",
    "ParityReport": "optieval.parity.results",
    "RunCell": "optieval.parity.runs",
    "TaskBudget": "optieval.parity.tolerances",
    "ToleranceSet": "optieval.parity.tolerances",
    "check_kind_name": "optieval.parity.kinds",
    "compare": "optieval.parity.comparison",
    "run_parity_shard": "optieval.parity.comparison",
    "fixed_batch": "optieval.parity.runs",
    "gather_inputs": "optieval.parity.runs",
    "localize_artifact": "optieval.parity.runs",
    "manifest_warnings": "optieval.parity.runs",
    "measure_latency_ms": "optieval.parity.runs",
    "open_backend": "optieval.parity.runs",
    "parse_cell": "optieval.parity.runs",
    "parse_output_kinds": "optieval.parity.kinds",
    "split_batches": "optieval.parity.runs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
