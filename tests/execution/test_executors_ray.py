"""The Ray executor on a real Ray started by the tests, bound to loopback only (127.0.0.1), with
a small object store: the same gate gives the same parity metrics and verdicts as the local
executor; cells land on the node of their hardware and missing hardware fails cleanly (Ray's
multi-node test cluster); a worker killed during a cell gives a failed cell and a finished
report. Each test shuts its Ray down."""

from __future__ import annotations

import os

# Before ray is imported: without it Ray advertises (and binds to) the machine's outward
# address even when asked for 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from optieval.execution import RayExecutor  # noqa: E402
from optieval.release.run import gate  # noqa: E402
from tests.release.gate_helpers import write_config  # noqa: E402

pytestmark = pytest.mark.slow

LOOPBACK = "127.0.0.1"
OBJECT_STORE = 100 * 2**20

MEASURE = """
[measure]
warmup_s = 0.0
warmup_iters = 5
duration_s = 0.2
max_duration_s = 0.8
"""

TWO_TARGETS = """
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = [1, 4]
threads = 1
latency = { p99_ms_max = 1000.0, throughput_min = 1.0 }
accuracy = { top1_agreement_min = 0.5, cosine_min = 0.9, accuracy_drop_max = 0.5 }

[[target]]
backend = "ort-cpu"
precision = "int8"
batch = 1
threads = 1
latency = { p99_ms_max = 0.000001 }
accuracy = { top1_agreement_min = 0.5, flip_rate_max = 0.5 }
"""


def _worker_env(tmp: Path) -> None:
    # Ray's workers inherit the environment of the processes ray.init starts: give them a cache
    # of their own (not the user's) that outlives each test's driver cache.
    os.environ["OPTIEVAL_CACHE"] = str(tmp / "worker-cache")
    assert ray._private.ray_constants.ENABLE_RAY_CLUSTER is False, "ray imported too early"


@pytest.fixture
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Ray node on loopback, 2 CPUs, 100 MB object store; shut down after the test."""
    saved = os.environ.get("OPTIEVAL_CACHE")
    _worker_env(tmp_path_factory.mktemp("ray"))
    try:
        ray.init(address="local", include_dashboard=False, _node_ip_address=LOOPBACK,
                 object_store_memory=OBJECT_STORE, num_cpus=2, log_to_driver=False)  # fmt: skip
    finally:
        if saved is not None:
            os.environ["OPTIEVAL_CACHE"] = saved
    try:
        assert all(n["NodeManagerAddress"] == LOOPBACK for n in ray.nodes())
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Ray's multi-node test cluster on loopback: a head (1 CPU) and two workers, one offering
    ``accelerator_type:A10G`` and one ``accelerator_type:T4`` (1 CPU each)."""
    from ray.cluster_utils import Cluster

    saved = os.environ.get("OPTIEVAL_CACHE")
    _worker_env(tmp_path_factory.mktemp("cluster"))
    common = {"node_ip_address": LOOPBACK, "object_store_memory": OBJECT_STORE}
    test_cluster = Cluster(
        initialize_head=True,
        head_node_args={**common, "num_cpus": 1, "include_dashboard": False},
    )
    try:
        a10g = test_cluster.add_node(**common, num_cpus=1, resources={"accelerator_type:A10G": 1})
        t4 = test_cluster.add_node(**common, num_cpus=1, resources={"accelerator_type:T4": 1})
        if saved is not None:
            os.environ["OPTIEVAL_CACHE"] = saved
        ray.init(address=test_cluster.address, log_to_driver=False)
        test_cluster.wait_for_nodes()
        assert all(n["NodeManagerAddress"] == LOOPBACK for n in ray.nodes())
        yield {"A10G": a10g.node_id, "T4": t4.node_id}
    finally:
        ray.shutdown()
        test_cluster.shutdown()


def _checks(report: Any) -> dict[str, str]:
    return {c.name: c.verdict.value for c in report.checks}


def test_same_gate_through_local_and_ray_gives_the_same_parity_and_verdicts(
    tmp_path: Path, local_ray: Any
) -> None:
    config = write_config(tmp_path / "rel", TWO_TARGETS, measure=MEASURE)
    local = gate(config, out_dir=tmp_path / "local")
    with RayExecutor(parity_shards=3) as executor:
        remote = gate(config, out_dir=tmp_path / "ray", executor=executor)
    assert remote.parity == local.parity  # metrics and intervals, exactly
    assert _checks(remote) == _checks(local)
    assert remote.verdict == local.verdict and remote.exit_code == local.exit_code == 1
    assert [c.label for c in remote.cells] == [c.label for c in local.cells]
    node = ray.nodes()[0]["NodeID"]
    for cell in remote.cells:
        assert cell.status == "ok", cell.reason
        assert cell.placement is not None and cell.placement["executor"] == "ray"
        assert cell.placement["node_id"] == node
        assert cell.placement["pinning"]["pinned"] is True
        assert cell.machine is not None and cell.machine["hostname"]
        assert cell.artifact is not None  # the artifact the worker verified and loaded
    assert remote.to_json()["executor"]["executor"] == "ray"


def test_cells_land_on_the_node_of_their_hardware_and_missing_hardware_fails(
    tmp_path: Path, cluster: dict[str, Any]
) -> None:
    targets = "".join(
        f'\n[[target]]\nbackend = "ort-cpu"\nprecision = "{precision}"\nbatch = 1\n'
        f'threads = 1\nhardware = "{hardware}"\nlatency = {{ p99_ms_max = 1000.0 }}\n'
        for precision, hardware in (("fp32", "A10G"), ("int8", "T4"), ("fp16", "H100"))
    )
    config = write_config(tmp_path / "rel", targets, measure=MEASURE)
    report = gate(config, out_dir=tmp_path / "out", executor="ray")  # connects to the cluster
    a10g, t4, h100 = report.cells
    assert a10g.status == t4.status == "ok", (a10g.reason, t4.reason)
    assert a10g.placement and a10g.placement["node_id"] == cluster["A10G"]
    assert t4.placement and t4.placement["node_id"] == cluster["T4"]
    assert h100.status == "error" and h100.reason and "missing hardware" in h100.reason
    assert "accelerator_type:H100" in h100.reason
    assert report.exit_code == 3  # a check that could not be made
    html = Path(report.reports["html"]).read_text(encoding="utf-8")
    for hardware in ("A10G", "T4", "H100"):
        assert f"<h3>{hardware}</h3>" in html


def _kill_cell_worker(stop: threading.Event, killed: list[int]) -> None:
    """Kill the Ray worker running a cell (its process title is ``ray::ray_cell_task``) once
    the cell has run a moment."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::ray_cell_task"):
                time.sleep(1.0)
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.1)


def test_a_worker_killed_during_a_cell_gives_a_failed_cell_and_a_finished_report(
    tmp_path: Path, local_ray: Any
) -> None:
    long = MEASURE.replace("duration_s = 0.2", "duration_s = 20.0").replace(
        "max_duration_s = 0.8", "max_duration_s = 20.0"
    )
    targets = (
        '[[target]]\nbackend = "ort-cpu"\nprecision = "fp32"\nbatch = 1\nthreads = 1\n'
        "latency = { p99_ms_max = 1000.0 }\naccuracy = { cosine_min = 0.9 }\n"
    )
    config = write_config(tmp_path / "rel", targets, measure=long)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_cell_worker, args=(stop, killed), daemon=True)
    killer.start()
    started = time.monotonic()
    try:
        report = gate(config, out_dir=tmp_path / "out", executor=RayExecutor())
    finally:
        stop.set()
        killer.join(timeout=5)
    assert killed, "no cell worker was found to kill"
    (cell,) = report.cells
    assert cell.status == "error" and cell.reason and "worker died" in cell.reason
    assert cell.placement and cell.placement["retried"] is None  # never retried silently
    assert report.exit_code == 3 and Path(report.reports["json"]).is_file()
    assert time.monotonic() - started < 20.0  # it did not wait for the measurement to end
    assert [c.verdict.value for c in report.checks if c.key == "cosine_min"] == ["PASS"]
