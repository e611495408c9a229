"""The precision a backend labels its results with comes from the artifact's census."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optieval.errors import InputError
from optieval.precision.labels import artifact_precision, graph_precision, require_precision


def test_plain_fp32_graph(mlp_onnx: Path) -> None:
    assert artifact_precision(mlp_onnx) == "fp32"
    assert require_precision(mlp_onnx, None, where="m") == "fp32"


def test_fp16_graph_from_census(tmp_path: Path) -> None:
    import onnx
    from onnxconverter_common import float16

    from tests.conftest import make_onnx_mlp

    model = onnx.load(str(make_onnx_mlp(tmp_path / "m.onnx")))
    half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(tmp_path / "m.fp16.onnx"))
    assert artifact_precision(tmp_path / "m.fp16.onnx") == "fp16"
    with pytest.raises(
        InputError, match="requested precision int8 but the artifact computes in fp16"
    ):
        require_precision(tmp_path / "m.fp16.onnx", "int8", where="m")


def test_manifest_label_wins(mlp_onnx: Path) -> None:
    manifest = {"schema_version": 1, "precision": "int8", "census": {"dominant_precision": "int8"}}
    Path(str(mlp_onnx) + ".json").write_text(json.dumps(manifest))
    assert artifact_precision(mlp_onnx) == "int8"


def test_graph_without_compute_nodes_reads_types() -> None:
    from onnx import TensorProto, helper

    cast = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)
    graph = helper.make_graph(
        [cast],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1])],
    )
    assert graph_precision(helper.make_model(graph)) == "fp16"
    dq = helper.make_node("DequantizeLinear", ["q", "s"], ["y"])
    graph = helper.make_graph([dq], "g", [], [])
    assert graph_precision(helper.make_model(graph)) == "int8"


def test_unknown_precision_name(mlp_onnx: Path) -> None:
    with pytest.raises(InputError, match="unknown precision"):
        require_precision(mlp_onnx, "fp4", where="m")


def test_model_signature_of_onnx_and_engine(mlp_onnx: Path, tmp_path: Path) -> None:
    from optieval.precision.labels import is_engine, model_signature

    assert model_signature(mlp_onnx).inputs[0].shape == ("batch", 4)
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"engine")
    assert is_engine(plan) and not is_engine(mlp_onnx)
    with pytest.raises(InputError, match="no manifest"):
        model_signature(plan)
    io = {
        "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 4]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": [None, 3]}],
    }
    (tmp_path / "m.plan.json").write_text(json.dumps({"schema_version": 1, "io": io}))
    assert model_signature(plan).outputs[0].name == "logits"
    with pytest.raises(InputError, match="not found"):
        model_signature(tmp_path / "none.plan")
