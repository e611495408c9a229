"""Native TensorRT: every piece that does not need the library, on CPU; the hardware path under
the `tensorrt` marker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optieval.core.signature import Signature, TensorSpec
from optieval.errors import BackendFailed, BackendUnavailable, InputError
from optieval.runtime import availability, create_backend
from optieval.runtime.profiles import ProfileShape
from optieval.runtime.tensorrt.backend import TensorrtBackend
from optieval.runtime.tensorrt.build import parser_error_message
from optieval.runtime.tensorrt.library import numpy_dtype_name, parse_version, unusable_reason
from optieval.runtime.tensorrt.manifest import (
    check_engine_manifest,
    engine_cache_key,
    engine_manifest,
)
from optieval.runtime.tensorrt.readback import (
    PrecisionReadback,
    check_readback,
    classify_format,
    parse_inspector_json,
)


def _layer(name: str, kind: str, fmt: str) -> dict[str, Any]:
    tensor = {
        "Name": f"{name}_t",
        "Location": "Device",
        "Dimensions": [8, 4],
        "Format/Datatype": fmt,
    }
    return {"Name": name, "LayerType": kind, "Inputs": [tensor], "Outputs": [dict(tensor)]}


def _inspector(*layers: dict[str, Any]) -> str:
    return json.dumps({"Layers": list(layers), "Bindings": ["x", "y"]})


def test_parse_version() -> None:
    assert parse_version("10.12.0.36") == (10, 12, 0, 36)
    assert parse_version("11.0.0b1") == (11, 0, 0)


def test_unusable_reasons() -> None:
    assert "not installed" in (
        unusable_reason(
            import_error="No module named 'tensorrt'", trt_version=None, cuda_reason=None
        )
        or ""
    )
    assert "older than 10.12" in (
        unusable_reason(import_error=None, trt_version="10.8.0", cuda_reason=None) or ""
    )
    assert "CUDA is not usable: no device" in (
        unusable_reason(import_error=None, trt_version="10.13.0", cuda_reason="no device") or ""
    )
    assert "error: 35" in (
        unusable_reason(
            import_error=None,
            trt_version="11.0.0",
            cuda_reason=None,
            builder_error="CUDA initialization failure with error: 35",
        )
        or ""
    )
    assert unusable_reason(import_error=None, trt_version="11.4.0", cuda_reason=None) is None


def test_availability_here_names_the_reason() -> None:
    state = availability("tensorrt")
    if state.usable:
        pytest.skip("TensorRT runs here")
    assert "TensorRT" in state.reason


def test_unusable_backend_is_exit_3(mlp_onnx: Path) -> None:
    if availability("tensorrt").usable:
        pytest.skip("TensorRT runs here")
    with pytest.raises(BackendUnavailable) as info:
        create_backend("tensorrt", mlp_onnx)
    assert info.value.exit_code == 3
    with pytest.raises(BackendUnavailable, match="TensorRT"):
        TensorrtBackend(mlp_onnx).load()


def test_engine_cache_key_depends_on_everything() -> None:
    base = dict(
        artifact_sha256="a" * 64,
        trt_version="10.13.0",
        gpu_name="NVIDIA H200",
        compute_capability="9.0",
        options={"precision": "fp16", "profiles": []},
    )
    key = engine_cache_key(**base)  # type: ignore[arg-type]
    assert key == engine_cache_key(**base)  # type: ignore[arg-type]
    for field, value in [
        ("artifact_sha256", "b" * 64),
        ("trt_version", "11.0.0"),
        ("gpu_name", "NVIDIA A100"),
        ("compute_capability", "8.0"),
        ("options", {"precision": "fp32", "profiles": []}),
    ]:
        assert engine_cache_key(**{**base, field: value}) != key  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Row major linear FP16 format", "fp16"),
        ("Half", "fp16"),
        ("Thirty-two wide channel vectorized row major Int8 format.", "int8"),
        ("Row major linear FP32", "fp32"),
        ("Float", "fp32"),
        ("Row major linear BFloat16 format", "bf16"),
        ("Row major linear FP8 format", "fp8"),
        ("Row major linear Int32 format", "other"),
        ("N/A due to dynamic shapes", "unknown"),
        ("", "unknown"),
    ],
)
def test_classify_format(text: str, expected: str) -> None:
    assert classify_format(text) == expected


def test_readback_fp16_engine() -> None:
    info = _inspector(
        _layer("Reformatting CopyNode for Input Tensor 0", "Reformat", "Row major linear FP32"),
        _layer("fc1 + relu", "CaskGemm", "Row major linear FP16 format"),
        _layer("fc2", "CaskGemm", "Row major linear FP16 format"),
    )
    readback = parse_inspector_json(info)
    assert readback.precision == "fp16"
    assert readback.counts == {"fp16": 2}  # the reformat layer is bookkeeping
    assert readback.layers[0] == ("fc1 + relu", "CaskGemm", "fp16")
    check_readback("fp16", readback, where="m.onnx")
    check_readback("fp32", readback, where="m.onnx")
    with pytest.raises(BackendFailed, match="requested as int8 but its layers came out fp16"):
        check_readback("int8", readback, where="m.onnx")


def test_fp16_request_that_came_out_fp32_is_exit_3() -> None:
    readback = parse_inspector_json(_inspector(_layer("fc1", "CaskGemm", "Float")))
    with pytest.raises(BackendFailed) as info:
        check_readback("fp16", readback, where="m.onnx")
    assert info.value.exit_code == 3
    assert "came out fp32 (fp32: 1)" in str(info.value) and "optieval convert" in str(info.value)


def test_int8_engine_and_unreadable_readback() -> None:
    int8 = parse_inspector_json(
        _inspector(
            _layer("conv", "CaskConvolution", "Thirty-two wide channel vectorized row major Int8"),
            _layer("head", "CaskGemm", "Row major linear FP32"),
        )
    )
    assert int8.precision == "int8" and int8.counts == {"int8": 1, "fp32": 1}
    check_readback("int8", int8, where="m")
    # verbosity below DETAILED gives plain layer names: nothing to verify a label with
    names_only = parse_inspector_json(json.dumps({"Layers": ["fc1", "fc2"]}))
    assert names_only.precision == "unknown" and names_only.counts == {"unknown": 2}
    with pytest.raises(BackendFailed, match="could not read"):
        check_readback("fp16", names_only, where="m")
    # no readable layer precision is never a silent pass, fp32 included
    with pytest.raises(BackendFailed, match="TensorRT 11.0.0's engine inspector"):
        check_readback("fp32", names_only, where="m", trt_version="11.0.0")
    with pytest.raises(BackendFailed, match="no JSON"):
        parse_inspector_json("not json")
    with pytest.raises(BackendFailed, match="Layers"):
        parse_inspector_json({"Bindings": []})


def test_parser_errors_listed_with_node_names() -> None:
    error = parser_error_message(
        [
            {
                "desc": "unsupported op NonMaxSuppression",
                "node": 12,
                "node_name": "/nms/NMS",
                "node_operator": "NonMaxSuppression",
            },
            {"desc": "invalid weights", "node": 3, "node_name": "", "node_operator": None},
            {"desc": "bad graph", "node": -1},
        ],
        model="m.onnx",
    )
    assert isinstance(error, InputError) and error.exit_code == 2
    text = str(error)
    assert "3 error(s)" in text
    assert "node /nms/NMS (NonMaxSuppression): unsupported op NonMaxSuppression" in text
    assert "node #3: invalid weights" in text and "graph: bad graph" in text


def _manifest(**over: Any) -> dict[str, Any]:
    sig = Signature(
        (TensorSpec("x", "float32", (-1, 4)),), (TensorSpec("logits", "float32", (-1, 3)),)
    )
    data = engine_manifest(
        source={"path": "m.onnx", "sha256": "a" * 64},
        engine_sha256="e" * 64,
        trt_version="10.13.0",
        gpu_name="NVIDIA H200",
        compute_capability="9.0",
        precision="fp16",
        readback=PrecisionReadback({"fp16": 2}, (), "fp16"),
        profiles=[ProfileShape("x", (1, 4), (8, 4), (32, 4))],
        signature=sig,
        build_seconds=12.3456,
        **over,
    )
    return data


def test_engine_manifest_fields() -> None:
    m = _manifest()
    assert m["tensorrt"] == {"version": "10.13.0"}
    assert m["gpu"] == {"name": "NVIDIA H200", "compute_capability": "9.0"}
    assert m["precision"] == {
        "requested": "fp16",
        "read_back": {"precision": "fp16", "counts": {"fp16": 2}},
    }
    assert m["profiles"] == [{"name": "x", "min": [1, 4], "opt": [8, 4], "max": [32, 4]}]
    assert m["source"]["sha256"] == "a" * 64 and m["build_seconds"] == 12.346
    assert m["built_at"].endswith("Z")


def test_engine_manifest_checks() -> None:
    here = dict(trt_version="10.13.0", gpu_name="NVIDIA H200", compute_capability="9.0", where="p")
    assert check_engine_manifest(_manifest(), **here) == []  # type: ignore[arg-type]
    assert check_engine_manifest(  # same cc, other board: a warning only
        _manifest(),
        **{**here, "gpu_name": "NVIDIA H100"},  # type: ignore[arg-type]
    ) == ["engine was built on NVIDIA H200, running on NVIDIA H100"]
    with pytest.raises(BackendUnavailable, match="built with TensorRT 10.13.0, this machine has"):
        check_engine_manifest(_manifest(), **{**here, "trt_version": "10.14.1"})  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable, match=r"compute capability 9.0\), this GPU is"):
        check_engine_manifest(_manifest(), **{**here, "compute_capability": "8.9"})  # type: ignore[arg-type]
    # version-compatible: a newer runtime of the same major is fine, an older one is not
    vc = _manifest(version_compatible=True)
    assert check_engine_manifest(vc, **{**here, "trt_version": "10.14.1"})  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable):
        check_engine_manifest(vc, **{**here, "trt_version": "10.12.0"})  # type: ignore[arg-type]
    hc = _manifest(hardware_compatible=True)
    assert check_engine_manifest(hc, **{**here, "compute_capability": "8.6"})  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable):
        check_engine_manifest(hc, **{**here, "compute_capability": "7.5"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not a TensorRT engine manifest"):
        check_engine_manifest({"kind": "onnx"}, **here)  # type: ignore[arg-type]


def test_numpy_dtype_name() -> None:
    class FakeDataType:
        name = "HALF"

    assert numpy_dtype_name(FakeDataType()) == "float16"
    assert numpy_dtype_name("DataType.FLOAT") == "float32"
    assert numpy_dtype_name("INT64") == "int64"


def test_bad_options() -> None:
    with pytest.raises(InputError, match="io: unknown I/O mode"):
        TensorrtBackend("m.onnx", io="zero-copy")
    with pytest.raises(InputError, match="precision"):
        TensorrtBackend("m.onnx", precision="fp4")


@pytest.mark.tensorrt
def test_tensorrt_builds_runs_and_caches(mlp_onnx: Path, tmp_path: Path) -> None:
    from optieval.runtime.ort import OrtCpuBackend
    from optieval.runtime.tensorrt.build import build_plan

    feeds = {"x": np.ones((4, 4), np.float32)}
    with OrtCpuBackend(mlp_onnx) as cpu:
        expected = cpu.infer(feeds)["logits"]
    shapes = {"x": [(1, 4), (8, 4)]}
    with TensorrtBackend(mlp_onnx, shapes=shapes) as trt:
        np.testing.assert_allclose(trt.infer(feeds)["logits"], expected, rtol=1e-4, atol=1e-5)
        assert trt.options["precision"] == "fp32"
        with pytest.raises(InputError, match="outside the engine's profile"):
            trt.infer({"x": np.ones((16, 4), np.float32)})
        _, device_ms = trt.infer_timed(feeds)
        assert device_ms > 0
    with TensorrtBackend(mlp_onnx, shapes=shapes, cuda_graph=True) as trt:  # from the cache
        assert trt.cold_start_ms is not None
        run = trt.runner(feeds)
        run()
        run()
    plan = tmp_path / "mlp.plan"
    result = build_plan(mlp_onnx, plan, precision="fp32", shapes=shapes)
    assert Path(result.manifest).is_file() and result.manifest_data["gpu"]["compute_capability"]
    with TensorrtBackend(plan) as trt:
        np.testing.assert_allclose(trt.infer(feeds)["logits"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.tensorrt
def test_tensorrt_deferred_build_on_first_feeds(mlp_onnx: Path) -> None:
    """Without shapes, the engine is built for the first feeds' shapes, outside timed calls."""
    with TensorrtBackend(mlp_onnx) as trt:
        loaded_ms = trt.cold_start_ms or 0.0
        trt.infer({"x": np.ones((4, 4), np.float32)})
        assert trt.options["deferred_build_ms"] > 0
        assert (trt.cold_start_ms or 0.0) > loaded_ms
        with pytest.raises(InputError, match=r"outside the engine's profile 4x4 \.\. 4x4"):
            trt.infer({"x": np.ones((8, 4), np.float32)})
