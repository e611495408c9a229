"""Issue 18: a read-only cache folder degrades to a temporary one with one warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from optieval.core import cache


def test_unwritable_cache_falls_back_to_a_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "somefile"
    blocker.write_text("a file, so nothing can be created below it (as root too)")
    monkeypatch.setenv("OPTIEVAL_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(cache, "_FALLBACKS", {})
    with pytest.warns(RuntimeWarning, match="not writable") as caught:
        root = cache.cache_root()
        entry = cache.cache_dir("precision", "abc")
    assert len(caught) == 1
    assert root.is_dir() and entry.is_dir() and entry.parent.parent == root
    assert not str(root).startswith(str(blocker))


def test_writable_cache_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIEVAL_CACHE", str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c"
    assert not list((tmp_path / "c").iterdir())  # the probe leaves nothing behind


def test_the_temporary_cache_goes_when_the_process_exits(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    blocker = tmp_path / "somefile"
    blocker.write_text("nothing can be created below a file")
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from optieval.core import cache\n"
        "print(cache.cache_dir('precision', 'abc'))\n"
    )
    env = {**os.environ, "OPTIEVAL_CACHE": str(blocker / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    entry = Path(done.stdout.strip())
    assert done.returncode == 0 and entry.name == "abc"
    assert not entry.parent.parent.exists()  # the fallback folder, removed at exit
