"""FP16 artifacts that always load: optieval's rewrite on a torch transformer (LayerNorm,
softmax attention, ``.to(torch.float32)`` masks, mean pooling) and on hand-built graphs; the
verification before publishing; the time limit and progress."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optieval import export_model
from optieval.core import cache_root
from optieval.errors import BackendFailed
from optieval.precision import DEFAULT_FP16_BLOCK_LIST, convert
from optieval.precision import fp16 as fp16_module
from optieval.precision.fp16 import conversion_limits

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def encoder_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("encoder")
    out = folder / "encoder.onnx"
    result = export_model(
        "tiny_encoder.py:make",
        out,
        inputs=["input_ids:2x16:int64", "attention_mask:2x16:int64"],
        input_ranges=["input_ids:0:100", "attention_mask:1:2"],
        dynamic=["batch", "input_ids:1:seq", "attention_mask:1:seq"],
        base_dir=HERE,
    )
    assert result.parity.passed
    return out


def _feeds(batch: int = 6, seq: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 100, (batch, seq))
    mask = np.ones((batch, seq), np.int64)
    for row in range(batch):  # padded sentences of different lengths
        mask[row, seq - 3 * row :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _session(path: Path | str) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _elem_types(path: Path | str) -> dict[str, int]:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.output, *g.input)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def _cache_entries() -> list[Path]:
    folder = cache_root() / "precision"
    return [p for p in folder.iterdir()] if folder.is_dir() else []


def test_transformer_fp16_loads_and_matches_fp32(encoder_onnx: Path) -> None:
    result = convert(encoder_onnx, "fp16")
    out = Path(result.output)
    onnx.checker.check_model(str(out), full_check=True)
    feeds = _feeds()
    ref = _session(encoder_onnx).run(None, feeds)[0]
    got = _session(out).run(None, feeds)[0]
    assert got.dtype == np.float32
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() >= 0.999
    # MultiheadAttention's batch-first Transposes feed 4 MatMuls, kept in FP32 (ONNX Runtime
    # 1.31 crashes opening them in FP16: fp16.batch_transposed_matmuls).
    assert result.census.compute["fp16"] == 8 and result.census.compute["fp32"] == 4
    model = onnx.load(str(out))
    types = _elem_types(out)
    fp32_matmuls = set(fp16_module.batch_transposed_matmuls(model))
    for node in model.graph.node:
        if node.op_type == "Cast":  # the attribute and the declared output type agree
            to = next(a.i for a in node.attribute if a.name == "to")
            assert types[node.output[0]] == to, node.name
        if node.op_type in ("LayerNormalization", "Softmax", "ReduceSum"):  # kept in FP32
            assert types[node.input[0]] == TensorProto.FLOAT, node.name
            assert types[node.output[0]] == TensorProto.FLOAT, node.name
        if node.op_type == "MatMul":
            want = TensorProto.FLOAT if node.name in fp32_matmuls else TensorProto.FLOAT16
            assert types[node.output[0]] == want, node.name
    assert {"LayerNormalization", "Softmax", "ReduceMean", "Pow", "Exp"} <= set(
        result.options["op_block_list"]
    )
    assert set(DEFAULT_FP16_BLOCK_LIST) <= set(result.options["op_block_list"])


def test_exclude_cast_keeps_every_cast_fp32(encoder_onnx: Path, tmp_path: Path) -> None:
    result = convert(encoder_onnx, "fp16", exclude=["Cast"], output=tmp_path / "e.onnx")
    source_casts = [n for n in onnx.load(str(encoder_onnx)).graph.node if n.op_type == "Cast"]
    model = onnx.load(result.output)
    kept = [n for n in model.graph.node if n.name in {c.name for c in source_casts}]
    assert len(kept) == len(source_casts) >= 2
    assert all(n.attribute[0].i == TensorProto.FLOAT for n in kept)
    feeds = _feeds(2, 9)
    ref = _session(encoder_onnx).run(None, feeds)[0]
    got = _session(result.output).run(None, feeds)[0]
    assert np.abs(ref - got).max() < 0.05


def test_broken_artifact_is_backend_failed_and_not_cached(
    encoder_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fp16_module.convert_to_fp16

    def broken(model: onnx.ModelProto, *args: object, **kwargs: object) -> onnx.ModelProto:
        model = real(model, *args, **kwargs)  # type: ignore[arg-type]
        cast = next(n for n in model.graph.node if n.op_type == "Cast" and n.input[0] == "x")
        cast.attribute[0].i = TensorProto.FLOAT  # declares fp32 where fp16 flows on
        return model

    # The mask cast of the encoder reads an int tensor; give the test an fp32 graph input.
    model = _model_with_float_input(tmp_path)
    monkeypatch.setattr(fp16_module, "convert_to_fp16", broken)
    before = _cache_entries()
    destination = tmp_path / "m.fp16.onnx"
    with pytest.raises(BackendFailed) as caught:
        convert(model, "fp16", output=destination)
    assert caught.value.exit_code == 3
    text = str(caught.value)
    # The node named is where the types stop agreeing: the MatMul reading the cast.
    assert "the fp16 artifact of m.onnx fails onnx.checker" in text
    assert "at node mm (MatMul)" in text
    assert caught.value.where == str(model)
    assert not destination.exists() and not Path(str(destination) + ".json").exists()
    assert _cache_entries() == before  # nothing left in the cache


def _model_with_float_input(folder: Path, seed: int = 0) -> Path:
    """x (fp32) -> MatMul -> LayerNormalization -> Reshape -> Softmax -> Add(const) -> y, with
    a constant read by both an FP16 and an FP32 node and an If reading an FP16 tensor."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    scale = numpy_helper.from_array(np.ones(8, np.float32), "scale")
    shape = numpy_helper.from_array(np.array([0, 8], np.int64), "shape")
    big = helper.make_tensor("big", TensorProto.FLOAT, [8], [-3.4e38] * 4 + [1e-12] * 4)
    cond = numpy_helper.from_array(np.array(True), "cond")
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, None)
    then = helper.make_graph([helper.make_node("Relu", ["h"], ["b"])], "then", [], [branch_out])
    other = helper.make_graph(
        [helper.make_node("Neg", ["h"], ["b"])],
        "else",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT, name="cast_x"),
        helper.make_node("MatMul", ["xc", "w"], ["h"], name="mm"),
        helper.make_node("Constant", [], ["c"], value=big, name="const"),
        helper.make_node("Add", ["h", "c"], ["h2"], name="add_c"),
        helper.make_node("LayerNormalization", ["h2", "scale", "c"], ["ln"], name="ln"),
        helper.make_node("Reshape", ["ln", "shape"], ["r"], name="reshape"),
        helper.make_node("Softmax", ["r"], ["s"], name="softmax"),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then, else_branch=other),
        helper.make_node("Add", ["s", "branch"], ["y"], name="add_out"),
        helper.make_node("Mul", ["h", "w2"], ["z"], name="mul_out"),
    ]
    w2 = numpy_helper.from_array(np.full(8, 0.5, np.float32), "w2")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 8]),
        ],
        [w, scale, shape, cond, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    path = folder / "m.onnx"
    onnx.save(model, str(path))
    return path


def test_hand_built_graph_converts_exactly_where_it_should(tmp_path: Path) -> None:
    source = _model_with_float_input(tmp_path)
    result = convert(source, "fp16")
    out = Path(result.output)
    onnx.checker.check_model(str(out), full_check=True)
    types = _elem_types(out)
    model = onnx.load(str(out))
    nodes = {n.name: n for n in model.graph.node}
    assert types[nodes["mm"].output[0]] == TensorProto.FLOAT16
    assert types[nodes["mul_out"].output[0]] == TensorProto.FLOAT16  # cast back at the edge
    assert types["z"] == TensorProto.FLOAT and types["y"] == TensorProto.FLOAT
    assert types[nodes["ln"].input[0]] == TensorProto.FLOAT
    # The constant is read in FP32 by LayerNorm (its epsilon-sized values intact) and in FP16
    # by the Add (clipped to the FP16 range, not -inf).
    assert types[nodes["ln"].input[2]] == TensorProto.FLOAT
    const_values = {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t)
        for n in model.graph.node
        if n.op_type == "Constant"
    }
    fp32_c = const_values[nodes["ln"].input[2]]
    half_c = const_values[nodes["add_c"].input[1]]
    assert fp32_c.dtype == np.float32 and fp32_c[-1] == np.float32(1e-12)
    assert half_c.dtype == np.float16 and np.isfinite(half_c).all() and (half_c[-4:] > 0).all()
    # The Reshape between two FP32 nodes stays FP32 (no round trip through FP16).
    assert types[nodes["reshape"].output[0]] == TensorProto.FLOAT
    # The If's branches read h, an FP16 tensor, through a cast to FP32.
    if_node = next(n for n in model.graph.node if n.op_type == "If")
    read = {i for a in if_node.attribute for n in a.g.node for i in n.input}
    assert "h" not in read and all(types[name] == TensorProto.FLOAT for name in read)
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    ref = _session(source).run(None, {"x": x})
    got = _session(out).run(None, {"x": x})
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=0.02, atol=0.02)


def test_time_limit_names_the_slow_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _model_with_float_input(tmp_path, seed=5)  # not in the cache yet
    real = fp16_module._tensor_types

    def slow(*args: object) -> dict[str, int]:
        time.sleep(0.3)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fp16_module, "_tensor_types", slow)
    seen: list[str] = []
    before = _cache_entries()
    with pytest.raises(BackendFailed) as caught:
        convert(source, "fp16", time_limit=0.2, progress=seen.append)
    assert "time limit of 0.2 s in tensor types" in str(caught.value)
    assert seen[:2] == ["fp16: shape inference", "fp16: tensor types"]
    assert _cache_entries() == before
    monkeypatch.setenv("OPTIEVAL_CONVERT_TIME_LIMIT", "0.2")
    with pytest.raises(BackendFailed, match="time limit of 0.2 s"):
        convert(source, "fp16")
    with conversion_limits(time_limit=60):  # the explicit limit wins over the environment
        assert Path(convert(source, "fp16").output).is_file()


def test_a_batch_transposed_matmul_stays_fp32_and_the_artifact_loads(tmp_path: Path) -> None:
    # nn.MultiheadAttention(batch_first=True) exports Transpose(perm=[1, 0, 2]) -> MatMul;
    # ONNX Runtime 1.31 on CPU crashes opening that pair in FP16 (its FusedMatMul fusion).
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.random((16, 48), np.float32), "w")
    head = numpy_helper.from_array(rng.random((48, 8), np.float32), "w2")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2], name="swap"),
        helper.make_node("MatMul", ["t", "w"], ["m"], name="proj"),
        helper.make_node("Relu", ["m"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight, head],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    source = tmp_path / "attn.onnx"
    onnx.save(model, str(source))
    assert fp16_module.batch_transposed_matmuls(model) == ["proj", "swap"]
    result = convert(source, "fp16", output=tmp_path / "attn.fp16.onnx")  # verified: it loads
    converted = onnx.load(result.output)
    kept = {n.name for n in converted.graph.node if n.op_type in ("Transpose", "MatMul")}
    assert fp16_module.batch_transposed_matmuls(converted) == ["proj", "swap"]
    assert kept == {"proj", "swap", "head"}
    assert result.census.compute["fp16"] == 1 and result.census.compute["fp32"] == 1
    x = np.random.default_rng(1).random((2, 5, 16), np.float32)
    want = _session(source).run(None, {"x": x})[0]
    got = _session(result.output).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-2)
