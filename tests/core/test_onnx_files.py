"""Saving, checking and publishing ONNX files (optieval.core.onnx_files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optieval.core import (
    check_onnx,
    data_path,
    external_data_locations,
    onnx_file_hashes,
    publish_onnx,
    save_onnx,
    sha256_file,
    verify_onnx,
    write_manifest,
)
from optieval.errors import BackendFailed


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


def _save(tmp_path: Path, nodes: list[onnx.NodeProto], name: str, **io: int) -> Path:
    inputs = [helper.make_tensor_value_info(k, v, [2]) for k, v in io.items() if k != "y"]
    outputs = [helper.make_tensor_value_info("y", io["y"], [2])]
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("acme.ops", 1)]
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=8), str(path))
    return path


def test_verify_names_the_node_a_typed_graph_breaks_at(tmp_path: Path) -> None:
    # The MiniLM fp16 failure: a Cast says float while float16 flows on (plain onnx.checker
    # accepts it; the full check and ONNX Runtime do not).
    nodes = [
        helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Add", ["m", "h"], ["y"], name="add_mask"),
    ]
    path = _save(
        tmp_path, nodes, "b.onnx", mask=TensorProto.INT64, h=TensorProto.FLOAT16,
        y=TensorProto.FLOAT16,
    )  # fmt: skip
    assert check_onnx(path) is None
    with pytest.raises(BackendFailed) as caught:
        verify_onnx(path, label="the fp16 artifact of b.onnx", where="src.onnx")
    assert caught.value.exit_code == 3 and caught.value.where == "src.onnx"
    assert "the fp16 artifact of b.onnx fails onnx.checker (full check)" in str(caught.value)
    assert "at node add_mask (Add)" in str(caught.value)
    dest = tmp_path / "out" / "b.onnx"
    dest.parent.mkdir()
    with pytest.raises(BackendFailed):
        publish_onnx(path, dest, verify=True)
    assert path.is_file() and not dest.exists()  # nothing moved


def test_verify_opens_an_onnx_runtime_session(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="relu"),
        helper.make_node("Mystery", ["h"], ["y"], domain="acme.ops", name="mystery_1"),
    ]
    path = _save(tmp_path, nodes, "c.onnx", x=TensorProto.FLOAT, y=TensorProto.FLOAT)
    assert check_onnx(path, full_check=True) is None  # the checker cannot see it
    with pytest.raises(BackendFailed, match=r"ONNX Runtime cannot load c.onnx at node mystery_1"):
        verify_onnx(path)
    good = tmp_path / "g.onnx"
    model = _model(4)
    onnx.save(model, str(good))
    with pytest.raises(BackendFailed, match=r"load g.onnx: .*Unsupported model IR version"):
        verify_onnx(good)  # onnx writes a newer IR than this ONNX Runtime reads
    model.ir_version = 8
    onnx.save(model, str(good))
    verify_onnx(good)
    (tmp_path / "dest").mkdir()
    assert list(publish_onnx(good, tmp_path / "dest" / "g.onnx", verify=True)) == ["g.onnx"]


def test_a_crash_opening_the_session_is_an_error_about_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ONNX Runtime's optimizers can segfault on a valid model; the probe runs in a child
    # process, so the crash is reported instead of ending optieval.
    from optieval.core import onnx_files

    path = tmp_path / "g.onnx"
    model = _model(4)
    model.ir_version = 8
    onnx.save(model, str(path))
    crash = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    monkeypatch.setattr(onnx_files, "_SESSION_PROBE", crash)
    with pytest.raises(BackendFailed, match=r"load g.onnx: ONNX Runtime crashed \(SIGSEGV\)"):
        verify_onnx(path)
