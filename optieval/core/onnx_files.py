"""ONNX files on disk: saving (with external data), checking, and publishing atomically.

Every ONNX model optieval writes (an export, a precision artifact, a copy of one) goes through
the same three steps:

1. :func:`save_onnx` into a staging folder beside the destination, under the destination's
   file name, so that the external data file it records (``NAME.data``) is already the name it
   will have in place;
2. :func:`check_onnx` (``onnx.checker``, by path, so external data is found);
3. :func:`publish_onnx`: rename the external data, then the model, into place (each rename is
   atomic) and remove what an earlier model of that name left behind. The caller then writes
   the manifest (:func:`optieval.core.write_manifest`) with the hashes it returns.

An interrupted write therefore never leaves a half-written model under the destination name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.core.files import atomic_path, sha256_file
from optieval.core.manifest import read_manifest
from optieval.errors import InputError

if TYPE_CHECKING:
    import onnx

EXTERNAL_SIZE_THRESHOLD = 1024
"""Tensors of at least this many bytes go to the external data file when saving external."""


def data_path(model: str | os.PathLike[str]) -> Path:
    """The external data file optieval writes beside ``model``: its name plus ``.data``."""
    p = Path(model)
    return p.with_name(p.name + ".data")


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike[str], *, external: bool) -> None:
    """Save ``model`` to ``path``; with ``external`` its large tensors go to one file beside it,
    :func:`data_path` (``NAME.data``), which the model refers to by that name.

    Raises:
        InputError: the model cannot be saved in one file (over protobuf's 2 GB limit).
    """
    import onnx

    target = Path(path)
    try:
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            location=data_path(target).name,
            size_threshold=EXTERNAL_SIZE_THRESHOLD if external else 0,
            convert_attribute=False,
        )
    except ValueError as exc:
        raise InputError(
            f"cannot save the model in one file ({' '.join(str(exc).split())[:200]})",
            where=target.name,
            hint="let it use external data (external_data=None or True)",
        ) from exc


def check_onnx(path: str | os.PathLike[str], *, full_check: bool = False) -> str | None:
    """Run ``onnx.checker`` on the file at ``path`` (by path: external data is found).

    Returns:
        None when the model passes; otherwise the checker's message (its text, possibly over
        several lines), for the caller to report as an error or a failed check.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=full_check)
    except Exception as exc:  # ValidationError, or InferenceError with full_check
        return str(exc) or type(exc).__name__
    return None


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The external data files ``model`` refers to (relative to its folder), in first-use order.

    Read from a model loaded without its external data (``load_external_data=False``); an
    empty list means the model is self-contained.
    """
    import onnx
    from onnx.external_data_helper import ExternalDataInfo

    locations: dict[str, None] = {}
    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            locations[ExternalDataInfo(tensor).location] = None
    return list(locations)


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    import onnx

    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def onnx_file_hashes(model: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` of ``model`` and, when present, its :func:`data_path` (the
    model first): the ``files`` section of a manifest."""
    path = Path(model)
    files = {path.name: sha256_file(path)}
    data = data_path(path)
    if data.is_file():
        files[data.name] = sha256_file(data)
    return files


def publish_onnx(
    staged: str | os.PathLike[str], destination: str | os.PathLike[str]
) -> dict[str, str]:
    """Move a staged model, and its :func:`data_path` when there is one, to ``destination``.

    ``staged`` must have been saved under ``destination``'s file name (see :func:`save_onnx`):
    the model names its external data file. The data moves first and the model last, each by
    an atomic rename; a stale ``destination.data``, and any other file the previous manifest
    of ``destination`` listed beside it, are removed. The manifest itself is the caller's to
    write.

    Returns:
        ``{file name: sha256}`` of what was published, the model first.

    Raises:
        InputError: the destination folder is missing or not writable.
    """
    source = Path(staged)
    target = Path(destination)
    hashes = onnx_file_hashes(source)
    previous: dict[str, Any] | None = None
    with contextlib.suppress(InputError):
        previous = read_manifest(target)
    data = data_path(source)
    if data.is_file():
        with atomic_path(data_path(target)) as tmp:
            os.replace(data, tmp)
    published = {target.name: hashes[source.name]}
    if data.name in hashes:
        published[data_path(target).name] = hashes[data.name]
    with atomic_path(target) as tmp:
        os.replace(source, tmp)
    stale = {data_path(target).name, *(previous or {}).get("files", {})}
    for name in stale:
        if name not in published and "/" not in name and "\\" not in name:
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()
    return published
