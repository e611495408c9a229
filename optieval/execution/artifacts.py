"""Artifacts travel by content: the driver puts each file's bytes in Ray's object store once
(:class:`ArtifactStore`), keyed by SHA-256; a worker uses its own cache, else the driver's path
when it can read it (a shared file system), else the object store, and verifies the SHA-256
every time before use (:func:`materialize`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from optieval.errors import BackendFailed

__all__ = ["ArtifactStore", "bundle_files", "materialize"]


def bundle_files(path: Path) -> list[Path]:
    """The file and what travels with it: external data beside it and its manifest."""
    files = [path]
    for sibling in (path.with_name(path.name + ".data"), path.with_name(path.name + ".json")):
        if sibling.is_file():
            files.append(sibling)
    return files


class ArtifactStore:
    """The driver's side: each file put in the object store once, by its SHA-256.

    Args:
        put: the object store's ``put`` (``ray.put``).
    """

    def __init__(self, put: Callable[[bytes], Any]) -> None:
        self._put = put
        self._refs: dict[str, Any] = {}  # sha256 -> ObjectRef of the file's bytes
        self._lock = threading.Lock()

    def bundle(self, path: str | Path) -> dict[str, Any]:
        """The files of ``path`` (with its external data and manifest) by content: SHA-256,
        the driver's path, and a reference to the bytes in the object store (put once)."""
        from optieval.core import sha256_file

        files = []
        for file in bundle_files(Path(path)):
            digest = sha256_file(file)
            with self._lock:
                ref = self._refs.get(digest)
                if ref is None:
                    ref = self._refs[digest] = self._put(file.read_bytes())
            # In a list, so that Ray hands the task the reference, not the bytes: a worker that
            # has the file in its cache never fetches them.
            files.append(
                {"name": file.name, "sha256": digest, "path": str(file.resolve()), "ref": [ref]}
            )
        return {"sha256": files[0]["sha256"], "files": files}


def materialize(bundle: Mapping[str, Any]) -> tuple[Path, str]:
    """On a worker: the local path of a bundle's main file, from this worker's cache, else the
    driver's path (a shared file system), else Ray's object store; every file verified by its
    SHA-256 before use.

    Returns:
        ``(path, source)`` with source ``cache``, ``shared path`` or ``object store``.

    Raises:
        BackendFailed: a file whose content does not match its hash.
    """
    from optieval.core import cache_dir, sha256_bytes, sha256_file, write_bytes_atomic

    folder = cache_dir("ray-artifacts", str(bundle["sha256"])[:32])
    sources = []
    for entry in bundle["files"]:
        dest = folder / entry["name"]
        if dest.is_file() and sha256_file(dest) == entry["sha256"]:
            sources.append("cache")
            continue
        shared = Path(entry["path"])
        data: bytes | None = None
        source = "object store"
        if shared.is_file():
            with contextlib.suppress(OSError):
                candidate = shared.read_bytes()
                if sha256_bytes(candidate) == entry["sha256"]:
                    data, source = candidate, "shared path"
        if data is None:
            import ray

            data = ray.get(entry["ref"][0])
            if sha256_bytes(data) != entry["sha256"]:
                raise BackendFailed(
                    f"{entry['name']} arrived with another SHA-256 than the driver's",
                    where=str(dest),
                    hint="the object store or the network corrupted it; re-run",
                )
        write_bytes_atomic(dest, data)
        sources.append(source)
    main = folder / bundle["files"][0]["name"]
    return main, min(sources, key=("object store", "shared path", "cache").index)
