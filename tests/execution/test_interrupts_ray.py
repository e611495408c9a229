"""Issue 18, item 2 on Ray: an interrupt (a real SIGINT to this process, turned into a stop by
:func:`optieval.execution.handle_interrupts`) cancels the cells running as Ray tasks: the
benchmark stops within seconds and the cell's measuring subprocess on the worker is gone."""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before ray: bind to loopback only

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from optieval.bench import MeasureSettings  # noqa: E402
from optieval.execution import Interrupted, RayExecutor, handle_interrupts  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc"),
]


@pytest.fixture
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Ray node on loopback, 2 CPUs, a small object store; shut down after the test."""
    saved = os.environ.get("OPTIEVAL_CACHE")
    os.environ["OPTIEVAL_CACHE"] = str(tmp_path_factory.mktemp("ray") / "worker-cache")
    try:
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=100 * 2**20, num_cpus=2, log_to_driver=False)  # fmt: skip
    finally:
        if saved is not None:
            os.environ["OPTIEVAL_CACHE"] = saved
    try:
        yield ray
    finally:
        ray.shutdown()


def _measuring_children() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"optieval.execution.isolation" in cmdline and state != "Z":
            found.append(int(pid))
    return found


def test_sigint_cancels_the_ray_cells_and_their_subprocesses(
    mlp_onnx: Path, local_ray: Any
) -> None:
    import optieval

    settings = MeasureSettings(warmup_s=0.0, duration_s=60.0, max_duration_s=60.0)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = optieval.benchmark(
                mlp_onnx, settings=settings, batches=[1, 2], executor=RayExecutor()
            )
        except BaseException as exc:  # what the thread ended with is the result
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    # A run started in the background (``cmd &`` without job control, as a CI script may do)
    # inherits SIGINT ignored, and handle_interrupts rightly keeps it ignored: give this test
    # the terminal's default so that the signal below is what a Ctrl-C would be.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_while_measuring(worker, outcome)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_while_measuring(worker: threading.Thread, outcome: dict[str, Any]) -> None:
    with handle_interrupts():
        worker.start()
        deadline = time.monotonic() + 120
        while not _measuring_children() and time.monotonic() < deadline:
            time.sleep(0.2)
        children = _measuring_children()
        assert children, "no cell started measuring on the Ray worker"
        stopped_at = time.monotonic()
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to the driver
            time.sleep(5)  # the handler raises in this (main) thread before this ends
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), Interrupted), outcome
    assert time.monotonic() - stopped_at < 30  # not the 60 s of measurement
    deadline = time.monotonic() + 20
    while any(pid in _measuring_children() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if pid in _measuring_children()]
