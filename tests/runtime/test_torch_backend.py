"""torch-cpu fully on CPU; torch-cuda's refusals here and its GPU path under the `gpu` marker."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optieval.errors import BackendUnavailable, InputError
from optieval.runtime import availability, create_backend
from optieval.runtime.torch_backend import TorchCpuBackend, TorchCudaBackend

MODEL_PY = textwrap.dedent(
    """
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x, scale):
            h = self.fc(x) * scale
            return {"logits": h, "hidden_states": (x + 1, h.relu())}


    def make():
        return Net().eval(), (torch.ones(2, 4), torch.full((2, 1), 2.0))
    """
)

IO = {
    "inputs": [
        {"name": "x", "dtype": "float32", "shape": ["batch", 4]},
        {"name": "scale", "dtype": "float32", "shape": ["batch", 1]},
    ],
    "outputs": [
        {"name": "logits", "dtype": "float32", "shape": ["batch", 3]},
        {"name": "hidden_states.0", "dtype": "float32", "shape": ["batch", 4]},
        {"name": "hidden_states.1", "dtype": "float32", "shape": ["batch", 3]},
    ],
}


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "netmod.py").write_text(MODEL_PY)
    return tmp_path


@pytest.fixture
def exported(spec_dir: Path) -> Path:
    """A stand-in for `optieval export`'s output: model.onnx plus its manifest."""
    model = spec_dir / "model.onnx"
    model.write_bytes(b"")  # the torch backends never read the ONNX itself
    manifest = {
        "schema_version": 1,
        "provenance": {"spec": "netmod.py:make", "base_dir": str(spec_dir)},
        "io": IO,
    }
    (spec_dir / "model.onnx.json").write_text(json.dumps(manifest))
    return model


def _feeds(batch: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((batch, 4)).astype(np.float32),
        "scale": np.full((batch, 1), 3.0, np.float32),
    }


def _reference(feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    torch.manual_seed(0)
    fc = torch.nn.Linear(4, 3)
    with torch.no_grad():
        return (fc(torch.from_numpy(feeds["x"])) * 3.0).numpy()


def test_torch_cpu_from_manifest(exported: Path) -> None:
    with create_backend("torch-cpu", exported) as backend:
        assert backend.options["source"] == "manifest"
        assert [o.name for o in backend.signature.outputs] == [
            "logits",
            "hidden_states.0",
            "hidden_states.1",
        ]
        feeds = _feeds(5)
        out = backend.infer(feeds)
        assert list(out) == ["logits", "hidden_states.0", "hidden_states.1"]
        np.testing.assert_allclose(out["logits"], _reference(feeds), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["hidden_states.0"], feeds["x"] + 1)
        assert out["logits"].dtype == np.float32
        assert backend.cold_start_ms is not None and backend.cold_start_ms > 0
        run = backend.runner(feeds)
        run()


def test_torch_cpu_from_spec_without_manifest(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(spec_dir)
    with TorchCpuBackend(None, spec="netmod.py:make", threads=1) as backend:
        assert backend.options["source"] == "spec" and backend.options["threads"] == 1
        # names come from forward's parameters and the flattened outputs
        assert [s.name for s in backend.signature.inputs] == ["x", "scale"]
        assert backend.signature.inputs[0].shape == ("batch", 4)
        assert [o.name for o in backend.signature.outputs] == [
            "logits",
            "hidden_states.0",
            "hidden_states.1",
        ]
        feeds = _feeds(3)
        np.testing.assert_allclose(backend.infer(feeds)["logits"], _reference(feeds), rtol=1e-5)


def test_bad_feeds_name_the_input_and_signature(exported: Path) -> None:
    with TorchCpuBackend(exported) as backend:
        feeds = _feeds()
        with pytest.raises(InputError, match=r"missing \['scale'\]") as info:
            backend.infer({"x": feeds["x"]})
        assert "x: float32[batchx4]; scale: float32[batchx1]" in str(info.value)
        with pytest.raises(InputError, match="'x' has dtype float64"):
            backend.infer({**feeds, "x": feeds["x"].astype(np.float64)})
        with pytest.raises(InputError, match="'x' has shape 2x5"):
            backend.infer({**feeds, "x": np.ones((2, 5), np.float32)})


def test_manifest_with_other_outputs_is_backend_failed(exported: Path) -> None:
    manifest_path = exported.with_name("model.onnx.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["io"]["outputs"] = manifest["io"]["outputs"][:2]
    manifest_path.write_text(json.dumps(manifest))
    from optieval.errors import BackendFailed

    with TorchCpuBackend(exported) as backend, pytest.raises(BackendFailed, match="3 outputs"):
        backend.infer(_feeds())


@pytest.mark.parametrize(
    "cls, precision, match",
    [
        (TorchCpuBackend, "int8", "int8 is not a torch precision"),
        (TorchCudaBackend, "int8", "int8 is not a torch precision"),
        (TorchCpuBackend, "fp16", "autocast on CUDA only"),
        (TorchCpuBackend, "bf16", "autocast on CUDA only"),
        (TorchCpuBackend, "fp8", "unknown precision"),
    ],
)
def test_precision_refusals_are_exit_2(cls: type, precision: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        cls("model.onnx", precision=precision)
    assert info.value.exit_code == 2


def test_needs_a_model_or_spec() -> None:
    with pytest.raises(InputError, match="`spec`"):
        TorchCpuBackend(None)


def test_model_without_manifest_is_input_error(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="no manifest"):
        TorchCpuBackend(tmp_path / "m.onnx").load()


def test_torch_cuda_unusable_here_says_why(exported: Path) -> None:
    state = availability("torch-cuda")
    if state.usable:
        pytest.skip("CUDA is usable here")
    assert "CPU-only build" in state.reason or "CUDA" in state.reason
    with pytest.raises(BackendUnavailable) as info:
        create_backend("torch-cuda", exported)
    assert info.value.exit_code == 3
    with pytest.raises(BackendUnavailable):
        TorchCudaBackend(exported).load()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_matches_cpu_and_times_on_device(exported: Path, precision: str) -> None:
    feeds = _feeds(4)
    with TorchCpuBackend(exported) as cpu:
        expected = cpu.infer(feeds)
    tol = 1e-4 if precision == "fp32" else 5e-2
    with TorchCudaBackend(exported, precision=precision) as gpu:
        out = gpu.infer(feeds)
        for name, value in expected.items():
            assert out[name].dtype == np.float32
            np.testing.assert_allclose(out[name], value, rtol=tol, atol=tol)
        outputs, device_ms = gpu.infer_timed(feeds)
        assert device_ms > 0 and set(outputs) == set(expected)
        timer = gpu.device_runner(feeds)
        assert all(timer() > 0 for _ in range(3))
        gpu.runner(feeds)()
    with TorchCudaBackend(exported, io="host") as gpu:
        gpu.runner(feeds)()


def test_cuda_unusable_reasons() -> None:
    from types import SimpleNamespace

    from optieval.runtime.torch_backend import cuda_unusable_reason

    def fake(cuda_version: str | None, *, available: bool = False, count: Any = 0) -> Any:
        def device_count() -> int:
            if isinstance(count, Exception):
                raise count
            return int(count)

        def init() -> None:
            raise RuntimeError("Found no NVIDIA driver on your system")

        cuda = SimpleNamespace(is_available=lambda: available, device_count=device_count, init=init)
        return SimpleNamespace(
            __version__="2.13.0", version=SimpleNamespace(cuda=cuda_version), cuda=cuda
        )

    assert "CPU-only build" in (cuda_unusable_reason(fake(None)) or "")
    assert cuda_unusable_reason(fake("12.8", available=True)) is None
    assert "no NVIDIA driver" in (cuda_unusable_reason(fake("12.8")) or "")
    assert "driver error: boom" in (
        cuda_unusable_reason(fake("12.8", count=RuntimeError("boom"))) or ""
    )
