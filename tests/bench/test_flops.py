"""FLOP counts of small graphs against counts by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optieval.bench.flops import FlopCount, count_flops
from optieval.errors import InputError
from tests.conftest import make_onnx_mlp

F32 = TensorProto.FLOAT


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, list[Any]]],
    outputs: list[str],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
    extra_opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F32, None) for n in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    return model


def _w(*shape: int) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def test_mlp_gemm_by_hand(tmp_path: Path) -> None:
    path = make_onnx_mlp(tmp_path / "mlp.onnx")
    model = onnx.load(str(path))
    count = count_flops(model, {"x": (8, 4)})
    # fc1: 8x4 @ 4x8 -> 8*4*8 MACs; fc2: 8x8 @ 8x3 -> 8*8*3 MACs
    assert count.macs == 8 * 4 * 8 + 8 * 8 * 3
    assert count.flops == 2 * count.macs == 896
    assert count.by_op_type == {"Gemm": 896}
    assert count.left_out == {"Relu": 1}
    assert count.unresolved == ()
    assert [n.name for n in count.nodes] == ["fc1", "fc2"]
    assert count_flops(model, {"x": (2, 4)}).flops == 896 // 4  # linear in batch
    assert count.input_shapes == {"x": (8, 4)}


def test_conv_with_padding_and_groups() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["y1", "w2"], ["y2"], name="c2", group=2, strides=[2, 2]),
    ]
    model = _model(
        nodes, [("x", ["N", 3, 8, 8])], ["y2"], {"w1": _w(4, 3, 3, 3), "w2": _w(6, 2, 3, 3)}
    )
    count = count_flops(model, {"x": (2, 3, 8, 8)})
    c1 = 2 * 4 * 8 * 8 * (3 * 3 * 3)  # N*M*H*W * C*kh*kw
    c2 = 2 * 6 * 3 * 3 * (2 * 3 * 3)  # out 3x3 (stride 2, no pad); C/group = 2
    assert count.macs == c1 + c2
    assert {n.name: n.flops for n in count.nodes} == {"c1": 2 * c1, "c2": 2 * c2}


def test_conv_transpose() -> None:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    model = _model([node], [("x", [1, 2, 4, 4])], ["y"], {"w": _w(2, 3, 3, 3)})
    # each of the 1*2*4*4 inputs scatters into M/group * kh * kw = 3*3*3 outputs
    assert count_flops(model, {}).macs == 1 * 2 * 4 * 4 * 27


def test_batched_matmul_gemm_trans_and_reshape_by_data_propagation() -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["m"], name="mm"),  # (B,3,4) @ (4,5)
        helper.make_node("MatMul", ["m", "m2"], ["m3"], name="bmm"),  # (B,3,5) @ (B,5,2)
        helper.make_node("Gemm", ["a", "b"], ["g"], name="gemm", transA=1),  # (7,5)^T @ (7,6)
    ]
    model = _model(
        nodes,
        [("x", ["B", 12]), ("m2", ["B", 5, 2]), ("a", [7, 5])],
        ["m3", "g"],
        {"shape": np.array([0, 3, 4], dtype=np.int64), "w": _w(4, 5), "b": _w(7, 6)},
    )
    count = count_flops(model, {"x": (6, 12), "m2": (6, 5, 2)})
    per = {n.name: n.flops // 2 for n in count.nodes}
    assert per == {"mm": 6 * 3 * 5 * 4, "bmm": 6 * 3 * 2 * 5, "gemm": 5 * 6 * 7}
    assert count.left_out == {"Reshape": 1}


def test_large_initializers_are_read_by_shape_only() -> None:
    # 64 x 512 weights (32768 elements) take the typed-input path of the light copy
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    model = _model([node], [("x", ["B", 64])], ["y"], {"w": _w(64, 512)})
    before = model.SerializeToString()
    assert count_flops(model, {"x": (4, 64)}).macs == 4 * 64 * 512
    assert model.SerializeToString() == before  # the caller's model is untouched


def _qdq_conv_model() -> onnx.ModelProto:
    scale = np.array(0.1, dtype=np.float32)
    zp = np.array(0, dtype=np.int8)
    w_q = np.ones((4, 3, 3, 3), dtype=np.int8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="qconv"),
        helper.make_node("Conv", ["y", "wf"], ["z"], name="fconv"),
    ]
    return _model(
        nodes,
        [("x", ["N", 3, 6, 6])],
        ["z"],
        {"s": scale, "zp": zp, "wq": w_q, "wf": _w(2, 4, 1, 1)},
        opset=19,
    )


def test_qdq_conv_counts_as_conv_and_as_quantized() -> None:
    count = count_flops(_qdq_conv_model(), {"x": (1, 3, 6, 6)})
    q_macs = 1 * 4 * 4 * 4 * 27
    f_macs = 1 * 2 * 4 * 4 * 4
    assert count.macs == q_macs + f_macs
    assert count.quantized_flops == 2 * q_macs
    assert {n.name: n.quantized for n in count.nodes} == {"qconv": True, "fconv": False}
    assert count.left_out == {"DequantizeLinear": 2, "QuantizeLinear": 1}
    assert count.mostly_quantized and count.unit == "GOP/s"


def test_qlinear_ops() -> None:
    s = np.array(0.1, dtype=np.float32)
    zp = np.array(0, dtype=np.uint8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
        helper.make_node(
            "QLinearConv", ["xq", "s", "zp", "wq", "s", "zp", "s", "zp"], ["yq"], name="qlc"
        ),
        helper.make_node("Reshape", ["yq", "shape"], ["flat"]),
        helper.make_node(
            "QLinearMatMul", ["flat", "s", "zp", "mq", "s", "zp", "s", "zp"], ["o"], name="qlm"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", F32, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("o", TensorProto.UINT8, None)],
        initializer=[
            numpy_helper.from_array(s, "s"),
            numpy_helper.from_array(zp, "zp"),
            numpy_helper.from_array(np.ones((3, 2, 3, 3), np.uint8), "wq"),
            numpy_helper.from_array(np.array([1, 27], np.int64), "shape"),
            numpy_helper.from_array(np.ones((27, 10), np.uint8), "mq"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    count = count_flops(model, {})
    assert {n.name: n.flops // 2 for n in count.nodes} == {
        "qlc": 1 * 3 * 3 * 3 * (2 * 3 * 3),
        "qlm": 1 * 10 * 27,
    }
    assert count.quantized_flops == count.flops


def test_onnx_attention_4d_and_3d() -> None:
    four = _model(
        [helper.make_node("Attention", ["q", "k", "v"], ["y"], name="att")],
        [("q", ["B", 4, 5, 8]), ("k", ["B", 4, 6, 8]), ("v", ["B", 4, 6, 16])],
        ["y"],
        opset=23,
    )
    shapes4 = {"q": (2, 4, 5, 8), "k": (2, 4, 6, 8), "v": (2, 4, 6, 16)}
    # Q K^T: B*H*Sq*Skv*Dk, then P V: B*H*Sq*Skv*Dv
    assert count_flops(four, shapes4).macs == 2 * 4 * 5 * 6 * (8 + 16)
    three = _model(
        [
            helper.make_node(
                "Attention", ["q", "k", "v"], ["y"], name="att", q_num_heads=4, kv_num_heads=2
            )
        ],
        [("q", ["B", 5, 32]), ("k", ["B", 6, 16]), ("v", ["B", 6, 16])],
        ["y"],
        opset=23,
    )
    shapes3 = {"q": (2, 5, 32), "k": (2, 6, 16), "v": (2, 6, 16)}
    # 4 query heads of 8, value heads of 16/2 = 8 (grouped-query)
    assert count_flops(three, shapes3).macs == 2 * 4 * 5 * 6 * (8 + 8)


def test_ms_multihead_attention() -> None:
    model = _model(
        [
            helper.make_node(
                "MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", num_heads=4
            )
        ],
        [("q", ["B", 5, 32]), ("k", ["B", 6, 32]), ("v", ["B", 6, 32])],
        ["y"],
        extra_opsets={"com.microsoft": 1},
    )
    count = count_flops(model, {"q": (2, 5, 32), "k": (2, 6, 32), "v": (2, 6, 32)})
    assert count.macs == 2 * 5 * 6 * (32 + 32)
    assert count.by_op_type == {"com.microsoft.MultiHeadAttention": 2 * count.macs}


def test_unknown_shapes_are_listed_not_guessed() -> None:
    nodes = [
        helper.make_node("Mystery", ["x"], ["h"], domain="com.example", name="odd"),
        helper.make_node("MatMul", ["h", "w"], ["y"], name="mm"),
    ]
    model = _model(
        nodes, [("x", ["B", 4])], ["y"], {"w": _w(4, 3)}, extra_opsets={"com.example": 1}
    )
    count = count_flops(model, {"x": (2, 4)})
    assert count.flops == 0
    assert count.unresolved == ("mm",)
    assert count.left_out == {"com.example.Mystery": 1}


def test_bad_shapes_are_all_named_in_one_error() -> None:
    nodes = [helper.make_node("MatMul", ["x", "y"], ["z"])]
    model = _model(nodes, [("x", [4, "K"]), ("y", ["K", 3])], ["z"])
    with pytest.raises(InputError) as info:
        count_flops(model, {"x": (5, 2), "nope": (1,)})
    message = str(info.value)
    assert info.value.where == "shapes"
    assert "'nope' is not an input" in message
    assert "dimension 0 is fixed at 4, got 5" in message
    assert "'y' has dynamic dimensions" in message
    with pytest.raises(InputError, match="rank 3 given"):
        count_flops(model, {"x": (4, 2, 1), "y": (2, 3)})
    with pytest.raises(InputError, match="below 1"):
        count_flops(model, {"x": (4, 0), "y": (0, 3)})


def test_json_round_trip_and_achieved_rate() -> None:
    count = count_flops(_qdq_conv_model(), {"x": (2, 3, 6, 6)})
    again = FlopCount.from_json(json.loads(json.dumps(count.to_json())))
    assert again == count
    assert count.achieved_per_s(1.0) == pytest.approx(count.flops / 1e-3 / 1e9)
    with pytest.raises(InputError):
        count.achieved_per_s(0.0)
    with pytest.raises(InputError):
        FlopCount.from_json({"flops": 1})


def test_a_malformed_node_is_unresolved_not_a_crash() -> None:
    node = helper.make_node(
        "Attention", ["q", "k", "v"], ["y"], name="att", q_num_heads=4, kv_num_heads=0
    )
    model = _model(
        [node], [("q", [2, 5, 32]), ("k", [2, 6, 16]), ("v", [2, 6, 16])], ["y"], opset=23
    )
    count = count_flops(model, {})
    assert count.unresolved == ("att",) and count.flops == 0
