"""optieval: export, convert, benchmark, compare and gate ML models for release.

The public API is five functions, one per arrow of the data flow (docs/design.md)::

    export_model   PyTorch spec -> checked ONNX file + manifest
    convert        FP32 ONNX -> FP16 / INT8 artifact + census
    benchmark      artifact x backends x precisions x batches -> latency cells
    compare        candidates vs a reference -> parity metrics
    gate           release.toml -> checks, verdict, reports

Heavy libraries (torch, onnxruntime, TensorRT) are imported only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optieval.errors import (
    BackendError,
    BackendFailed,
    BackendUnavailable,
    CheckFailed,
    InputError,
    InternalError,
    OptievalError,
)
from optieval.version import __version__

_API = {
    "export_model": "optieval.export",
    "convert": "optieval.precision",
    "benchmark": "optieval.bench",
    "compare": "optieval.parity",
    "gate": "optieval.release",
}

__all__ = [
    "BackendError",
    "BackendFailed",
    "BackendUnavailable",
    "CheckFailed",
    "InputError",
    "InternalError",
    "OptievalError",
    "__version__",
    "benchmark",
    "compare",
    "convert",
    "export_model",
    "gate",
]

if TYPE_CHECKING:  # pragma: no cover
    from optieval.bench import benchmark
    from optieval.export import export_model
    from optieval.parity import compare
    from optieval.precision import convert
    from optieval.release import gate


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'optieval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
