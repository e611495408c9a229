"""Issue 18, item 2: a real SIGINT or SIGTERM sent to a real ``optieval bench``/``gate``
process stops every process of its tree (the isolated measuring child runs in its own session,
out of reach of a terminal's Ctrl-C) and exits 130/143 after saying what was finished."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.release.gate_helpers import write_config

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="needs /proc to walk the process tree"
)

SLOW_MEASURE = """
[measure]
warmup_s = 0.0
warmup_iters = 5
duration_s = 30.0
max_duration_s = 40.0
"""


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(root: int) -> set[int]:
    parents = {int(d): _parent_of(int(d)) for d in os.listdir("/proc") if d.isdigit()}
    tree, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - tree
        tree |= frontier
    return tree


def _command() -> list[str]:
    exe = shutil.which("optieval", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "optieval"]


def _interrupt(argv: list[str], signum: int, cwd: Path) -> tuple[int, str, set[int]]:
    """Start ``optieval ARGV`` as a terminal would (SIGINT not ignored, its own process group),
    wait until its measuring child exists, send ``signum`` to its group (what Ctrl-C does),
    and return its exit status, its stderr and every descendant seen while it ran."""
    proc = subprocess.Popen(
        [*_command(), *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= _descendants(proc.pid)
            if any("optieval.execution.isolation" in _cmdline(pid) for pid in seen):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert seen, "no child process was started"
        time.sleep(0.5)
        seen |= _descendants(proc.pid)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode(), seen


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _survivors(pids: set[int]) -> list[str]:
    deadline = time.monotonic() + 5  # the kernel may take a moment to reap
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [f"{pid}: {_cmdline(pid)}" for pid in pids if _alive(pid)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_bench_interrupt_stops_the_isolated_child(
    mlp_onnx: Path, tmp_path: Path, signum: int, code: int
) -> None:
    argv = ["bench", str(mlp_onnx), "--warmup", "0", "--duration", "30", "--max-duration", "40",
            "--batch", "1,2", "--json", str(tmp_path / "b.json")]  # fmt: skip
    returncode, err, tree = _interrupt(argv, signum, tmp_path)
    assert returncode == code, err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "Traceback" not in err
    assert _survivors(tree) == []
    assert not (tmp_path / "b.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]


def test_gate_interrupt_stops_everything_and_says_what_finished(tmp_path: Path) -> None:
    target = '[[target]]\nbackend = "ort-cpu"\nprecision = "fp32"\nbatch = [1, 2]\nthreads = 1\n'
    config = write_config(tmp_path / "cfg", target, measure=SLOW_MEASURE)
    out = tmp_path / "out"
    returncode, err, tree = _interrupt(["gate", str(config), "--out", str(out)], signal.SIGINT,
                                       tmp_path)  # fmt: skip
    assert returncode == 130, err
    line = next(x for x in err.splitlines() if "interrupted by SIGINT" in x)
    assert "after" in line and "finished" in line  # the model and its artifacts were done
    assert _survivors(tree) == []
    report = (out / "report.md").read_text()
    assert "interrupted" in report.lower() and "PASS" not in report


def test_the_interrupt_line_says_what_finished_out_of_the_total() -> None:
    from optieval.cli.stopping import interrupted_line, record_finished, start_record

    start_record()
    assert interrupted_line("SIGINT") == (
        "interrupted by SIGINT before anything finished; every child process stopped"
    )
    record_finished("ort-cpu:fp32 b1 ok", 4, again=True)
    record_finished("ort-cpu:fp32 b1 ok", 4, again=True)  # a second scenario, same label
    line = interrupted_line("SIGTERM")
    assert line.startswith("interrupted by SIGTERM after 2 of 4 finished (ort-cpu:fp32 b1 ok")
    start_record()
