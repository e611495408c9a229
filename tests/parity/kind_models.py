"""Tiny models whose outputs are not class scores, built here in milliseconds: a sentence
encoder (token embeddings, a two-layer MLP per token, masked mean pooling, L2 norm) and a
regression head; and token data for the encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 64
SEQ = 12


def make_encoder(
    path: Path, *, dim: int = 16, hidden: int = 32, output: str = "sentence_embedding"
) -> Path:
    """A sentence encoder: ``input_ids``/``attention_mask`` (batch x seq, int64) -> ``output``
    (batch x dim), unit-norm rows."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(a.astype(np.float32), name)

    inits = [
        init("emb", rng.normal(size=(VOCAB, dim))),
        init("w1", rng.normal(size=(dim, hidden)) / np.sqrt(dim)),
        init("b1", rng.normal(size=hidden) * 0.1),
        init("w2", rng.normal(size=(hidden, dim)) / np.sqrt(hidden)),
        init("b2", rng.normal(size=dim) * 0.1),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
    ]
    n = helper.make_node
    nodes = [
        n("Gather", ["emb", "input_ids"], ["tok"], name="embed"),
        n("MatMul", ["tok", "w1"], ["h1"], name="mm1"),
        n("Add", ["h1", "b1"], ["h1b"], name="add1"),
        n("Relu", ["h1b"], ["r1"], name="relu1"),
        n("MatMul", ["r1", "w2"], ["h2"], name="mm2"),
        n("Add", ["h2", "b2"], ["h2b"], name="add2"),
        n("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT, name="cast_mask"),
        n("Unsqueeze", ["maskf", "axis_last"], ["mask3"], name="unsq"),
        n("Mul", ["h2b", "mask3"], ["masked"], name="apply_mask"),
        n("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0, name="pool_sum"),
        n("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0, name="pool_count"),
        n("Div", ["summed", "count"], ["pooled"], name="pool_mean"),
        n("ReduceL2", ["pooled"], ["norm"], axes=[1], keepdims=1, name="l2"),
        n("Div", ["pooled", "norm"], [output], name="normalize"),
    ]
    graph = helper.make_graph(
        nodes,
        "encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", SEQ]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", SEQ]),
        ],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", dim])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def token_data(path: Path, samples: int = 64, *, seed: int = 0) -> Path:
    """``samples`` token sequences of random lengths (3..SEQ), padded with 0 and masked."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(samples, SEQ)).astype(np.int64)
    lengths = rng.integers(3, SEQ + 1, size=samples)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    np.savez(path, input_ids=ids * mask, attention_mask=mask)
    return path


def make_regressor(path: Path, *, features: int = 8, outputs: int = 1, name: str = "y") -> Path:
    """A regression head: ``x`` (batch x features) -> Gemm, Relu, Gemm -> ``name``
    (batch x outputs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.normal(size=(features, 16)).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.normal(size=16) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(16, outputs)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.full(outputs, 3.0, np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], [name], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "regressor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", outputs])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path
