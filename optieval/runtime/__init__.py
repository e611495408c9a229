"""Backends behind one life cycle (load, I/O metadata, infer, close), looked up by name, and
``doctor``: which backends are usable on this machine and why not.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.runtime.base import Availability as Availability
    from optieval.runtime.base import Backend as Backend
    from optieval.runtime.doctor import diagnose as diagnose
    from optieval.runtime.ort import OrtCpuBackend as OrtCpuBackend
    from optieval.runtime.profiles import parse_profile_option as parse_profile_option
    from optieval.runtime.profiles import parse_shape as parse_shape
    from optieval.runtime.registry import BACKEND_NAMES as BACKEND_NAMES
    from optieval.runtime.registry import ONNX_BACKENDS as ONNX_BACKENDS
    from optieval.runtime.registry import TORCH_BACKENDS as TORCH_BACKENDS
    from optieval.runtime.registry import availability as availability
    from optieval.runtime.registry import backend_class as backend_class
    from optieval.runtime.registry import check_backend_name as check_backend_name
    from optieval.runtime.registry import create_backend as create_backend
    from optieval.runtime.tensorrt.build import build_plan as build_plan

_EXPORTS = {
    "Availability": "optieval.runtime.base",
    "BACKEND_NAMES": "optieval.runtime.registry",
    "Backend": "optieval.runtime.base",
    "ONNX_BACKENDS": "optieval.runtime.registry",
    "OrtCpuBackend": "optieval.runtime.ort",
    "TORCH_BACKENDS": "optieval.runtime.registry",
    "availability": "optieval.runtime.registry",
    "backend_class": "optieval.runtime.registry",
    "build_plan": "optieval.runtime.tensorrt.build",
    "check_backend_name": "optieval.runtime.registry",
    "create_backend": "optieval.runtime.registry",
    "diagnose": "optieval.runtime.doctor",
    "parse_profile_option": "optieval.runtime.profiles",
    "parse_shape": "optieval.runtime.profiles",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
