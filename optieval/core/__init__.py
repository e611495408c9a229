"""The foundation every concern stands on: errors aside, files written atomically, the cache,
manifests, ONNX files (saved, checked and published atomically), I/O signatures, data sets,
generated feeds, the one parser of shapes written as text, shape sets (the shapes one cell
runs, swept together), the environment fingerprint and the
one table of backend and precision names.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core.lazy import lazy_exports

if TYPE_CHECKING:
    from optieval.core.cache import cache_dir as cache_dir
    from optieval.core.cache import cache_key as cache_key
    from optieval.core.cache import cache_root as cache_root
    from optieval.core.data import Dataset as Dataset
    from optieval.core.data import load_dataset as load_dataset
    from optieval.core.environment import fingerprint as fingerprint
    from optieval.core.environment import validity_warnings as validity_warnings
    from optieval.core.feeds import bind_dims as bind_dims
    from optieval.core.feeds import generate_feeds as generate_feeds
    from optieval.core.feeds import resolve_shapes as resolve_shapes
    from optieval.core.files import atomic_path as atomic_path
    from optieval.core.files import read_json as read_json
    from optieval.core.files import sha256_bytes as sha256_bytes
    from optieval.core.files import sha256_file as sha256_file
    from optieval.core.files import write_bytes_atomic as write_bytes_atomic
    from optieval.core.files import write_json_atomic as write_json_atomic
    from optieval.core.files import write_text_atomic as write_text_atomic
    from optieval.core.lazy import lazy_exports as lazy_exports
    from optieval.core.manifest import manifest_path as manifest_path
    from optieval.core.manifest import read_manifest as read_manifest
    from optieval.core.manifest import write_manifest as write_manifest
    from optieval.core.names import BACKEND_NAMES as BACKEND_NAMES
    from optieval.core.names import CENSUS_ORDER as CENSUS_ORDER
    from optieval.core.names import CONVERTIBLE_PRECISIONS as CONVERTIBLE_PRECISIONS
    from optieval.core.names import GPU_BACKENDS as GPU_BACKENDS
    from optieval.core.names import ONNX_BACKENDS as ONNX_BACKENDS
    from optieval.core.names import ONNX_PRECISIONS as ONNX_PRECISIONS
    from optieval.core.names import PRECISIONS as PRECISIONS
    from optieval.core.names import TENSORRT_PRECISIONS as TENSORRT_PRECISIONS
    from optieval.core.names import TORCH_BACKENDS as TORCH_BACKENDS
    from optieval.core.names import TORCH_PRECISIONS as TORCH_PRECISIONS
    from optieval.core.onnx_files import check_onnx as check_onnx
    from optieval.core.onnx_files import data_path as data_path
    from optieval.core.onnx_files import external_data_locations as external_data_locations
    from optieval.core.onnx_files import onnx_file_hashes as onnx_file_hashes
    from optieval.core.onnx_files import publish_onnx as publish_onnx
    from optieval.core.onnx_files import save_onnx as save_onnx
    from optieval.core.onnx_files import verify_onnx as verify_onnx
    from optieval.core.records import records_frame as records_frame
    from optieval.core.records import records_html as records_html
    from optieval.core.shape_sets import ShapeSet as ShapeSet
    from optieval.core.shape_sets import expand_shape_sets as expand_shape_sets
    from optieval.core.shape_sets import shape_set_label as shape_set_label
    from optieval.core.shape_sets import zip_shape_sweep as zip_shape_sweep
    from optieval.core.shapes import Shape as Shape
    from optieval.core.shapes import format_shape as format_shape
    from optieval.core.shapes import is_dims as is_dims
    from optieval.core.shapes import parse_dims as parse_dims
    from optieval.core.shapes import parse_named_shape as parse_named_shape
    from optieval.core.shapes import parse_shape_option as parse_shape_option
    from optieval.core.shapes import split_named as split_named
    from optieval.core.signature import Signature as Signature
    from optieval.core.signature import TensorSpec as TensorSpec
    from optieval.core.signature import load_onnx as load_onnx
    from optieval.core.signature import signature_from_onnx as signature_from_onnx
    from optieval.core.signature import signature_from_ort as signature_from_ort
    from optieval.core.sizes import format_mib as format_mib
    from optieval.core.sizes import format_size as format_size

_EXPORTS = {
    "cache_root": "optieval.core.cache",
    "lazy_exports": "optieval.core.lazy",
    "BACKEND_NAMES": "optieval.core.names",
    "CENSUS_ORDER": "optieval.core.names",
    "CONVERTIBLE_PRECISIONS": "optieval.core.names",
    "Dataset": "optieval.core.data",
    "GPU_BACKENDS": "optieval.core.names",
    "ONNX_BACKENDS": "optieval.core.names",
    "ONNX_PRECISIONS": "optieval.core.names",
    "PRECISIONS": "optieval.core.names",
    "Signature": "optieval.core.signature",
    "TENSORRT_PRECISIONS": "optieval.core.names",
    "TORCH_BACKENDS": "optieval.core.names",
    "TORCH_PRECISIONS": "optieval.core.names",
    "TensorSpec": "optieval.core.signature",
    "ShapeSet": "optieval.core.shape_sets",
    "atomic_path": "optieval.core.files",
    "bind_dims": "optieval.core.feeds",
    "expand_shape_sets": "optieval.core.shape_sets",
    "shape_set_label": "optieval.core.shape_sets",
    "zip_shape_sweep": "optieval.core.shape_sets",
    "cache_dir": "optieval.core.cache",
    "cache_key": "optieval.core.cache",
    "fingerprint": "optieval.core.environment",
    "generate_feeds": "optieval.core.feeds",
    "load_dataset": "optieval.core.data",
    "load_onnx": "optieval.core.signature",
    "manifest_path": "optieval.core.manifest",
    "parse_shape_option": "optieval.core.shapes",
    "Shape": "optieval.core.shapes",
    "check_onnx": "optieval.core.onnx_files",
    "data_path": "optieval.core.onnx_files",
    "external_data_locations": "optieval.core.onnx_files",
    "format_mib": "optieval.core.sizes",
    "format_shape": "optieval.core.shapes",
    "format_size": "optieval.core.sizes",
    "is_dims": "optieval.core.shapes",
    "onnx_file_hashes": "optieval.core.onnx_files",
    "parse_dims": "optieval.core.shapes",
    "parse_named_shape": "optieval.core.shapes",
    "publish_onnx": "optieval.core.onnx_files",
    "verify_onnx": "optieval.core.onnx_files",
    "save_onnx": "optieval.core.onnx_files",
    "split_named": "optieval.core.shapes",
    "read_json": "optieval.core.files",
    "read_manifest": "optieval.core.manifest",
    "records_frame": "optieval.core.records",
    "records_html": "optieval.core.records",
    "resolve_shapes": "optieval.core.feeds",
    "sha256_bytes": "optieval.core.files",
    "sha256_file": "optieval.core.files",
    "signature_from_onnx": "optieval.core.signature",
    "signature_from_ort": "optieval.core.signature",
    "validity_warnings": "optieval.core.environment",
    "write_bytes_atomic": "optieval.core.files",
    "write_json_atomic": "optieval.core.files",
    "write_manifest": "optieval.core.manifest",
    "write_text_atomic": "optieval.core.files",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
