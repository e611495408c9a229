"""Parity over a large evaluation set, split into shards of whole batches: their per-sample
outputs, concatenated in order, are exactly a single-machine run's, so the metrics and intervals
computed from them are too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["merge_outputs", "split_batches"]


def split_batches(total: int, batch: int, shards: int) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges for at most ``shards`` shards, each made of whole batches
    of ``batch`` (the last batch may be short), so that every batch a shard runs is the batch a
    single-machine run would run."""
    if total <= 0:
        return [(0, 0)]
    batches = -(-total // batch)
    shards = max(1, min(shards, batches))
    per, extra = divmod(batches, shards)
    ranges = []
    start = 0
    for i in range(shards):
        count = per + (1 if i < extra else 0)
        stop = min(total, start + count * batch)
        ranges.append((start, stop))
        start = stop
    return ranges


def merge_outputs(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate shard outputs along the sample axis, in shard order (a scalar output is
    taken from the first shard, as a single run keeps its first batch's)."""
    import numpy as np

    merged: dict[str, Any] = {}
    for name in parts[0]:
        values = [np.asarray(p[name]) for p in parts]
        merged[name] = np.concatenate(values, axis=0) if values[0].ndim else values[0]
    return merged
