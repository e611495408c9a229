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
    return DoctorReport(fingerprint(), tuple(statuses))
