"""Native TensorRT: the output-allocator path for data-dependent outputs (NMS), its pure parts
run on CPU with a stand-in for ``trt.IOutputAllocator`` (TensorRT itself is not needed)."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from optieval.errors import BackendFailed
from optieval.runtime.tensorrt.allocator import (
    OutputSlot,
    make_output_allocator,
    output_capacity,
    read_output,
)

from .fake_cuda import HostDevice


class _Base:
    """Stands in for trt.IOutputAllocator (whose __init__ subclasses must call)."""

    def __init__(self) -> None:
        self.initialised = True


FAKE_TRT = types.SimpleNamespace(IOutputAllocator=_Base)


def test_capacity_grows_by_powers_of_two_and_never_to_zero() -> None:
    assert output_capacity(0, 0) == 256
    assert output_capacity(100, 0) == 256
    assert output_capacity(300, 256) == 512
    assert output_capacity(1025, 512) == 2048
    assert output_capacity(200, 4096) == 4096  # enough already: keep it
    with pytest.raises(ValueError):
        output_capacity(-1, 0)


def test_slot_bytes_and_checks() -> None:
    slot = OutputSlot("boxes", "float32")
    assert slot.nbytes == 0
    with pytest.raises(BackendFailed, match="no shape"):
        slot.check()
    slot.shape, slot.capacity = (5, 4), 256
    assert slot.nbytes == 80 and slot.check() == (5, 4)
    slot.shape = (100, 4)
    with pytest.raises(BackendFailed, match="needs 1600 bytes but 256"):
        slot.check()


def test_allocator_reallocates_only_when_growing_and_reads_back() -> None:
    memory = HostDevice()
    slot = OutputSlot("boxes", "float32")
    allocator = make_output_allocator(FAKE_TRT, slot, memory, memory.handle)
    assert allocator.initialised
    first = allocator.reallocate_output("boxes", 0, 80, 256)
    assert slot.capacity == 256 and slot.reallocations == 1
    assert memory.last_alloc_stream == memory.handle  # the deprecated call: the backend's stream
    assert allocator.reallocate_output_async("boxes", first, 200, 256, 0x77) == first
    assert slot.reallocations == 1
    grown = allocator.reallocate_output_async("boxes", first, 1000, 256, 0x77)
    assert slot.capacity == 1024 and slot.reallocations == 2 and grown != 0
    assert memory.last_alloc_stream == 0x77  # allocated on the stream TensorRT named
    allocator.buffer.bytes[:48] = np.arange(12, dtype=np.float32).view(np.uint8)
    allocator.notify_shape("boxes", (3, 4))
    np.testing.assert_array_equal(
        read_output(memory, allocator.buffer, slot), np.arange(12.0).reshape(3, 4)
    )


def test_empty_output_reads_as_an_empty_array() -> None:
    memory = HostDevice()
    slot = OutputSlot("classes", "int64")
    allocator = make_output_allocator(FAKE_TRT, slot, memory, memory.handle)
    assert allocator.reallocate_output("classes", 0, 0, 256) != 0
    allocator.notify_shape("classes", [0])
    out = read_output(memory, allocator.buffer, slot)
    assert out.shape == (0,) and out.dtype == np.int64


def test_allocator_exception_is_kept_for_the_report() -> None:
    class Broken(HostDevice):
        def empty_bytes(self, nbytes: int, stream_handle: int) -> Any:
            raise MemoryError("CUDA out of memory")

    slot = OutputSlot("boxes", "float32")
    allocator = make_output_allocator(FAKE_TRT, slot, Broken(), 0)
    with pytest.raises(MemoryError):
        allocator.reallocate_output_async("boxes", 0, 80, 256, 0)
    assert isinstance(slot.error, MemoryError)
