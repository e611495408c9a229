"""Run one cell in a subprocess, so that a crash, a hang or a leak in one backend becomes a
failed cell and the caller goes on (docs/design.md, decision 4).

:func:`run_isolated` starts a fresh interpreter (``python -m optieval.execution.isolation``, the
spawn model: nothing is inherited but the environment), which imports only the module named in
``fn_path`` and what it imports: an ORT cell never loads torch. The function receives the payload
(plain JSON data) and returns plain JSON data. A raised exception, a signal (segfault, abort), a
non-zero exit or a timeout becomes a failed :class:`CellOutcome` with the tail of the child's
stderr; faulthandler is on in the child, so a segfault leaves its Python stack in that tail.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.errors import InputError

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_CRASHED = "crashed"
STATUS_TIMEOUT = "timeout"

_TAIL_CHARS = 4000
_PARENT_ENV = "OPTIEVAL_CELL_PARENT"
_FOLDER_PREFIX = "optieval-cell-"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CellOutcome:
    """What came back from an isolated cell.

    Attributes:
        status: ``ok``, ``error`` (the function raised), ``crashed`` (killed by a signal or
            exited without a result) or ``timeout``.
        value: the function's return value (plain data) when ``ok``.
        reason: one line saying what went wrong (empty when ``ok``).
        error_type: the exception's class name when the function raised.
        exit_code: optieval's exit code for the failure (2 for an InputError, 3 otherwise),
            None when ``ok``.
        returncode: the child's exit status (negative: killed by that signal).
        stderr_tail: the last few thousand characters of the child's stderr.
        duration_s: wall time of the child.
    """

    status: str
    value: Any = None
    reason: str = ""
    error_type: str | None = None
    exit_code: int | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    duration_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the function returned."""
        return self.status == STATUS_OK

    def to_json(self) -> dict[str, Any]:
        """Plain data (with ``schema_version``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "value": self.value,
            "reason": self.reason,
            "error_type": self.error_type,
            "exit_code": self.exit_code,
            "returncode": self.returncode,
            "stderr_tail": self.stderr_tail,
            "duration_s": self.duration_s,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellOutcome:
        """Inverse of :meth:`to_json`; InputError for another schema version."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"cell outcome schema_version {data.get('schema_version')!r} is not "
                f"{SCHEMA_VERSION}",
                hint="re-run the benchmark with this optieval version",
            )
        fields = {k: v for k, v in data.items() if k != "schema_version"}
        return cls(**fields)


def _check_fn_path(fn_path: str) -> None:
    module, _, name = fn_path.partition(":")
    if not module or not name or not name.isidentifier():
        raise InputError(
            f"{fn_path!r} is not 'module:function'",
            where="fn_path",
            hint="name a top-level function, e.g. optieval.execution.isolation:infer_cell",
        )


def function_path(fn: Callable[..., Any]) -> str:
    """``"package.module:function"`` of a top-level function of an importable module: the name
    by which a fresh interpreter (:func:`run_isolated`, a Ray worker) finds ``fn`` again.

    Raises:
        InputError: ``fn`` is not a top-level function of a module (a lambda, a closure, a
            method, or a function of ``__main__``).
    """
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        raise InputError(
            f"{fn!r} is not a top-level function of an importable module",
            where="fn",
            hint="pass a public function defined at the top level of a module",
        )
    return f"{module}:{name}"


def load_function(fn_path: str) -> Callable[..., Any]:
    """The function named ``"package.module:function"`` (inverse of :func:`function_path`).

    Raises:
        InputError: ``fn_path`` is malformed.
    """
    _check_fn_path(fn_path)
    module_name, _, name = fn_path.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module_name), name)
    return fn


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-_TAIL_CHARS:].decode("utf-8", errors="replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_isolated(
    fn_path: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
) -> CellOutcome:
    """Run ``fn_path`` (``"package.module:function"``) on ``payload`` in a fresh subprocess.

    Args:
        fn_path: a top-level function taking one dict and returning JSON-serializable data.
        payload: JSON-serializable arguments.
        timeout_s: wall-clock limit; the child's whole process group is killed after it.
        env: extra environment variables for the child.

    Returns:
        A :class:`CellOutcome`; never raises for anything the child does.

    Raises:
        InputError: ``fn_path`` is malformed or the payload is not JSON-serializable (these are
            the caller's bugs, not the cell's).
    """
    _check_fn_path(fn_path)
    try:
        payload_text = json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InputError(f"payload is not plain JSON data ({exc})", where="payload") from exc
    child_env = dict(os.environ)
    # The child must find what the parent found (tests, user code on sys.path).
    paths = [p for p in sys.path if p and Path(p).exists()]
    child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env.update(env or {})
    child_env[_PARENT_ENV] = str(os.getpid())
    _sweep_orphans()
    with tempfile.TemporaryDirectory(prefix=_FOLDER_PREFIX) as folder, _owned(Path(folder)):
        work = Path(folder)
        # The child's temporary files live in this folder, removed whatever happens to it.
        (work / "tmp").mkdir()
        child_env["TMPDIR"] = str(work / "tmp")
        (work / "payload.json").write_text(payload_text, encoding="utf-8")
        result_path = work / "result.json"
        stderr_path = work / "stderr.txt"
        start = time.perf_counter()
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-X",
                    "faulthandler",
                    "-m",
                    "optieval.execution.isolation",
                    fn_path,
                    str(work / "payload.json"),
                    str(result_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=child_env,
                start_new_session=True,  # its own process group: a timeout kills its children
            )
            try:
                returncode = _wait(proc, start + timeout_s)
            except BaseException:
                # An interrupt (or anything else) here: the child's group must not outlive us.
                _stop_group(proc)
                raise
            if returncode is None:
                _stop_group(proc, grace_s=0.0)
                return CellOutcome(
                    STATUS_TIMEOUT,
                    reason=f"{fn_path} did not finish within {timeout_s:g} s",
                    exit_code=3,
                    returncode=proc.returncode,
                    stderr_tail=_tail(stderr_path),
                    duration_s=time.perf_counter() - start,
                )
        duration = time.perf_counter() - start
        tail = _tail(stderr_path)
        result = _read_result(result_path)
        if result is not None and result.get("ok"):
            return CellOutcome(STATUS_OK, value=result.get("value"), returncode=returncode,
                               stderr_tail=tail, duration_s=duration)  # fmt: skip
        if result is not None:
            return CellOutcome(
                STATUS_ERROR,
                reason=str(result.get("message", "")),
                error_type=result.get("error_type"),
                exit_code=int(result.get("exit_code", 3)),
                returncode=returncode,
                stderr_tail=tail,
                duration_s=duration,
            )
        if returncode < 0:
            reason = f"{fn_path} crashed: killed by {_signal_name(returncode)}"
        else:
            reason = f"{fn_path} exited with status {returncode} and no result"
        last = _last_line(tail)
        return CellOutcome(
            STATUS_CRASHED,
            reason=f"{reason} ({last})" if last else reason,
            exit_code=3,
            returncode=returncode,
            stderr_tail=tail,
            duration_s=duration,
        )


def _sweep_orphans() -> None:
    """Remove the cell folders whose parent is gone: one killed outright (SIGKILL, a Ray worker
    cancelled by force) had no chance to remove its own. A parent holds an exclusive lock on
    its folder's ``.owner`` file while it runs (the kernel drops it when the process dies, in
    any PID namespace); a folder whose lock can be taken is an orphan."""
    import shutil

    try:
        import fcntl
    except ImportError:  # not POSIX: no sweep
        return
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*"):
        try:
            fd = os.open(folder / ".owner", os.O_RDONLY)  # never created here
        except OSError:  # no .owner (not a locked folder), or not ours
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its parent runs
            continue
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _owned(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.owner`` inside the block (see
    :func:`_sweep_orphans`); no lock where there is no ``fcntl``."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    # Locked before it is called .owner, so that a sweep never finds it unlocked.
    with open(folder / ".owner.new", "w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)
        os.replace(folder / ".owner.new", folder / ".owner")
        yield


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """The child's exit status, or None at ``deadline``. Wakes once a second so that a stop
    asked for by an interrupt is seen from any thread (only the main thread gets signals)."""
    from optieval.execution.interrupts import raise_if_stopping

    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return proc.poll()
        try:
            return proc.wait(timeout=min(left, 1.0))
        except subprocess.TimeoutExpired:
            raise_if_stopping()


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """Stop the child's whole process group: SIGTERM, ``grace_s`` to exit, then SIGKILL (also
    for what the child started and left behind in its group)."""
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        if signum == signal.SIGTERM and grace_s <= 0:
            continue
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            if proc.poll() is None:
                proc.send_signal(signum)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def infer_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """A ready-made isolated cell: load one backend, run it once on generated feeds, report.

    Payload: ``backend`` (name), ``model`` (path), ``options`` (backend keyword options),
    ``shapes`` (``{input: [dims]}``, needed for dynamic dims), ``seed``. Returns the cold start,
    each output's shape and dtype, and which heavy libraries the child imported.
    """
    import numpy as np

    from optieval.runtime import create_backend

    backend = create_backend(payload["backend"], payload["model"], **payload.get("options", {}))
    rng = np.random.default_rng(int(payload.get("seed", 0)))
    shapes = {k: tuple(v) for k, v in payload.get("shapes", {}).items()}
    with backend:
        feeds = {}
        for spec in backend.signature.inputs:
            shape = shapes.get(spec.name) or tuple(d if isinstance(d, int) else 1
                                                   for d in spec.shape)  # fmt: skip
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        outputs = backend.infer(feeds)
        cold = backend.cold_start_ms
        options = {k: v for k, v in backend.options.items() if _plain(v)}
    return {
        "backend": payload["backend"],
        "cold_start_ms": cold,
        "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in outputs.items()},
        "options": options,
        "imported": sorted(m for m in ("torch", "onnxruntime", "tensorrt") if m in sys.modules),
    }


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _worker(argv: list[str]) -> int:
    """Child side: call the function, write ``{"ok": ..., ...}`` to the result file."""
    fn_path, payload_path, result_path = argv
    _die_with_parent()
    try:
        payload = json.loads(Path(payload_path).read_text(encoding="utf-8"))
        fn = load_function(fn_path)
        value = fn(payload)
        result: dict[str, Any] = {"ok": True, "value": value}
        text = json.dumps(result)
    except BaseException as exc:  # everything the cell does wrong goes back as data
        traceback.print_exc(file=sys.stderr)
        text = json.dumps(
            {
                "ok": False,
                "error_type": type(exc).__name__,
                "message": str(exc) or type(exc).__name__,
                "exit_code": getattr(exc, "exit_code", 3),
            }
        )
    tmp = Path(result_path + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, result_path)
    return 0


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the process that started it dies, even by
    SIGKILL (which leaves it no chance to stop the child's group itself)."""
    parent = os.environ.get(_PARENT_ENV)
    if not sys.platform.startswith("linux") or not parent:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before the call above
        os._exit(1)


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
