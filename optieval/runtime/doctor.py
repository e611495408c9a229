"""``optieval doctor``: the environment fingerprint and, for every backend, whether it is usable
here and the concrete reason when it is not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optieval.core import fingerprint
from optieval.runtime.registry import BACKEND_NAMES, availability


@dataclass(frozen=True)
class BackendStatus:
    """One backend's verdict in the doctor report."""

    name: str
    usable: bool
    reason: str
    hint: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {"name": self.name, "usable": self.usable, "reason": self.reason, "hint": self.hint}


@dataclass(frozen=True)
class DoctorReport:
    """The environment and the usability of each backend."""

    env: dict[str, Any]
    backends: tuple[BackendStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (``optieval doctor --json``)."""
        return {
            "schema_version": 1,
            "env": self.env,
            "backends": [b.to_json() for b in self.backends],
        }


def diagnose() -> DoctorReport:
    """Fingerprint this machine and probe every backend in docs/design.md's list."""
    statuses = []
    for name in BACKEND_NAMES:
        state = availability(name)
        statuses.append(BackendStatus(name, state.usable, state.reason, state.detail.get("hint")))
    env = fingerprint()
    preload = _cuda_preload()
    if preload is not None:
        env["onnxruntime_preload_dlls"] = preload
    return DoctorReport(env, tuple(statuses))


def _cuda_preload() -> str | None:
    """What ``onnxruntime.preload_dlls()`` did, where onnxruntime offers a GPU provider."""
    from optieval.errors import BackendUnavailable
    from optieval.runtime import ort_providers

    try:
        ort = ort_providers.import_ort()
    except BackendUnavailable:
        return None
    gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
    if not gpu & set(ort.get_available_providers()):
        return None
    return ort_providers.preload_cuda_libraries(ort)
