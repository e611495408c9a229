"""Saving, checking and publishing ONNX files (optieval.core.onnx_files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optieval.core import (
    check_onnx,
    data_path,
    external_data_locations,
    onnx_file_hashes,
    publish_onnx,
    save_onnx,
    sha256_file,
    write_manifest,
)


def _model(size: int = 64) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((size, size), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, size])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_save_check_and_publish_with_external_data(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    staged = stage / "m.onnx"
    save_onnx(_model(), staged, external=True)
    assert data_path(staged).is_file()
    assert external_data_locations(onnx.load(str(staged), load_external_data=False)) == [
        "m.onnx.data"
    ]
    assert check_onnx(staged, full_check=True) is None
    files = publish_onnx(staged, tmp_path / "m.onnx")
    assert list(files) == ["m.onnx", "m.onnx.data"]
    assert files == onnx_file_hashes(tmp_path / "m.onnx")
    assert not staged.exists() and not data_path(staged).exists()
    onnx.checker.check_model(str(tmp_path / "m.onnx"))


def test_publishing_a_self_contained_model_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    (tmp_path / "m.onnx.data").write_bytes(b"old")
    (tmp_path / "old.bin").write_bytes(b"old")
    write_manifest(out, {"files": {"m.onnx": "0", "old.bin": "0", "../keep": "0"}})
    (tmp_path / "stage").mkdir()
    staged = tmp_path / "stage" / "m.onnx"
    save_onnx(_model(4), staged, external=False)
    assert external_data_locations(onnx.load(str(staged))) == []
    files = publish_onnx(staged, out)
    assert files == {"m.onnx": sha256_file(out)}
    assert not (tmp_path / "m.onnx.data").exists() and not (tmp_path / "old.bin").exists()


def test_check_reports_the_checker_message(tmp_path: Path) -> None:
    model = _model(4)
    model.graph.node[0].input.append("nothing")  # MatMul takes two inputs
    path = tmp_path / "bad.onnx"
    onnx.save_model(model, str(path))
    problem = check_onnx(path)
    assert problem is not None and "MatMul" in problem
