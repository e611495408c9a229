"""Golden outputs: the reference's outputs saved with their inputs and the model's hash, so that
later comparisons need not run the reference backend.

A golden folder holds ``golden.json`` (schema_version, model hash, reference label, names),
``inputs.npz``, ``outputs.npz`` and, when labels were given, ``labels.npy``. Every file is
written atomically; ``golden.json`` is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core import atomic_path, read_json, write_json_atomic
from optieval.errors import InputError

GOLDEN_SCHEMA_VERSION = 1
GOLDEN_FILE = "golden.json"


@dataclass(frozen=True)
class Golden:
    """Saved reference outputs and the inputs that produced them.

    Attributes:
        model_sha256: sha256 of the model file the outputs belong to.
        reference: the ``backend:precision`` that produced them.
        inputs, outputs: name -> array (samples along axis 0).
        labels: class indices, or None.
        source: where the inputs came from (``data:PATH``, ``generated:seed=0``).
    """

    model_sha256: str
    reference: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""

    @property
    def samples(self) -> int:
        """Number of samples (axis 0 of the first input)."""
        first = next(iter(self.inputs.values()), None)
        return 0 if first is None or first.ndim == 0 else int(first.shape[0])


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        savez: Any = np.savez  # numpy's stub types **kwds as the allow_pickle flag
        savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def save_golden(directory: str | os.PathLike[str], golden: Golden) -> Path:
    """Write ``golden`` into ``directory`` (created if missing); return the folder.

    Raises InputError when the folder cannot be created or written.
    """
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the golden folder ({exc.strerror})", where=str(folder)
        ) from exc
    _save_npz(folder / "inputs.npz", golden.inputs)
    _save_npz(folder / "outputs.npz", golden.outputs)
    if golden.labels is not None:
        with atomic_path(folder / "labels.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(golden.labels), allow_pickle=False)
    write_json_atomic(
        folder / GOLDEN_FILE,
        {
            "schema_version": GOLDEN_SCHEMA_VERSION,
            "model_sha256": golden.model_sha256,
            "reference": golden.reference,
            "source": golden.source,
            "samples": golden.samples,
            "inputs": list(golden.inputs),
            "outputs": list(golden.outputs),
            "labels": golden.labels is not None,
        },
    )
    return folder


def _load_npz(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise InputError(
            "golden file missing",
            where=str(path),
            hint="re-create the folder with `save_golden_dir`",
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as exc:  # zipfile / ValueError on a damaged archive
        raise InputError(f"cannot read golden arrays ({exc})", where=str(path)) from exc
    missing = [n for n in names if n not in arrays]
    if missing:
        raise InputError(f"golden arrays lack {', '.join(missing)}", where=str(path))
    return {n: arrays[n] for n in names}


def load_golden(directory: str | os.PathLike[str], *, model_sha256: str | None = None) -> Golden:
    """Read a golden folder; when ``model_sha256`` is given, check it matches.

    Raises:
        InputError: the folder or a file is missing or damaged, its schema version is unknown,
            or it was saved for another model (hash mismatch).
    """
    folder = Path(directory)
    meta: Any = read_json(folder / GOLDEN_FILE, what="golden manifest")
    if not isinstance(meta, dict) or meta.get("schema_version") != GOLDEN_SCHEMA_VERSION:
        version = meta.get("schema_version") if isinstance(meta, dict) else None
        raise InputError(
            f"golden schema_version {version!r} is not {GOLDEN_SCHEMA_VERSION}",
            where=str(folder / GOLDEN_FILE),
            hint="re-create it with `optieval compare --save-golden` from this optieval",
        )
    saved_hash = str(meta.get("model_sha256", ""))
    if model_sha256 is not None and saved_hash != model_sha256:
        raise InputError(
            f"golden outputs belong to another model (sha256 {saved_hash[:12]}…, this model "
            f"{model_sha256[:12]}…)",
            where=str(folder),
            hint="re-create them with `save_golden_dir` for this model",
        )
    inputs = _load_npz(folder / "inputs.npz", list(meta.get("inputs", [])))
    outputs = _load_npz(folder / "outputs.npz", list(meta.get("outputs", [])))
    labels = None
    if meta.get("labels"):
        path = folder / "labels.npy"
        try:
            labels = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"cannot read golden labels ({exc})", where=str(path)) from exc
    return Golden(
        model_sha256=saved_hash,
        reference=str(meta.get("reference", "")),
        inputs=inputs,
        outputs=outputs,
        labels=labels,
        source=str(meta.get("source", "")),
    )
