"""INT8 formats per target: the ops each format makes, the choice per backend, the cache key,
backend/format mismatches (exit 2), the manifest, no temporary files left in the current
directory, and the session settings the ORT backends take from the manifest."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from optieval.cli import app
from optieval.core import Dataset, read_manifest
from optieval.errors import InputError
from optieval.precision import (
    artifact_for,
    best_int8_format,
    census,
    convert,
    is_transformer,
)
from optieval.precision.formats import activation_matmuls, ffn_down_projections
from optieval.precision.int8 import separate_shared_quantizers

runner = CliRunner()


@pytest.fixture(scope="module")
def encoder_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' tiny transformer sentence encoder (tests/precision/tiny_encoder.py), exported
    with a dynamic batch and sequence."""
    import torch

    from tests.precision.tiny_encoder import make

    model, example = make()
    path = tmp_path_factory.mktemp("encoder") / "encoder.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    return path


def _tokens(count: int, seq: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "input_ids": rng.integers(0, 100, (count, seq)).astype(np.int64),
        "attention_mask": np.ones((count, seq), np.int64),
    }


def _zero_points(path: str | Path, op: str = "QuantizeLinear") -> list[np.ndarray]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [
        inits[n.input[2]]
        for n in model.graph.node
        if n.op_type == op and len(n.input) > 2 and n.input[2] in inits
    ]


def test_each_format_makes_its_ops(cnn_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    sym = convert(cnn_onnx, "int8", calib=calib_npz, int8_format="symmetric",
                  output=tmp_path / "sym.onnx")  # fmt: skip
    zps = _zero_points(sym.output)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)  # TensorRT's form
    assert sym.census.int8_format == "symmetric" and sym.int8_format == "symmetric"
    assert sym.census.int8_kernels == {"DQ->Conv->Q": 2, "DQ->Gemm->Q": 1}

    u8 = convert(cnn_onnx, "int8", calib=calib_npz, int8_format="u8s8",
                 output=tmp_path / "u8.onnx")  # fmt: skip
    activations = _zero_points(u8.output)
    assert activations and all(z.dtype == np.uint8 for z in activations)
    dequantized = _zero_points(u8.output, "DequantizeLinear")
    weights = [z for z in dequantized if z.ndim == 1 and z.dtype != np.int32]  # not biases
    assert weights and all(z.dtype == np.int8 and not z.any() for z in weights)  # per channel
    assert u8.census.int8_format == "u8s8" and u8.census.compute["int8"] == 3
    # The ReLUs fold into the zero points; the source's ReLU outputs still name what the int8
    # consumers read (the dequantized value), not the value before the ReLU.
    producers = {o: n for n in onnx.load(u8.output).graph.node for o in n.output}
    assert producers["r1"].op_type == producers["r2"].op_type == "DequantizeLinear"
    x = np.random.default_rng(5).normal(size=(4, 1, 8, 8)).astype(np.float32)
    before = ort.InferenceSession(str(cnn_onnx)).run(None, {"x": x})[0]
    after = ort.InferenceSession(u8.output).run(None, {"x": x})[0]
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.99


def test_dynamic_format_on_a_transformer(encoder_onnx: Path, tmp_path: Path) -> None:
    assert is_transformer(onnx.load(str(encoder_onnx)))
    # ort-cpu + a transformer encoder = dynamic; it needs no calibration data.
    made = convert(encoder_onnx, "int8", backend="ort-cpu", output=tmp_path / "d.onnx")
    assert made.int8_format == "dynamic" and made.calibration is None
    ops = {n.op_type for n in onnx.load(made.output).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert "QuantizeLinear" not in ops
    found = made.census
    assert found.int8_format == "dynamic" and found.int8_kernels["MatMulInteger"] > 0
    # attention scores (two activations) stay in float
    attention = activation_matmuls(onnx.load(str(encoder_onnx)))
    assert attention and found.by_op["MatMul"].get("fp32", 0) >= len(attention)
    feeds = _tokens(8, seed=3)
    ref = ort.InferenceSession(str(encoder_onnx)).run(None, feeds)[0]
    got = ort.InferenceSession(made.output).run(None, feeds)[0]
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() > 0.99


def test_portable_format_keeps_attention_softmax_layernorm_in_float(
    encoder_onnx: Path, tmp_path: Path
) -> None:
    made = convert(encoder_onnx, "int8", calib=Dataset(_tokens(16)), output=tmp_path / "s.onnx")
    assert made.int8_format == "symmetric"
    model = onnx.load(made.output)
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in ("Softmax", "LayerNormalization"):
            src = producers.get(node.input[0])
            assert src is None or src.op_type != "DequantizeLinear", node.name
    assert any("attention MatMuls" in n for n in made.notes)
    # the feed-forward down-projections (after GELU) stay in float in the static formats
    down = ffn_down_projections(onnx.load(str(encoder_onnx)))
    assert len(down) == 2
    assert any("2 feed-forward down-projections" in n for n in made.notes)
    weights = {n.name: n for n in model.graph.node if n.op_type == "MatMul"}
    for name in down:
        src = producers.get(weights[name].input[1])
        assert src is None or src.op_type != "DequantizeLinear", name


def test_best_format_per_backend(cnn_onnx: Path, encoder_onnx: Path) -> None:
    cnn, encoder = onnx.load(str(cnn_onnx)), onnx.load(str(encoder_onnx))
    assert best_int8_format("ort-cpu", cnn, machine="x86_64") == "u8s8"
    assert best_int8_format("ort-cpu", cnn, machine="aarch64") == "symmetric"  # S8S8 native
    assert best_int8_format("ort-cpu", encoder, machine="x86_64") == "dynamic"
    for backend in ("ort-cuda", "ort-trt", "tensorrt", None):
        assert best_int8_format(backend, cnn) == "symmetric"
        assert best_int8_format(backend, encoder) == "symmetric"
    assert not is_transformer(cnn)


def test_cache_keys_differ_per_format(cnn_onnx: Path, calib_npz: Path) -> None:
    paths = {
        fmt: artifact_for(cnn_onnx, "int8", calib=calib_npz, int8_format=fmt)
        for fmt in ("symmetric", "u8s8", "dynamic")
    }
    assert len(set(paths.values())) == 3
    for fmt, path in paths.items():
        manifest = read_manifest(path)
        assert manifest is not None and manifest["int8_format"] == fmt
        assert manifest["options"]["int8_format"] == fmt
        assert manifest["census"]["int8_format"] == fmt
    assert artifact_for(cnn_onnx, "int8", calib=calib_npz, backend="ort-trt") == paths["symmetric"]


def test_manifest_records_format_and_session_options(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.int8.onnx"
    code = runner.invoke(app, ["convert", str(cnn_onnx), "-p", "int8", "--calib", str(calib_npz),
                               "--backend", "ort-cpu", "--int8-format", "u8s8", "-o", str(out),
                               "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert code.exit_code == 0, code.output
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest["int8_format"] == "u8s8"
    assert manifest["session_options"] == {"config_entries": {}, "disabled_optimizers": []}
    assert manifest["census"]["int8_kernels"]["DQ->Conv->Q"] == 2
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["int8_format"] == "u8s8" and result["backend"] == "ort-cpu"


@pytest.mark.parametrize(
    ("backend", "fmt"), [("tensorrt", "u8s8"), ("ort-trt", "u8s8"), ("ort-trt", "dynamic")]
)
def test_a_format_the_backend_cannot_run_is_exit_2(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path, backend: str, fmt: str
) -> None:
    result = runner.invoke(app, ["convert", str(cnn_onnx), "-p", "int8", "--calib", str(calib_npz),
                                 "--backend", backend, "--int8-format", fmt,
                                 "-o", str(tmp_path / "x.onnx")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("error:"))
    assert backend in line and fmt in line and "--int8-format" in line
    assert not (tmp_path / "x.onnx").exists()


def test_an_existing_u8s8_artifact_is_refused_for_tensorrt(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    u8 = convert(cnn_onnx, "int8", calib=calib_npz, int8_format="u8s8", output=tmp_path / "u.onnx")
    assert artifact_for(u8.output, "int8", backend="ort-cpu") == Path(u8.output)
    with pytest.raises(InputError, match="tensorrt.*u8s8"):
        artifact_for(u8.output, "int8", backend="tensorrt")
    Path(u8.output + ".json").unlink()  # read from the graph when there is no manifest
    with pytest.raises(InputError, match="ort-trt.*u8s8"):
        artifact_for(u8.output, "int8", backend="ort-trt")


def test_no_temporary_files_in_the_current_directory(
    encoder_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORT's symbolic shape inference writes sym_shape_infer_temp.onnx and <uuid>.data into the
    current directory when it gives up (the encoder makes it give up for real); here it is also
    made to fail after writing them, as ORT does, and after the quantizer fails."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out" / "e.int8.onnx"
    out.parent.mkdir()
    calib = tmp_path / "calib.npz"
    np.savez(calib, **_tokens(8))
    args = ["convert", str(encoder_onnx), "-p", "int8", "--calib", str(calib), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cwd.iterdir()) == []

    def litter(*_: object, **__: object) -> None:
        Path("sym_shape_infer_temp.onnx").write_bytes(b"x")
        Path("0f1e2d3c-uuid.data").write_bytes(b"x")
        raise Exception("Incomplete symbolic shape inference")

    monkeypatch.setattr(SymbolicShapeInference, "infer_shapes", staticmethod(litter))
    for fmt in ("dynamic", "u8s8"):
        result = runner.invoke(app, [*args, "--int8-format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in cwd.iterdir()) == []

    import onnxruntime.quantization as quantization

    def broken(*_: object, **__: object) -> None:
        Path("partial.onnx").write_bytes(b"x")
        raise RuntimeError("quantizer failed")

    monkeypatch.setattr(quantization, "quantize_static", broken)
    result = runner.invoke(app, [*args, "--calib-samples", "4", "--int8-format", "symmetric"])
    assert result.exit_code == 2, result.output
    assert sorted(p.name for p in cwd.iterdir()) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.int8.onnx", "e.int8.onnx.json"]


def test_shared_quantizers_get_their_own_scales() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], [f"q{i}"], name=f"q{i}")
        for i in range(3)
    ] + [
        helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"d{i}"], name=f"d{i}")
        for i in range(3)
    ]
    inits = [
        numpy_helper.from_array(np.array(0.1, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(f"d{i}", onnx.TensorProto.FLOAT, [4]) for i in range(3)],
        initializer=inits,
    )
    model = helper.make_model(graph)
    assert separate_shared_quantizers(model) == 2
    scales = {n.input[1] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert len(scales) == 3
    for i in range(3):  # each DQ reads its Q's scale
        q = next(n for n in model.graph.node if n.name == f"q{i}")
        d = next(n for n in model.graph.node if n.name == f"d{i}")
        assert d.input[1] == q.input[1]
    values = sorted(
        float(numpy_helper.to_array(i)) for i in model.graph.initializer if i.name in scales
    )
    assert values[0] == pytest.approx(0.1) and values[0] < values[1] < values[2]
    assert values[2] == pytest.approx(0.1, rel=1e-6)


def test_dynamic_format_with_a_weight_shared_by_two_gemms(tmp_path: Path) -> None:
    """onnxruntime's quantize_dynamic transposes a transB Gemm weight in place; a weight shared
    by two Gemms was transposed twice (the second layer silently wrong) before optieval unshared
    it."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.3, (16, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="g0", transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w"], ["y"], name="g1", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["b", 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", 16])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    source = tmp_path / "shared.onnx"
    onnx.save(model, str(source))
    made = convert(source, "int8", int8_format="dynamic", output=tmp_path / "d.onnx")
    assert census(onnx.load(made.output)).compute["int8"] == 2
    x = rng.normal(size=(32, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
    got = ort.InferenceSession(made.output).run(None, {"x": x})[0]
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() > 0.99


def test_ort_backends_apply_the_manifests_session_options(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    from optieval.runtime.ort import OrtCpuBackend

    made = convert(cnn_onnx, "int8", calib=calib_npz, backend="ort-cpu", output=tmp_path / "a.onnx")
    backend = OrtCpuBackend(made.output, precision="int8")
    backend.load()
    assert "session_options" not in backend.options  # optieval's artifacts need none
    assert backend.options["int8_format"] == "u8s8"
    backend.close()
    manifest_file = Path(made.output + ".json")
    manifest = json.loads(manifest_file.read_text())
    needed = {
        "config_entries": {"session.intra_op.allow_spinning": "0"},
        "disabled_optimizers": ["ConstantSharing"],
    }
    manifest["session_options"] = needed
    manifest_file.write_text(json.dumps(manifest))
    backend = OrtCpuBackend(made.output, precision="int8")
    backend.load()
    assert backend.options["session_options"] == needed
    backend.close()
    manifest["session_options"] = {"config_entries": ["not", "a", "mapping"]}
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="session_options"):
        OrtCpuBackend(made.output, precision="int8").load()


def test_build_refuses_a_u8s8_artifact_for_tensorrt(
    cnn_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    u8 = convert(cnn_onnx, "int8", calib=calib_npz, int8_format="u8s8", output=tmp_path / "u.onnx")
    result = runner.invoke(app, ["build", u8.output, "-o", str(tmp_path / "u.plan"), "-p", "int8"])
    assert result.exit_code == 2, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("error:"))
    assert "tensorrt" in line and "u8s8" in line


def test_bad_backend_or_format_names(cnn_onnx: Path, calib_npz: Path) -> None:
    with pytest.raises(InputError, match="does not run ONNX artifacts") as info:
        convert(cnn_onnx, "int8", calib=calib_npz, backend="torch-cpu")
    assert info.value.where == "backend"
    with pytest.raises(InputError, match="unknown INT8 format") as info:
        convert(cnn_onnx, "int8", calib=calib_npz, int8_format="s4")
    assert info.value.where == "int8_format"
    with pytest.raises(InputError, match="INT8 needs calibration data"):
        convert(cnn_onnx, "int8", int8_format="u8s8")  # static formats still need data
