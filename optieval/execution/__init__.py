"""Where cells run: process isolation for one cell, and the local and Ray executors.

Executors are generic: a caller passes the public functions that run one of its cells
(:class:`CellFunctions`, or a parity :data:`ShardFunction`) and the executor runs them on this
machine or on a Ray cluster.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.execution.base import EXECUTORS as EXECUTORS
    from optieval.execution.base import CellFunctions as CellFunctions
    from optieval.execution.base import Executor as Executor
    from optieval.execution.base import OutputRunner as OutputRunner
    from optieval.execution.base import Placement as Placement
    from optieval.execution.base import ShardFunction as ShardFunction
    from optieval.execution.base import group_by_hardware as group_by_hardware
    from optieval.execution.base import hardware_label as hardware_label
    from optieval.execution.factory import create_executor as create_executor
    from optieval.execution.interrupts import Interrupted as Interrupted
    from optieval.execution.interrupts import handle_interrupts as handle_interrupts
    from optieval.execution.interrupts import stop_requested as stop_requested
    from optieval.execution.isolation import CellOutcome as CellOutcome
    from optieval.execution.isolation import function_path as function_path
    from optieval.execution.isolation import run_isolated as run_isolated
    from optieval.execution.local import LocalExecutor as LocalExecutor
    from optieval.execution.pinning import pin_cores as pin_cores
    from optieval.execution.ray import RayExecutor as RayExecutor
    from optieval.execution.ray import require_ray as require_ray
    from optieval.execution.shards import merge_outputs as merge_outputs
    from optieval.execution.shards import split_batches as split_batches

_EXPORTS = {
    "EXECUTORS": "optieval.execution.base",
    "CellFunctions": "optieval.execution.base",
    "CellOutcome": "optieval.execution.isolation",
    "Executor": "optieval.execution.base",
    "Interrupted": "optieval.execution.interrupts",
    "LocalExecutor": "optieval.execution.local",
    "OutputRunner": "optieval.execution.base",
    "Placement": "optieval.execution.base",
    "RayExecutor": "optieval.execution.ray",
    "ShardFunction": "optieval.execution.base",
    "create_executor": "optieval.execution.factory",
    "function_path": "optieval.execution.isolation",
    "group_by_hardware": "optieval.execution.base",
    "handle_interrupts": "optieval.execution.interrupts",
    "hardware_label": "optieval.execution.base",
    "merge_outputs": "optieval.execution.shards",
    "pin_cores": "optieval.execution.pinning",
    "require_ray": "optieval.execution.ray",
    "run_isolated": "optieval.execution.isolation",
    "split_batches": "optieval.execution.shards",
    "stop_requested": "optieval.execution.interrupts",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
