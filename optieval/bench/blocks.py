"""Measuring a cell in blocks: the same cell in several processes, one after another, each with
an equal share of the measuring time, pooled into one cell that keeps each block's median.

One process's samples say nothing about what changes from one process to the next (memory
layout, CPU frequency, a neighbour's load); the spread of the block medians does, and a baseline
comparison widens its ratio interval by it (:func:`optieval.stats.median_ratio_ci`). The total
measuring time stays what the settings say: ``duration_s`` and ``max_duration_s`` are split
between the blocks (each block still warms up on its own).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from optieval.bench.latency import MeasureSettings
from optieval.bench.results import STATUS_OK, Cell
from optieval.errors import InputError
from optieval.stats import nearest_rank, summarize

MAX_BLOCKS = 32
_STOPPED_NOTE = "stopped at `max_duration_s`"


def check_blocks(blocks: int) -> int:
    """``blocks`` when it is a count in [1, MAX_BLOCKS]; InputError (where ``blocks``) otherwise."""
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= MAX_BLOCKS:
        raise InputError(
            f"blocks {blocks!r} is not a whole number in [1, {MAX_BLOCKS}]",
            where="blocks",
            hint="3 measures each cell in three processes (the default with a baseline)",
        )
    return blocks


def block_settings(settings: MeasureSettings, blocks: int) -> MeasureSettings:
    """One block's share of ``settings``: ``duration_s``, ``max_duration_s`` and a user's
    ``min_samples`` divided by ``blocks`` (each block still reaches the count its target
    percentile needs, as far as its share of ``max_duration_s`` allows)."""
    if blocks == 1:
        return settings
    return replace(
        settings,
        duration_s=settings.duration_s / blocks,
        max_duration_s=settings.max_duration_s / blocks,
        min_samples=None
        if settings.min_samples is None
        else max(1, math.ceil(settings.min_samples / blocks)),
    )


def _median(times: list[float]) -> float:
    r = nearest_rank(len(times), 0.5)
    return float(np.partition(np.asarray(times, dtype=np.float64), r - 1)[r - 1])


def pool_blocks(cells: list[Cell], settings: MeasureSettings) -> Cell:
    """One cell from its blocks: every block's samples in order, the summary recomputed over
    them, and ``block_medians_ms`` / ``block_samples`` per block. A block that did not finish
    (``error``, ``skipped``) makes the cell that block's cell, its reason naming the block.

    Args:
        cells: the blocks of one cell, in the order they ran.
        settings: the whole cell's settings (not a block's), for the sample-count note.
    """
    if len(cells) == 1:
        return cells[0]
    for i, cell in enumerate(cells, 1):
        if cell.status != STATUS_OK or not cell.times_ms:
            reason = cell.reason or "no samples"
            return replace(cell, reason=f"block {i} of {len(cells)}: {reason}")
    first = cells[0]
    times = [t for cell in cells for t in cell.times_ms]
    summary = summarize(times, batch=first.batch)
    stats = summary.to_json()
    block_reasons = {str((c.stability or {}).get("reason")) for c in cells}
    notes = [
        n
        for n in dict.fromkeys(n for c in cells for n in c.notes)
        if not n.startswith(_STOPPED_NOTE) and n not in block_reasons
    ]
    need = settings.required_samples()
    if len(times) < need:
        notes.append(
            f"stopped at `max_duration_s` with {len(times)} samples over {len(cells)} blocks; "
            f"the target percentile needs {need}"
        )
    if summary.unstable:
        notes.append(summary.stability.reason)
    device = [t for c in cells for t in (c.device_times_ms or [])] or None
    measured = sum(float(c.options.get("measured_s", 0.0)) for c in cells)
    flops = first.flops
    gflops = first.gflops
    if flops and summary.mean_ms > 0:
        gflops = flops["per_iteration"] / (summary.mean_ms / 1e3) / 1e9
        flops = {**flops, "achieved": gflops}
    peaks = [float((c.memory or {}).get("peak_rss_mb", 0.0)) for c in cells]
    return replace(
        first,
        samples=summary.n,
        times_ms=times,
        latency_ms=stats["latency_ms"],
        ci95_ms=stats["ci95_ms"],
        throughput=stats["throughput"],
        stability=stats["stability"],
        device_times_ms=device,
        device_latency_ms=None
        if device is None
        else summarize(device, batch=first.batch).to_json()["latency_ms"],
        memory={**(first.memory or {}), "peak_rss_mb": max(peaks)},
        gflops=gflops,
        flops=flops,
        options={
            **first.options,
            "measured_s": measured,
            "cv": stats["cv"],
            "blocks": len(cells),
        },
        notes=notes,
        block_medians_ms=[_median(c.times_ms) for c in cells],
        block_samples=[len(c.times_ms) for c in cells],
    )


__all__ = ["MAX_BLOCKS", "block_settings", "check_blocks", "pool_blocks"]
