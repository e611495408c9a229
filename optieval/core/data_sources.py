"""The readers behind :func:`optieval.core.load_dataset`: an ``.npz``, a directory of
``.npy``/``.npz`` files, or a Python loader, each returning raw blocks of samples per input
(validated and assembled by :mod:`optieval.core.data`)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError

__all__ = ["Blocks", "looks_like_loader", "read_directory", "read_loader", "read_npz"]


# One raw input: a list of (origin, array) blocks; each array holds samples on axis 0.
Blocks = dict[str, list[tuple[str, np.ndarray]]]


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


def read_npz(
    path: Path, signature: Signature, labels_key: str | None
) -> tuple[Blocks, list[str], list[tuple[str, np.ndarray]]]:
    arrays = _load_npz(path)
    names = {s.name for s in signature.inputs}
    raw: Blocks = {}
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


def read_directory(
    folder: Path, signature: Signature, labels_key: str | None
) -> tuple[Blocks, list[str], list[tuple[str, np.ndarray]]]:
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
    raw: Blocks = {}
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


def looks_like_loader(text: str) -> bool:
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


def read_loader(
    text: str, signature: Signature, labels_key: str | None, max_samples: int | None
) -> tuple[Blocks, list[tuple[str, np.ndarray]]]:
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
    raw: Blocks = {}
    for n, samples in per_input.items():
        if not samples:
            continue
        if len({(a.shape, a.dtype.str) for a in samples}) == 1:
            raw[n] = [(text, np.stack(samples))]
        else:  # samples of several shapes: _finish groups them or says why it cannot
            raw[n] = [(f"{text} sample {i}", a[np.newaxis]) for i, a in enumerate(samples)]
    label_blocks = (
        [(f"{text}[{labels_key}]", stack_samples(labels, f"{text}[{labels_key}]"))]
        if labels
        else []
    )
    return raw, label_blocks


def stack_samples(samples: list[np.ndarray], where: str) -> np.ndarray:
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


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"
