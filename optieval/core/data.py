"""Data sets: the one loader shared by calibration, parity, bench and the gate.

A data set is a set of samples for a model's inputs (and optionally labels), stacked along axis 0.
It comes from one of three sources::

    data.npz            keys named like the model's inputs are the inputs, axis 0 indexes
                        samples; loaded with allow_pickle=False; other keys are listed in a note
                        unless one is named as the labels
    data/               a directory of .npy / .npz files (see :func:`load_dataset`)
    pkg.mod:function    a Python loader (also ``path/to/file.py:function``): a callable that
                        returns or yields one dict per sample, without a batch axis

Every problem (a missing input, a wrong dtype or shape, NaN or Inf, an empty directory, a loader
that raises) is collected and raised once as :class:`~optieval.errors.InputError` naming the
source and the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optieval.core.data_sources import (
    Blocks,
    looks_like_loader,
    read_directory,
    read_loader,
    read_npz,
)
from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError

__all__ = ["Dataset", "load_dataset"]


@dataclass(frozen=True)
class Dataset:
    """Samples for a model's inputs, stacked along axis 0 (read-only arrays).

    Attributes:
        inputs: input name -> array whose axis 0 indexes samples.
        labels: labels (axis 0 indexes samples) or None.
        notes: things the loader wants the user to know (ignored keys, ...).
        source: where the samples came from, for messages.
        groups: for samples whose dynamic dimensions vary (loaded with ``ragged``), the
            samples grouped by shape, each group a data set of one shape (in the order their
            first samples came); ``inputs`` is then empty. Empty for one-shape data.
        positions: in a group, the position of each of its samples in the whole data set
            (so that results can be put back in the data's order); None elsewhere.
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "<memory>"
    groups: tuple[Dataset, ...] = ()
    positions: np.ndarray | None = None

    @property
    def num_samples(self) -> int:
        """How many samples the data set holds."""
        if self.groups:
            return sum(g.num_samples for g in self.groups)
        first = next(iter(self.inputs.values()), None)
        return 0 if first is None else int(first.shape[0])

    @property
    def is_ragged(self) -> bool:
        """True when samples differ in a dynamic dimension (see ``groups``)."""
        return bool(self.groups)

    def shape_groups(self) -> list[Dataset]:
        """The data set as groups of samples of one shape: ``groups``, or itself."""
        return list(self.groups) if self.groups else [self]

    def length_batches(self, batch_size: int, *, limit: int) -> list[dict[str, np.ndarray]]:
        """Feed dicts of ``batch_size`` samples, each of one shape: samples are batched by
        shape group (a group smaller than a batch is cycled to fill it), about ``limit``
        batches spread over the groups in proportion to their samples (at least one each),
        interleaved in that proportion.

        Raises:
            InputError: batch_size or limit below 1, or no samples.
        """
        if limit < 1:
            raise InputError(f"batch limit {limit} must be at least 1", where=self.source)
        groups = self.shape_groups()
        total = self.num_samples
        if total == 0:
            raise InputError("the data set holds no samples", where=self.source)
        keyed: list[tuple[float, int, dict[str, np.ndarray]]] = []
        for index, group in enumerate(groups):
            n = group.num_samples
            want = max(1, -(-n // max(batch_size, 1)))
            share = max(1, round(limit * n / total)) if len(groups) > 1 else limit
            made = list(group.batches(batch_size, count=min(want, share), cycle=True))
            # Interleaved in proportion, so that any run of consecutive batches (a short
            # measurement) sees the shapes as the whole data does.
            keyed.extend(((j + 0.5) / len(made), index, b) for j, b in enumerate(made))
        keyed.sort(key=lambda item: (item[0], item[1]))
        return [b for _, _, b in keyed]

    def batches(
        self, batch_size: int, *, count: int | None = None, cycle: bool = False
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield feed dicts of ``batch_size`` samples each, in order.

        Args:
            batch_size: samples per batch (at least 1).
            count: how many batches to yield (default: one pass over the data, or endless when
                ``cycle`` is set).
            cycle: wrap around the data so that every batch is full and as many batches as
                asked can be drawn (bench loops); without it the last batch of a pass may be
                smaller, and asking for more batches than one pass holds is an error.

        Raises:
            InputError: batch_size or count below 1, or more batches than the data holds
                without ``cycle``.
        """
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be at least 1", where=self.source)
        if self.groups:
            raise InputError(
                "samples differ in shape; one batch cannot mix them",
                where=self.source,
                hint="use `length_batches`, which batches samples of one shape together",
            )
        if count is not None and count < 1:
            raise InputError(f"batch count {count} must be at least 1", where=self.source)
        n = self.num_samples
        if n == 0:
            raise InputError("the data set holds no samples", where=self.source)
        one_pass = -(-n // batch_size)
        if not cycle and count is not None and count > one_pass:
            raise InputError(
                f"{count} batches of {batch_size} need {count * batch_size} samples; "
                f"the data set has {n}",
                where=self.source,
                hint="provide more samples or ask for fewer",
            )
        return self._iter_batches(batch_size, count, cycle)

    def _iter_batches(
        self, batch_size: int, count: int | None, cycle: bool
    ) -> Iterator[dict[str, np.ndarray]]:
        n = self.num_samples
        produced = 0
        start = 0
        while count is None or produced < count:
            if cycle:
                idx = np.arange(start, start + batch_size) % n
                batch = {k: v[idx] for k, v in self.inputs.items()}
                start = (start + batch_size) % n
            else:
                if start >= n:
                    return
                batch = {k: v[start : start + batch_size] for k, v in self.inputs.items()}
                start += batch_size
            yield batch
            produced += 1

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """Return the samples at ``indices`` (in that order, repeats allowed) as a new data set.

        Raises:
            InputError: an index outside ``[0, num_samples)`` or no index at all.
        """
        if self.groups:
            raise InputError("samples differ in shape; a subset of them is not one array",
                             where=self.source)  # fmt: skip
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.num_samples
        if idx.size == 0:
            raise InputError("a subset needs at least one sample", where=self.source)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise InputError(
                f"sample index {int(bad[0])} is outside the data set's {n} samples",
                where=self.source,
            )
        return Dataset(
            {k: _readonly(v[idx]) for k, v in self.inputs.items()},
            None if self.labels is None else _readonly(self.labels[idx]),
            list(self.notes),
            self.source,
        )

    def fingerprint(self) -> str:
        """sha256 over the names, dtypes, shapes and bytes of inputs and labels (cache keys)."""
        digest = hashlib.sha256()
        if self.groups:
            for group in self.groups:
                digest.update(group.fingerprint().encode())
            return digest.hexdigest()
        arrays = sorted(self.inputs.items())
        if self.labels is not None:
            arrays.append(("\0labels", self.labels))
        for name, array in arrays:
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> str:
        """One line: ``64 samples from calib.npz (x: float32[3x8x8])``."""
        if self.groups:
            return (
                f"{self.num_samples} samples from {self.source} in {len(self.groups)} shape "
                f"groups ({'; '.join(g.describe_shapes() for g in self.groups[:4])}"
                f"{'; ...' if len(self.groups) > 4 else ''})"
            )
        return f"{self.num_samples} samples from {self.source} ({self.describe_shapes()})"

    def describe_shapes(self) -> str:
        """Per-sample shapes: ``x: float32[3x8x8]`` (of the first group when ragged)."""
        if self.groups:
            return self.groups[0].describe_shapes()
        return ", ".join(
            f"{k}: {v.dtype}[{'x'.join(str(d) for d in v.shape[1:]) or 'scalar'}]"
            for k, v in self.inputs.items()
        )


def load_dataset(
    source: str | Path,
    signature: Signature,
    *,
    labels_key: str | None = None,
    max_samples: int | None = None,
    ragged: bool = False,
) -> Dataset:
    """Load samples for ``signature``'s inputs from an ``.npz``, a directory or a Python loader.

    Args:
        source: ``data.npz``; a directory of ``.npy``/``.npz`` files; or ``module:function`` /
            ``file.py:function``. In a directory, ``.npz`` files hold arrays keyed by input
            name, and ``NAME.npy`` holds input (or labels) ``NAME``; for a single-input model,
            ``.npy`` files with other names all hold that input. Each file holds either a block
            of samples (axis 0) or one sample (the input's rank without the batch axis); files
            are read in natural name order (``s2`` before ``s10``).
        signature: the model's inputs; dimension 0 of each input is its batch axis.
        labels_key: the key (``.npz`` key, ``.npy`` stem or loader dict key) holding labels.
        max_samples: read at most this many samples (a loader is not iterated further).
        ragged: accept samples whose dynamic dimensions vary (sentences of several lengths,
            from a folder of files or a loader): they are grouped by shape
            (:attr:`Dataset.groups`). Without it such data is refused, since one batch cannot
            mix them.

    Returns:
        The validated :class:`Dataset`.

    Raises:
        InputError: a missing source, input or labels key; a wrong dtype or shape; NaN or Inf
            in a float input; inputs (or labels) with different sample counts; inputs that give
            one tied dimension (the same name in the model) different sizes; samples whose
            dynamic dimensions vary, unless ``ragged``; no samples; an empty directory; a
            loader that cannot be imported or raises. All mismatches are
            collected and raised once, naming the source and input.
    """
    if max_samples is not None and max_samples < 1:
        raise InputError(f"max_samples {max_samples} must be at least 1", where=str(source))
    text = str(source)
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise InputError(
                "a data file must be an .npz",
                where=text,
                hint="use an .npz, a directory of .npy/.npz files, or module:function",
            )
        raw, notes, labels = read_npz(path, signature, labels_key)
        return _finish(text, raw, labels, notes, signature, labels_key, max_samples, ragged)
    if path.is_dir():
        raw, notes, labels = read_directory(path, signature, labels_key)
        return _finish(text, raw, labels, notes, signature, labels_key, max_samples, ragged)
    if looks_like_loader(text):
        raw, labels = read_loader(text, signature, labels_key, max_samples)
        return _finish(text, raw, labels, [], signature, labels_key, max_samples, ragged)
    raise InputError(
        "data set not found",
        where=text,
        hint="give an .npz file, a directory of .npy/.npz files, or module:function",
    )


# -- validation -----------------------------------------------------------------------------------


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _finish(
    source: str,
    raw: Blocks,
    label_blocks: list[tuple[str, np.ndarray]],
    notes: list[str],
    signature: Signature,
    labels_key: str | None,
    max_samples: int | None,
    ragged: bool = False,
) -> Dataset:
    problems: list[str] = []
    inputs: dict[str, np.ndarray] = {}
    # Inputs whose samples differ in shape (same dtype and rank): grouped, or refused.
    varying: dict[str, list[tuple[str, np.ndarray]]] = {}
    for spec in signature.inputs:
        blocks = raw.get(spec.name)
        if not blocks:
            problems.append(f"input {spec.name!r} is missing")
            continue
        if _varies(blocks):
            for origin, block in blocks:
                problems.extend(_check_array(spec, block, origin))
            varying[spec.name] = blocks
            continue
        array = _concat(blocks, spec.name, problems)
        if array is None:
            continue
        where = blocks[0][0] if len(blocks) == 1 else f"{source}[{spec.name}]"
        problems.extend(_check_array(spec, array, where))
        inputs[spec.name] = array
    labels = None
    if label_blocks:
        try:
            labels = np.concatenate([b for _, b in label_blocks], axis=0)
        except ValueError as exc:
            problems.append(f"labels {labels_key!r} do not concatenate ({exc})")
    counts = {name: int(a.shape[0]) for name, a in inputs.items() if a.ndim}
    counts.update({name: sum(int(b.shape[0]) for _, b in bl) for name, bl in varying.items()})
    if labels is not None:
        counts[f"labels {labels_key!r}"] = int(labels.shape[0]) if labels.ndim else 1
    if len(set(counts.values())) > 1:
        problems.append(
            "inputs hold different numbers of samples ("
            + ", ".join(f"{k}: {v}" for k, v in counts.items())
            + ")"
        )
    elif counts and next(iter(counts.values())) == 0:
        problems.append("the data set holds no samples")
    if varying and not problems and not ragged:
        problems.extend(_varying_problems(signature, varying))
    if not problems and not varying:
        problems.extend(_tie_problems(signature, {k: v.shape for k, v in inputs.items()}, None))
    if problems:
        raise InputError(
            "; ".join(problems),
            where=source,
            hint=f"the model expects {signature.describe()} (axis 0 indexes samples)",
        )
    if max_samples is not None:
        inputs = {k: v[:max_samples] for k, v in inputs.items()}
        labels = None if labels is None else labels[:max_samples]
    if varying:
        return _grouped(source, inputs, varying, labels, notes, signature, max_samples)
    return Dataset(
        {k: _readonly(v) for k, v in inputs.items()},
        None if labels is None else _readonly(labels),
        notes,
        source,
    )


def _varies(blocks: list[tuple[str, np.ndarray]]) -> bool:
    """Blocks of one dtype and rank whose per-sample shapes differ."""
    first = blocks[0][1]
    return (
        len(blocks) > 1
        and all(b.dtype == first.dtype and b.ndim == first.ndim for _, b in blocks)
        and len({b.shape[1:] for _, b in blocks}) > 1
    )


def _dim_name(spec: TensorSpec, axis: int) -> str:
    dim = spec.shape[axis] if axis < len(spec.shape) else None
    return f" ({dim})" if isinstance(dim, str) and dim else ""


def _varying_problems(
    signature: Signature, varying: Mapping[str, list[tuple[str, np.ndarray]]]
) -> list[str]:
    # One problem per varying dimension; inputs that vary alike (a tied seq) share it.
    found: dict[tuple[int, str, tuple[int, ...]], list[str]] = {}
    for name, blocks in varying.items():
        spec = signature.input(name)
        for axis in range(1, blocks[0][1].ndim):
            sizes = tuple(sorted({int(b.shape[axis]) for _, b in blocks}))
            if len(sizes) > 1:
                found.setdefault((axis, _dim_name(spec, axis), sizes), []).append(repr(name))
    return [
        f"input{'s' if len(names) > 1 else ''} {' and '.join(names)} dimension {axis}{dim} "
        f"varies across samples ({sizes[0]} to {sizes[-1]}, {len(sizes)} sizes) and one batch "
        "cannot mix them: pad every sample to one size (marking the padding, e.g. "
        "attention_mask 0), or make one data set per size"
        for (axis, dim, sizes), names in found.items()
    ]


def _tie_problems(
    signature: Signature, shapes: Mapping[str, tuple[int, ...]], what: str | None
) -> list[str]:
    from optieval.core.feeds import bind_dims

    try:
        bind_dims(signature, shapes, what=what)
    except InputError as exc:
        return [exc.message]
    return []


def _grouped(
    source: str,
    inputs: Mapping[str, np.ndarray],
    varying: Mapping[str, list[tuple[str, np.ndarray]]],
    labels: np.ndarray | None,
    notes: list[str],
    signature: Signature,
    max_samples: int | None,
) -> Dataset:
    """Group samples by the shapes of the inputs that vary; each group one :class:`Dataset`."""
    per_sample = {
        name: [block[j] for _, block in blocks for j in range(block.shape[0])]
        for name, blocks in varying.items()
    }
    count = len(next(iter(per_sample.values())))
    if max_samples is not None:
        count = min(count, max_samples)
    order: dict[tuple[tuple[int, ...], ...], list[int]] = {}
    for i in range(count):
        order.setdefault(tuple(per_sample[n][i].shape for n in varying), []).append(i)
    groups = []
    problems: list[str] = []
    for idx in order.values():
        group_inputs = {}
        for spec in signature.inputs:
            if spec.name in varying:
                group_inputs[spec.name] = np.stack([per_sample[spec.name][i] for i in idx])
            else:
                group_inputs[spec.name] = inputs[spec.name][idx]
        shapes = {k: v.shape for k, v in group_inputs.items()}
        problems.extend(_tie_problems(signature, shapes, f"sample {idx[0]}"))
        group_labels = None if labels is None else _readonly(labels[idx])
        positions = _readonly(np.asarray(idx, dtype=np.int64))
        frozen = {k: _readonly(v) for k, v in group_inputs.items()}
        groups.append(Dataset(frozen, group_labels, [], source, positions=positions))
    if problems:
        raise InputError("; ".join(problems[:5]), where=source,
                         hint="each sample's inputs must agree on the dimensions the model "
                         "ties (the same name in its inputs)")  # fmt: skip
    return Dataset({}, None, notes, source, tuple(groups))


def _concat(
    blocks: list[tuple[str, np.ndarray]], name: str, problems: list[str]
) -> np.ndarray | None:
    if len(blocks) == 1:
        return blocks[0][1]
    first_origin, first = blocks[0]
    for origin, block in blocks[1:]:
        if block.shape[1:] != first.shape[1:] or block.dtype != first.dtype:
            problems.append(
                f"input {name!r}: {origin} holds {block.dtype}[{_shape(block.shape[1:])}] per "
                f"sample but {first_origin} holds {first.dtype}[{_shape(first.shape[1:])}]"
            )
            return None
    return np.concatenate([b for _, b in blocks], axis=0)


def _check_array(spec: TensorSpec, array: np.ndarray, where: str) -> list[str]:
    problems = []
    if spec.dtype != str(array.dtype) and not spec.dtype.startswith(("onnx:", "bfloat16")):
        problems.append(
            f"{where}: dtype {array.dtype}, the model's input {spec.name!r} takes {spec.dtype}"
        )
    expected = spec.shape[1:] if spec.shape else ()
    got = array.shape[1:]
    if spec.shape and (
        len(got) != len(expected)
        or any(isinstance(e, int) and e != g for e, g in zip(expected, got, strict=False))
    ):
        problems.append(
            f"{where}: per-sample shape {_shape(got)}, the model's input {spec.name!r} takes "
            f"{'x'.join('?' if d is None else str(d) for d in expected) or 'scalar'} per sample "
            f"(full shape {spec.shape_text()})"
        )
    if array.dtype.kind in "fc" and array.size:
        bad = ~np.isfinite(array)
        if bad.any():
            flat = bad.reshape(array.shape[0], -1).any(axis=1)
            first = int(np.argmax(flat))
            problems.append(
                f"{where}: {int(bad.sum())} NaN/Inf values in input {spec.name!r} "
                f"(first in sample {first})"
            )
    return problems


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
