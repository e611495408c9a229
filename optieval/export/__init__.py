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
    "LoadedModel": "optieval.source.specs",
    "load_model": "optieval.source.specs",
    "load_model_from_manifest": "optieval.source.specs",
    "flatten_outputs": "optieval.source.specs",
    "InputSpec": "optieval.export.inputs",
    "DynamicDim": "optieval.export.inputs",
    # precision artifacts (issue 4)
    "convert": "optieval.precision.artifacts",
    "artifact_for": "optieval.precision.artifacts",
    "ConversionResult": "optieval.precision.artifacts",
    "Census": "optieval.precision.census",  # the function is optieval.precision.census.census
    "ModelInfo": "optieval.precision.inspect",
    "inspect_model": "optieval.precision.inspect",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optieval.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
