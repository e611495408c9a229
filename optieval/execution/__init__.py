"""Where cells run: process isolation for one cell, and the local and Ray executors.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.execution.executors import Executor as Executor
    from optieval.execution.executors import create_executor as create_executor
    from optieval.execution.executors import group_by_hardware as group_by_hardware
    from optieval.execution.isolation import run_isolated as run_isolated

_EXPORTS = {
    "Executor": "optieval.execution.executors",
    "create_executor": "optieval.execution.executors",
    "group_by_hardware": "optieval.execution.executors",
    "run_isolated": "optieval.execution.isolation",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
