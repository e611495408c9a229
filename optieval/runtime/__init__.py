"""Backends behind one life cycle (load, I/O metadata, infer, close), looked up by name."""

from optieval.runtime.base import Availability, Backend
from optieval.runtime.registry import (
    BACKEND_NAMES,
    availability,
    backend_class,
    check_backend_name,
    create_backend,
)

__all__ = [
    "BACKEND_NAMES",
    "Availability",
    "Backend",
    "availability",
    "backend_class",
    "check_backend_name",
    "create_backend",
]
