"""Fixtures for the runtime tests: the strict TensorRT stand-in in both personalities."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pytest

from .fake_tensorrt import PERSONALITIES, make_fake


@pytest.fixture(params=PERSONALITIES)
def trt_version(request: pytest.FixtureRequest) -> str:
    """Each TensorRT personality of the fake in turn (10.13 and 11.1)."""
    return str(request.param)


def install_fake(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    """Put a fake ``tensorrt`` in sys.modules, TensorRT usable and device ``device_id`` an H200
    (device 1 an L4, so identity mix-ups show)."""
    from optieval.runtime.base import Availability
    from optieval.runtime.tensorrt import library

    fake = make_fake(**kwargs)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(library, "trt_availability", lambda: Availability(True))
    monkeypatch.setattr(library, "gpu_identity", lambda device_id=0: GPUS[device_id])
    return fake


GPUS = {0: ("NVIDIA H200", "9.0"), 1: ("NVIDIA L4", "8.9")}


def stub_trt_ep_sessions(
    monkeypatch: pytest.MonkeyPatch, inputs: Sequence[Any] = (), outputs: Sequence[Any] = ()
) -> list[list[Any]]:
    """Stub out ONNX Runtime's sessions: the GPU providers' libraries count as present, and
    each session records the providers it was given (the returned list, one entry a session),
    reports that the TensorRT EP took it, and has ``inputs`` and ``outputs``."""
    import onnxruntime

    from optieval.runtime import ort_providers

    seen: list[list[Any]] = []

    class Session:
        def __init__(self, path: str, sess_options: Any, providers: list[Any]) -> None:
            seen.append(providers)

        def get_providers(self) -> list[str]:
            return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

        def get_inputs(self) -> list[Any]:
            return list(inputs)

        def get_outputs(self) -> list[Any]:
            return list(outputs)

    monkeypatch.setattr(ort_providers, "provider_library_error", lambda ort, provider: None)
    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    return seen


def known_gpu(
    monkeypatch: pytest.MonkeyPatch,
    gpus: dict[int, tuple[str, str]] | None = None,
    ep_trt_version: str | None = "10.13.0",
) -> None:
    """torch.cuda usable with ``gpus`` (device -> name, compute capability; default device 0
    an H200 and device 1 an L4) and ORT's TensorRT EP loading ``ep_trt_version``: what
    ort-trt keys its caches by."""
    import torch

    from optieval.runtime import ort_trt
    from optieval.runtime.tensorrt import library

    table = GPUS if gpus is None else gpus
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(library, "gpu_identity", lambda device_id=0: table[device_id])
    monkeypatch.setattr(ort_trt, "ep_tensorrt_version", lambda: ep_trt_version)
