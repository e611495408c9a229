"""ONNX Runtime on the TensorRT execution provider: ``ort-trt``, an ``ort-cuda`` whose first
provider is TensorRT (I/O bound on the device and CUDA graphs the same way), with the EP's
precision switches, profiles and caches, and the label of what its fp32 really is."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optieval.core import ONNX_PRECISIONS, Signature
from optieval.errors import InputError
from optieval.runtime import ort_providers
from optieval.runtime.base import Availability
from optieval.runtime.ort import OrtCudaBackend
from optieval.runtime.profiles import (
    ProfileShape,
    check_in_profiles,
    compute_profiles,
    ort_trt_shape_options,
)
from optieval.runtime.tensorrt import library as trt_library

__all__ = [
    "ORT_TRT_PRECISION_SOURCE",
    "OrtTrtBackend",
    "ep_tensorrt_version",
    "ort_trt_cache_identity",
    "ort_trt_fp32_math",
    "ort_trt_provider_options",
]


def ort_trt_provider_options(
    *,
    precision: str,
    cache_folder: str | os.PathLike[str] | None,
    profiles: Sequence[ProfileShape] = (),
    device_id: int = 0,
) -> dict[str, Any]:
    """TensorRT EP options for an artifact of ``precision`` (docs/facts.md: the EP links
    TensorRT 10,
    weakly typed, so fp16 and Q/DQ artifacts still need ``trt_fp16_enable`` /
    ``trt_int8_enable``). Engine and timing caches go to ``cache_folder`` (None: both off);
    profile shapes come
    from :func:`optieval.runtime.profiles.compute_profiles`.

    Raises InputError for bf16 (the EP has no bf16 switch) or an unknown precision.
    """
    if precision not in ONNX_PRECISIONS:
        raise InputError(
            f"ort-trt cannot run a {precision} artifact",
            where="precision",
            hint="use fp32, fp16 or int8 artifacts",
        )
    options: dict[str, Any] = {"device_id": device_id}
    if cache_folder is None:
        options.update({"trt_engine_cache_enable": "False", "trt_timing_cache_enable": "False"})
    else:
        folder = str(cache_folder)
        options.update(
            {
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": folder,
                "trt_timing_cache_enable": "True",
                "trt_timing_cache_path": folder,
            }
        )
    options |= {
        "trt_fp16_enable": "True" if precision == "fp16" else "False",
        "trt_int8_enable": "True" if precision == "int8" else "False",
    }
    if precision == "int8":
        # Q/DQ artifacts carry their scales; no calibration table is used.
        options["trt_int8_use_native_calibration_table"] = "False"
    options.update(ort_trt_shape_options(profiles))
    return options


ORT_TRT_PRECISION_SOURCE = (
    "artifact census: the engine the ORT TensorRT EP builds cannot be inspected through ORT"
)


def ort_trt_fp32_math(compute_capability: str | None) -> str:
    """What ORT's TensorRT EP computes fp32 layers in on a GPU of ``compute_capability``
    (``"8.6"``): ``tf32`` from Ampere (8.0) on, since TensorRT enables TF32 by default and the EP
    has no switch to clear it; ``fp32`` before; ``unknown`` when the GPU could not be read."""
    if not compute_capability:
        return "unknown"
    try:
        major = int(compute_capability.split(".")[0])
    except ValueError:
        return "unknown"
    return "tf32" if major >= 8 else "fp32"


@functools.cache
def ep_tensorrt_version() -> str | None:
    """The TensorRT version ORT's TensorRT EP loads: ``getInferLibVersion()`` of the libnvinfer
    the dynamic loader finds by the soname the EP opens (NvInferRuntime.h; the number is
    major*10000 + minor*100 + patch, NvInferVersion.h), else the ``tensorrt`` module's version
    (its wheel's libnvinfer is then already in the process); None when neither can be read."""
    import ctypes
    import ctypes.util

    for name in (ctypes.util.find_library("nvinfer"), "libnvinfer.so.10", "nvinfer_10.dll"):
        if not name:
            continue
        try:
            number = int(ctypes.CDLL(name).getInferLibVersion())
        except (OSError, AttributeError):  # not found here, or not TensorRT
            continue
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    try:
        import tensorrt
    except ImportError:
        return None
    return str(getattr(tensorrt, "__version__", "")) or None


def ort_trt_cache_identity(device_id: int) -> tuple[dict[str, str] | None, str]:
    """What ort-trt's engine and timing caches are keyed by besides the artifact: the TensorRT
    version the EP loads and device ``device_id``'s GPU name and compute capability (TensorRT
    engines and timing caches are not portable across GPU models or TensorRT versions; the EP
    checks neither). Returns (the identity as ``device_cache_key``'s arguments, a one-line
    description), or (None, why) when a part cannot be read: the caches are then off."""
    gpu = _gpu_identity(device_id)
    if gpu is None:
        return None, "off: the GPU cannot be identified (torch.cuda is not usable)"
    version = ep_tensorrt_version()
    if version is None:
        return None, "off: the TensorRT version the EP loads cannot be read (no libnvinfer found)"
    name, cc = gpu
    identity = {"trt_version": version, "compute_capability": cc, "gpu_name": name}
    return identity, f"TensorRT {version} on {name} (compute capability {cc})"


def _gpu_identity(device_id: int) -> tuple[str, str] | None:
    """(name, ``"major.minor"``) of CUDA device ``device_id`` through torch, or None without
    a usable torch.cuda; InputError for a device this machine does not have."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
    except Exception:  # torch missing or broken: unknown
        return None
    try:
        return trt_library.gpu_identity(device_id)
    except InputError:
        raise
    except Exception:  # a CUDA error: unknown
        return None


class OrtTrtBackend(OrtCudaBackend):
    """ONNX Runtime on the TensorRT execution provider (it links TensorRT 10, weakly typed).

    Args (besides :class:`OrtCudaBackend`'s ``device_id``, ``io`` and ``enable_cuda_graph``,
    which this backend honours the same way: I/O bound on the device, the EP's
    ``trt_cuda_graph_enable``):
        shapes: per input, the shapes that will be run (e.g. one per batch size); they make the
            optimization profile (min/opt/max). Without them the EP builds an engine for each
            new input shape it sees (in the first, untimed call for that shape).
        profiles: explicit :class:`ProfileShape` per input (win over ``shapes``).

    The precision switch follows the artifact's census (fp16 -> ``trt_fp16_enable``, int8 Q/DQ
    -> ``trt_int8_enable``); ``options["precision_source"]`` says that the label rests on that
    census, since the EP's engine cannot be inspected. TensorRT runs fp32 layers in TF32 on
    Ampere and newer and the EP offers no switch: ``options["fp32_math"]`` says ``tf32`` there
    (:func:`ort_trt_fp32_math`), so an ``ort-trt`` fp32 number is not an fp32 number beside
    ``tensorrt`` and ``ort-cuda`` (both TF32 off). Engines and timing caches live in the
    optieval cache under ``ort-trt/<key>`` (artifact hash, ORT version, precision, profiles, and
    the TensorRT version and GPU model of :func:`ort_trt_cache_identity`, since the EP reuses
    whatever it finds there); where that identity cannot be read the caches are off, and
    ``options["engine_cache"]`` says which.
    """

    name = "ort-trt"
    provider = "TensorrtExecutionProvider"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device_id: int = 0,
        shapes: Mapping[str, Sequence[Sequence[int]]] | None = None,
        profiles: Sequence[ProfileShape] = (),
        **options: Any,
    ) -> None:
        super().__init__(model, device_id=device_id, **options)
        self._shapes = shapes
        self._explicit_profiles = tuple(profiles)
        self.profiles: list[ProfileShape] = []
        self.options["precision_source"] = ORT_TRT_PRECISION_SOURCE
        self._trt_options: dict[str, Any] = {}

    def provider_options(self) -> dict[str, Any]:
        return self._trt_options

    def _load(self) -> Signature:
        from optieval.core import cache_dir, cache_key, load_onnx, sha256_file, signature_from_onnx
        from optieval.precision import require_precision

        ort = ort_providers.import_ort()
        precision = require_precision(self.model, self._requested_precision, where=str(self.model))
        signature = signature_from_onnx(load_onnx(self.model, load_external_data=False))
        self.profiles = []
        # Without requested shapes the EP builds an engine per new shape on its own.
        if self._shapes or self._explicit_profiles:
            self.profiles = compute_profiles(
                signature, shapes=self._shapes, explicit=self._explicit_profiles
            )
        device_id = int(self.options["device_id"])
        identity, cache_note = ort_trt_cache_identity(device_id)
        folder = None
        if identity is not None:
            key = cache_key(
                {
                    "artifact": sha256_file(self.model),
                    "onnxruntime": ort.__version__,
                    "precision": precision,
                    "profiles": [p.to_json() for p in self.profiles],
                    "device": trt_library.device_cache_key(**identity),
                }
            )
            folder = cache_dir("ort-trt", key)
        self.options["engine_cache"] = cache_note
        self._trt_options = ort_trt_provider_options(
            precision=precision,
            cache_folder=folder,
            profiles=self.profiles,
            device_id=device_id,
        )
        if self.options["enable_cuda_graph"]:
            self._trt_options["trt_cuda_graph_enable"] = "True"
        self.options["profiles"] = [p.to_json() for p in self.profiles]
        gpu = _gpu_identity(device_id)
        self.options["fp32_math"] = ort_trt_fp32_math(gpu[1] if gpu else None)
        return super()._load()

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Also InputError naming the range when a shape lies outside the profile."""
        super().check_feeds(feeds)
        if self.profiles:
            check_in_profiles(
                {k: tuple(v.shape) for k, v in feeds.items()}, self.profiles, where=self.name
            )

    @classmethod
    def availability(cls) -> Availability:
        return ort_providers.provider_availability(
            cls.provider, "install onnxruntime-gpu and the TensorRT 10 libraries it links"
        )
