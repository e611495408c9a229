"""Where optieval keeps derived artifacts: ``~/.cache/optieval``, or ``$OPTIEVAL_CACHE``.

Entries are keyed by content hashes and library versions and verified on load by their caller.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """Return the cache folder (created if missing)."""
    override = os.environ.get("OPTIEVAL_CACHE")
    root = Path(override) if override else Path.home() / ".cache" / "optieval"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(parts: dict[str, Any]) -> str:
    """Return a stable hex key for a JSON-serializable mapping of everything an entry depends on."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def cache_dir(kind: str, key: str) -> Path:
    """Return (and create) the folder of one cache entry, e.g. ``cache_dir("artifacts", key)``."""
    folder = cache_root() / kind / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder
