"""The ``tensorrt`` backend's run path against the strict TensorRT stand-in, in both
personalities, on host memory behind the device seam (tests/runtime/fake_cuda.py): each batch
in its own buffers, CUDA-graph capture per batch, output allocators, refused shapes, failed
captures, and the engine identity of the device it runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime.ort import OrtCpuBackend
from optieval.runtime.tensorrt.backend import TensorrtBackend
from optieval.runtime.tensorrt.build import build_plan
from optieval.runtime.tensorrt.manifest import engine_cache_key

from . import fake_cuda
from .conftest import install_fake


def _expected(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with OrtCpuBackend(model) as cpu:
        return cpu.infer(feeds)


def _batches() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [{"x": rng.normal(size=(2, 4)).astype(np.float32)} for _ in range(3)]


def _last_outputs(backend: TensorrtBackend) -> dict[str, np.ndarray]:
    """What the engine wrote in its last enqueue (or replay): the outputs of the buffers the
    context was bound to, or of the batch whose graph replayed."""
    staged = backend._active
    assert staged is not None
    return backend._host_outputs(staged)


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_each_batch_runner_computes_on_its_own_batch(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str, cuda_graph: bool
) -> None:
    """Issue 16 item 2: with --data the bench builds one runner per batch; each must read its
    own batch, not the one staged last."""
    install_fake(monkeypatch, version=trt_version)
    devices = fake_cuda.install(monkeypatch)
    batches = _batches()
    expected = [_expected(mlp_onnx, b)["logits"] for b in batches]
    assert not np.allclose(expected[0], expected[2])
    with TensorrtBackend(mlp_onnx, shapes={"x": [(2, 4)]}, cuda_graph=cuda_graph) as backend:
        runners = [backend.runner(b) for b in batches]
        for order in ([0, 1, 2], [2, 0, 1, 1]):
            for i in order:
                runners[i]()
                # what the engine wrote into this runner's own output buffers
                got = backend._host_outputs(runners[i].staged)["logits"]
                np.testing.assert_allclose(got, expected[i], rtol=1e-5, atol=1e-6)
        if cuda_graph:
            assert devices[0].captures == 3  # one graph per batch, on its own addresses
            assert len(backend.options["graph_capture_ms"]) == 3


def test_device_runner_and_infer_timed_use_their_feeds(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version)
    fake_cuda.install(monkeypatch)
    a, b = _batches()[:2]
    with TensorrtBackend(mlp_onnx, shapes={"x": [(2, 4)]}) as backend:
        run_a = backend.device_runner(a)
        outputs, ms = backend.infer_timed(b)
        np.testing.assert_allclose(outputs["logits"], _expected(mlp_onnx, b)["logits"], rtol=1e-5)
        assert run_a() == ms == 0.25  # the fake's event time
        np.testing.assert_allclose(
            _last_outputs(backend)["logits"], _expected(mlp_onnx, a)["logits"], rtol=1e-5
        )
        np.testing.assert_allclose(
            backend.infer(b)["logits"], _expected(mlp_onnx, b)["logits"], rtol=1e-5
        )


def test_host_io_with_cuda_graph_reuses_one_capture(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version)
    devices = fake_cuda.install(monkeypatch)
    a, b = _batches()[:2]
    with TensorrtBackend(mlp_onnx, shapes={"x": [(2, 4)]}, cuda_graph=True, io="host") as backend:
        loaded = backend.cold_start_ms or 0.0
        run_a, run_b = backend.runner(a), backend.runner(b)
        for run, feeds in ((run_a, a), (run_b, b), (run_a, a)):
            got = run()
            assert isinstance(got, dict)
            np.testing.assert_allclose(
                got["logits"], _expected(mlp_onnx, feeds)["logits"], rtol=1e-5
            )
        assert devices[0].captures == 1  # same shape: the feeds are copied into one capture
        # the capture (with its warm-up run) counts in cold start, as for ort-cuda
        assert (backend.cold_start_ms or 0.0) > loaded


def test_failed_capture_is_exit_3_with_the_way_out(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version, capture_fails=True)
    fake_cuda.install(monkeypatch)
    with (
        TensorrtBackend(mlp_onnx, shapes={"x": [(2, 4)]}, cuda_graph=True) as backend,
        pytest.raises(BackendFailed, match="CUDA graph") as info,
    ):
        backend.runner(_batches()[0])
    assert info.value.exit_code == 3 and "without `cuda_graph`" in str(info.value)


def test_refused_input_shape_is_an_input_error_quoting_tensorrt(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    fake = install_fake(monkeypatch, version=trt_version)
    fake_cuda.install(monkeypatch)
    plan = tmp_path / "m.plan"
    build_plan(mlp_onnx, plan, precision="fp32", shapes={"x": [(2, 4)]})
    install_fake(monkeypatch, version=trt_version, refuse_shapes=True)
    with (
        TensorrtBackend(plan) as backend,
        pytest.raises(InputError, match="TensorRT refused shape .*setInputShape") as info,
    ):
        backend.runner(_batches()[0])
    assert info.value.exit_code == 2
    assert fake.calls  # the build ran on the well-behaved fake


def _nonzero_onnx(path: Path) -> Path:
    """x [batch, 4] -> NonZero(x): int64 [2, n] whose n depends on the data."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"], name="nz")],
        "nz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [2, "n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def test_data_dependent_output_through_the_allocator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version)
    devices = fake_cuda.install(monkeypatch)
    model = _nonzero_onnx(tmp_path / "nz.onnx")
    sparse = {"x": np.array([[0, 1, 0, 2], [3, 0, 0, 0]], np.float32)}
    dense = {"x": np.ones((16, 4), np.float32)}
    with TensorrtBackend(model, shapes={"x": [(2, 4), (16, 4)]}) as backend:
        for feeds in (sparse, dense, sparse):
            got = backend.infer(feeds)["idx"]
            np.testing.assert_array_equal(got, _expected(model, feeds)["idx"])
        slot, _ = backend._allocators["idx"]
        # 48 bytes: 256 held; 1024 bytes: grown to 1024; 48 again: kept
        assert slot.reallocations == 2 and slot.capacity == 1024
        # allocated on the stream TensorRT passed: the backend's own
        assert devices[0].last_alloc_stream == devices[0].handle
    with (
        TensorrtBackend(model, shapes={"x": [(2, 4)]}, cuda_graph=True) as backend,
        pytest.raises(BackendFailed, match="data-dependent size"),
    ):
        backend.infer(sparse)


def test_allocator_exception_is_reported_not_a_vague_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version)
    fake_cuda.install(monkeypatch)

    def out_of_memory(self: Any, nbytes: int, stream_handle: int) -> Any:
        raise MemoryError("CUDA out of memory. Tried to allocate 256 bytes")

    monkeypatch.setattr(fake_cuda.HostDevice, "empty_bytes", out_of_memory)
    model = _nonzero_onnx(tmp_path / "nz.onnx")
    with (
        TensorrtBackend(model, shapes={"x": [(2, 4)]}) as backend,
        pytest.raises(BackendFailed, match="output allocator for 'idx'.*out of memory"),
    ):
        backend.infer({"x": np.ones((2, 4), np.float32)})


def test_engine_identity_is_the_device_it_runs_on(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    """Issue 16 item 4: device 1 (an L4 here) gets its own cache key and manifest, not device
    0's (an H200)."""
    from optieval.core import read_manifest, sha256_file

    install_fake(monkeypatch, version=trt_version)
    devices = fake_cuda.install(monkeypatch)
    with TensorrtBackend(mlp_onnx, shapes={"x": [(2, 4)]}, device_id=1) as backend:
        backend.infer(_batches()[0])
        key = backend.options["engine_cache_key"]
        cached = backend._plan_source
    assert devices[0].device_id == 1
    assert key == engine_cache_key(
        artifact_sha256=sha256_file(mlp_onnx),
        trt_version=trt_version,
        gpu_name="NVIDIA L4",
        compute_capability="8.9",
        options={"precision": "fp32", "profiles": [backend.profiles[0].to_json()]},
    )
    assert cached is not None
    assert (read_manifest(cached) or {})["gpu"] == {
        "name": "NVIDIA L4",
        "compute_capability": "8.9",
    }
    plan = tmp_path / "m.plan"
    result = build_plan(mlp_onnx, plan, precision="fp32", shapes={"x": [(2, 4)]}, device_id=1)
    assert result.manifest_data["gpu"]["name"] == "NVIDIA L4"
    with TensorrtBackend(plan, device_id=1) as backend:  # checked against device 1: fits
        backend.infer(_batches()[0])
    with pytest.raises(BackendUnavailable, match="built for NVIDIA L4") as info:
        TensorrtBackend(plan, device_id=0).load()  # device 0 is another GPU
    assert info.value.exit_code == 3
