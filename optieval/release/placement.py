"""Where a gate's cells ran, in words: the machines (host, Ray node, GPUs, CPU), how many cells
were pinned to their cores, one line per hardware group (executors, issue 10). The Markdown
and HTML reports both print them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from optieval.bench import Cell

__all__ = ["hardware_lines", "machines", "pinning_note"]


def machines(cells: Sequence[Cell]) -> list[str]:
    """Each distinct machine the cells ran on, in words: host, Ray node, GPUs, CPU."""
    seen: dict[str, None] = {}
    for cell in cells:
        machine = cell.machine or {}
        placement = cell.placement or {}
        if not machine and not placement:
            continue
        parts = [f"host {machine.get('hostname', '?')}"]
        if placement.get("node_id"):
            parts.append(f"Ray node {str(placement['node_id'])[:12]}")
        gpus = [str(g.get("name")) for g in machine.get("gpus") or []]
        if gpus:
            parts.append(", ".join(gpus))
        cpu = machine.get("cpu") or {}
        if cpu.get("model"):
            parts.append(f"{cpu['model']} ({cpu.get('usable_cores', '?')} cores)")
        seen[" · ".join(parts)] = None
    return list(seen)


def pinning_note(cells: Sequence[Cell]) -> str:
    """``N of M cells pinned to their cores``, or an empty string when none was."""
    pinned = [c for c in cells if ((c.placement or {}).get("pinning") or {}).get("pinned")]
    if not pinned:
        return ""
    return f"{len(pinned)} of {len(cells)} cells pinned to their cores"


def hardware_lines(cells: Sequence[Cell]) -> list[str]:
    """One line per hardware group: its cells, the executor, the machines and the pinning
    (none when no cell says where it ran)."""
    from optieval.execution import group_by_hardware

    if not any(c.machine or c.placement for c in cells):
        return []
    lines = []
    for label, group in group_by_hardware(cells).items():
        executor = (group[0].placement or {}).get("executor", "local")
        extra = [e for e in (pinning_note(group),) if e]
        lines.append(
            f"{label}: {len(group)} cell{'s' if len(group) != 1 else ''} ({executor}) on "
            + "; ".join(machines(group) or ["this machine"])
            + (f"; {', '.join(extra)}" if extra else "")
        )
    return lines
