"""ort-cuda / ort-trt on a CPU-only machine: option mapping, census check and the strict
no-fallback check (onnxruntime-gpu is installed here without CUDA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optieval.core.signature import Signature, TensorSpec
from optieval.errors import BackendUnavailable, InputError
from optieval.runtime import ort as ort_mod
from optieval.runtime import ort_providers
from optieval.runtime.ort import (
    OrtCpuBackend,
    OrtCudaBackend,
    cuda_provider_options,
    resolve_output_shapes,
)
from optieval.runtime.ort_trt import (
    ORT_TRT_PRECISION_SOURCE,
    OrtTrtBackend,
    ort_trt_fp32_math,
    ort_trt_provider_options,
)
from optieval.runtime.profiles import ProfileShape

from .conftest import known_gpu, stub_trt_ep_sessions


def test_cuda_provider_options() -> None:
    assert cuda_provider_options() == {
        "device_id": 0,
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "use_tf32": "0",
    }
    assert cuda_provider_options(device_id=1, enable_cuda_graph=True)["enable_cuda_graph"] == "1"


@pytest.mark.parametrize(
    "precision, fp16, int8",
    [("fp32", "False", "False"), ("fp16", "True", "False"), ("int8", "False", "True")],
)
def test_ort_trt_precision_switches(tmp_path: Path, precision: str, fp16: str, int8: str) -> None:
    opts = ort_trt_provider_options(
        precision=precision,
        cache_folder=tmp_path,
        profiles=[ProfileShape("x", (1, 4), (8, 4), (8, 4))],
    )
    assert opts["trt_fp16_enable"] == fp16 and opts["trt_int8_enable"] == int8
    assert opts["trt_engine_cache_enable"] == "True"
    assert opts["trt_engine_cache_path"] == str(tmp_path) == opts["trt_timing_cache_path"]
    assert opts["trt_profile_opt_shapes"] == "x:8x4"


def test_ort_trt_rejects_bf16(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="bf16"):
        ort_trt_provider_options(precision="bf16", cache_folder=tmp_path)


def test_resolve_output_shapes() -> None:
    sig = Signature(
        (TensorSpec("x", "float32", ("batch", 4)),), (TensorSpec("y", "float32", ("batch", 3)),)
    )
    assert resolve_output_shapes(sig, {"x": (5, 4)}) == {"y": (5, 3)}
    odd = Signature(sig.inputs, (TensorSpec("y", "float32", ("n_boxes", 4)),))
    assert resolve_output_shapes(odd, {"x": (5, 4)}) is None


def test_ort_cuda_unavailable_names_the_missing_library(mlp_onnx: Path) -> None:
    """Constructed directly (no registry check), load() still refuses: the missing CUDA
    library is named, and no CPU session is ever handed out."""
    if ort_mod.OrtCudaBackend.availability().usable:
        pytest.skip("CUDA provider loads here")
    backend = OrtCudaBackend(mlp_onnx)
    with pytest.raises(BackendUnavailable) as info:
        backend.load()
    assert info.value.exit_code == 3
    assert ".so" in str(info.value)  # e.g. libcublasLt.so.13: cannot open shared object file
    assert backend.session is None and not backend.is_loaded


class _FakeSession:
    def __init__(self, path: str, sess_options: Any, providers: list[Any]) -> None:
        self.requested = providers

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]  # what ORT does when the GPU provider fails quietly


def test_quiet_cpu_fallback_is_refused(mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    monkeypatch.setattr(ort_providers, "provider_library_error", lambda ort, provider: None)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FakeSession)
    for cls in (OrtCudaBackend, OrtTrtBackend):
        backend = cls(mlp_onnx, shapes={"x": [(2, 4)]}) if cls is OrtTrtBackend else cls(mlp_onnx)
        with pytest.raises(BackendUnavailable, match="instead of"):
            backend.load()
        assert backend.session is None


def test_provider_lists(mlp_onnx: Path) -> None:
    cuda = OrtCudaBackend(mlp_onnx)
    assert [p if isinstance(p, str) else p[0] for p in cuda.providers()] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    strict = OrtCudaBackend(mlp_onnx, strict_placement=True)
    assert [p[0] for p in strict.providers()] == ["CUDAExecutionProvider"]
    trt = OrtTrtBackend(mlp_onnx)
    assert [p if isinstance(p, str) else p[0] for p in trt.providers()] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_ort_trt_options_from_census_and_shapes(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ort-trt's load computes its provider options before the session: check them with the
    session creation stubbed out."""
    seen = stub_trt_ep_sessions(monkeypatch)
    known_gpu(monkeypatch)  # the engine cache is on only where the GPU can be identified
    backend = OrtTrtBackend(mlp_onnx, shapes={"x": [(1, 4), (16, 4)]})
    backend.load()
    name, opts = seen[-1][0]
    assert name == "TensorrtExecutionProvider"
    assert opts["trt_fp16_enable"] == "False"  # the mlp is fp32 by its graph census
    assert opts["trt_profile_min_shapes"] == "x:1x4" and opts["trt_profile_max_shapes"] == "x:16x4"
    assert Path(opts["trt_engine_cache_path"]).is_relative_to(
        Path(__import__("os").environ["OPTIEVAL_CACHE"])
    )
    assert backend.options["precision"] == "fp32"
    assert backend.options["precision_source"] == ORT_TRT_PRECISION_SOURCE
    assert "census" in backend.options["precision_source"]


def test_ort_trt_shapes_must_fit_the_model(mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_providers, "provider_library_error", lambda ort, provider: None)
    with pytest.raises(InputError, match="'x' shape 2x5 does not fit float32\\[batchx4\\]"):
        OrtTrtBackend(mlp_onnx, shapes={"x": [(2, 5)]}).load()


def test_precision_label_checked_against_census(mlp_onnx: Path) -> None:
    with pytest.raises(InputError, match="requested precision fp16 .* computes in fp32"):
        OrtCpuBackend(mlp_onnx, precision="fp16").load()
    with OrtCpuBackend(mlp_onnx, precision="fp32") as backend:
        assert backend.options["precision"] == "fp32"


def test_bad_io_mode() -> None:
    with pytest.raises(InputError, match="io: unknown I/O mode"):
        OrtCudaBackend("m.onnx", io="pinned")


@pytest.mark.ort_cuda
def test_ort_cuda_device_and_host_io(mlp_onnx: Path) -> None:
    feeds = {"x": np.ones((2, 4), np.float32)}
    with OrtCpuBackend(mlp_onnx) as cpu:
        expected = cpu.infer(feeds)["logits"]
    for io in ("device", "host"):
        with OrtCudaBackend(mlp_onnx, io=io) as backend:
            assert backend.options["providers"][0] == "CUDAExecutionProvider"
            np.testing.assert_allclose(backend.infer(feeds)["logits"], expected, rtol=1e-4)
            backend.runner(feeds)()
    with OrtCudaBackend(mlp_onnx, enable_cuda_graph=True) as backend:
        np.testing.assert_allclose(backend.infer(feeds)["logits"], expected, rtol=1e-4)
        run = backend.runner(feeds)
        run()
        run()


class _CpuBoundCuda(OrtCudaBackend):
    """ort-cuda's I/O-binding code driven on the CPU provider: the same binding calls, with
    OrtValues on the host (the provider and its options are the only differences)."""

    name = "ort-cuda"
    provider = "CPUExecutionProvider"
    ort_device = "cpu"

    def provider_options(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize("io", ["device", "host"])
def test_io_binding_paths(mlp_onnx: Path, io: str) -> None:
    feeds = {"x": np.arange(12, dtype=np.float32).reshape(3, 4)}
    with OrtCpuBackend(mlp_onnx) as cpu:
        expected = cpu.infer(feeds)["logits"]
    with _CpuBoundCuda(mlp_onnx, io=io) as backend:
        run = backend.runner(feeds)
        run()
        np.testing.assert_allclose(backend.infer(feeds)["logits"], expected, rtol=1e-6)


def test_graph_runners_each_feed_their_own_batch(mlp_onnx: Path) -> None:
    """Issue 16 item 2: with --data the bench makes one runner per batch; under a CUDA graph
    they share one graph's input buffers, so each call copies its batch in when another batch
    ran last (and says that the copy is timed)."""
    rng = np.random.default_rng(3)
    batches = [{"x": rng.normal(size=(2, 4)).astype(np.float32)} for _ in range(3)]
    with OrtCpuBackend(mlp_onnx) as cpu:
        want = [cpu.infer(b)["logits"] for b in batches]
    with _CpuBoundCuda(mlp_onnx, enable_cuda_graph=True) as backend:
        loaded = backend.cold_start_ms or 0.0
        runners = [backend.runner(b) for b in batches]
        assert backend._graph_binding is not None
        binding = backend._graph_binding[0]
        for i in (0, 1, 2, 2, 0):
            runners[i]()
            np.testing.assert_allclose(binding.copy_outputs_to_cpu()[0], want[i], rtol=1e-6)
        assert "timed" in backend.options["graph_input_copy"]
        # the capture runs (three: ORT captures on the third) count in cold start, once
        assert len(backend.options["graph_capture_ms"]) == 1
        assert (backend.cold_start_ms or 0.0) > loaded


def test_single_graph_runner_does_not_copy(mlp_onnx: Path) -> None:
    feeds = {"x": np.ones((2, 4), np.float32)}
    with _CpuBoundCuda(mlp_onnx, enable_cuda_graph=True) as backend:
        run = backend.runner(feeds)
        fed = backend._graph_fed
        run()
        assert backend._graph_fed is fed  # nothing copied inside the timed call
        assert "graph_input_copy" not in backend.options


class _CpuBoundTrt(OrtTrtBackend):
    """ort-trt's load and I/O-binding code driven on the CPU provider."""

    provider = "CPUExecutionProvider"
    ort_device = "cpu"

    def provider_options(self) -> dict[str, Any]:
        return {}


def test_ort_trt_binds_io_on_the_device_and_honours_cuda_graph(mlp_onnx: Path) -> None:
    feeds = {"x": np.arange(8, dtype=np.float32).reshape(2, 4)}
    with OrtCpuBackend(mlp_onnx) as cpu:
        expected = cpu.infer(feeds)["logits"]
    with _CpuBoundTrt(mlp_onnx, shapes={"x": [(2, 4)]}) as backend:
        assert backend.options["io"] == "device"
        run = backend.runner(feeds)
        assert getattr(run, "func", None) == backend.session.run_with_iobinding  # bound I/O
        assert "trt_cuda_graph_enable" not in backend._trt_options
    with _CpuBoundTrt(mlp_onnx, shapes={"x": [(2, 4)]}, enable_cuda_graph=True) as backend:
        assert backend._trt_options["trt_cuda_graph_enable"] == "True"
        run = backend.runner(feeds)
        run()
        assert backend._graph_binding is not None
        np.testing.assert_allclose(
            backend._graph_binding[0].copy_outputs_to_cpu()[0], expected, rtol=1e-6
        )
        # no GPU here: the fp32 math cannot be read, and says so
        assert backend.options["fp32_math"] == "unknown"


@pytest.mark.parametrize(
    ("cc", "math"),
    [("8.0", "tf32"), ("9.0", "tf32"), ("12.0", "tf32"), ("7.5", "fp32"), (None, "unknown")],
)
def test_ort_trt_fp32_is_tf32_from_ampere(cc: str | None, math: str) -> None:
    assert ort_trt_fp32_math(cc) == math


def test_fixed_buffer_path_updates_in_place(mlp_onnx: Path) -> None:
    """The CUDA-graph path binds fixed buffers once and copies new feeds into them."""
    a = {"x": np.ones((2, 4), np.float32)}
    b = {"x": np.full((2, 4), 3.0, np.float32)}
    with OrtCpuBackend(mlp_onnx) as cpu:
        want_a, want_b = cpu.infer(a)["logits"], cpu.infer(b)["logits"]
    with _CpuBoundCuda(mlp_onnx, enable_cuda_graph=True) as backend:
        np.testing.assert_allclose(backend.infer(a)["logits"], want_a, rtol=1e-6)
        np.testing.assert_allclose(backend.infer(b)["logits"], want_b, rtol=1e-6)
        with pytest.raises(InputError, match="captured for other input shapes"):
            backend.infer({"x": np.ones((5, 4), np.float32)})
        backend.runner(b)()


def test_ort_trt_shape_outside_profile_names_the_range(
    mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Arg:
        def __init__(self, name: str, shape: list[Any]) -> None:
            self.name, self.type, self.shape = name, "tensor(float)", shape

    stub_trt_ep_sessions(monkeypatch, [Arg("x", ["batch", 4])], [Arg("logits", ["batch", 3])])
    with OrtTrtBackend(mlp_onnx, shapes={"x": [(1, 4), (8, 4)]}) as backend:
        backend.check_feeds({"x": np.ones((8, 4), np.float32)})
        with pytest.raises(InputError, match=r"'x' shape 9x4 is outside .* 1x4 \.\. 8x4") as info:
            backend.check_feeds({"x": np.ones((9, 4), np.float32)})
        assert info.value.exit_code == 2
        with pytest.raises(InputError, match="dtype float64"):
            backend.check_feeds({"x": np.ones((2, 4))})


def test_host_io_graph_runner_copies_every_call(mlp_onnx: Path) -> None:
    """io="host" includes the copy in every call, also with a CUDA graph and one batch."""
    feeds = {"x": np.ones((2, 4), np.float32)}
    with _CpuBoundCuda(mlp_onnx, enable_cuda_graph=True, io="host") as backend:
        run = backend.runner(feeds)
        assert backend._graph_binding is not None
        values = backend._graph_binding[1]
        values["x"].update_inplace(np.zeros((2, 4), np.float32))  # clobber the input buffer
        run()
        np.testing.assert_array_equal(values["x"].numpy(), feeds["x"])  # copied in again
