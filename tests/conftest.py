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
