"""Outputs whose size depends on the data (NMS, NonZero): TensorRT asks an output allocator for
their memory during the run and reports their final shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optieval.errors import BackendFailed

__all__ = ["OutputSlot", "make_output_allocator", "output_capacity", "read_output"]

_MIN_OUTPUT_BYTES = 256


def output_capacity(requested: int, current: int) -> int:
    """Bytes to hold for a data-dependent output that needs ``requested`` bytes while ``current``
    are held: ``current`` when it is enough, else the next power of two at or above
    ``requested`` (at least 256). An output that grows from image to image is so reallocated
    O(log n) times, and an empty output (0 bytes) still gets a real address."""
    if requested < 0:
        raise ValueError(f"negative size {requested}")
    if current > 0 and requested <= current:
        return current
    return max(_MIN_OUTPUT_BYTES, 1 << max(0, (requested - 1).bit_length()))


@dataclass
class OutputSlot:
    """One data-dependent output: its dtype (numpy name), the device bytes held for it and the
    shape TensorRT reported for the last run (None until ``notify_shape``)."""

    name: str
    dtype: str
    capacity: int = 0
    shape: tuple[int, ...] | None = None
    reallocations: int = 0
    error: BaseException | None = None  # what the last failed allocation raised

    @property
    def nbytes(self) -> int:
        """Bytes of the last run's output (0 before any)."""
        if self.shape is None:
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def check(self, where: str = "tensorrt") -> tuple[int, ...]:
        """The last shape; BackendFailed when TensorRT reported none or more than was held."""
        if self.shape is None or any(d < 0 for d in self.shape):
            raise BackendFailed(
                f"TensorRT reported no shape for data-dependent output {self.name!r}",
                where=where,
            )
        if self.nbytes > self.capacity:
            raise BackendFailed(
                f"output {self.name!r} of shape {self.shape} needs {self.nbytes} bytes but "
                f"{self.capacity} were allocated",
                where=where,
            )
        return self.shape


def make_output_allocator(trt: Any, slot: OutputSlot, memory: Any, stream_handle: int) -> Any:
    """A ``trt.IOutputAllocator`` for one data-dependent output (docs/facts.md): TensorRT asks
    it for memory during the run (``reallocate_output_async`` with its stream, or the deprecated
    ``reallocate_output``, answered on the backend's stream ``stream_handle``) and tells it the
    final shape (``notify_shape``); both land in ``slot``. ``memory`` is the backend's device
    (:class:`~optieval.runtime.tensorrt.device.TorchCuda`): the buffer is allocated on the
    stream TensorRT names, so torch's caching allocator never gives it to another stream while
    TensorRT's work may still use it. Sizes grow by :func:`output_capacity`.

    TensorRT's Python bindings turn an exception raised here into a null pointer and a failed
    ``execute_async_v3`` (python/src/infer/pyCore.cpp): the exception is kept in
    ``slot.error`` so the backend can report it. ``allocator.buffer`` is the uint8 buffer."""

    class _Allocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffer: Any = None

        def reallocate_output(
            self, tensor_name: str, memory: int, size: int, alignment: int
        ) -> int:
            return self.reallocate_output_async(tensor_name, memory, size, alignment, stream_handle)

        def reallocate_output_async(
            self, tensor_name: str, memory: int, size: int, alignment: int, stream: int
        ) -> int:
            try:
                wanted = output_capacity(int(size), slot.capacity if self.buffer is not None else 0)
                if self.buffer is None or wanted != slot.capacity:
                    self.buffer = memory_of.empty_bytes(wanted, int(stream))
                    slot.capacity = wanted
                    slot.reallocations += 1
                address = int(memory_of.address(self.buffer))
                if alignment and address % int(alignment):
                    raise BackendFailed(
                        f"allocation for {tensor_name!r} is not {alignment}-byte aligned"
                    )
                return address
            except Exception as exc:
                slot.error = exc
                raise

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            slot.shape = tuple(int(d) for d in shape)

    memory_of = memory
    return _Allocator()


def read_output(memory: Any, buffer: Any, slot: OutputSlot, where: str = "tensorrt") -> np.ndarray:
    """The last run's output as a host array: the first ``slot.nbytes`` of ``buffer`` (a uint8
    device buffer of ``memory``) viewed as ``slot.dtype`` in ``slot.shape``."""
    shape = slot.check(where)
    if slot.nbytes == 0:
        return np.zeros(shape, dtype=slot.dtype)
    return np.asarray(memory.download_bytes(buffer, slot.nbytes, slot.dtype, shape))
