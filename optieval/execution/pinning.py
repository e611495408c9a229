"""A cell as it runs in its subprocess on a worker: pinned to free cores when asked, and gone
when its parent (the Ray worker) dies."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["pin_cores", "pinned_cell_payload"]

_HELD_CORES: list[int] = []  # lock files held for this process's life


def pinned_cell_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Entry point of an isolated cell on a worker: pin to free cores when asked, run the
    cell's payload function, return ``{"result": ..., "pinning": ...}``.

    Payload: ``function`` (``"module:function"``, plain data in and out: the
    :attr:`~optieval.execution.base.CellFunctions.payload` of the cell), ``payload`` (its
    data), ``pin_cpus`` (0: do not pin). The process exits when its parent (the Ray worker)
    dies, so that a killed worker does not leave a measurement running.
    """
    from optieval.execution.isolation import load_function

    _exit_with_parent()
    count = int(payload.get("pin_cpus") or 0)
    pinning = pin_cores(count) if count else {"pinned": False, "reason": "not a CPU cell"}
    result = load_function(payload["function"])(payload["payload"])
    return {"result": result, "pinning": pinning}


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="optieval-parent-watch", daemon=True).start()


def pin_cores(count: int) -> dict[str, Any]:
    """Pin this process (and the threads it starts later) to ``count`` cores that no other
    optieval cell on this machine holds, where the OS allows it.

    Cores are claimed with one lock file per core (released when the process ends, however it
    ends), so cells that Ray runs side by side on one node get disjoint cores.

    Returns:
        ``{"pinned": bool, "cores": [...], "reason": str}`` (reason when not pinned).
    """
    if not hasattr(os, "sched_setaffinity") or not hasattr(os, "sched_getaffinity"):
        return {"pinned": False, "cores": [], "reason": "this OS does not let a process pin "
                "itself to cores (no sched_setaffinity)"}  # fmt: skip
    import fcntl
    import tempfile

    allowed = sorted(os.sched_getaffinity(0))
    folder = Path(tempfile.gettempdir()) / f"optieval-cores-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    claimed: list[tuple[int, int]] = []
    for core in allowed:
        if len(claimed) == count:
            break
        fd = os.open(folder / f"core-{core}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        claimed.append((core, fd))
    if len(claimed) < count:
        for _, fd in claimed:
            os.close(fd)
        return {
            "pinned": False,
            "cores": [],
            "reason": f"only {len(claimed)} of the {count} cores asked for were free "
            f"({len(allowed)} usable): Ray's CPUs outnumber this node's cores",
        }
    cores = [c for c, _ in claimed]
    try:
        os.sched_setaffinity(0, cores)
    except OSError as exc:
        for _, fd in claimed:
            os.close(fd)
        return {"pinned": False, "cores": [], "reason": f"sched_setaffinity refused: {exc}"}
    _HELD_CORES.extend(fd for _, fd in claimed)
    return {"pinned": True, "cores": cores, "reason": ""}
