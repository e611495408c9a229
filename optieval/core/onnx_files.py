"""ONNX files on disk: saving (with external data), checking, and publishing atomically.

Every ONNX model optieval writes (an export, a precision artifact, a copy of one) goes through
the same three steps:

1. :func:`save_onnx` into a staging folder beside the destination, under the destination's
   file name, so that the external data file it records (``NAME.data``) is already the name it
   will have in place;
2. :func:`check_onnx` (``onnx.checker``, by path, so external data is found);
3. :func:`publish_onnx`: rename the external data, then the model, into place (each rename is
   atomic) and remove what an earlier model of that name left behind. The caller then writes
   the manifest (:func:`optieval.core.write_manifest`) with the hashes it returns.

An interrupted write therefore never leaves a half-written model under the destination name.
Every artifact optieval makes (FP16, INT8; a copy of either saved anew) is published with
``verify=True``:
:func:`verify_onnx` runs ``onnx.checker`` with ``full_check`` (strict shape and type inference)
and opens the file in an ONNX Runtime CPU session with default options, as a user deploys it,
so a file that does not load is a :class:`~optieval.errors.BackendFailed` naming the node and
never reaches its destination. (An export publishes its model even when the checks fail, to be
inspected, and records the failure in its manifest instead.)
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.core.files import atomic_path, sha256_file
from optieval.core.manifest import read_manifest
from optieval.errors import BackendFailed, InputError

if TYPE_CHECKING:
    import onnx

EXTERNAL_SIZE_THRESHOLD = 1024
"""Tensors of at least this many bytes go to the external data file when saving external."""


def data_path(model: str | os.PathLike[str]) -> Path:
    """The external data file optieval writes beside ``model``: its name plus ``.data``."""
    p = Path(model)
    return p.with_name(p.name + ".data")


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike[str], *, external: bool) -> None:
    """Save ``model`` to ``path``; with ``external`` its large tensors go to one file beside it,
    :func:`data_path` (``NAME.data``), which the model refers to by that name.

    Raises:
        InputError: the model cannot be saved in one file (over protobuf's 2 GB limit).
    """
    import onnx

    target = Path(path)
    try:
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            location=data_path(target).name,
            size_threshold=EXTERNAL_SIZE_THRESHOLD if external else 0,
            convert_attribute=False,
        )
    except ValueError as exc:
        raise InputError(
            f"cannot save the model in one file ({' '.join(str(exc).split())[:200]})",
            where=target.name,
            hint="let it use external data (external_data=None or True)",
        ) from exc


def check_onnx(path: str | os.PathLike[str], *, full_check: bool = False) -> str | None:
    """Run ``onnx.checker`` on the file at ``path`` (by path: external data is found).

    Returns:
        None when the model passes; otherwise the checker's message (its text, possibly over
        several lines), for the caller to report as an error or a failed check.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=full_check)
    except Exception as exc:  # ValidationError, or InferenceError with full_check
        return str(exc) or type(exc).__name__
    return None


# How onnx.checker and ONNX Runtime name the node an error is about.
_NODE_PATTERNS = (
    re.compile(r"node name: ([^)\s]+)\)"),
    re.compile(r"[Nn]ode \(([^)]+)\)"),
    re.compile(r"[Nn]ode:\s*([^\s,]+)"),
    re.compile(r"node_name=([^\s,]+)"),
)
_OP_PATTERN = re.compile(r"(\w+)\(-?\d+\) is not a registered")


def verify_onnx(
    path: str | os.PathLike[str], *, label: str | None = None, where: str | None = None
) -> None:
    """Prove that the model at ``path`` loads: ``onnx.checker`` with ``full_check``, then an
    ONNX Runtime CPU session with default options (as a user deploys the file).

    Args:
        path: the model (external data beside it is found).
        label: what the model is, for the message (default: the file name).
        where: the error's location (default: ``path``; a staged file about to be removed
            is no place to send a user).

    Raises:
        BackendFailed: either step fails; the message names the node and its op type when the
            error names a node, and the artifact.
    """
    what = label or Path(path).name
    problem = check_onnx(path, full_check=True)
    if problem is not None:
        raise BackendFailed(
            f"{what} fails onnx.checker (full check){_node_text(path, problem)}: "
            f"{_first_line(problem)}",
            where=where or str(path),
            hint="a converter fault: `exclude` the op type named to keep it in float, and "
            "report it",
        )
    problem = _session_problem(path)
    if problem is not None:
        raise BackendFailed(
            f"ONNX Runtime cannot load {what}{_node_text(path, problem)}: {_first_line(problem)}",
            where=where or str(path),
            hint="a converter fault: `exclude` the op type named to keep it in float, and "
            "report it",
        )


_SESSION_PROBE = """
import sys
import onnxruntime as ort
options = ort.SessionOptions()
options.log_severity_level = 3
options.intra_op_num_threads = 1
try:
    ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
except Exception as exc:
    sys.stderr.write(str(exc) or type(exc).__name__)
    sys.exit(1)
"""


def _session_problem(path: str | os.PathLike[str]) -> str | None:
    """Why an ONNX Runtime CPU session with default options cannot open ``path``, or None.

    The session is opened in a child process: ONNX Runtime's graph optimizers can crash the
    process on a valid model (1.31 segfaults on an FP16 MatMul fed by a batch-axis Transpose),
    and a crash must become an error about the artifact, not the end of optieval.
    """
    import signal
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SESSION_PROBE, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return f"ONNX Runtime crashed ({name}) while creating the session"
    return done.stderr.strip() or f"the session probe exited {done.returncode}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else text
    # ORT prefixes its source location: keep the message.
    line = re.sub(r"\S*onnxruntime_src\S*\s+(onnxruntime::\S+\(.*?\)\s+)?", "", line)
    return line[:300]


def _node_text(path: str | os.PathLike[str], text: str) -> str:
    """`` at node NAME (OP)`` for the first node ``text`` names (or the first node of the op
    type it names), or ``""``."""
    import onnx

    try:
        nodes = onnx.load(str(path), load_external_data=False).graph.node
    except Exception:
        nodes = []
    for pattern in _NODE_PATTERNS:
        match = pattern.search(text)
        if match:
            name = match.group(1)
            op = next((n.op_type for n in nodes if n.name == name), None)
            return f" at node {name} ({op})" if op else f" at node {name}"
    match = _OP_PATTERN.search(text)
    if match:
        op = match.group(1)
        name = next((n.name for n in nodes if n.op_type == op), None)
        return f" at node {name} ({op})" if name else f" at op {op}"
    return ""


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The external data files ``model`` refers to (relative to its folder), in first-use order.

    Read from a model loaded without its external data (``load_external_data=False``); an
    empty list means the model is self-contained.
    """
    import onnx
    from onnx.external_data_helper import ExternalDataInfo

    locations: dict[str, None] = {}
    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            locations[ExternalDataInfo(tensor).location] = None
    return list(locations)


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    import onnx

    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def onnx_file_hashes(model: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` of ``model`` and, when present, its :func:`data_path` (the
    model first): the ``files`` section of a manifest."""
    path = Path(model)
    files = {path.name: sha256_file(path)}
    data = data_path(path)
    if data.is_file():
        files[data.name] = sha256_file(data)
    return files


def publish_onnx(
    staged: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    verify: bool = False,
    label: str | None = None,
    where: str | None = None,
) -> dict[str, str]:
    """Move a staged model, and its :func:`data_path` when there is one, to ``destination``.

    ``staged`` must have been saved under ``destination``'s file name (see :func:`save_onnx`):
    the model names its external data file. The data moves first and the model last, each by
    an atomic rename; a stale ``destination.data``, and any other file the previous manifest
    of ``destination`` listed beside it, are removed. The manifest itself is the caller's to
    write. With ``verify``, :func:`verify_onnx` must pass first (``label`` and ``where`` as
    there); a model that fails is not moved.

    Returns:
        ``{file name: sha256}`` of what was published, the model first.

    Raises:
        InputError: the destination folder is missing or not writable.
        BackendFailed: ``verify`` and the model does not pass :func:`verify_onnx`.
    """
    source = Path(staged)
    if verify:
        verify_onnx(source, label=label, where=where)
    target = Path(destination)
    hashes = onnx_file_hashes(source)
    previous: dict[str, Any] | None = None
    with contextlib.suppress(InputError):
        previous = read_manifest(target)
    data = data_path(source)
    if data.is_file():
        with atomic_path(data_path(target)) as tmp:
            os.replace(data, tmp)
    published = {target.name: hashes[source.name]}
    if data.name in hashes:
        published[data_path(target).name] = hashes[data.name]
    with atomic_path(target) as tmp:
        os.replace(source, tmp)
    stale = {data_path(target).name, *(previous or {}).get("files", {})}
    for name in stale:
        if name not in published and "/" not in name and "\\" not in name:
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()
    return published
