"""Where a cell runs: on this machine (:class:`LocalExecutor`, the default) or on a Ray cluster
(:class:`RayExecutor`). A cell is the same plain function with plain data in and out whichever
executor runs it (:func:`optieval.bench.runner.run_cell_payload`, wrapped by
:func:`pinned_cell_payload`), and its result is the same :class:`~optieval.bench.results.Cell`,
stamped with the fingerprint of the machine it ran on (``Cell.machine``) and how it was placed
(``Cell.placement``).

Placement (:class:`Placement`): a target may name the hardware it is promised for
(``hardware = "A10G"``), which becomes Ray's accelerator-type resource ``accelerator_type:A10G``;
GPU cells ask for a whole GPU, so one measuring cell runs per GPU at a time; CPU cells ask for as
many CPUs as their threads and pin themselves to that many free cores of the node where the OS
allows it (``Cell.placement["pinning"]`` says whether they could).

Artifacts travel by content: the driver builds (or finds in its cache) each ONNX artifact once
and puts its bytes in Ray's object store once; a worker uses its own cache, else the driver's
path when it can read it (a shared file system), else the object store, and verifies the
SHA-256 every time before use. TensorRT engines are built on the worker by the backend itself.

Faults: a worker that dies, a cell that times out (the cell runs in a subprocess on the worker
with the same limit as locally), or hardware the cluster does not have gives a failed cell with
that reason while the other cells go on. A measurement is never retried silently; a cell whose
node was lost is submitted once more and its notes and placement say so.

Parity over a large evaluation set is split into shards (whole batches each) run by workers;
their per-sample outputs are concatenated in order, so the metrics and intervals computed from
them are exactly a single-machine run's.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optieval.bench import STATUS_ERROR, Cell
from optieval.errors import BackendFailed, BackendUnavailable, InputError

EXECUTORS = ("local", "ray")
GPU_BACKENDS = ("ort-cuda", "ort-trt", "tensorrt", "torch-cuda")
RAY_INSTALL_HINT = "pip install 'optieval[ray]' (ray>=2.9) on the driver and every worker"
ACCELERATOR_PREFIX = "accelerator_type:"
# Ray's own convention for "on a node of this type" (the resource is 1 per node): a sliver, so
# that the GPU and CPU requests, not this one, decide how many cells share the node.
_ACCELERATOR_SHARE = 0.001
# Extra time a whole batch of Ray cells may wait for resources beyond its cells' own limits.
_QUEUE_GRACE_S = 60.0

OnCell = Callable[[Cell], None]


@dataclass(frozen=True)
class Placement:
    """What one cell asks of the machine that runs it.

    Attributes:
        hardware: the accelerator type the cell is promised for (``"A10G"``), or None.
        gpus: whole GPUs (1 for GPU backends, else 0).
        cpus: logical CPUs (the cell's threads, 1 when unset).
        pin: pin the measuring process to ``cpus`` free cores (CPU cells with threads set).
    """

    hardware: str | None = None
    gpus: int = 0
    cpus: int = 1
    pin: bool = False

    @classmethod
    def for_cell(cls, backend: str, threads: int | None, hardware: str | None) -> Placement:
        """The placement of a ``backend`` cell with ``threads`` on ``hardware``."""
        if backend in GPU_BACKENDS:
            return cls(hardware, gpus=1, cpus=1, pin=False)
        return cls(hardware, gpus=0, cpus=threads or 1, pin=threads is not None)

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments of Ray's ``.options()`` for this placement (no retries: a retried
        measurement is a different experiment)."""
        options: dict[str, Any] = {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "max_retries": 0,
            "retry_exceptions": False,
        }
        if self.hardware:
            options["resources"] = {ACCELERATOR_PREFIX + self.hardware: _ACCELERATOR_SHARE}
        return options

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"hardware": self.hardware, "gpus": self.gpus, "cpus": self.cpus, "pin": self.pin}


@dataclass
class CellJob:
    """One cell for an executor: the request, where it must run and its time limit."""

    request: Any  # optieval.bench.runner.CellRequest
    placement: Placement
    timeout_s: float
    index: int = 0
    retried: str | None = None
    submitted: float = field(default_factory=time.monotonic)


OutputRunner = Callable[..., dict[str, Any]]
"""``runner(cell, artifact, inputs, *, batch, spec, threads) -> {output: array}``: runs a parity
cell (``optieval.parity.comparison.Cell``) over ``inputs`` in batches of ``batch`` and returns the
outputs concatenated along the sample axis."""


class Executor:
    """Runs cells. Subclasses: :class:`LocalExecutor`, :class:`RayExecutor`."""

    name = "executor"
    concurrent = False
    """True when cells of several targets may run at the same time (on several machines)."""
    checks_here = True
    """True when a backend must be usable on this machine (False: the workers decide, and an
    unusable backend there is a ``skipped`` cell)."""

    def run_cells(
        self,
        requests: Sequence[Any],
        *,
        hardware: str | None = None,
        isolate: bool = True,
        timeout_s: float | None = None,
        on_cell: OnCell | None = None,
    ) -> list[Cell]:
        """Run ``requests`` (:class:`optieval.bench.runner.CellRequest`) and return their cells
        in the same order; ``on_cell`` is called as each one finishes.

        Args:
            requests: the cells.
            hardware: the accelerator type they are promised for (None: anywhere).
            isolate: run each cell in its own subprocess (always so on Ray).
            timeout_s: the limit of one cell (default: ``max_duration`` + warm-up + 120 s).
            on_cell: progress callback.

        Raises:
            InputError: a cell found its input bad (exit 2), as in a local run.
        """
        raise NotImplementedError

    def outputs_runner(self, hardware: Mapping[str, str | None]) -> OutputRunner | None:
        """A runner for parity's outputs, or None to run them in this process. ``hardware``
        maps a parity cell's label (``ort-cpu:int8``) to the hardware its target names."""
        return None

    def describe(self) -> dict[str, Any]:
        """Plain data for reports: the executor and where it runs."""
        return {"executor": self.name}

    def check(self) -> None:
        """Raise BackendUnavailable (exit 3) now when this executor cannot work at all."""

    def close(self) -> None:
        """Release what the executor holds (a Ray connection it opened)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_executor(name: str = "local", *, ray_address: str | None = None) -> Executor:
    """Return the executor called ``name``.

    Args:
        name: ``local`` (isolated subprocesses on this machine) or ``ray``.
        ray_address: the Ray cluster (``ray://head:10001`` or ``head:6379``; default: the
            ``RAY_ADDRESS`` environment variable, else a Ray instance started on this machine).

    Raises:
        InputError: an unknown executor, or ``ray_address`` without ``ray`` (exit 2).

    ``ray`` is imported on first use, so that bad input is reported (exit 2) before a missing
    ray package (BackendUnavailable, exit 3, with the install hint; :meth:`Executor.check`
    raises it at once).
    """
    if name not in EXECUTORS:
        raise InputError(f"unknown executor {name!r}", where="--executor",
                         hint=f"choose from {', '.join(EXECUTORS)}")  # fmt: skip
    if name == "local":
        if ray_address:
            raise InputError("--ray-address needs --executor ray", where="--ray-address")
        return LocalExecutor()
    return RayExecutor(ray_address)


def require_ray() -> Any:
    """Import and return ``ray``; BackendUnavailable with the install hint when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable(
            f"the ray executor needs the ray package ({exc})",
            where="--executor ray",
            hint=RAY_INSTALL_HINT,
        ) from exc
    return ray


def default_timeout(request: Any) -> float:
    """The limit of one cell when none is given: as :func:`optieval.bench.runner.benchmark`."""
    return float(request.settings.max_duration_s + request.settings.warmup_s + 120.0)


# -- results ------------------------------------------------------------------------------------


def hardware_label(cell: Cell) -> str:
    """What a report groups ``cell`` under: the hardware it was promised for, else the GPU it
    ran on (GPU backends) or the CPU model."""
    placement = cell.placement or {}
    if placement.get("hardware"):
        return str(placement["hardware"])
    machine = cell.machine or {}
    gpus = machine.get("gpus") or []
    if cell.backend in GPU_BACKENDS and gpus:
        return str(gpus[0].get("name", "GPU"))
    cpu = machine.get("cpu") or {}
    return str(cpu.get("model") or "this machine")


def group_by_hardware(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    """Cells grouped by :func:`hardware_label`, groups in order of first appearance."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(hardware_label(cell), []).append(cell)
    return groups


def _failed(request: Any, reason: str, **extra: Any) -> Cell:
    return Cell(
        request.backend,
        request.precision,
        request.batch,
        {k: [int(d) for d in v] for k, v in request.shapes.items()},
        STATUS_ERROR,
        reason=reason,
        scenario=getattr(getattr(request, "scenario", None), "kind", None),
        **extra,
    )


def _cell_from_outcome(request: Any, outcome: Any) -> Cell:
    """A cell from an isolated run's :class:`~optieval.execution.isolation.CellOutcome`, as
    :func:`optieval.bench.runner.benchmark` makes it."""
    if outcome.ok:
        value = outcome.value
        return Cell.from_json(value.get("cell", value))
    if outcome.exit_code == 2:
        raise InputError(outcome.reason)
    reason = outcome.reason
    if outcome.stderr_tail.strip():
        reason = f"{reason}; stderr: {outcome.stderr_tail.strip()[-500:]}"
    return _failed(request, f"{outcome.status}: {reason}")


def _local_machine_has(hardware: str, env: Mapping[str, Any]) -> bool:
    wanted = hardware.lower().replace(" ", "")
    names = [str(g.get("name", "")) for g in env.get("gpus") or []]
    names.append(str((env.get("cpu") or {}).get("model", "")))
    return any(wanted in n.lower().replace(" ", "") for n in names)


# -- local --------------------------------------------------------------------------------------


class LocalExecutor(Executor):
    """Cells on this machine, one after another, each in its own spawned subprocess (unless
    ``isolate`` is off): what ``optieval bench`` and ``optieval gate`` always did."""

    name = "local"

    def __init__(self) -> None:
        self._machine: dict[str, Any] | None = None

    def machine(self) -> dict[str, Any]:
        """This machine's fingerprint (taken once)."""
        if self._machine is None:
            from optieval.core import fingerprint

            self._machine = fingerprint()
        return self._machine

    def run_cells(
        self,
        requests: Sequence[Any],
        *,
        hardware: str | None = None,
        isolate: bool = True,
        timeout_s: float | None = None,
        on_cell: OnCell | None = None,
    ) -> list[Cell]:
        """See :meth:`Executor.run_cells`. A cell promised for ``hardware`` this machine does
        not have (no GPU or CPU name containing it) fails with that reason."""
        from optieval.bench.runner import _run

        machine = self.machine()
        cells = []
        for request in requests:
            placement = Placement.for_cell(request.backend, request.threads, hardware)
            stamp = {
                **placement.to_json(),
                "executor": self.name,
                "isolated": isolate,
                "pinning": {"pinned": False, "reason": "the local executor does not pin"},
            }
            if hardware and not _local_machine_has(hardware, machine):
                cell = _failed(request, _missing_here(hardware, machine))
            else:
                cell = _run(request, isolate, timeout_s)
            cell = replace(cell, machine=machine, placement=stamp)
            cells.append(cell)
            if on_cell is not None:
                on_cell(cell)
        return cells


def _missing_here(hardware: str, machine: Mapping[str, Any]) -> str:
    gpus = ", ".join(str(g.get("name")) for g in machine.get("gpus") or []) or "no GPU"
    cpu = (machine.get("cpu") or {}).get("model", "?")
    return (
        f"missing hardware: the target is promised for {hardware} and this machine has {gpus} "
        f"({cpu}); run it where that hardware is, e.g. --executor ray"
    )


# -- the cell as it runs on a worker (any executor) ---------------------------------------------


def pinned_cell_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Entry point of an isolated cell on a Ray worker: pin to free cores when asked, run the
    cell (:func:`optieval.bench.runner.run_cell`), return ``{"cell": ..., "pinning": ...}``.

    Payload: ``request`` (:meth:`CellRequest.to_json`), ``pin_cpus`` (0: do not pin).
    The process exits when its parent (the Ray worker) dies, so that a killed worker does not
    leave a measurement running.
    """
    from optieval.bench import CellRequest, run_cell

    _exit_with_parent()
    count = int(payload.get("pin_cpus") or 0)
    pinning = pin_cores(count) if count else {"pinned": False, "reason": "not a CPU cell"}
    cell = run_cell(CellRequest.from_json(payload["request"]))
    return {"cell": cell.to_json(), "pinning": pinning}


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="optieval-parent-watch", daemon=True).start()


_HELD_CORES: list[int] = []  # lock files held for this process's life


def pin_cores(count: int) -> dict[str, Any]:
    """Pin this process (and the threads it starts later) to ``count`` cores that no other
    optieval cell on this machine holds, where the OS allows it.

    Cores are claimed with one lock file per core (released when the process ends, however it
    ends), so cells that Ray runs side by side on one node get disjoint cores.

    Returns:
        ``{"pinned": bool, "cores": [...], "reason": str}`` (reason when not pinned).
    """
    if not hasattr(os, "sched_setaffinity") or not hasattr(os, "sched_getaffinity"):
        return {"pinned": False, "cores": [], "reason": "this OS does not let a process pin "
                "itself to cores (no sched_setaffinity)"}  # fmt: skip
    import fcntl
    import tempfile

    allowed = sorted(os.sched_getaffinity(0))
    folder = Path(tempfile.gettempdir()) / f"optieval-cores-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    claimed: list[tuple[int, int]] = []
    for core in allowed:
        if len(claimed) == count:
            break
        fd = os.open(folder / f"core-{core}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        claimed.append((core, fd))
    if len(claimed) < count:
        for _, fd in claimed:
            os.close(fd)
        return {
            "pinned": False,
            "cores": [],
            "reason": f"only {len(claimed)} of the {count} cores asked for were free "
            f"({len(allowed)} usable): Ray's CPUs outnumber this node's cores",
        }
    cores = [c for c, _ in claimed]
    try:
        os.sched_setaffinity(0, cores)
    except OSError as exc:
        for _, fd in claimed:
            os.close(fd)
        return {"pinned": False, "cores": [], "reason": f"sched_setaffinity refused: {exc}"}
    _HELD_CORES.extend(fd for _, fd in claimed)
    return {"pinned": True, "cores": cores, "reason": ""}


# -- artifacts by content -----------------------------------------------------------------------


def _bundle_files(path: Path) -> list[Path]:
    """The file and what travels with it: external data beside it and its manifest."""
    files = [path]
    for sibling in (path.with_name(path.name + ".data"), path.with_name(path.name + ".json")):
        if sibling.is_file():
            files.append(sibling)
    return files


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


# -- Ray ----------------------------------------------------------------------------------------


def ray_cell_task(job: dict[str, Any]) -> dict[str, Any]:
    """A cell as a Ray task, on the worker: fetch the artifact and data by content, run the
    cell in a subprocess with its time limit, return its outcome, placement and the machine's
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
    request = dict(job["request"])
    model, source = materialize(job["model"])
    request["model"], request["calib"] = str(model), None
    placement["artifact_source"] = source
    if job.get("data") is not None:
        data, _ = materialize(job["data"])
        request["data"] = str(data)
    outcome = run_isolated(
        "optieval.execution.executors:pinned_cell_payload",
        {"request": request, "pin_cpus": job["pin_cpus"]},
        timeout_s=float(job["timeout_s"]),
    )
    return {
        "outcome": outcome.to_json(),
        "placement": placement,
        "machine": fingerprint(include_providers=False),
    }


def ray_outputs_task(job: dict[str, Any]) -> dict[str, Any]:
    """One parity shard as a Ray task: the cell's outputs over the shard's inputs."""
    import ray

    from optieval.parity import Cell as ParityCell
    from optieval.parity.comparison import _run_cell

    artifact, _ = materialize(job["artifact"])
    inputs = ray.get(job["inputs"][0])
    cell = ParityCell(job["backend"], job["precision"])
    return _run_cell(
        cell, artifact, inputs, spec=job["spec"], threads=job["threads"], batch=job["batch"]
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
        self._refs: dict[str, Any] = {}  # sha256 -> ObjectRef of the file's bytes
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
                        f"cannot reach the Ray cluster ({exc})",
                        where=f"--ray-address {self.address or '(RAY_ADDRESS or local)'}",
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
        self._refs.clear()

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
        """The files of ``path`` (with its external data and manifest) by content: SHA-256,
        the driver's path, and a reference to the bytes in the object store (put once)."""
        from optieval.core import sha256_file

        files = []
        for file in _bundle_files(Path(path)):
            digest = sha256_file(file)
            with self._lock:
                ref = self._refs.get(digest)
                if ref is None:
                    ref = self._refs[digest] = self._ray.put(file.read_bytes())
            # In a list, so that Ray hands the task the reference, not the bytes: a worker that
            # has the file in its cache never fetches them.
            files.append(
                {"name": file.name, "sha256": digest, "path": str(file.resolve()), "ref": [ref]}
            )
        return {"sha256": files[0]["sha256"], "files": files}

    def _cell_job(self, job: CellJob) -> dict[str, Any]:
        from optieval.bench import resolve_artifact

        request = job.request
        artifact, _ = resolve_artifact(
            Path(request.model), request.backend, request.precision, request.calib
        )
        data = request.data
        return {
            "request": request.to_json(),
            "model": self.bundle(artifact),
            # A data file travels by content; a folder or module:function must be shared.
            "data": self.bundle(data) if data is not None and Path(data).is_file() else None,
            "timeout_s": job.timeout_s,
            "pin_cpus": job.placement.cpus if job.placement.pin else 0,
        }

    # cells ------------------------------------------------------------------------------------
    def run_cells(
        self,
        requests: Sequence[Any],
        *,
        hardware: str | None = None,
        isolate: bool = True,
        timeout_s: float | None = None,
        on_cell: OnCell | None = None,
    ) -> list[Cell]:
        """See :meth:`Executor.run_cells`: every cell is submitted at once and Ray runs them as
        its resources allow; results come back in the order of ``requests``."""
        ray = self.connect()
        task = ray.remote(ray_cell_task)
        results: list[Cell | None] = [None] * len(requests)
        pending: dict[Any, CellJob] = {}

        def finish(job: CellJob, cell: Cell) -> None:
            results[job.index] = cell
            if on_cell is not None:
                on_cell(cell)

        def submit(job: CellJob) -> None:
            why = self.unplaceable(job.placement)
            if why is not None:
                finish(job, self._stamp(_failed(job.request, why), job, {}, None))
                return
            job.submitted = time.monotonic()
            ref = task.options(**job.placement.ray_options()).remote(self._cell_job(job))
            pending[ref] = job

        for index, request in enumerate(requests):
            limit = timeout_s or default_timeout(request)
            placement = Placement.for_cell(request.backend, request.threads, hardware)
            submit(CellJob(request, placement, limit, index))
        # Everything may queue behind everything else on one node: the longest honest wait.
        deadline = time.monotonic() + sum(j.timeout_s for j in pending.values()) + _QUEUE_GRACE_S
        while pending:
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
                    finish(job, self._stamp(_failed(job.request, reason), job, {}, None))
                    continue
                finish(job, self._from_value(job, value))
            if not ready:
                self._expire(pending, deadline, finish)
        return [c for c in results if c is not None]

    def _expire(
        self, pending: dict[Any, CellJob], deadline: float, finish: Callable[[CellJob, Cell], None]
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
            finish(job, self._stamp(_failed(job.request, why), job, {}, None))

    def _from_value(self, job: CellJob, value: dict[str, Any]) -> Cell:
        from optieval.execution.isolation import CellOutcome

        outcome = CellOutcome.from_json(value["outcome"])
        cell = _cell_from_outcome(job.request, outcome)
        placement = dict(value.get("placement") or {})
        if outcome.ok:
            placement["pinning"] = outcome.value.get("pinning")
        return self._stamp(cell, job, placement, value.get("machine"))

    def _stamp(
        self, cell: Cell, job: CellJob, where: dict[str, Any], machine: dict[str, Any] | None
    ) -> Cell:
        placement = {
            **job.placement.to_json(),
            "executor": self.name,
            "isolated": True,
            **where,
            "retried": job.retried,
        }
        notes = list(cell.notes)
        if job.retried is not None:
            notes.append(
                f"retried once on another node after the first attempt was lost ({job.retried})"
            )
        return replace(cell, machine=machine, placement=placement, notes=notes)

    # parity -----------------------------------------------------------------------------------
    def outputs_runner(self, hardware: Mapping[str, str | None]) -> OutputRunner | None:
        """Parity shards on the cluster (see :func:`split_batches` for the split)."""
        ray = self.connect()
        task = ray.remote(ray_outputs_task)

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
                raise BackendUnavailable(f"parity for {cell.label}: {why}", where="--executor ray")
            bundle = self.bundle(artifact)
            total = int(next(iter(inputs.values())).shape[0]) if inputs else 0
            shards = self.parity_shards or int(ray.cluster_resources().get("CPU", 1))
            refs = []
            for start, stop in split_batches(total, batch, shards):
                part = {k: v[start:stop] for k, v in inputs.items()}
                job = {
                    "artifact": bundle,
                    "inputs": [ray.put(part)],
                    "backend": cell.backend,
                    "precision": cell.precision,
                    "batch": batch,
                    "spec": spec,
                    "threads": threads,
                }
                refs.append(task.options(**placement.ray_options()).remote(job))
            try:
                parts = ray.get(refs)
            except Exception as exc:
                reason, _ = _fault(exc)
                raise BackendFailed(f"parity for {cell.label} on Ray: {reason}",
                                    where="--executor ray") from exc  # fmt: skip
            return merge_outputs(parts)

        return run


def split_batches(total: int, batch: int, shards: int) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges for at most ``shards`` shards, each made of whole batches
    of ``batch`` (the last batch may be short), so that every batch a shard runs is the batch a
    single-machine run would run."""
    if total <= 0:
        return [(0, 0)]
    batches = -(-total // batch)
    shards = max(1, min(shards, batches))
    per, extra = divmod(batches, shards)
    ranges = []
    start = 0
    for i in range(shards):
        count = per + (1 if i < extra else 0)
        stop = min(total, start + count * batch)
        ranges.append((start, stop))
        start = stop
    return ranges


def merge_outputs(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate shard outputs along the sample axis, in shard order (a scalar output is
    taken from the first shard, as a single run keeps its first batch's)."""
    import numpy as np

    merged: dict[str, Any] = {}
    for name in parts[0]:
        values = [np.asarray(p[name]) for p in parts]
        merged[name] = np.concatenate(values, axis=0) if values[0].ndim else values[0]
    return merged


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


__all__ = [
    "EXECUTORS",
    "CellJob",
    "Executor",
    "LocalExecutor",
    "OutputRunner",
    "Placement",
    "RayExecutor",
    "create_executor",
    "group_by_hardware",
    "hardware_label",
    "materialize",
    "merge_outputs",
    "pin_cores",
    "pinned_cell_payload",
    "require_ray",
    "split_batches",
]
