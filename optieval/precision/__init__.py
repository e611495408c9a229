"""Precision artifacts: FP16 and calibrated INT8 (Q/DQ) models made from an FP32 ONNX model,
the census that proves what a graph computes in, ``optieval inspect``, and the artifact cache.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.precision.artifacts import ConversionResult as ConversionResult
    from optieval.precision.artifacts import convert as convert
    from optieval.precision.cache import artifact_for as artifact_for
    from optieval.precision.calibration import DEFAULT_CALIB_METHODS as DEFAULT_CALIB_METHODS
    from optieval.precision.formats import INT8_FORMATS as INT8_FORMATS
    from optieval.precision.formats import best_int8_format as best_int8_format
    from optieval.precision.formats import check_artifact_format as check_artifact_format
    from optieval.precision.formats import check_format_for_backend as check_format_for_backend
    from optieval.precision.formats import is_transformer as is_transformer
    from optieval.precision.fp16 import DEFAULT_FP16_BLOCK_LIST as DEFAULT_FP16_BLOCK_LIST
    from optieval.precision.graph_census import Census as Census
    from optieval.precision.graph_census import census as census
    from optieval.precision.graph_census import node_names as node_names
    from optieval.precision.inspect import ModelInfo as ModelInfo
    from optieval.precision.inspect import inspect_model as inspect_model
    from optieval.precision.int8 import CALIB_METHODS as CALIB_METHODS
    from optieval.precision.labels import artifact_int8_format as artifact_int8_format
    from optieval.precision.labels import artifact_session_options as artifact_session_options
    from optieval.precision.labels import check_precision_name as check_precision_name
    from optieval.precision.labels import is_engine as is_engine
    from optieval.precision.labels import model_signature as model_signature
    from optieval.precision.labels import require_precision as require_precision
    from optieval.precision.spread import CalibrationSpread as CalibrationSpread
    from optieval.precision.spread import OutputSpread as OutputSpread

_EXPORTS = {
    "Census": "optieval.precision.graph_census",
    "ConversionResult": "optieval.precision.artifacts",
    "ModelInfo": "optieval.precision.inspect",
    "INT8_FORMATS": "optieval.precision.formats",
    "artifact_int8_format": "optieval.precision.labels",
    "artifact_session_options": "optieval.precision.labels",
    "best_int8_format": "optieval.precision.formats",
    "check_artifact_format": "optieval.precision.formats",
    "check_format_for_backend": "optieval.precision.formats",
    "is_transformer": "optieval.precision.formats",
    "CALIB_METHODS": "optieval.precision.int8",
    "DEFAULT_CALIB_METHODS": "optieval.precision.calibration",
    "CalibrationSpread": "optieval.precision.spread",
    "DEFAULT_FP16_BLOCK_LIST": "optieval.precision.fp16",
    "OutputSpread": "optieval.precision.spread",
    "artifact_for": "optieval.precision.cache",
    "census": "optieval.precision.graph_census",
    "check_precision_name": "optieval.precision.labels",
    "convert": "optieval.precision.artifacts",
    "inspect_model": "optieval.precision.inspect",
    "is_engine": "optieval.precision.labels",
    "model_signature": "optieval.precision.labels",
    "node_names": "optieval.precision.graph_census",
    "require_precision": "optieval.precision.labels",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
