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
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "<memory>"

    @property
    def num_samples(self) -> int:
        """How many samples the data set holds."""
        first = next(iter(self.inputs.values()), None)
        return 0 if first is None else int(first.shape[0])

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
        arrays = sorted(self.inputs.items())
        if self.labels is not None:
            arrays.append(("\0labels", self.labels))
        for name, array in arrays:
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> str:
        """One line: ``64 samples from calib.npz (x: float32[3x8x8])``."""
        parts = ", ".join(
            f"{k}: {v.dtype}[{'x'.join(str(d) for d in v.shape[1:]) or 'scalar'}]"
            for k, v in self.inputs.items()
        )
        return f"{self.num_samples} samples from {self.source} ({parts})"


def load_dataset(
    source: str | Path,
    signature: Signature,
    *,
    labels_key: str | None = None,
    max_samples: int | None = None,
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

    Returns:
        The validated :class:`Dataset`.

    Raises:
        InputError: a missing source, input or labels key; a wrong dtype or shape; NaN or Inf
            in a float input; inputs (or labels) with different sample counts; no samples; an
            empty directory; a loader that cannot be imported or raises. All mismatches are
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
        raw, notes, labels = _read_npz(path, signature, labels_key)
        return _finish(text, raw, labels, notes, signature, labels_key, max_samples)
    if path.is_dir():
        raw, notes, labels = _read_directory(path, signature, labels_key)
        return _finish(text, raw, labels, notes, signature, labels_key, max_samples)
    if _looks_like_loader(text):
        raw, labels = _read_loader(text, signature, labels_key, max_samples)
        return _finish(text, raw, labels, [], signature, labels_key, max_samples)
    raise InputError(
        "data set not found",
        where=text,
        hint="give an .npz file, a directory of .npy/.npz files, or module:function",
    )


# -- sources --------------------------------------------------------------------------------------

# One raw input: a list of (origin, array) blocks; each array holds samples on axis 0.
_Blocks = dict[str, list[tuple[str, np.ndarray]]]


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:  # object arrays need pickle, which optieval refuses
        raise InputError(
            f"cannot read without pickle ({exc})",
            where=str(path),
            hint="save plain numeric arrays (np.savez without object dtype)",
        ) from exc
    except Exception as exc:
        raise InputError(
            f"not a readable .npz ({type(exc).__name__}: {exc})", where=str(path)
        ) from exc


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except ValueError as exc:
        raise InputError(
            f"cannot read without pickle ({exc})", where=str(path), hint="save a numeric array"
        ) from exc
    except Exception as exc:
        raise InputError(
            f"not a readable .npy ({type(exc).__name__}: {exc})", where=str(path)
        ) from exc


def _read_npz(
    path: Path, signature: Signature, labels_key: str | None
) -> tuple[_Blocks, list[str], list[tuple[str, np.ndarray]]]:
    arrays = _load_npz(path)
    names = {s.name for s in signature.inputs}
    raw: _Blocks = {}
    labels: list[tuple[str, np.ndarray]] = []
    ignored = []
    for key, array in arrays.items():
        if key in names:
            raw[key] = [(f"{path}[{key}]", array)]
        elif labels_key is not None and key == labels_key:
            labels.append((f"{path}[{key}]", array))
        else:
            ignored.append(key)
    notes = [f"{path}: ignored keys not named by the model's inputs: {', '.join(sorted(ignored))}"]
    if labels_key is not None and not labels:
        raise InputError(
            f"no labels key {labels_key!r}",
            where=str(path),
            hint=f"its keys are {', '.join(sorted(arrays)) or 'none'}",
        )
    return raw, notes if ignored else [], labels


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _read_directory(
    folder: Path, signature: Signature, labels_key: str | None
) -> tuple[_Blocks, list[str], list[tuple[str, np.ndarray]]]:
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".npy", ".npz")),
        key=_natural_key,
    )
    if not files:
        raise InputError(
            "the directory holds no .npy or .npz files",
            where=str(folder),
            hint="save samples with np.save / np.savez, or point at an .npz file",
        )
    names = [s.name for s in signature.inputs]
    raw: _Blocks = {}
    labels: list[tuple[str, np.ndarray]] = []
    ignored: set[str] = set()
    problems: list[str] = []
    for file in files:
        if file.suffix.lower() == ".npz":
            for key, array in _load_npz(file).items():
                origin = f"{file}[{key}]"
                if key in names:
                    raw.setdefault(key, []).append(
                        (origin, _with_sample_axis(array, signature.input(key)))
                    )
                elif labels_key is not None and key == labels_key:
                    labels.append((origin, array if array.ndim else array.reshape(1)))
                else:
                    ignored.add(key)
            continue
        stem = file.stem
        if stem in names:
            target = stem
        elif labels_key is not None and stem == labels_key:
            array = _load_npy(file)
            labels.append((str(file), array if array.ndim else array.reshape(1)))
            continue
        elif len(names) == 1:
            target = names[0]
        else:
            problems.append(f"{file.name}: name matches no input ({', '.join(names)})")
            continue
        raw.setdefault(target, []).append(
            (str(file), _with_sample_axis(_load_npy(file), signature.input(target)))
        )
    if problems:
        raise InputError(
            "; ".join(problems),
            where=str(folder),
            hint="name .npy files after the inputs (x.npy) or use .npz files keyed by input",
        )
    if labels_key is not None and not labels:
        raise InputError(f"no labels {labels_key!r} (.npy stem or .npz key)", where=str(folder))
    notes = (
        [f"{folder}: ignored keys not named by the model's inputs: {', '.join(sorted(ignored))}"]
        if ignored
        else []
    )
    return raw, notes, labels


def _with_sample_axis(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A file may hold one sample (rank without the batch axis): give it a sample axis."""
    if spec.shape and array.ndim == len(spec.shape) - 1:
        return array[np.newaxis]
    return array


def _looks_like_loader(text: str) -> bool:
    module, sep, function = text.rpartition(":")
    return bool(sep and module and function.isidentifier())


def _import_loader(text: str) -> Any:
    module_name, _, function_name = text.rpartition(":")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise InputError("loader file not found", where=text)
            spec = importlib.util.spec_from_file_location(f"_optieval_loader_{file.stem}", file)
            if spec is None or spec.loader is None:
                raise InputError("cannot import the loader file", where=text)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            # A console script's sys.path lacks the current folder; a user's loader lives there.
            cwd = str(Path.cwd())
            added = cwd not in sys.path
            if added:
                sys.path.append(cwd)
            try:
                module = importlib.import_module(module_name)
            finally:
                if added:
                    sys.path.remove(cwd)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot import the loader ({type(exc).__name__}: {exc})",
            where=text,
            hint="is the module on PYTHONPATH? or give path/to/file.py:function",
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InputError(f"{module_name} has no callable {function_name!r}", where=text)
    return function


def _read_loader(
    text: str, signature: Signature, labels_key: str | None, max_samples: int | None
) -> tuple[_Blocks, list[tuple[str, np.ndarray]]]:
    function = _import_loader(text)
    names = [s.name for s in signature.inputs]
    per_input: dict[str, list[np.ndarray]] = {n: [] for n in names}
    labels: list[np.ndarray] = []
    problems: list[str] = []
    index = -1
    try:
        produced = function()
        if isinstance(produced, Mapping) or not isinstance(produced, Iterable):
            raise InputError(
                f"the loader returned {type(produced).__name__}, not an iterable of dicts",
                where=text,
                hint="yield one dict per sample: {input_name: array without batch axis}",
            )
        for index, sample in enumerate(produced):
            if max_samples is not None and index >= max_samples:
                break
            if not isinstance(sample, Mapping):
                raise InputError(
                    f"sample {index} is a {type(sample).__name__}, not a dict",
                    where=text,
                    hint="yield one dict per sample: {input_name: array}",
                )
            missing = [n for n in names if n not in sample]
            if missing:
                problems.append(f"sample {index} lacks input {', '.join(missing)}")
                if len(problems) >= 5:
                    break
                continue
            for n in names:
                array = np.asarray(sample[n])
                spec = signature.input(n)
                if spec.shape and array.ndim != len(spec.shape) - 1:
                    problems.append(
                        f"sample {index} input {n} has shape {_shape(array.shape)}, expected one "
                        f"sample of {spec.shape_text()} without the batch axis"
                    )
                per_input[n].append(array)
            if labels_key is not None:
                if labels_key not in sample:
                    problems.append(f"sample {index} lacks labels key {labels_key!r}")
                else:
                    labels.append(np.asarray(sample[labels_key]))
            if len(problems) >= 5:
                break
    except InputError:
        raise
    except Exception as exc:
        at = f" at sample {index + 1}" if index >= 0 else ""
        raise InputError(
            f"the loader raised {type(exc).__name__}{at}: {exc}",
            where=text,
            hint="run the loader by itself to debug it",
        ) from exc
    if problems:
        raise InputError("; ".join(problems), where=text)
    raw: _Blocks = {}
    for n, samples in per_input.items():
        if samples:
            raw[n] = [(text, _stack(samples, f"{text}[{n}]"))]
    label_blocks = (
        [(f"{text}[{labels_key}]", _stack(labels, f"{text}[{labels_key}]"))] if labels else []
    )
    return raw, label_blocks


def _stack(samples: list[np.ndarray], where: str) -> np.ndarray:
    shapes = {a.shape for a in samples}
    dtypes = {a.dtype.str for a in samples}
    if len(shapes) > 1 or len(dtypes) > 1:
        raise InputError(
            f"samples differ in shape or dtype ({', '.join(sorted(_shape(s) for s in shapes))}; "
            f"{', '.join(sorted(dtypes))})",
            where=where,
            hint="samples of one data set must share shape and dtype: group them by shape",
        )
    return np.stack(samples)


# -- validation -----------------------------------------------------------------------------------


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _finish(
    source: str,
    raw: _Blocks,
    label_blocks: list[tuple[str, np.ndarray]],
    notes: list[str],
    signature: Signature,
    labels_key: str | None,
    max_samples: int | None,
) -> Dataset:
    problems: list[str] = []
    inputs: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        blocks = raw.get(spec.name)
        if not blocks:
            problems.append(f"input {spec.name!r} is missing")
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
    if problems:
        raise InputError(
            "; ".join(problems),
            where=source,
            hint=f"the model expects {signature.describe()} (axis 0 indexes samples)",
        )
    if max_samples is not None:
        inputs = {k: v[:max_samples] for k, v in inputs.items()}
        labels = None if labels is None else labels[:max_samples]
    return Dataset(
        {k: _readonly(v) for k, v in inputs.items()},
        None if labels is None else _readonly(labels),
        notes,
        source,
    )


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
