from pathlib import Path

import numpy as np
import pytest

from optieval.errors import BackendUnavailable, InputError
from optieval.runtime import availability, create_backend
from optieval.runtime.ort import OrtCpuBackend, OrtCudaBackend


def test_ort_cpu_life_cycle(mlp_onnx: Path) -> None:
    backend = OrtCpuBackend(mlp_onnx, threads=1)
    assert not backend.is_loaded
    with backend:
        assert backend.signature.inputs[0].name == "x"
        assert backend.signature.inputs[0].shape == ("batch", 4)
        out = backend.infer({"x": np.ones((3, 4), np.float32)})
        assert out["logits"].shape == (3, 3)
        assert backend.cold_start_ms is not None and backend.cold_start_ms > 0
        assert backend.options["threads"] == 1
        runner = backend.runner({"x": np.ones((2, 4), np.float32)})
        assert runner()[0].shape == (2, 3)
    assert not backend.is_loaded


def test_feed_errors_name_the_input(mlp_onnx: Path) -> None:
    with OrtCpuBackend(mlp_onnx) as backend:
        with pytest.raises(InputError, match="missing \\['x'\\]"):
            backend.infer({"y": np.ones((1, 4), np.float32)})
        with pytest.raises(InputError, match="dtype float64"):
            backend.infer({"x": np.ones((1, 4))})
        with pytest.raises(InputError, match="shape 1x5"):
            backend.infer({"x": np.ones((1, 5), np.float32)})


def test_unparsable_model_is_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="ONNX|parse"):
        OrtCpuBackend(bad).load()


def test_bad_thread_count() -> None:
    with pytest.raises(InputError, match="threads: thread count"):
        OrtCpuBackend("m.onnx", threads=0)


def test_ort_cuda_never_falls_back_to_cpu(mlp_onnx: Path) -> None:
    """onnxruntime-gpu here has no CUDA: asking for ort-cuda must fail, not run on the CPU."""
    state = availability("ort-cuda")
    if state.usable:
        pytest.skip("CUDA provider loads on this machine")
    assert state.reason  # names the missing library or provider
    with pytest.raises(BackendUnavailable):
        create_backend("ort-cuda", mlp_onnx)
    # Even constructed directly, the strict check refuses a CPU session under a CUDA label.
    with pytest.raises(BackendUnavailable):
        OrtCudaBackend(mlp_onnx).load()
