"""Where optieval keeps derived artifacts: ``~/.cache/optieval``, or ``$OPTIEVAL_CACHE``.

Entries are keyed by content hashes and library versions and verified on load by their caller.
A cache folder that cannot be written (a read-only ``$OPTIEVAL_CACHE``) degrades to a temporary
folder for this process, with one warning, removed when the process exits.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

# Configured cache folder -> the temporary folder used instead when it cannot be written.
_FALLBACKS: dict[str, Path] = {}


def cache_root() -> Path:
    """Return the cache folder (created if missing): ``$OPTIEVAL_CACHE`` or
    ``~/.cache/optieval``; a temporary folder (with one warning) when that cannot be written."""
    override = os.environ.get("OPTIEVAL_CACHE")
    root = Path(override) if override else Path.home() / ".cache" / "optieval"
    fallback = _FALLBACKS.get(str(root))
    if fallback is not None:
        return fallback
    try:
        root.mkdir(parents=True, exist_ok=True)
        _probe(root)
    except OSError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="optieval-cache-"))
        _FALLBACKS[str(root)] = fallback
        atexit.register(shutil.rmtree, fallback, ignore_errors=True)
        warnings.warn(
            f"cache folder {root} is not writable ({exc.strerror or exc}); "
            f"caching in {fallback} for this run",
            RuntimeWarning,
            stacklevel=2,
        )
        return fallback
    return root


def _probe(folder: Path) -> None:
    """Raise OSError unless a file can be created in ``folder`` (os.access is no help as root
    or on read-only mounts)."""
    fd, name = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def cache_key(parts: dict[str, Any]) -> str:
    """Return a stable hex key for a JSON-serializable mapping of everything an entry depends on."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def cache_dir(kind: str, key: str) -> Path:
    """Return (and create) the folder of one cache entry, e.g. ``cache_dir("artifacts", key)``."""
    folder = cache_root() / kind / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder
