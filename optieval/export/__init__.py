"""PyTorch -> ONNX: export, verification against the source, example inputs and manifests.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use. The precision and model-loading names that lived here before
0.2 still resolve, with a DeprecationWarning, for one release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optieval.compat import deprecated_alias
from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.export.exporters import EXPORTERS as EXPORTERS
    from optieval.export.exporters import ExporterInfo as ExporterInfo
    from optieval.export.inputs import DynamicDim as DynamicDim
    from optieval.export.inputs import InputSpec as InputSpec
    from optieval.export.provenance import ExportCheckFailed as ExportCheckFailed
    from optieval.export.provenance import ExportResult as ExportResult
    from optieval.export.torch_export import export_model as export_model

_EXPORTS = {
    "DynamicDim": "optieval.export.inputs",
    "EXPORTERS": "optieval.export.exporters",
    "ExportCheckFailed": "optieval.export.provenance",
    "ExportResult": "optieval.export.provenance",
    "ExporterInfo": "optieval.export.exporters",
    "InputSpec": "optieval.export.inputs",
    "export_model": "optieval.export.torch_export",
}
__all__ = sorted(_EXPORTS)
_MOVED = {
    "convert": "optieval.precision",
    "artifact_for": "optieval.precision",
    "ConversionResult": "optieval.precision",
    "Census": "optieval.precision",
    "ModelInfo": "optieval.precision",
    "inspect_model": "optieval.precision",
    "LoadedModel": "optieval.source",
    "load_model": "optieval.source",
    "load_model_from_manifest": "optieval.source",
    "flatten_outputs": "optieval.source",
}
_public, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return deprecated_alias(__name__, _MOVED[name])(name)
    return _public(name)
