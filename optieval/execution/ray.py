"""The Ray executor: cells as Ray tasks on a cluster.

Placement (:class:`~optieval.execution.base.Placement`): a target may name the hardware it is
promised for (``hardware = "A10G"``), which becomes Ray's accelerator-type resource
``accelerator_type:A10G``; GPU cells ask for a whole GPU, so one measuring cell runs per GPU at
a time; CPU cells ask for as many CPUs as their threads and pin themselves to that many free
cores of the node where the OS allows it (``placement["pinning"]`` says whether they could).

Artifacts travel by content (:mod:`optieval.execution.artifacts`). TensorRT engines are built on
the worker by the backend itself.

Faults: a worker that dies, a cell that times out (the cell runs in a subprocess on the worker
with the same limit as locally), or hardware the cluster does not have gives a failed cell with
that reason while the other cells go on. A measurement is never retried silently; a cell whose
node was lost is submitted once more and its notes and placement say so.

Parity over a large evaluation set is split into shards (whole batches each,
:mod:`optieval.execution.shards`) run by workers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.execution.artifacts import ArtifactStore, materialize
from optieval.execution.base import (
    ACCELERATOR_PREFIX,
    CellFunctions,
    CellJob,
    Executor,
    OnCell,
    OutputRunner,
    Placement,
    ShardFunction,
)
from optieval.execution.isolation import function_path
from optieval.execution.pinning import pinned_cell_payload
from optieval.execution.shards import merge_outputs, split_batches

__all__ = ["RAY_INSTALL_HINT", "RayExecutor", "ray_cell_task", "ray_outputs_task", "require_ray"]

RAY_INSTALL_HINT = "pip install 'optieval[ray]' (ray>=2.9) on the driver and every worker"
# Extra time a whole batch of Ray cells may wait for resources beyond its cells' own limits.
_QUEUE_GRACE_S = 60.0


def require_ray() -> Any:
    """Import and return ``ray``; BackendUnavailable with the install hint when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable(
            f"the ray executor needs the ray package ({exc})",
            where="executor",
            hint=RAY_INSTALL_HINT,
        ) from exc
    return ray


def ray_cell_task(job: dict[str, Any]) -> dict[str, Any]:
    """A cell as a Ray task, on the worker: fetch its files by content, run the cell in a
    subprocess with its time limit, return its outcome, placement and the machine's
    fingerprint."""
    import ray

    from optieval.core import fingerprint
    from optieval.execution.isolation import run_isolated

    context = ray.get_runtime_context()
    placement: dict[str, Any] = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "worker_pid": os.getpid(),
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
    }
    payload = dict(job["payload"])
    for key, bundle in job["files"].items():
        path, source = materialize(bundle)
        payload[key] = str(path)
        # The first file is the artifact the cell loads (the others are its data).
        placement.setdefault("artifact_source", source)
    outcome = run_isolated(
        function_path(pinned_cell_payload),
        {"function": job["function"], "payload": payload, "pin_cpus": job["pin_cpus"]},
        timeout_s=float(job["timeout_s"]),
    )
    return {
        "outcome": outcome.to_json(),
        "placement": placement,
        "machine": fingerprint(include_providers=False),
    }


def ray_outputs_task(job: dict[str, Any]) -> dict[str, Any]:
    """One parity shard as a Ray task: the cell's outputs over the shard's inputs, by the
    shard function the job names."""
    import ray

    from optieval.execution.isolation import load_function

    artifact, _ = materialize(job["artifact"])
    inputs = ray.get(job["inputs"][0])
    shard = load_function(job["function"])
    return shard(
        job["cell"], artifact, inputs, spec=job["spec"], threads=job["threads"], batch=job["batch"]
    )


class RayExecutor(Executor):
    """Cells as Ray tasks on a cluster, placed by hardware, GPUs and CPUs (module docstring).

    Args:
        address: the cluster (default: ``RAY_ADDRESS``, else a Ray instance on this machine).
        parity_shards: parity shards per cell (default: the cluster's CPU count).
    """

    name = "ray"
    concurrent = True
    checks_here = False

    def __init__(self, address: str | None = None, *, parity_shards: int | None = None) -> None:
        self.address = address
        self.parity_shards = parity_shards
        self._ray: Any = None
        self._owns = False
        self._store: ArtifactStore | None = None
        self._lock = threading.Lock()

    # connection -------------------------------------------------------------------------------
    def check(self) -> None:
        """BackendUnavailable with the install hint when ray is not installed."""
        require_ray()

    def connect(self) -> Any:
        """Connect to the cluster (once) and return the ``ray`` module."""
        with self._lock:
            if self._ray is not None:
                return self._ray
            ray = require_ray()
            if not ray.is_initialized():
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise BackendUnavailable(
                        f"cannot reach the Ray cluster at "
                        f"{self.address or '(RAY_ADDRESS or local)'} ({exc})",
                        where="ray_address",
                        hint="start the head with `ray start --head` and pass its address",
                    ) from exc
                self._owns = True
            self._ray = ray
            return ray

    def close(self) -> None:
        """Disconnect from the cluster if this executor connected (a Ray instance it started
        goes down with it)."""
        if self._ray is not None and self._owns:
            self._ray.shutdown()
        self._ray, self._owns = None, False
        self._store = None

    def describe(self) -> dict[str, Any]:
        """The executor, the address and the cluster's nodes with their resources."""
        out: dict[str, Any] = {"executor": self.name, "address": self.address}
        if self._ray is not None:
            out["nodes"] = [
                {"node_id": n["NodeID"], "resources": n.get("Resources", {})}
                for n in self._alive_nodes()
            ]
        return out

    def _alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def unplaceable(self, placement: Placement) -> str | None:
        """Why no live node of the cluster can run ``placement`` (None when one can)."""
        nodes = self._alive_nodes()
        key = ACCELERATOR_PREFIX + placement.hardware if placement.hardware else None
        if key is not None:
            nodes = [n for n in nodes if n.get("Resources", {}).get(key, 0) > 0]
            if not nodes:
                have = sorted(
                    {
                        r[len(ACCELERATOR_PREFIX) :]
                        for n in self._alive_nodes()
                        for r in n.get("Resources", {})
                        if r.startswith(ACCELERATOR_PREFIX)
                    }
                )
                return (
                    f"missing hardware: no node of the Ray cluster offers {key} (it has: "
                    f"{', '.join(have) or 'no accelerator types'}); start a worker there with "
                    f"`ray start --address HEAD --resources '{{\"{key}\": 1}}'`"
                )
        where = f"{placement.hardware} node" if placement.hardware else "node"
        if placement.gpus and not any(n["Resources"].get("GPU", 0) >= placement.gpus
                                      for n in nodes):  # fmt: skip
            return f"missing hardware: no {where} of the Ray cluster has a GPU"
        best = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
        if best < placement.cpus:
            return (
                f"missing hardware: the cell asks for {placement.cpus} CPUs (its threads) and "
                f"the largest {where} has {best:g}"
            )
        return None

    # artifacts --------------------------------------------------------------------------------
    def bundle(self, path: str | Path) -> dict[str, Any]:
        """The files of ``path`` by content (:meth:`ArtifactStore.bundle`), each put in the
        object store once per connection."""
        with self._lock:
            if self._store is None:
                self._store = ArtifactStore(lambda data: self._ray.put(data))
            store = self._store
        return store.bundle(path)

    def _cell_job(self, job: CellJob, cells: CellFunctions) -> dict[str, Any]:
        payload, files = cells.to_payload(job.request)
        return {
            "function": function_path(cells.payload),
            "payload": payload,
            # A file travels by content; a folder or module:function must be shared.
            "files": {key: self.bundle(path) for key, path in files.items()},
            "timeout_s": job.timeout_s,
            "pin_cpus": job.placement.cpus if job.placement.pin else 0,
        }

    # cells ------------------------------------------------------------------------------------
    def run_cells(
        self,
        requests: Sequence[Any],
        cells: CellFunctions,
        *,
        hardware: str | None = None,
        isolate: bool = True,
        timeout_s: float | None = None,
        on_cell: OnCell | None = None,
    ) -> list[Any]:
        """See :meth:`Executor.run_cells`: every cell is submitted at once and Ray runs them as
        its resources allow; results come back in the order of ``requests``."""
        ray = self.connect()
        task = ray.remote(ray_cell_task)
        results: list[Any] = [None] * len(requests)
        pending: dict[Any, CellJob] = {}

        def finish(job: CellJob, result: Any) -> None:
            results[job.index] = result
            if on_cell is not None:
                on_cell(result)

        def fail(job: CellJob, reason: str) -> None:
            finish(job, self._stamp(cells.failed(job.request, reason), job, {}, None))

        def submit(job: CellJob) -> None:
            why = self.unplaceable(job.placement)
            if why is not None:
                fail(job, why)
                return
            job.submitted = time.monotonic()
            ref = task.options(**job.placement.ray_options()).remote(self._cell_job(job, cells))
            pending[ref] = job

        for index, request in enumerate(requests):
            limit = timeout_s or cells.timeout_s(request)
            placement = Placement.for_cell(request.backend, request.threads, hardware)
            submit(CellJob(request, placement, limit, index))
        # Everything may queue behind everything else on one node: the longest honest wait.
        deadline = time.monotonic() + sum(j.timeout_s for j in pending.values()) + _QUEUE_GRACE_S
        try:
            self._collect(pending, deadline, submit, finish, fail, cells)
        except BaseException:
            # An interrupt (or a bad input): no task of this run goes on on the cluster.
            _cancel(ray, list(pending))
            raise
        return [r for r in results if r is not None]

    def _collect(
        self,
        pending: dict[Any, CellJob],
        deadline: float,
        submit: Callable[[CellJob], None],
        finish: Callable[[CellJob, Any], None],
        fail: Callable[[CellJob, str], None],
        cells: CellFunctions,
    ) -> None:
        """Wait for the ``pending`` tasks, retrying a cell whose node was lost once."""
        from optieval.execution.interrupts import raise_if_stopping

        ray = self._ray
        while pending:
            raise_if_stopping()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    reason, node_lost = _fault(exc)
                    if node_lost and job.retried is None:
                        job.retried = reason
                        submit(job)
                        continue
                    fail(job, reason)
                    continue
                finish(job, self._from_value(job, value, cells))
            if not ready:
                self._expire(pending, deadline, fail)

    def _expire(
        self, pending: dict[Any, CellJob], deadline: float, fail: Callable[[CellJob, str], None]
    ) -> None:
        """Fail cells that can no longer run (their hardware left) or waited past ``deadline``."""
        now = time.monotonic()
        for ref, job in list(pending.items()):
            why = self.unplaceable(job.placement)
            if why is None and now < deadline:
                continue
            self._ray.cancel(ref, force=True)
            del pending[ref]
            if why is None:
                why = (
                    f"timeout: not finished {now - job.submitted:.0f} s after submission "
                    "(waiting for its resources or hung)"
                )
            fail(job, why)

    def _from_value(self, job: CellJob, value: dict[str, Any], cells: CellFunctions) -> Any:
        from optieval.execution.isolation import CellOutcome

        outcome = CellOutcome.from_json(value["outcome"])
        placement = dict(value.get("placement") or {})
        if outcome.ok:
            result = cells.from_payload(outcome.value["result"])
            placement["pinning"] = outcome.value.get("pinning")
        elif outcome.exit_code == 2:
            raise InputError(outcome.reason)
        else:
            reason = outcome.reason
            if outcome.stderr_tail.strip():
                reason = f"{reason}; stderr: {outcome.stderr_tail.strip()[-500:]}"
            result = cells.failed(job.request, f"{outcome.status}: {reason}")
        return self._stamp(result, job, placement, value.get("machine"))

    def _stamp(
        self, result: Any, job: CellJob, where: dict[str, Any], machine: dict[str, Any] | None
    ) -> Any:
        placement = {
            **job.placement.to_json(),
            "executor": self.name,
            "isolated": True,
            **where,
            "retried": job.retried,
        }
        notes = list(result.notes)
        if job.retried is not None:
            notes.append(
                f"retried once on another node after the first attempt was lost ({job.retried})"
            )
        return replace(result, machine=machine, placement=placement, notes=notes)

    # parity -----------------------------------------------------------------------------------
    def outputs_runner(
        self, shard: ShardFunction, hardware: Mapping[str, str | None]
    ) -> OutputRunner | None:
        """Parity shards on the cluster, each run by ``shard`` (see
        :func:`~optieval.execution.shards.split_batches` for the split)."""
        ray = self.connect()
        task = ray.remote(ray_outputs_task)
        shard_path = function_path(shard)

        def run(
            cell: Any,
            artifact: Path,
            inputs: Mapping[str, Any],
            *,
            batch: int,
            spec: str | None = None,
            threads: int | None = None,
        ) -> dict[str, Any]:
            placement = Placement.for_cell(cell.backend, threads, hardware.get(cell.label))
            placement = replace(placement, pin=False)
            if placement.hardware and self.unplaceable(placement):
                # Parity does not depend on the hardware's speed: run it where the backend can.
                placement = replace(placement, hardware=None)
            why = self.unplaceable(placement)
            if why is not None:
                raise BackendUnavailable(f"parity for {cell.label}: {why}", where="executor")
            bundle = self.bundle(artifact)
            total = int(next(iter(inputs.values())).shape[0]) if inputs else 0
            shards = self.parity_shards or int(ray.cluster_resources().get("CPU", 1))
            refs = []
            for start, stop in split_batches(total, batch, shards):
                part = {k: v[start:stop] for k, v in inputs.items()}
                job = {
                    "function": shard_path,
                    "artifact": bundle,
                    "inputs": [ray.put(part)],
                    "cell": cell,
                    "batch": batch,
                    "spec": spec,
                    "threads": threads,
                }
                refs.append(task.options(**placement.ray_options()).remote(job))
            try:
                parts = _gather(ray, refs)
            except KeyboardInterrupt:
                _cancel(ray, refs)
                raise
            except Exception as exc:
                reason, _ = _fault(exc)
                raise BackendFailed(f"parity for {cell.label} on Ray: {reason}",
                                    where="executor") from exc  # fmt: skip
            return merge_outputs(parts)

        return run


def _gather(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get(refs)``, waking once a second to see an interrupt asked for elsewhere."""
    from optieval.execution.interrupts import raise_if_stopping

    waiting = list(refs)
    while waiting:
        raise_if_stopping()
        _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=1.0)
    return list(ray.get(refs))


def _cancel(ray: Any, refs: list[Any]) -> None:
    """Cancel ``refs`` (their workers are killed, and with them each cell's subprocess)."""
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # already finished or gone: nothing left to stop
            continue


def _fault(exc: BaseException) -> tuple[str, bool]:
    """One line for a failed Ray task and whether its node was lost (worth one retry)."""
    import ray.exceptions as rex

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lost_types: tuple[type[BaseException], ...] = tuple(
        t
        for t in (
            getattr(rex, "NodeDiedError", None),
            getattr(rex, "LocalRayletDiedError", None),
            getattr(rex, "ObjectLostError", None),
            getattr(rex, "OwnerDiedError", None),
        )
        if t is not None
    )
    if isinstance(exc, lost_types):
        return f"node lost: {text}", True
    if isinstance(exc, rex.WorkerCrashedError):
        lowered = str(exc).lower()
        if "node" in lowered and ("died" in lowered or "dead" in lowered or "removed" in lowered):
            return f"node lost: {text}", True
        return f"worker died during the cell: {text}", False
    if isinstance(exc, rex.TaskCancelledError):
        return f"cancelled: {text}", False
    if isinstance(exc, rex.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"error on the worker: {type(cause).__name__}: {cause}".splitlines()[0], False
    return f"{type(exc).__name__}: {text}", False
