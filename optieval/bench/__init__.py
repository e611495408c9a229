"""Latency measurement: the timed loop, the benchmark matrix and its results, baselines, FLOPs,
op profiles and load scenarios.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.bench.baseline import BaselineComparison as BaselineComparison
    from optieval.bench.baseline import Regression as Regression
    from optieval.bench.baseline import baseline_model_at_hand as baseline_model_at_hand
    from optieval.bench.baseline import cell_key as cell_key
    from optieval.bench.baseline import cell_label as cell_label
    from optieval.bench.baseline import compare_to_baseline as compare_to_baseline
    from optieval.bench.baseline import setup_differences as setup_differences
    from optieval.bench.cell import CellRequest as CellRequest
    from optieval.bench.cell import resolve_artifact as resolve_artifact
    from optieval.bench.cell import run_cell as run_cell
    from optieval.bench.latency import MeasureSettings as MeasureSettings
    from optieval.bench.results import GATE_REPORT_SCHEMA_VERSION as GATE_REPORT_SCHEMA_VERSION
    from optieval.bench.results import STATUS_ERROR as STATUS_ERROR
    from optieval.bench.results import STATUS_OK as STATUS_OK
    from optieval.bench.results import BenchReport as BenchReport
    from optieval.bench.results import Cell as Cell
    from optieval.bench.results import load_baseline as load_baseline
    from optieval.bench.runner import benchmark as benchmark
    from optieval.bench.runner import check_against_baseline as check_against_baseline
    from optieval.bench.scenarios.results import IssueLag as IssueLag
    from optieval.bench.scenarios.results import MaxQpsResult as MaxQpsResult
    from optieval.bench.scenarios.results import RateTrial as RateTrial
    from optieval.bench.scenarios.results import ScenarioResult as ScenarioResult
    from optieval.bench.scenarios.results import max_qps_from_cell as max_qps_from_cell
    from optieval.bench.scenarios.run import find_max_qps as find_max_qps
    from optieval.bench.scenarios.run import run_scenario as run_scenario
    from optieval.bench.scenarios.spec import CONCURRENCY as CONCURRENCY
    from optieval.bench.scenarios.spec import OFFLINE as OFFLINE
    from optieval.bench.scenarios.spec import SCENARIOS as SCENARIOS
    from optieval.bench.scenarios.spec import SERVER as SERVER
    from optieval.bench.scenarios.spec import SINGLE_STREAM as SINGLE_STREAM
    from optieval.bench.scenarios.spec import ScenarioSpec as ScenarioSpec
    from optieval.bench.scenarios.spec import check_scenario_support as check_scenario_support
    from optieval.bench.scenarios.spec import parse_rate_list as parse_rate_list
    from optieval.bench.scenarios.spec import scenario_specs as scenario_specs

_EXPORTS = {
    "BaselineComparison": "optieval.bench.baseline",
    "BenchReport": "optieval.bench.results",
    "CONCURRENCY": "optieval.bench.scenarios.spec",
    "Cell": "optieval.bench.results",
    "CellRequest": "optieval.bench.cell",
    "GATE_REPORT_SCHEMA_VERSION": "optieval.bench.results",
    "IssueLag": "optieval.bench.scenarios.results",
    "MaxQpsResult": "optieval.bench.scenarios.results",
    "MeasureSettings": "optieval.bench.latency",
    "OFFLINE": "optieval.bench.scenarios.spec",
    "RateTrial": "optieval.bench.scenarios.results",
    "Regression": "optieval.bench.baseline",
    "SCENARIOS": "optieval.bench.scenarios.spec",
    "SERVER": "optieval.bench.scenarios.spec",
    "SINGLE_STREAM": "optieval.bench.scenarios.spec",
    "STATUS_ERROR": "optieval.bench.results",
    "STATUS_OK": "optieval.bench.results",
    "ScenarioResult": "optieval.bench.scenarios.results",
    "ScenarioSpec": "optieval.bench.scenarios.spec",
    "benchmark": "optieval.bench.runner",
    "check_against_baseline": "optieval.bench.runner",
    "check_scenario_support": "optieval.bench.scenarios.spec",
    "cell_key": "optieval.bench.baseline",
    "cell_label": "optieval.bench.baseline",
    "baseline_model_at_hand": "optieval.bench.baseline",
    "compare_to_baseline": "optieval.bench.baseline",
    "setup_differences": "optieval.bench.baseline",
    "find_max_qps": "optieval.bench.scenarios.run",
    "load_baseline": "optieval.bench.results",
    "max_qps_from_cell": "optieval.bench.scenarios.results",
    "parse_rate_list": "optieval.bench.scenarios.spec",
    "resolve_artifact": "optieval.bench.cell",
    "run_cell": "optieval.bench.cell",
    "run_scenario": "optieval.bench.scenarios.run",
    "scenario_specs": "optieval.bench.scenarios.spec",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
