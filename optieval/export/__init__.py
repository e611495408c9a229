"""PyTorch -> ONNX export (model specs, example inputs, parity, manifests) and, beside it,
precision artifacts.

Nothing here imports torch at package import; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_model": "optieval.export.torch_export",
    "ExportResult": "optieval.export.torch_export",
    "ExportCheckFailed": "optieval.export.torch_export",
    "LoadedModel": "optieval.export.specs",
    "load_model": "optieval.export.specs",
    "load_model_from_manifest": "optieval.export.specs",
    "flatten_outputs": "optieval.export.specs",
    "InputSpec": "optieval.export.inputs",
    "DynamicDim": "optieval.export.inputs",
    # precision artifacts (issue 4)
    "convert": "optieval.export.precision",
    "artifact_for": "optieval.export.precision",
    "ConversionResult": "optieval.export.precision",
    "Census": "optieval.export.census",  # the function is optieval.export.census.census
    "ModelInfo": "optieval.export.inspect",
    "inspect_model": "optieval.export.inspect",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optieval.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
