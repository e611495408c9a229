"""The engine-build sequence against a recording stand-in for ``tensorrt`` (no GPU here): what
optieval asks TensorRT for, what it writes, and how it fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from optieval.errors import BackendFailed, InputError
from optieval.runtime.tensorrt.build import build_plan

from .conftest import install_fake
from .fake_tensorrt import make_fake


def test_fp32_build_writes_plan_and_manifest(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    fake = install_fake(monkeypatch, version=trt_version)
    plan = tmp_path / "mlp.plan"
    result = build_plan(mlp_onnx, plan, precision="fp32", shapes={"x": [(1, 4), (8, 4)]})
    calls = fake.calls
    # STRONGLY_TYPED is bit 1 on 10.x, bit 0 (deprecated, ignored) on 11.x: from the enum
    strongly_typed = int(fake.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert strongly_typed == (1 if trt_version.startswith("10.") else 0)
    assert ("builder.create_network", 1 << strongly_typed) in calls
    assert ("config.clear_flag", "TF32") in calls
    assert ("profile.set_shape", "x", (1, 4), (8, 4), (8, 4)) in calls
    assert ("config.set_timing_cache", False) in calls
    build = next(c for c in calls if c[0] == "builder.build_serialized_network")
    assert build[1].name == "DETAILED" and "TF32" not in build[2]
    assert ("context.set_input_shape", "x", (8, 4)) in calls  # read-back at the opt shape
    assert ("runtime.deserialize_cuda_engine", False) in calls  # no host code
    assert plan.read_bytes().startswith(b"PLAN:")
    manifest = json.loads(Path(result.manifest).read_text())
    assert manifest["kind"] == "tensorrt-engine" and manifest["schema_version"] == 1
    assert manifest["tensorrt"]["version"] == trt_version
    assert manifest["gpu"] == {"name": "NVIDIA H200", "compute_capability": "9.0"}
    assert manifest["precision"]["read_back"]["precision"] == "fp32"
    assert manifest["profiles"] == [{"name": "x", "min": [1, 4], "opt": [8, 4], "max": [8, 4]}]
    assert manifest["io"]["inputs"][0]["shape"] == [None, 4]
    # the timing cache went to the optieval cache and is fed back into the next build
    second = make_fake(version=trt_version)
    monkeypatch.setitem(sys.modules, "tensorrt", second)
    build_plan(mlp_onnx, tmp_path / "again.plan", precision="fp32", shapes={"x": [(2, 4)]})
    assert ("config.create_timing_cache", b"timing-cache") in second.calls


def test_fp16_engine_that_came_out_fp32_is_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    import onnx
    from onnxconverter_common import float16

    from tests.conftest import make_onnx_mlp

    half = float16.convert_float_to_float16(
        onnx.load(str(make_onnx_mlp(tmp_path / "m.onnx"))), keep_io_types=True
    )
    onnx.save(half, str(tmp_path / "m.fp16.onnx"))
    fake = install_fake(monkeypatch, version=trt_version, layer_format="Float")
    plan = tmp_path / "m.plan"
    with pytest.raises(
        BackendFailed, match="requested as fp16 but its layers came out fp32"
    ) as info:
        build_plan(tmp_path / "m.fp16.onnx", plan, precision="fp16", shapes={"x": [(4, 4)]})
    assert info.value.exit_code == 3
    assert not plan.exists()
    assert ("config.clear_flag", "TF32") not in fake.calls  # only the fp32 reference clears it
    install_fake(monkeypatch, version=trt_version, layer_format="Row major linear FP16 format")
    build_plan(tmp_path / "m.fp16.onnx", plan, precision="fp16", shapes={"x": [(4, 4)]})
    assert plan.exists()


def test_parser_errors_name_the_nodes(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(
        monkeypatch,
        version=trt_version,
        parse_errors=[
            {
                "desc": "Unsupported operator",
                "node": 1,
                "node_name": "relu",
                "node_operator": "Relu",
            }
        ],
    )
    with pytest.raises(InputError, match=r"node relu \(Relu\): Unsupported operator") as info:
        build_plan(mlp_onnx, tmp_path / "m.plan", precision="fp32", shapes={"x": [(1, 4)]})
    assert info.value.exit_code == 2


def test_failed_build_quotes_tensorrt(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    install_fake(monkeypatch, version=trt_version, build_fails=True)
    with pytest.raises(BackendFailed, match="out of tactics for node fc1"):
        build_plan(mlp_onnx, tmp_path / "m.plan", precision="fp32", shapes={"x": [(1, 4)]})


def test_portable_build_flags(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trt_version: str
) -> None:
    fake = install_fake(monkeypatch, version=trt_version)
    result = build_plan(
        mlp_onnx,
        tmp_path / "m.plan",
        precision="fp32",
        shapes={"x": [(1, 4)]},
        version_compatible=True,
        hardware_compatible=True,
    )
    assert ("config.set_flag", "VERSION_COMPATIBLE") in fake.calls
    assert int(fake.BuilderFlag.VERSION_COMPATIBLE) == (13 if trt_version < "11" else 12)
    assert result.manifest_data["compatibility"] == {
        "version_compatible": True,
        "hardware_compatible": True,
    }


def test_bad_output_suffix(mlp_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=".plan"):
        build_plan(mlp_onnx, tmp_path / "m.bin", precision="fp32")
