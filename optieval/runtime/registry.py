"""Backends by name (docs/design.md, Names), imported lazily so that asking about one backend never
imports another's libraries."""

from __future__ import annotations

import importlib
from typing import Any

from optieval.core import BACKEND_NAMES, ONNX_BACKENDS, TORCH_BACKENDS
from optieval.errors import BackendUnavailable, InputError
from optieval.runtime.base import Availability, Backend

__all__ = [
    "BACKEND_NAMES",
    "ONNX_BACKENDS",
    "TORCH_BACKENDS",
    "availability",
    "backend_class",
    "check_backend_name",
    "create_backend",
]

# name -> "module:Class"; a backend whose class is not written yet reports itself unusable.
_CLASSES: dict[str, str] = {
    "ort-cpu": "optieval.runtime.ort:OrtCpuBackend",
    "ort-cuda": "optieval.runtime.ort:OrtCudaBackend",
    "ort-trt": "optieval.runtime.ort_trt:OrtTrtBackend",
    "torch-cpu": "optieval.runtime.torch_backend:TorchCpuBackend",
    "torch-cuda": "optieval.runtime.torch_backend:TorchCudaBackend",
    "tensorrt": "optieval.runtime.tensorrt.backend:TensorrtBackend",
}


def check_backend_name(name: str, *, where: str = "backend") -> str:
    """Return ``name`` if it is a known backend; otherwise InputError listing the known ones."""
    if name not in BACKEND_NAMES:
        raise InputError(
            f"unknown backend {name!r}", where=where, hint=f"choose from {', '.join(BACKEND_NAMES)}"
        )
    return name


def backend_class(name: str) -> type[Backend]:
    """Return the class implementing backend ``name`` (imports only its module)."""
    check_backend_name(name)
    target = _CLASSES.get(name)
    if target is None:
        raise BackendUnavailable(f"backend {name} is not implemented in this optieval", where=name)
    module_name, class_name = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def availability(name: str) -> Availability:
    """Say whether backend ``name`` is usable here and, if not, why."""
    try:
        cls = backend_class(name)
    except BackendUnavailable as exc:
        return Availability(False, exc.message)
    try:
        return cls.availability()
    except Exception as exc:  # a probe must never take doctor down
        return Availability(False, f"availability probe failed: {type(exc).__name__}: {exc}")


def create_backend(name: str, model: Any, **options: Any) -> Backend:
    """Instantiate backend ``name`` for ``model``; BackendUnavailable (exit 3) with the reason
    when it cannot run here."""
    state = availability(name)
    if not state.usable:
        raise BackendUnavailable(state.reason, where=name, hint=state.detail.get("hint"))
    return backend_class(name)(model, **options)  # type: ignore[call-arg]
