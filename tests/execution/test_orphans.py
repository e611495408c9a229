"""Issue 18: nothing left behind even when optieval itself is killed outright (SIGKILL): the
measuring child dies with it (Linux), and the next isolated run removes the cell folder the
killed parent could not, while a running parent's folder is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from optieval.execution import run_isolated

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and flock: Linux"
)

_PARENT = """
import sys
from optieval.execution import run_isolated
run_isolated("tests.execution.isolation_targets:hang", {}, timeout_s=120)
"""


def _cell_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("optieval-cell-*"))


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_parents_child_dies_and_its_folder_is_swept() -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], cwd=root,
                              env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _children(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        (child,) = _children(parent.pid)
        # The child's payload lies in the parent's cell folder (other runs may share /tmp).
        argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        theirs = {Path(next(a for a in argv if a.endswith("payload.json"))).parent}
        assert theirs <= _cell_folders()
        run_isolated("tests.execution.isolation_targets:echo", {}, timeout_s=60)
        assert theirs <= _cell_folders()  # a running parent's folder stays
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(child)  # died with its parent
    assert theirs <= _cell_folders()  # nobody could remove it yet
    outcome = run_isolated("tests.execution.isolation_targets:echo", {"x": 1}, timeout_s=60)
    assert outcome.ok
    assert not (theirs & _cell_folders())  # the next run swept it
