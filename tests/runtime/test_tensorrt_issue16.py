"""Issue 16's TensorRT 10/11 fixes against the recording stand-in for ``tensorrt``: the
inspector's two JSON schemas, plugins registered before deserializing, a None engine, and the
timing cache TensorRT rejects or does not return."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optieval.errors import BackendFailed
from optieval.runtime.tensorrt.backend import TensorrtBackend
from optieval.runtime.tensorrt.build import build_plan, timing_cache_path
from optieval.runtime.tensorrt.readback import (
    check_readback,
    parse_inspector_json,
    tensor_precision,
)

from .conftest import install_fake
from .fake_tensorrt import PERSONALITIES, make_fake

VERSIONS = PERSONALITIES  # the fake's personality (enums, inspector schema) follows the major


_install = install_fake


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        ({"Format/Datatype": "Row major linear FP16 format"}, "fp16"),
        ({"Format": "Row major linear", "Datatype": "Half"}, "fp16"),
        ({"Format": "Row major linear", "Datatype": "Float"}, "fp32"),
        ({"Format": "Thirty-two wide channel vectorized row major Int8 format"}, "int8"),
        ({"Format": "Row major linear"}, "unknown"),  # a layout alone names no type
        ({"Name": "t"}, "unknown"),
    ],
)
def test_tensor_precision_reads_both_schemas(tensor: dict[str, str], expected: str) -> None:
    assert tensor_precision(tensor) == expected


def test_tensorrt_11_inspector_json_reads_back() -> None:
    tensor = {"Name": "t", "Format": "Row major linear", "Datatype": "Half"}
    layer = {"Name": "fc1", "LayerType": "CaskGemm", "Inputs": [tensor], "Outputs": [tensor]}
    readback = parse_inspector_json(json.dumps({"Layers": [layer]}))
    assert readback.precision == "fp16" and readback.counts == {"fp16": 1}
    check_readback("fp16", readback, where="m", trt_version="11.0.0")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("precision", "layer_format"), [("fp32", "Float"), ("fp16", "Row major linear FP16 format")]
)
def test_build_reads_precision_back_from_either_schema(
    version: str,
    precision: str,
    layer_format: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnx
    from onnxconverter_common import float16

    from tests.conftest import make_onnx_mlp

    model = make_onnx_mlp(tmp_path / "m.onnx")
    if precision == "fp16":
        half = float16.convert_float_to_float16(onnx.load(str(model)), keep_io_types=True)
        model = tmp_path / "m.fp16.onnx"
        onnx.save(half, str(model))
    _install(monkeypatch, version=version, layer_format=layer_format)
    result = build_plan(model, tmp_path / "m.plan", precision=precision, shapes={"x": [(4, 4)]})
    assert result.manifest_data["precision"]["read_back"]["precision"] == precision
    assert result.manifest_data["tensorrt"]["version"] == version


@pytest.mark.parametrize("version", VERSIONS)
def test_unreadable_readback_fails_fp32_naming_the_version(
    version: str, mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(monkeypatch, version=version, layer_format="N/A due to dynamic shapes")
    plan = tmp_path / "m.plan"
    with pytest.raises(BackendFailed, match=f"TensorRT {version}'s engine inspector") as info:
        build_plan(mlp_onnx, plan, precision="fp32", shapes={"x": [(1, 4)]})
    assert info.value.exit_code == 3
    assert not plan.exists()


def test_build_registers_plugins_before_deserializing(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    fake = _install(monkeypatch, version=trt_version)
    build_plan(mlp_onnx, tmp_path / "m.plan", precision="fp32", shapes={"x": [(1, 4)]})
    names = [c[0] for c in fake.calls]
    assert ("init_libnvinfer_plugins", "") in fake.calls
    assert names.index("init_libnvinfer_plugins") < names.index("runtime.deserialize_cuda_engine")


def test_prebuilt_plan_registers_plugins_before_deserializing(
    tmp_path: Path, trt_version: str
) -> None:
    fake = make_fake(version=trt_version)
    plan = tmp_path / "model.plan"
    backend = TensorrtBackend(plan)
    backend._deserialize(fake, b"PLAN:{}", where=plan)
    names = [c[0] for c in fake.calls]
    assert names.index("init_libnvinfer_plugins") < names.index("runtime.deserialize_cuda_engine")
    assert backend._engine is not None


def test_prebuilt_plan_that_does_not_deserialize_is_exit_3(
    tmp_path: Path, trt_version: str
) -> None:
    fake = make_fake(deserialize_fails=True, version=trt_version)
    plan = tmp_path / "model.plan"
    backend = TensorrtBackend(plan)
    with pytest.raises(BackendFailed, match="could not deserialize") as info:
        backend._deserialize(fake, b"PLAN:{}", where=plan)
    assert info.value.exit_code == 3
    assert str(plan) in str(info.value)


def test_built_engine_that_does_not_deserialize_is_exit_3(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    _install(monkeypatch, deserialize_fails=True, version=trt_version)
    with pytest.raises(BackendFailed, match="could not deserialize") as info:
        build_plan(mlp_onnx, tmp_path / "m.plan", precision="fp32", shapes={"x": [(1, 4)]})
    assert info.value.exit_code == 3
    assert str(mlp_onnx) in str(info.value)


def test_rejected_timing_cache_is_replaced_and_noted(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    _install(monkeypatch, version=trt_version)
    first = build_plan(mlp_onnx, tmp_path / "a.plan", precision="fp32", shapes={"x": [(1, 4)]})
    assert first.manifest_data["build_notes"] == []
    fake = _install(monkeypatch, reject_timing_cache=True, version=trt_version)
    second = build_plan(mlp_onnx, tmp_path / "b.plan", precision="fp32", shapes={"x": [(1, 4)]})
    assert ("config.create_timing_cache", b"timing-cache") in fake.calls
    assert ("config.create_timing_cache", b"") in fake.calls  # built with a fresh cache
    assert [c for c in fake.calls if c[0] == "config.set_timing_cache"] == [
        ("config.set_timing_cache", False)
    ] * 2
    notes = second.manifest_data["build_notes"]
    assert len(notes) == 1 and "rejected the timing cache" in notes[0]
    assert trt_version in notes[0]


def test_missing_timing_cache_is_noted_not_written(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    cache = timing_cache_path(trt_version, "9.0", "NVIDIA H200")
    cache.unlink(missing_ok=True)  # earlier tests share the session's optieval cache
    _install(monkeypatch, no_timing_cache=True, version=trt_version)
    result = build_plan(mlp_onnx, tmp_path / "m.plan", precision="fp32", shapes={"x": [(1, 4)]})
    assert not cache.exists()
    notes = result.manifest_data["build_notes"]
    assert len(notes) == 1 and "returned no timing cache" in notes[0]


def test_timing_cache_keyed_by_version_cc_and_device() -> None:
    base = timing_cache_path("10.13.0", "9.0", "NVIDIA H200")
    assert base == timing_cache_path("10.13.0", "9.0", "NVIDIA H200")
    assert base != timing_cache_path("10.13.0", "9.0", "NVIDIA H100 80GB HBM3")
    assert base != timing_cache_path("10.13.0", "8.9", "NVIDIA H200")
    assert base != timing_cache_path("11.0.0", "9.0", "NVIDIA H200")


def test_fp16_request_needs_most_compute_layers_in_fp16() -> None:
    """Issue 16 item 8: one fp16 layer does not make an fp16 engine; the compute layers (as
    the ONNX census counts them) must mostly be fp16, pointwise layers do not count."""
    from optieval.runtime.tensorrt.readback import compute_counts

    def engine(*layers: tuple[str, str, str]) -> Any:
        return parse_inspector_json(
            json.dumps(
                {
                    "Layers": [
                        {"Name": n, "LayerType": t, "Inputs": [{"Datatype": d}], "Outputs": []}
                        for n, t, d in layers
                    ]
                }
            )
        )

    one_of_four = engine(
        ("fc1", "CaskGemm", "Half"),
        ("fc2", "CaskGemm", "Float"),
        ("fc3", "CaskGemm", "Float"),
        ("conv", "CaskConvolution", "Float"),
    )
    assert one_of_four.precision == "fp16"  # the old check passed on this
    with pytest.raises(BackendFailed, match="most of its compute layers came out fp32") as info:
        check_readback("fp16", one_of_four, where="m")
    assert info.value.exit_code == 3
    pointwise_only = engine(
        ("gelu", "PointWiseV2", "Half"),
        ("add", "PointWiseV2", "Half"),
        ("fc1", "CaskGemm", "Float"),
    )
    assert compute_counts(pointwise_only) == {"fp32": 1}
    with pytest.raises(BackendFailed, match="compute layers came out fp32"):
        check_readback("fp16", pointwise_only, where="m")
    mostly = engine(
        ("fc1", "CaskGemm", "Half"),
        ("fc2", "CaskGemm", "Half"),
        ("head", "CaskGemm", "Float"),
        ("softmax", "Softmax", "Float"),
    )
    check_readback("fp16", mostly, where="m")
    check_readback("bf16", engine(("fc1", "CaskGemm", "BF16")), where="m")
