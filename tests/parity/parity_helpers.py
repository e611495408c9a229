"""Tiny models and data for the parity tests (built here, in milliseconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_deep_mlp(
    path: Path,
    *,
    features: int = 8,
    hidden: int = 16,
    classes: int = 4,
    layers: int = 4,
    seed: int = 0,
) -> Path:
    """A Gemm/Relu chain: nodes fc0, relu0, ..., fc{layers-1}; input ``x``, output ``logits``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    dims = [features] + [hidden] * (layers - 1) + [classes]
    inits, nodes, prev = [], [], "x"
    for i in range(layers):
        w = rng.normal(size=(dims[i], dims[i + 1])) / np.sqrt(dims[i])
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        inits.append(
            numpy_helper.from_array(
                (rng.normal(size=dims[i + 1]) * 0.1).astype(np.float32), f"b{i}"
            )
        )
        out = "logits" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], name=f"fc{i}"))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "deep_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def quantize_int8(source: Path, dest: Path, *, samples: int = 128, seed: int = 0) -> Path:
    """Static QDQ INT8 (symmetric, per-channel) with ONNX Runtime's quantizer, directly."""
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    rng = np.random.default_rng(seed)
    batches = [{"x": rng.normal(size=(8, 8)).astype(np.float32)} for _ in range(samples // 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(
        str(source),
        str(dest),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    return dest


def break_weight(model_path: Path, initializer: str, dest: Path) -> Path:
    """Negate one initializer (an int8 weight of a QDQ model, say): a deliberately broken node."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    for init in model.graph.initializer:
        if init.name == initializer:
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), initializer))
            break
    else:
        raise KeyError(initializer)
    onnx.save(model, str(dest))
    return dest


def logits_with_flips(
    n: int, classes: int, flip_fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference logits with a clear winner per row, and a candidate where exactly
    ``round(n * flip_fraction)`` rows have their argmax moved to another class."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, classes))
    winners = rng.integers(0, classes, size=n)
    ref[np.arange(n), winners] += 10.0
    cand = ref.copy()
    flips = round(n * flip_fraction)
    rows = rng.choice(n, size=flips, replace=False)
    for r in rows:
        other = (winners[r] + 1 + rng.integers(0, classes - 1)) % classes
        cand[r, other] = ref[r, winners[r]] + 1.0
    return ref, cand, flips
