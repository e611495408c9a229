"""Parity on samples whose dynamic dimensions vary (sentences of several lengths): the samples
grouped by shape (:class:`SampleGroups`), each group run in batches of its own shape, the outputs
put back in the data's sample order (:func:`run_grouped`).

A batch never mixes shapes. Outputs whose shape beyond the batch is the same in every group (a
sentence embedding ``[batch, 384]``, logits) come back as one array in sample order, so every
per-sample metric (cosine, nearest neighbours, top-1, labels) works across lengths. An output
whose shape beyond the batch follows the length (per-token ``[batch, seq, hidden]``) cannot be
stacked into one array, and element-wise tolerances over padded or truncated tensors would
judge values that do not exist: such an output is refused (exit 2), naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optieval.errors import InputError

__all__ = ["SampleGroups", "first_feeds", "run_grouped", "sample_count", "subset_batches"]


@dataclass(frozen=True)
class SampleGroups:
    """Samples grouped by shape, with the position of each sample in the whole data set.

    Attributes:
        groups: per group, input name -> array (samples along axis 0, one shape per group).
        positions: per group, the data-set position of each of its samples.
        source: where the samples came from, for messages.
    """

    groups: tuple[dict[str, np.ndarray], ...]
    positions: tuple[np.ndarray, ...]
    source: str = "<memory>"

    @property
    def samples(self) -> int:
        """How many samples all groups hold together."""
        return sum(int(p.shape[0]) for p in self.positions)

    def describe(self) -> str:
        """``3 shape groups (input_ids 16: 173 samples; ...)`` for messages."""
        parts = []
        for group, pos in zip(self.groups, self.positions, strict=True):
            name, array = next(iter(group.items()))
            dims = "x".join(str(d) for d in array.shape[1:]) or "scalar"
            parts.append(f"{name} {dims}: {pos.shape[0]} samples")
        return f"{len(self.groups)} shape groups ({'; '.join(parts)})"


def sample_count(inputs: Mapping[str, np.ndarray] | SampleGroups) -> int:
    """How many samples ``inputs`` holds (one array per input, or groups)."""
    if isinstance(inputs, SampleGroups):
        return inputs.samples
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


def run_grouped(
    run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]], groups: SampleGroups
) -> dict[str, np.ndarray]:
    """``run`` on each group, outputs put back in the data's sample order.

    Raises:
        InputError: an output whose shape beyond the batch differs between groups (it follows
            the varying dimension), naming it; element-wise comparison needs one array.
    """
    parts = [(dict(run(group)), pos) for group, pos in zip(groups.groups, groups.positions,
                                                           strict=True)]  # fmt: skip
    total = groups.samples
    out: dict[str, np.ndarray] = {}
    for name in parts[0][0]:
        values = [np.asarray(p[name]) for p, _ in parts]
        if values[0].ndim == 0:
            out[name] = values[0]
            continue
        shapes = sorted({v.shape[1:] for v in values})
        if len(shapes) > 1:
            text = ", ".join("[batch, " + ", ".join(map(str, s)) + "]" for s in shapes[:4])
            raise InputError(
                f"output {name!r} changes shape with the samples' lengths ({text}): its values "
                "cannot be stacked into one array per sample, and comparing them padded would "
                "judge values that do not exist",
                where=groups.source,
                hint="compare on data of one length (pad every sample to one size, marking the "
                "padding, e.g. attention_mask 0), or export the model with the pooled output only",
            )
        merged = np.empty((total, *values[0].shape[1:]), dtype=values[0].dtype)
        for value, (_, pos) in zip(values, parts, strict=True):
            merged[pos] = value
        out[name] = merged
    return out


def subset_batches(
    inputs: Mapping[str, np.ndarray] | SampleGroups, order: Sequence[int], batch: int
) -> list[dict[str, np.ndarray]]:
    """The samples at data-set positions ``order`` as feeds of at most ``batch`` samples, each
    of one shape (grouped samples are batched within their group)."""
    chosen = np.asarray(order, dtype=np.int64)
    if not isinstance(inputs, SampleGroups):
        return _split({k: v[chosen] for k, v in inputs.items()}, batch)
    feeds: list[dict[str, np.ndarray]] = []
    for group, pos in zip(inputs.groups, inputs.positions, strict=True):
        where = {int(p): i for i, p in enumerate(pos)}
        local = np.asarray([where[int(i)] for i in chosen if int(i) in where], dtype=np.int64)
        if local.size:
            feeds.extend(_split({k: v[local] for k, v in group.items()}, batch))
    return feeds


def first_feeds(
    inputs: Mapping[str, np.ndarray] | SampleGroups, batch: int
) -> dict[str, np.ndarray]:
    """One feed of at most ``batch`` samples: the first batch (of the largest group when the
    samples are grouped), for a rough latency."""
    if isinstance(inputs, SampleGroups):
        sizes = [int(p.shape[0]) for p in inputs.positions]
        return _split(inputs.groups[sizes.index(max(sizes))], batch)[0]
    return _split(inputs, batch)[0]


def _split(inputs: Mapping[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    # runs.split_batches' cut (runs imports this module, so not imported from there).
    n = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    return [
        {k: np.ascontiguousarray(v[start : start + batch]) for k, v in inputs.items()}
        for start in range(0, n, batch)
    ]
