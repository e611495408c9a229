"""Setting up a GPU machine for ONNX Runtime (issue 16 item 9): CUDA and cuDNN preloaded from
NVIDIA's pip packages through ``onnxruntime.preload_dlls()`` before any CUDA or TensorRT
session, and a doctor hint that names the real fix for a missing CUDA library."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from optieval.errors import BackendUnavailable
from optieval.runtime import ort_providers
from optieval.runtime.ort import OrtCudaBackend

CUBLAS_12 = "libcublasLt.so.12: cannot open shared object file: No such file or directory"


def test_missing_cublaslt_hint_names_the_pip_fix() -> None:
    hint = ort_providers.missing_library_hint(CUBLAS_12) or ""
    assert "pip install 'onnxruntime-gpu[cuda,cudnn]'" in hint
    assert "nvidia-cublas-cu12" in hint and "preload_dlls" in hint and "torch" in hint
    hint13 = ort_providers.missing_library_hint("libcublasLt.so.13: cannot open") or ""
    assert "nvidia-cublas nvidia-cuda-runtime nvidia-cudnn-cu13" in hint13
    assert "cuDNN 9" in (ort_providers.missing_library_hint("libcudnn.so.9: not found") or "")
    assert "TensorRT 10" in (ort_providers.missing_library_hint("libnvinfer.so.10: x") or "")
    assert ort_providers.missing_library_hint("undefined symbol: foo") is None


def test_doctor_reason_carries_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    monkeypatch.setattr(
        onnxruntime,
        "get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    monkeypatch.setattr(ort_providers, "provider_library_error", lambda ort, p: CUBLAS_12)
    state = ort_providers.provider_availability("CUDAExecutionProvider", "pip install x")
    assert not state.usable and "libcublasLt.so.12" in state.reason
    assert "onnxruntime-gpu[cuda,cudnn]" in state.detail["hint"]


def _fake_ort(version: str, preload: Any) -> Any:
    ort = types.SimpleNamespace(__version__=version, __file__="/nonexistent/onnxruntime/x.py")
    if preload is not None:
        ort.preload_dlls = preload
    return ort


def test_preload_once_per_process_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_providers, "_PRELOAD", {})
    calls: list[dict[str, Any]] = []

    def preload(**kwargs: Any) -> None:
        print("loaded libcublas from nvidia site packages")  # silenced
        calls.append(kwargs)

    assert ort_providers.preload_cuda_libraries(_fake_ort("1.31.1", preload)) == "preloaded"
    assert ort_providers.preload_cuda_libraries(_fake_ort("1.31.1", preload)) == "preloaded"
    assert calls == [{"directory": ""}]
    old = ort_providers.preload_cuda_libraries(_fake_ort("1.20.0", None))
    assert old == "not offered by onnxruntime 1.20.0 (needs 1.21+)"

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("bad nvidia package")

    assert ort_providers.preload_cuda_libraries(_fake_ort("1.22.0", broken)).startswith(
        "failed: bad nvidia package"
    )


def test_cuda_session_preloads_first(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime

    order: list[str] = []
    monkeypatch.setattr(ort_providers, "_PRELOAD", {})
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda **kw: order.append("preload"), False)

    def session(*args: Any, **kwargs: Any) -> Any:
        order.append("session")
        raise RuntimeError("no CUDA here")

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    with pytest.raises(BackendUnavailable):
        OrtCudaBackend(mlp_onnx).load()
    assert order[0] == "preload"
    assert capsys.readouterr().out == ""
