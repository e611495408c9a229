"""Manifests: the JSON file beside every model, artifact and engine optieval writes.

``model.onnx`` has ``model.onnx.json``; ``model.plan`` has ``model.plan.json``. A manifest holds
the file hashes, the I/O signature, provenance and, for precision artifacts, the census. Each
stage adds the sections it owns; this module only names the file and reads and writes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optieval.core.files import read_json, write_json_atomic
from optieval.errors import InputError

MANIFEST_SCHEMA_VERSION = 1


def manifest_path(artifact: str | os.PathLike[str]) -> Path:
    """Return the manifest path for ``artifact`` (its name with ``.json`` appended)."""
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def read_manifest(artifact: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the manifest beside ``artifact``, or None when there is none.

    Raises :class:`InputError` when the manifest exists but is malformed or of a schema version
    this optieval does not know.
    """
    path = manifest_path(artifact)
    if not path.is_file():
        return None
    data = read_json(path, what="manifest")
    if not isinstance(data, dict):
        raise InputError("manifest is not a JSON object", where=str(path))
    version = data.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION:
        raise InputError(
            f"manifest schema_version {version!r} is not {MANIFEST_SCHEMA_VERSION}",
            where=str(path),
            hint="re-create the artifact with this optieval version",
        )
    return data


def write_manifest(artifact: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` beside ``artifact`` atomically, adding ``schema_version``."""
    path = manifest_path(artifact)
    write_json_atomic(path, {"schema_version": MANIFEST_SCHEMA_VERSION, **manifest})
    return path
