"""The local executor: cells on this machine, one after another, each in its own spawned
subprocess unless isolation is off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from optieval.execution.base import CellFunctions, Executor, OnCell, Placement

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Cells on this machine, one after another, each in its own spawned subprocess (unless
    ``isolate`` is off): what ``optieval bench`` and ``optieval gate`` always did."""

    name = "local"

    def __init__(self) -> None:
        self._machine: dict[str, Any] | None = None

    def machine(self) -> dict[str, Any]:
        """This machine's fingerprint (taken once)."""
        if self._machine is None:
            from optieval.core import fingerprint

            self._machine = fingerprint()
        return self._machine

    def run_cells(
        self,
        requests: Sequence[Any],
        cells: CellFunctions,
        *,
        hardware: str | None = None,
        isolate: bool = True,
        timeout_s: float | None = None,
        on_cell: OnCell | None = None,
    ) -> list[Any]:
        """See :meth:`Executor.run_cells`. A cell promised for ``hardware`` this machine does
        not have (no GPU or CPU name containing it) fails with that reason."""
        from optieval.execution.interrupts import raise_if_stopping

        machine = self.machine()
        results = []
        for request in requests:
            raise_if_stopping()  # an interrupt seen by another thread: no new cell
            placement = Placement.for_cell(request.backend, request.threads, hardware)
            stamp = {
                **placement.to_json(),
                "executor": self.name,
                "isolated": isolate,
                "pinning": {"pinned": False, "reason": "the local executor does not pin"},
            }
            if hardware and not _local_machine_has(hardware, machine):
                result = cells.failed(request, _missing_here(hardware, machine))
            else:
                result = cells.run(request, isolate, timeout_s)
            result = replace(result, machine=machine, placement=stamp)
            results.append(result)
            if on_cell is not None:
                on_cell(result)
        return results


def _local_machine_has(hardware: str, env: Mapping[str, Any]) -> bool:
    wanted = hardware.lower().replace(" ", "")
    names = [str(g.get("name", "")) for g in env.get("gpus") or []]
    names.append(str((env.get("cpu") or {}).get("model", "")))
    return any(wanted in n.lower().replace(" ", "") for n in names)


def _missing_here(hardware: str, machine: Mapping[str, Any]) -> str:
    gpus = ", ".join(str(g.get("name")) for g in machine.get("gpus") or []) or "no GPU"
    cpu = (machine.get("cpu") or {}).get("model", "?")
    return (
        f"missing hardware: the target is promised for {hardware} and this machine has {gpus} "
        f"({cpu}); run it where that hardware is, e.g. `executor` ray"
    )
