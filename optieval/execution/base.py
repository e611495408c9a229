"""What every executor shares: the :class:`Executor` interface, where a cell asks to run
(:class:`Placement`), the functions that say what a cell is (:class:`CellFunctions`), and the
grouping of finished cells by the hardware they ran on.

An executor knows placement, isolation and transport, never what a cell measures: its caller
(``optieval.bench``, ``optieval.parity``, ``optieval.release``) passes the public, importable
functions that run one cell and build its result, and the executor runs them on this machine
(:class:`~optieval.execution.local.LocalExecutor`) or on a Ray cluster
(:class:`~optieval.execution.ray.RayExecutor`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import GPU_BACKENDS

__all__ = [
    "ACCELERATOR_PREFIX",
    "EXECUTORS",
    "CellFunctions",
    "CellJob",
    "Executor",
    "OnCell",
    "OutputRunner",
    "Placement",
    "ShardFunction",
    "group_by_hardware",
    "hardware_label",
]

EXECUTORS = ("local", "ray")
ACCELERATOR_PREFIX = "accelerator_type:"
# Ray's own convention for "on a node of this type" (the resource is 1 per node): a sliver, so
# that the GPU and CPU requests, not this one, decide how many cells share the node.
_ACCELERATOR_SHARE = 0.001

OnCell = Callable[[Any], None]
"""Progress callback: called with each cell's result as it finishes."""


@dataclass(frozen=True)
class Placement:
    """What one cell asks of the machine that runs it.

    Attributes:
        hardware: the accelerator type the cell is promised for (``"A10G"``), or None.
        gpus: whole GPUs (1 for GPU backends, else 0).
        cpus: logical CPUs (the cell's threads, 1 when unset).
        pin: pin the measuring process to ``cpus`` free cores (CPU cells with threads set).
    """

    hardware: str | None = None
    gpus: int = 0
    cpus: int = 1
    pin: bool = False

    @classmethod
    def for_cell(cls, backend: str, threads: int | None, hardware: str | None) -> Placement:
        """The placement of a ``backend`` cell with ``threads`` on ``hardware``."""
        if backend in GPU_BACKENDS:
            return cls(hardware, gpus=1, cpus=1, pin=False)
        return cls(hardware, gpus=0, cpus=threads or 1, pin=threads is not None)

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments of Ray's ``.options()`` for this placement (no retries: a retried
        measurement is a different experiment)."""
        options: dict[str, Any] = {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "max_retries": 0,
            "retry_exceptions": False,
        }
        if self.hardware:
            options["resources"] = {ACCELERATOR_PREFIX + self.hardware: _ACCELERATOR_SHARE}
        return options

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"hardware": self.hardware, "gpus": self.gpus, "cpus": self.cpus, "pin": self.pin}


@dataclass(frozen=True)
class CellFunctions:
    """How an executor runs one kind of cell: public functions of the caller's concern.

    A request is any object with ``backend`` and ``threads`` attributes (they decide its
    :class:`Placement`); a result is a dataclass with ``machine``, ``placement`` and ``notes``
    fields, which the executor fills in (the machine it ran on, how it was placed).

    Attributes:
        run: ``run(request, isolate, timeout_s) -> result``: one cell on this machine, in its
            own subprocess when ``isolate`` (``timeout_s`` None: the default limit); what the
            local executor calls.
        payload: ``payload(data) -> data``: the same cell with plain data in and out, a
            top-level function of an importable module, which a worker runs by name in a
            subprocess.
        to_payload: ``to_payload(request) -> (data, files)``: the data for ``payload`` on a
            worker, and the files it names that travel by content (``{key in data: local
            path}``); the worker replaces each such key by the path of its verified copy.
        from_payload: ``from_payload(data) -> result``: the result from what ``payload``
            returned.
        failed: ``failed(request, reason) -> result``: the result of a cell that could not run
            (missing hardware, a lost worker, a timeout).
        timeout_s: ``timeout_s(request) -> float``: the limit of one cell when none is given.
    """

    run: Callable[[Any, bool, float | None], Any]
    payload: Callable[[dict[str, Any]], dict[str, Any]]
    to_payload: Callable[[Any], tuple[dict[str, Any], dict[str, Path]]]
    from_payload: Callable[[dict[str, Any]], Any]
    failed: Callable[[Any, str], Any]
    timeout_s: Callable[[Any], float]


@dataclass
class CellJob:
    """One cell for an executor: the request, where it must run and its time limit."""

    request: Any
    placement: Placement
    timeout_s: float
    index: int = 0
    retried: str | None = None
    submitted: float = field(default_factory=time.monotonic)


ShardFunction = Callable[..., dict[str, Any]]
"""``shard(cell, artifact, inputs, *, spec, threads, batch) -> {output: array}``: a cell's
outputs over ``inputs`` on this machine, in batches of ``batch`` (a top-level function of an
importable module, e.g. ``optieval.parity.run_parity_shard``)."""

OutputRunner = Callable[..., dict[str, Any]]
"""``runner(cell, artifact, inputs, *, batch, spec, threads) -> {output: array}``: runs a parity
cell (any object with ``backend`` and ``label``) over ``inputs`` in batches of ``batch``
wherever the executor runs it, and returns the outputs concatenated along the sample axis."""


class Executor:
    """Runs cells. Subclasses: :class:`~optieval.execution.local.LocalExecutor`,
    :class:`~optieval.execution.ray.RayExecutor`."""

    name = "executor"
    concurrent = False
    """True when cells of several targets may run at the same time (on several machines)."""
    checks_here = True
    """True when a backend must be usable on this machine (False: the workers decide, and an
    unusable backend there is a ``skipped`` cell)."""

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
        """Run ``requests`` with ``cells`` and return their results in the same order;
        ``on_cell`` is called as each one finishes.

        Args:
            requests: the cells' requests (e.g. :class:`optieval.bench.CellRequest`).
            cells: the functions that run one of them and build its result.
            hardware: the accelerator type they are promised for (None: anywhere).
            isolate: run each cell in its own subprocess (always so on Ray).
            timeout_s: the limit of one cell (default: ``cells.timeout_s(request)``).
            on_cell: progress callback.

        Raises:
            InputError: a cell found its input bad (exit 2), as in a local run.
        """
        raise NotImplementedError

    def outputs_runner(
        self, shard: ShardFunction, hardware: Mapping[str, str | None]
    ) -> OutputRunner | None:
        """A runner for parity's outputs that runs ``shard`` where this executor runs cells,
        or None to run them in this process. ``hardware`` maps a parity cell's label
        (``ort-cpu:int8``) to the hardware its target names."""
        return None

    def describe(self) -> dict[str, Any]:
        """Plain data for reports: the executor and where it runs."""
        return {"executor": self.name}

    def check(self) -> None:
        """Raise BackendUnavailable (exit 3) now when this executor cannot work at all."""

    def close(self) -> None:
        """Release what the executor holds (a Ray connection it opened)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hardware_label(cell: Any) -> str:
    """What a report groups ``cell`` under: the hardware it was promised for, else the GPU it
    ran on (GPU backends) or the CPU model."""
    placement = cell.placement or {}
    if placement.get("hardware"):
        return str(placement["hardware"])
    machine = cell.machine or {}
    gpus = machine.get("gpus") or []
    if cell.backend in GPU_BACKENDS and gpus:
        return str(gpus[0].get("name", "GPU"))
    cpu = machine.get("cpu") or {}
    return str(cpu.get("model") or "this machine")


def group_by_hardware(cells: Sequence[Any]) -> dict[str, list[Any]]:
    """Cells grouped by :func:`hardware_label`, groups in order of first appearance."""
    groups: dict[str, list[Any]] = {}
    for cell in cells:
        groups.setdefault(hardware_label(cell), []).append(cell)
    return groups
