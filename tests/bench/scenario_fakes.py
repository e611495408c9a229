"""A fake backend whose service time is fixed: ``time.sleep`` releases the GIL like a native
inference call does, and a semaphore of ``capacity`` slots plays the device, so queueing theory
gives the expected answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from optieval.core.signature import Signature, TensorSpec
from optieval.runtime.base import Availability, Backend

FEEDS = {"x": np.zeros((1, 4), dtype=np.float32)}


class SleepBackend(Backend):
    """``service_s`` per call, at most ``capacity`` calls served at once (the rest wait)."""

    name = "fake-sleep"
    releases_gil = True
    concurrent_calls = True

    def __init__(self, service_s: float = 0.001, capacity: int = 1) -> None:
        super().__init__()
        self.service_s = service_s
        self._slots = threading.Semaphore(capacity)

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    def _load(self) -> Signature:
        spec = TensorSpec("x", "float32", (1, 4))
        return Signature((spec,), (TensorSpec("y", "float32", (1, 4)),))

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._slots:
            if self.service_s:
                time.sleep(self.service_s)
        return {"y": feeds["x"]}

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        self.check_feeds(feeds)
        bound = dict(feeds)
        return lambda: self._infer(bound)


class GilHoldingBackend(SleepBackend):
    """Declares that its call holds the GIL (pure-Python work): parallel scenarios refuse it."""

    name = "fake-gil"
    releases_gil = False


def measured_service_s(service_s: float, calls: int = 100) -> float:
    """The mean time ``time.sleep(service_s)`` really takes here (it overshoots)."""
    start = time.perf_counter()
    for _ in range(calls):
        time.sleep(service_s)
    return (time.perf_counter() - start) / calls
