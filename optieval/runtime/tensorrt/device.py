"""The CUDA side of the ``tensorrt`` backend through torch.cuda (docs/design.md, decision 5):
device buffers, the backend's non-default stream, CUDA events and CUDA-graph capture.

One narrow seam (:class:`TorchCuda`), so the CPU tests put host memory behind the same calls and
run the backend's whole run path (addresses, ``execute_async_v3``, output allocators, graph
capture) against the strict TensorRT stand-in (tests/runtime/fake_tensorrt.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["TorchCuda", "open_device"]


class TorchCuda:
    """torch.cuda on one device: the current device is set to ``device_id`` and a non-default
    stream is created on it (TensorRT warns that the default stream costs extra device syncs:
    NvInferRuntime.h, ``enqueueV3``)."""

    def __init__(self, device_id: int) -> None:
        import torch

        self._torch = torch
        self.device = f"cuda:{device_id}"
        torch.cuda.set_device(device_id)
        self.stream = torch.cuda.Stream(device=self.device)

    @property
    def handle(self) -> int:
        """The stream's ``cudaStream_t`` as an int (what ``execute_async_v3`` takes)."""
        return int(self.stream.cuda_stream)

    def synchronize(self) -> None:
        """Wait for the stream."""
        self.stream.synchronize()

    def upload(self, array: np.ndarray) -> Any:
        """A new device buffer holding ``array`` (copied on the stream)."""
        torch = self._torch
        host = torch.from_numpy(np.ascontiguousarray(array))
        with torch.cuda.stream(self.stream):
            buffer = torch.empty(host.shape, dtype=host.dtype, device=self.device)
            buffer.copy_(host)
        return buffer

    def write(self, buffer: Any, array: np.ndarray) -> None:
        """Copy ``array`` into an existing device buffer of its shape and dtype."""
        torch = self._torch
        with torch.cuda.stream(self.stream):
            buffer.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    def empty(self, shape: Sequence[int], dtype: str) -> Any:
        """An uninitialised device buffer (``dtype`` a numpy/torch name, ``bfloat16`` too)."""
        torch = self._torch
        with torch.cuda.stream(self.stream):
            return torch.empty(tuple(shape), dtype=getattr(torch, dtype), device=self.device)

    def empty_bytes(self, nbytes: int, stream_handle: int) -> Any:
        """``nbytes`` of device memory allocated on the stream TensorRT names (an output
        allocator's request): torch's caching allocator then never hands it to another stream
        while TensorRT's work on it may still be pending. Allocations are 512-byte aligned,
        beyond the 256 bytes TensorRT asks for."""
        torch = self._torch
        stream = torch.cuda.ExternalStream(int(stream_handle), device=self.device)
        with torch.cuda.stream(stream):
            return torch.empty(int(nbytes), dtype=torch.uint8, device=self.device)

    @staticmethod
    def address(buffer: Any) -> int:
        """The buffer's device address."""
        return int(buffer.data_ptr())

    def download(self, buffer: Any) -> np.ndarray:
        """The buffer on the host. bfloat16 (no numpy dtype) is widened to float32, exactly."""
        torch = self._torch
        if buffer.dtype == torch.bfloat16:
            buffer = buffer.float()
        return np.asarray(buffer.cpu().numpy())

    def download_bytes(
        self, buffer: Any, nbytes: int, dtype: str, shape: Sequence[int]
    ) -> np.ndarray:
        """The first ``nbytes`` of a uint8 buffer, viewed as ``dtype`` in ``shape``."""
        torch = self._torch
        view = buffer[:nbytes].view(getattr(torch, dtype)).reshape(tuple(shape))
        return self.download(view)

    def timed(self, call: Callable[[], None]) -> float:
        """Run ``call`` between two CUDA events recorded on the stream; device milliseconds."""
        torch = self._torch
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(self.stream)
        call()
        end.record(self.stream)
        end.synchronize()
        return float(start.elapsed_time(end))

    def capture(self, enqueue: Callable[[], None]) -> Callable[[], None]:
        """Capture ``enqueue`` (work on this stream) into a CUDA graph; return its replay."""
        torch = self._torch
        graph = torch.cuda.CUDAGraph()
        error: Exception | None = None
        try:
            # thread-local capture mode, as trtexec (samples/common/sampleDevice.h)
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                try:
                    enqueue()
                except Exception as exc:  # ended capture first; reported below
                    error = exc
        except Exception:
            if error is None:
                raise
        if error is not None:
            raise error
        stream = self.stream

        def replay() -> None:
            with torch.cuda.stream(stream):
                graph.replay()

        replay.graph = graph  # type: ignore[attr-defined]  # keeps the graph alive
        return replay


def open_device(device_id: int) -> TorchCuda:
    """The device the backend builds and runs its engine on (made current here)."""
    return TorchCuda(device_id)
