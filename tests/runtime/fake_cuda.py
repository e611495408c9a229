"""Host memory behind the ``tensorrt`` backend's device seam (optieval.runtime.tensorrt.device),
so the CPU tests run its whole run path against the strict TensorRT stand-in.

Buffers are numpy arrays registered by address in :data:`MEMORY`; the fake TensorRT resolves the
addresses it is given through it and refuses an unknown, freed, misaligned or too small one,
the way a GPU faults on a bad pointer. A stream in capture mode records ``execute_async_v3``
launches with the addresses bound at capture time instead of running them; replay runs what was
recorded, as a CUDA graph does.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ALIGNMENT = 256  # NvInferRuntime.h, setTensorAddress: "at least 256-byte alignment"


class HostBuffer:
    """A 256-byte-aligned host array standing in for a device buffer."""

    def __init__(self, shape: Sequence[int], dtype: str) -> None:
        self.dtype = np.dtype("float32" if dtype == "bfloat16" else dtype)
        self.shape = tuple(int(d) for d in shape)
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        raw = np.zeros(nbytes + ALIGNMENT, dtype=np.uint8)
        offset = (-raw.ctypes.data) % ALIGNMENT
        self.raw = raw
        self.bytes = raw[offset : offset + nbytes]
        self.address = int(raw.ctypes.data) + offset
        MEMORY.register(self)

    @property
    def array(self) -> np.ndarray:
        """The buffer viewed in its dtype and shape."""
        return self.bytes.view(self.dtype).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.bytes.size)


class Memory:
    """Live fake device allocations by address (weakly held, as freed memory disappears)."""

    def __init__(self) -> None:
        self._live: weakref.WeakValueDictionary[int, HostBuffer] = weakref.WeakValueDictionary()

    def register(self, buffer: HostBuffer) -> None:
        self._live[buffer.address] = buffer

    def resolve(self, address: int, nbytes: int) -> HostBuffer | None:
        """The live allocation starting at ``address`` holding ``nbytes``; None when none."""
        buffer = self._live.get(int(address))
        if buffer is None or buffer.nbytes < nbytes:
            return None
        return buffer


MEMORY = Memory()


class FakeStream:
    """A stream with a handle; in capture mode it records launches instead of running them."""

    _handles = itertools.count(0x1000, 0x10)

    def __init__(self) -> None:
        self.handle = next(self._handles)
        self.recording: list[Callable[[], bool]] | None = None
        STREAMS[self.handle] = self


STREAMS: dict[int, FakeStream] = {}


class HostDevice:
    """Implements optieval.runtime.tensorrt.device.TorchCuda's calls on host memory."""

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id
        self.stream = FakeStream()
        self.captures = 0
        self.syncs = 0

    @property
    def handle(self) -> int:
        return self.stream.handle

    def synchronize(self) -> None:
        self.syncs += 1

    def upload(self, array: np.ndarray) -> HostBuffer:
        buffer = HostBuffer(array.shape, str(array.dtype))
        buffer.array[...] = array
        return buffer

    def write(self, buffer: HostBuffer, array: np.ndarray) -> None:
        buffer.array[...] = array

    def empty(self, shape: Sequence[int], dtype: str) -> HostBuffer:
        return HostBuffer(shape, dtype)

    def empty_bytes(self, nbytes: int, stream_handle: int) -> HostBuffer:
        self.last_alloc_stream = stream_handle
        return HostBuffer((int(nbytes),), "uint8")

    @staticmethod
    def address(buffer: HostBuffer) -> int:
        return buffer.address

    def download(self, buffer: HostBuffer) -> np.ndarray:
        return buffer.array.copy()

    def download_bytes(
        self, buffer: HostBuffer, nbytes: int, dtype: str, shape: Sequence[int]
    ) -> np.ndarray:
        return buffer.bytes[:nbytes].view(dtype).reshape(tuple(shape)).copy()

    def timed(self, call: Callable[[], None]) -> float:
        call()
        return 0.25

    def capture(self, enqueue: Callable[[], None]) -> Callable[[], None]:
        """Record what ``enqueue`` launches on this stream; replay runs the recording."""
        self.stream.recording = []
        try:
            enqueue()
        finally:
            launches, self.stream.recording = self.stream.recording, None
        self.captures += 1

        def replay() -> None:
            for launch in launches:
                if not launch():
                    raise RuntimeError("a replayed launch read a bad address")

        return replay


def install(monkeypatch: Any) -> list[HostDevice]:
    """Put :class:`HostDevice` behind the backend's seam; returns the devices opened."""
    from optieval.runtime.tensorrt import backend

    opened: list[HostDevice] = []

    def open_device(device_id: int) -> HostDevice:
        device = HostDevice(device_id)
        opened.append(device)
        return device

    monkeypatch.setattr(backend, "open_device", open_device)
    return opened
