"""Shared fixtures, and the capability probes behind the ``gpu``, ``ort_cuda`` and ``tensorrt``
markers: a marked test runs wherever its hardware is present and is skipped elsewhere."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest


@functools.cache
def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.cache
def _ort_cuda() -> bool:
    from optieval.runtime import availability

    return availability("ort-cuda").usable


@functools.cache
def _tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return _torch_cuda()


_PROBES = {"gpu": _torch_cuda, "ort_cuda": _ort_cuda, "tensorrt": _tensorrt}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, probe in _PROBES.items():
            if marker in item.keywords and not probe():
                item.add_marker(pytest.mark.skip(reason=f"{marker}: not available on this machine"))


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's artifacts out of the user's ~/.cache/optieval."""
    monkeypatch.setenv("OPTIEVAL_CACHE", str(tmp_path_factory.getbasetemp() / "optieval-cache"))


def make_onnx_mlp(
    path: Path, *, batch: int | str = "batch", features: int = 4, classes: int = 3, seed: int = 0
) -> Path:
    """Write a tiny Gemm-Relu-Gemm ONNX classifier (input ``x``, output ``logits``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(size=(features, 8)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(size=(8, classes)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "b2")
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=[w1, b1, w2, b2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def mlp_onnx(tmp_path: Path) -> Path:
    """A tiny dynamic-batch ONNX classifier."""
    return make_onnx_mlp(tmp_path / "mlp.onnx")


# The precision tests' tiny conv net (onnx.helper) and calibration data.
def make_onnx_cnn(
    path: Path, *, batch: int | str = "batch", seed: int = 0, external: bool = False
) -> Path:
    """Write a tiny Conv-Relu-Conv-Relu-GlobalAveragePool-Flatten-Gemm classifier.

    Input ``x`` [batch, 1, 8, 8] float32, output ``logits`` [batch, 3]. Nodes are named
    ``conv1``, ``relu1``, ``conv2``, ``relu2``, ``gap``, ``flat``, ``fc``. ``external`` keeps every
    initializer in ``<name>.data`` beside the file.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name: str, shape: tuple[int, ...], scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])],
        initializer=[
            init("w1", (8, 1, 3, 3), 0.5),
            init("b1", (8,), 0.1),
            init("w2", (8, 8, 3, 3), 0.3),
            init("b2", (8,), 0.1),
            init("wf", (8, 3), 0.5),
            init("bf", (3,), 0.1),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    if external:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, str(path))
    return path


def calib_array(count: int = 24, seed: int = 1) -> np.ndarray:
    """``count`` samples for the CNN's input ``x``."""
    return np.random.default_rng(seed).normal(size=(count, 1, 8, 8)).astype(np.float32)


@pytest.fixture
def cnn_onnx(tmp_path: Path) -> Path:
    """A tiny dynamic-batch conv net."""
    return make_onnx_cnn(tmp_path / "cnn.onnx")


@pytest.fixture
def calib_npz(tmp_path: Path) -> Path:
    """24 calibration samples for ``cnn_onnx`` plus an unrelated ``labels`` key."""
    path = tmp_path / "calib.npz"
    np.savez(path, x=calib_array(), labels=np.arange(24))
    return path
