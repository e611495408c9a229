"""The executor seam without Ray: placement, the parity split and merge (exactly a single run's
metrics), core pinning, the local executor's hardware check and grouping, and the errors of
``--executor`` (Ray itself: tests/execution/test_executors_ray.py)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from optieval.bench.runner import bench_cells
from optieval.cli import app
from optieval.errors import BackendUnavailable, InputError
from optieval.execution import (
    CellFunctions,
    LocalExecutor,
    Placement,
    RayExecutor,
    create_executor,
    function_path,
    group_by_hardware,
    merge_outputs,
    split_batches,
)
from optieval.parity import compare, run_parity_shard
from optieval.release.run import gate
from tests.release.gate_helpers import write_config, write_data

TARGETS = """
[[target]]
backend = "ort-cpu"
precision = "fp32"
batch = 1
threads = 1
hardware = "{hardware}"
latency = {{ p99_ms_max = 1000.0 }}
accuracy = {{ cosine_min = 0.5 }}
"""


def test_placement_asks_for_a_whole_gpu_or_the_threads_in_cpus() -> None:
    gpu = Placement.for_cell("ort-cuda", 4, "A10G")
    assert (gpu.gpus, gpu.cpus, gpu.pin) == (1, 1, False)
    assert gpu.ray_options()["resources"] == {"accelerator_type:A10G": 0.001}
    assert gpu.ray_options()["max_retries"] == 0
    cpu = Placement.for_cell("ort-cpu", 3, None)
    assert (cpu.gpus, cpu.cpus, cpu.pin) == (0, 3, True)
    assert "resources" not in cpu.ray_options()
    assert Placement.for_cell("ort-cpu", None, None).pin is False


@pytest.mark.parametrize(("total", "batch", "shards"), [(120, 16, 3), (7, 4, 5), (64, 16, 4)])
def test_shards_are_whole_batches_covering_every_sample(
    total: int, batch: int, shards: int
) -> None:
    ranges = split_batches(total, batch, shards)
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(start % batch == 0 for start, _ in ranges)
    assert len(ranges) <= shards


def test_sharded_parity_gives_exactly_the_single_machine_metrics(
    tmp_path: Path, mlp_onnx: Path
) -> None:
    data = write_data(tmp_path, samples=120)

    def sharded(
        cell: Any,
        artifact: Path,
        inputs: Mapping[str, np.ndarray],
        *,
        batch: int,
        spec: str | None,
        threads: int | None,
    ) -> dict[str, np.ndarray]:
        parts = [
            run_parity_shard(
                cell,
                artifact,
                {k: v[a:b] for k, v in inputs.items()},
                spec=spec,
                threads=threads,
                batch=batch,
            )
            for a, b in split_batches(len(inputs["x"]), batch, 3)
        ]
        return merge_outputs(parts)

    options: dict[str, Any] = {"data": data, "labels": "labels", "calib": data}
    single = compare(mlp_onnx, ["ort-cpu:int8", "ort-cpu:fp16"], **options)
    merged = compare(mlp_onnx, ["ort-cpu:int8", "ort-cpu:fp16"], runner=sharded, **options)
    assert merged.to_json() == single.to_json()


def test_pin_cores_claims_free_cores_and_says_when_it_cannot(tmp_path: Path) -> None:
    # In children: pinning the test process itself would slow everything after it.
    code = (
        "import json, os, sys\n"
        "from optieval.execution import pin_cores\n"
        "first = pin_cores(1)\n"
        "rest = pin_cores(len(os.sched_getaffinity(0)) + 1)\n"
        "print(json.dumps([first, rest, sorted(os.sched_getaffinity(0))]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(Path.cwd())})  # fmt: skip
    first, rest, affinity = json.loads(out.stdout)
    assert first["pinned"] is True and affinity == first["cores"] and len(affinity) == 1
    assert rest["pinned"] is False and "free" in rest["reason"]


def test_local_executor_fails_a_target_whose_hardware_this_machine_lacks(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rel", TARGETS.format(hardware="H100-NOT-HERE"))
    report = gate(config, out_dir=tmp_path / "out")
    (cell,) = report.cells
    assert cell.status == "error" and cell.reason and "missing hardware" in cell.reason
    assert "H100-NOT-HERE" in cell.reason
    assert report.exit_code == 3
    assert cell.placement and cell.placement["executor"] == "local"
    html = Path(report.reports["html"]).read_text(encoding="utf-8")
    assert "<h3>H100-NOT-HERE</h3>" in html
    assert "H100-NOT-HERE: 1 cell (local)" in Path(report.reports["md"]).read_text()
    assert report.to_json()["executor"] == {"executor": "local"}


def test_local_cells_carry_the_machine_and_group_by_its_cpu(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "rel", TARGETS.format(hardware="-").replace('hardware = "-"\n', "")
    )
    report = gate(config, out_dir=tmp_path / "out")
    assert report.exit_code == 0
    (cell,) = report.cells
    assert cell.machine is not None and cell.machine["hostname"]
    groups = group_by_hardware(report.cells)
    assert list(groups) == [cell.machine["cpu"]["model"]]


def test_executor_names_and_options_are_checked() -> None:
    with pytest.raises(InputError, match="unknown executor"):
        create_executor("dask")
    with pytest.raises(InputError, match="`ray_address` needs the ray `executor`"):
        create_executor("local", ray_address="127.0.0.1:6379")
    assert isinstance(create_executor("local"), LocalExecutor)
    assert isinstance(create_executor("ray", ray_address="127.0.0.1:1"), RayExecutor)


def test_without_ray_the_ray_executor_is_exit_3_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when not installed
    with pytest.raises(BackendUnavailable, match="ray"):
        create_executor("ray").check()
    config = write_config(tmp_path / "rel", TARGETS.format(hardware="A10G"))
    runner = CliRunner()
    result = runner.invoke(app, ["gate", str(config), "--executor", "ray"])
    assert result.exit_code == 3, result.output
    assert "pip install 'optieval[ray]'" in result.output
    assert "Traceback" not in result.output
    bench = runner.invoke(app, ["bench", str(config.parent / "mlp.onnx"), "--executor", "ray",
                                "--duration", "0.05"])  # fmt: skip
    assert bench.exit_code == 3, bench.output
    assert "optieval[ray]" in bench.output
    # Bad input still wins (exit 2 before 3).
    bad = runner.invoke(app, ["gate", str(tmp_path / "missing.toml"), "--executor", "ray"])
    assert bad.exit_code == 2


class _FakeRay:
    """Just enough of ``ray`` for RayExecutor.run_cells: one node; ``get`` raises the queued
    faults first, then returns a measured cell."""

    def __init__(self, faults: list[BaseException]) -> None:
        self.faults = faults
        self.submitted: list[dict[str, Any]] = []

    def remote(self, fn: Any) -> Any:
        fake = self

        class Task:
            def options(self, **options: Any) -> Any:
                return self

            def remote(self, job: dict[str, Any]) -> int:
                fake.submitted.append(job)
                return len(fake.submitted)

        return Task()

    def put(self, data: bytes) -> str:
        return "ref"

    def wait(self, refs: list[int], **_: Any) -> tuple[list[int], list[int]]:
        return refs[:1], refs[1:]

    def get(self, ref: int) -> dict[str, Any]:
        if self.faults:
            raise self.faults.pop(0)
        cell = {"backend": "ort-cpu", "precision": "fp32", "batch": 1, "shapes": {"x": [1, 4]},
                "status": "ok", "samples": 3}  # fmt: skip
        outcome = {"schema_version": 1, "status": "ok", "value": {"result": cell, "pinning": {}}}
        return {"outcome": outcome, "placement": {"node_id": f"n{ref}"}, "machine": {}}

    def nodes(self) -> list[dict[str, Any]]:
        return [{"NodeID": "n", "Alive": True, "Resources": {"CPU": 2.0}}]

    def cancel(self, ref: int, force: bool = False) -> None:
        pass


def _request(model: Path) -> Any:
    from optieval.bench.latency import MeasureSettings
    from optieval.bench.runner import CellRequest

    return CellRequest(str(model), "ort-cpu", "fp32", 1, {"x": (1, 4)}, MeasureSettings(), 1)


def test_a_lost_node_is_retried_once_and_the_cell_says_so(mlp_onnx: Path) -> None:
    ray_exceptions = pytest.importorskip("ray.exceptions")
    executor = RayExecutor()
    executor._ray = fake = _FakeRay([ray_exceptions.NodeDiedError("node 1 died")])
    (cell,) = executor.run_cells([_request(mlp_onnx)], bench_cells())
    assert cell.status == "ok" and len(fake.submitted) == 2
    assert cell.placement is not None and "node lost" in cell.placement["retried"]
    assert any("retried once" in note for note in cell.notes)

    fake.faults = [ray_exceptions.NodeDiedError("a"), ray_exceptions.NodeDiedError("b")]
    (twice,) = executor.run_cells([_request(mlp_onnx)], bench_cells())
    assert twice.status == "error" and twice.reason and twice.reason.startswith("node lost")


def test_a_dead_worker_is_a_failed_cell_never_retried(mlp_onnx: Path) -> None:
    ray_exceptions = pytest.importorskip("ray.exceptions")
    executor = RayExecutor()
    executor._ray = fake = _FakeRay([ray_exceptions.WorkerCrashedError()])
    (cell,) = executor.run_cells([_request(mlp_onnx)], bench_cells())
    assert cell.status == "error" and cell.reason and "worker died" in cell.reason
    assert len(fake.submitted) == 1 and cell.placement and cell.placement["retried"] is None


@dataclass
class _Toy:
    """A result type of another concern: the executor only fills in where it ran."""

    name: str
    status: str = "ok"
    machine: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _ToyRequest:
    name: str
    backend: str = "ort-cpu"
    threads: int | None = 2


def toy_payload(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": data["name"]}


def _toy_cells(ran: list[tuple[str, bool]]) -> CellFunctions:
    def run(request: _ToyRequest, isolate: bool, timeout_s: float | None) -> _Toy:
        ran.append((request.name, isolate))
        return _Toy(request.name)

    return CellFunctions(
        run=run,
        payload=toy_payload,
        to_payload=lambda request: ({"name": request.name}, {}),
        from_payload=lambda data: _Toy(data["name"]),
        failed=lambda request, reason: _Toy(request.name, status=f"error: {reason}"),
        timeout_s=lambda request: 1.0,
    )


def test_the_local_executor_runs_any_kind_of_cell_by_the_functions_it_is_given() -> None:
    ran: list[tuple[str, bool]] = []
    done: list[_Toy] = []
    executor = LocalExecutor()
    cells = executor.run_cells(
        [_ToyRequest("a"), _ToyRequest("b")], _toy_cells(ran), isolate=False, on_cell=done.append
    )
    assert [c.name for c in cells] == ["a", "b"] and ran == [("a", False), ("b", False)]
    assert done == cells
    assert cells[0].placement is not None and cells[0].placement["cpus"] == 2
    assert cells[0].machine == executor.machine()
    (missing,) = executor.run_cells(
        [_ToyRequest("c")], _toy_cells(ran), hardware="H100-NOT-HERE", isolate=False
    )
    assert missing.status.startswith("error: missing hardware") and len(ran) == 2
    assert "`executor` ray" in missing.status and "--executor" not in missing.status


def test_function_path_names_top_level_functions_only() -> None:
    assert function_path(toy_payload) == f"{__name__}:toy_payload"
    assert function_path(run_parity_shard) == "optieval.parity.comparison:run_parity_shard"
    with pytest.raises(InputError, match="top-level"):
        function_path(lambda data: data)
