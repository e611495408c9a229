"""ort-trt's engine and timing caches are keyed by the GPU model and the TensorRT version the EP
loads (issue 16): the EP reuses whatever engine it finds in its cache folder, so a folder shared
by two GPUs or two TensorRT versions would hand one an engine built for the other. Session
creation is stubbed; the GPU identity is monkeypatched (tests/runtime/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optieval.runtime import ort_trt
from optieval.runtime.ort_trt import OrtTrtBackend, ort_trt_cache_identity

from .conftest import known_gpu, stub_trt_ep_sessions


def _load(model: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[dict, dict]:
    """(TensorRT EP options, backend options) of an ort-trt load."""
    seen = stub_trt_ep_sessions(monkeypatch)
    backend = OrtTrtBackend(model, shapes={"x": [(2, 4)]}, **kwargs)
    backend.load()
    name, options = seen[-1][0]
    assert name == "TensorrtExecutionProvider"
    return options, dict(backend.options)


def test_cache_folder_differs_per_gpu_model_and_tensorrt_version(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known_gpu(monkeypatch)
    h200, backend_opts = _load(mlp_onnx, monkeypatch)
    folder = h200["trt_engine_cache_path"]
    assert h200["trt_engine_cache_enable"] == "True" and h200["trt_timing_cache_path"] == folder
    assert backend_opts["engine_cache"] == (
        "TensorRT 10.13.0 on NVIDIA H200 (compute capability 9.0)"
    )
    assert _load(mlp_onnx, monkeypatch)[0]["trt_engine_cache_path"] == folder  # same: reused
    others = set()
    for gpus, version in (
        ({0: ("NVIDIA H100 80GB HBM3", "9.0")}, "10.13.0"),  # same compute capability
        ({0: ("NVIDIA H200", "9.0")}, "10.14.1"),  # another TensorRT
    ):
        known_gpu(monkeypatch, gpus, version)
        others.add(_load(mlp_onnx, monkeypatch)[0]["trt_engine_cache_path"])
    known_gpu(monkeypatch)
    l4, backend_opts = _load(mlp_onnx, monkeypatch, device_id=1)  # the device it runs on
    others.add(l4["trt_engine_cache_path"])
    assert l4["device_id"] == 1 and "NVIDIA L4" in backend_opts["engine_cache"]
    assert backend_opts["fp32_math"] == "tf32"  # 8.9, from the same identity
    assert len(others) == 3 and folder not in others


@pytest.mark.parametrize(
    "gpu_usable, version, why",
    [(False, "10.13.0", "GPU cannot be identified"), (True, None, "TensorRT version")],
)
def test_caches_are_off_when_the_identity_cannot_be_read(
    mlp_onnx: Path,
    monkeypatch: pytest.MonkeyPatch,
    gpu_usable: bool,
    version: str | None,
    why: str,
) -> None:
    import torch

    known_gpu(monkeypatch, ep_trt_version=version)
    if not gpu_usable:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    options, backend_opts = _load(mlp_onnx, monkeypatch)
    assert options["trt_engine_cache_enable"] == "False"
    assert options["trt_timing_cache_enable"] == "False"
    assert "trt_engine_cache_path" not in options and "trt_timing_cache_path" not in options
    assert backend_opts["engine_cache"].startswith("off: ") and why in backend_opts["engine_cache"]
    assert ort_trt_cache_identity(0)[0] is None


def test_ep_tensorrt_version_reads_libnvinfer(monkeypatch: pytest.MonkeyPatch) -> None:
    """getInferLibVersion() is major*10000 + minor*100 + patch (NvInferVersion.h, TensorRT
    10); a machine without libnvinfer or the tensorrt module has no version."""
    import ctypes
    import ctypes.util
    import sys

    class Lib:
        @staticmethod
        def getInferLibVersion() -> int:
            return 101301

    opened: list[str] = []

    def cdll(name: str) -> Any:
        opened.append(name)
        if name != "libnvinfer.so.10":
            raise OSError(f"{name}: cannot open shared object file")
        return Lib()

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    read = ort_trt.ep_tensorrt_version.__wrapped__  # uncached
    assert read() == "10.13.1" and opened == ["libnvinfer.so.10"]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError(name)))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt fails
    assert read() is None
