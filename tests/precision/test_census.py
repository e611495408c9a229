"""The precision census: compute nodes by precision, the int8 rule, Q/DQ pairs, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optieval.errors import InputError
from optieval.precision.graph_census import Census, census

FIXTURES = Path(__file__).parent / "fixtures"


def _model(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], elem: int = 1
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", elem, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _scalar(name: str, value: float | int, dtype: type) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _qdq_conv(weight_from_dq: bool = True) -> onnx.ModelProto:
    inits = [
        _scalar("s", 0.1, np.float32),
        _scalar("z", 0, np.int8),
        numpy_helper.from_array(np.ones((3,), np.float32), "ws"),
        numpy_helper.from_array(np.zeros((3,), np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
    ]
    if weight_from_dq:
        inits.append(numpy_helper.from_array(np.ones((3, 2, 1, 1), np.int8), "wq"))
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0))
    else:
        inits.append(numpy_helper.from_array(np.ones((3, 2, 1, 1), np.float32), "w"))
    nodes.append(helper.make_node("Conv", ["xd", "w"], ["y"], name="conv"))
    return _model(nodes, inits)


def test_fp32_mlp(mlp_onnx: Path) -> None:
    found = census(onnx.load(str(mlp_onnx)))
    assert found.compute == {"fp32": 2, "fp16": 0, "int8": 0}
    assert found.by_op == {"Gemm": {"fp32": 2}}
    assert found.dominant_precision == "fp32" and found.has_precision("fp32")
    assert not found.has_precision("int8") and found.qdq_pairs == 0


def test_int8_rule_needs_both_activation_and_weight_from_int8_dequantize() -> None:
    quantized = census(_qdq_conv())
    assert quantized.compute["int8"] == 1 and quantized.qdq_pairs == 1
    assert quantized.dequantize_nodes == 2
    weight_float = census(_qdq_conv(weight_from_dq=False))
    assert weight_float.compute == {"fp32": 1, "fp16": 0, "int8": 0}
    assert weight_float.qdq_pairs == 1  # Q/DQ present, but the conv still computes in fp32


def test_weight_seen_through_a_transpose() -> None:
    inits = [
        _scalar("s", 0.1, np.float32),
        _scalar("z", 0, np.int8),
        numpy_helper.from_array(np.ones((4, 4), np.int8), "wq"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
        helper.make_node("Transpose", ["wd"], ["wt"]),
        helper.make_node("MatMul", ["xd", "wt"], ["y"]),
    ]
    assert census(_model(nodes, inits)).compute["int8"] == 1


def test_fp16_compute_behind_casts() -> None:
    inits = [numpy_helper.from_array(np.ones((3, 2, 1, 1), np.float16), "w")]
    nodes = [
        helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["xh", "w"], ["yh"]),
        helper.make_node("Cast", ["yh"], ["y"], to=TensorProto.FLOAT),
    ]
    found = census(_model(nodes, inits))
    assert found.compute == {"fp32": 0, "fp16": 1, "int8": 0}
    assert found.dominant_precision == "fp16"


def test_quantized_operators_count_as_int8() -> None:
    inits = [
        _scalar("s", 0.1, np.float32),
        _scalar("z", 0, np.uint8),
        numpy_helper.from_array(np.ones((3, 2, 1, 1), np.uint8), "w"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "s", "z", "w", "s", "z", "s", "z"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"]),
    ]
    found = census(_model(nodes, inits))
    assert found.by_op == {"Conv": {"int8": 1}}


def test_no_compute_and_ties() -> None:
    empty = census(_model([helper.make_node("Relu", ["x"], ["y"])], []))
    assert empty.total_compute == 0 and empty.dominant_precision is None
    tie = Census({"fp32": 1, "fp16": 0, "int8": 1})
    assert tie.dominant_precision == "int8"  # ties go to the lower precision
    assert "1 fp32, 1 int8" in tie.describe()


def test_json_round_trip_and_version_refusal() -> None:
    found = census(_qdq_conv())
    assert Census.from_json(json.loads(json.dumps(found.to_json()))) == found
    with pytest.raises(InputError, match="schema_version"):
        Census.from_json({**found.to_json(), "schema_version": 99})


def test_released_schema_v1_fixture_still_reads() -> None:
    data = json.loads((FIXTURES / "census_v1.json").read_text())
    found = Census.from_json(data)
    assert found.compute["int8"] == 2 and found.qdq_pairs == 7


def test_released_inspect_schema_v1_fixture_still_reads() -> None:
    from optieval.precision.inspect import ModelInfo

    data = json.loads((FIXTURES / "inspect_v1.json").read_text())
    info = ModelInfo.from_json(data)
    assert info.census.compute["int8"] == 2 and info.signature.inputs[0].name == "x"
    assert ModelInfo.from_json(info.to_json()) == info
    with pytest.raises(InputError, match="schema_version"):
        ModelInfo.from_json({**data, "schema_version": 0})
