"""Fixtures for the runtime tests: the strict TensorRT stand-in in both personalities."""

from __future__ import annotations

import sys
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
    gpus = {0: ("NVIDIA H200", "9.0"), 1: ("NVIDIA L4", "8.9")}
    monkeypatch.setattr(library, "gpu_identity", lambda device_id=0: gpus[device_id])
    return fake
