"""The executor a name stands for (``local`` or ``ray``)."""

from __future__ import annotations

from optieval.errors import InputError
from optieval.execution.base import EXECUTORS, Executor
from optieval.execution.local import LocalExecutor
from optieval.execution.ray import RayExecutor

__all__ = ["create_executor"]


def create_executor(name: str = "local", *, ray_address: str | None = None) -> Executor:
    """Return the executor called ``name``.

    Args:
        name: ``local`` (isolated subprocesses on this machine) or ``ray``.
        ray_address: the Ray cluster (``ray://head:10001`` or ``head:6379``; default: the
            ``RAY_ADDRESS`` environment variable, else a Ray instance started on this machine).

    Raises:
        InputError: an unknown executor, or ``ray_address`` without ``ray`` (exit 2).

    ``ray`` is imported on first use, so that bad input is reported (exit 2) before a missing
    ray package (BackendUnavailable, exit 3, with the install hint; :meth:`Executor.check`
    raises it at once).
    """
    if name not in EXECUTORS:
        raise InputError(f"unknown executor {name!r}", where="executor",
                         hint=f"choose from {', '.join(EXECUTORS)}")  # fmt: skip
    if name == "local":
        if ray_address:
            raise InputError("`ray_address` needs the ray `executor`", where="ray_address")
        return LocalExecutor()
    return RayExecutor(ray_address)
