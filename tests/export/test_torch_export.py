"""export_model on the issue's "must work on" models (built in torch_zoo), the exporters, external
data, parity failures and every bad input. Exports are shared through module-scoped fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from optieval.core.files import sha256_file
from optieval.core.manifest import read_manifest
from optieval.errors import CheckFailed, InputError
from optieval.export import ExportCheckFailed, ExportResult, export_model
from optieval.runtime.ort import OrtCpuBackend
from optieval.source.specs import load_model_from_manifest
from tests.export import torch_zoo

ROOT = Path(torch_zoo.__file__).parents[2]
MANIFEST_KEYS = {"kind", "files", "io", "opset", "exporter", "versions", "provenance", "parity"}


def _export(folder: Path, factory: str, name: str | None = None, **kwargs: Any) -> ExportResult:
    return export_model(
        f"tests.export.torch_zoo:{factory}",
        folder / f"{name or factory}.onnx",
        base_dir=ROOT,
        **kwargs,
    )


def _input_error(folder: Path, factory: str, **kwargs: Any) -> str:
    with pytest.raises(InputError) as info:
        _export(folder, factory, **kwargs)
    text = str(info.value)
    assert "\n" not in text and info.value.exit_code == 2
    return text


def _shapes(specs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {s["name"]: s["shape"] for s in specs}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def resnet(out: Path) -> ExportResult:
    return _export(out, "resnet_tiny", dynamic=["batch"])


@pytest.fixture(scope="module")
def bert(out: Path) -> ExportResult:
    return _export(out, "bert_tiny", dynamic=["batch", "input_ids:1:seq", "attention_mask:1:seq"])


# --- the models it must work on ------------------------------------------------------------------


def test_residual_cnn_manifest(resnet: ExportResult, out: Path) -> None:
    manifest = read_manifest(resnet.model_path)
    assert manifest is not None and set(manifest) >= MANIFEST_KEYS
    assert manifest["kind"] == "onnx-model"
    assert manifest["files"] == {"resnet_tiny.onnx": sha256_file(resnet.model_path)}
    assert _shapes(manifest["io"]["inputs"]) == {"x": ["batch", 3, 16, 16]}
    assert _shapes(manifest["io"]["outputs"]) == {"output": ["batch", 5]}
    assert manifest["exporter"] == {"name": "dynamo", "requested": "dynamo", "reason": None}
    assert set(manifest["versions"]) >= {"torch", "onnx", "onnxruntime", "optieval"}
    prov = manifest["provenance"]
    assert prov["spec"] == "tests.export.torch_zoo:resnet_tiny"
    assert prov["base_dir"] == str(ROOT)
    assert prov["inputs"] == [
        {"name": "x", "shape": [2, 3, 16, 16], "dtype": "float32", "range": None}
    ]
    assert prov["dynamic"][0]["label"] == "batch"
    parity = manifest["parity"]
    assert parity["passed"] and parity["atol"] == 1e-4 and parity["rtol"] == 1e-3
    assert [c["sizes"] for c in parity["cases"]] == [{"batch": 2}, {"batch": 1}]
    assert all(o["cosine"] > 0.9999 for c in parity["cases"] for o in c["outputs"])
    assert any("training mode" in w for w in resnet.warnings)  # switched to eval, said so
    # Atomic writes: nothing but the model and its manifest is left in the folder.
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    onnx.checker.check_model(str(resnet.model_path), full_check=True)


@pytest.mark.parametrize("factory", ["mobile_tiny", "vit_tiny"])
def test_mobile_and_vision_transformer(out: Path, factory: str) -> None:
    result = _export(out, factory, dynamic=["batch"])
    assert result.passed
    assert result.signature.inputs[0].shape[0] == "batch"
    assert len(result.parity.cases) == 2


def test_bert_dynamic_batch_and_sequence(bert: ExportResult) -> None:
    assert bert.passed
    inputs = {s.name: s for s in bert.signature.inputs}
    assert inputs["input_ids"].shape == ("batch", "seq")
    assert inputs["attention_mask"].dtype == "int64"
    assert [s.name for s in bert.signature.outputs] == [
        "last_hidden_state",
        "pooler_output",
        "hidden_states.0",
        "hidden_states.1",
    ]
    assert bert.signature.outputs[0].shape == ("batch", "seq", 16)
    assert [c.sizes for c in bert.parity.cases] == [{"batch": 2, "seq": 8}, {"batch": 1, "seq": 4}]
    mask = next(s for s in bert.provenance["inputs"] if s["name"] == "attention_mask")
    assert mask["range"] == [0.0, 2.0]  # the example mask's values, kept for fresh inputs


def test_reference_rebuilt_from_manifest_matches_onnx(bert: ExportResult) -> None:
    manifest = read_manifest(bert.model_path)
    assert manifest is not None
    loaded = load_model_from_manifest(manifest, bert.model_path.parent)
    feeds = {
        "input_ids": np.random.default_rng(0).integers(0, 50, (3, 5)).astype(np.int64),
        "attention_mask": np.ones((3, 5), np.int64),
    }
    expected = loaded.run(feeds)
    with OrtCpuBackend(bert.model_path) as backend:
        got = backend.infer(feeds)
    assert list(expected) == list(got)
    for name, tensor in expected.items():
        np.testing.assert_allclose(got[name], tensor.numpy(), atol=1e-4, rtol=1e-3)


def test_multi_input_nested_outputs_from_input_options(out: Path) -> None:
    result = _export(
        out, "multi_io", inputs=["image:1x3x8x8", "features:1x5"], dynamic=["batch:1..16"]
    )
    assert result.provenance["inputs"][0]["shape"] == [2, 3, 8, 8]  # batch 1 raised to 2
    assert result.provenance["dynamic"][0] == {
        "input": "image",
        "axis": 0,
        "label": "batch",
        "min": 1,
        "max": 16,
        "size": 2,
    }
    assert [s.name for s in result.signature.inputs] == ["image", "features"]
    assert [s.name for s in result.signature.outputs] == ["output.0", "output.1.0", "output.1.1.0"]
    assert result.passed


def test_schema_v1_fixture_still_reads() -> None:
    data = json.loads((Path(__file__).parent / "fixtures" / "export_result_v1.json").read_text())
    result = ExportResult.from_json(data)
    assert result.exporter.name == "torchscript" and result.parity.passed
    assert result.signature.inputs[0].shape == ("batch", 4)
    assert result.to_json() == data


def test_result_json_round_trip(resnet: ExportResult) -> None:
    assert ExportResult.from_json(resnet.to_json()) == resnet
    with pytest.raises(InputError, match="schema_version"):
        ExportResult.from_json({**resnet.to_json(), "schema_version": 99})


# --- exporters and sources ---------------------------------------------------------------------


def test_torchscript_exporter_with_checkpoint_and_opset(tmp_path: Path) -> None:
    weights = {k: torch.full_like(v, 0.25) for k, v in torch_zoo.tiny_linear().state_dict().items()}
    torch.save(weights, tmp_path / "w.pt")
    result = _export(
        tmp_path,
        "tiny_linear",
        inputs=["x:2x4"],
        dynamic=["batch"],
        exporter="torchscript",
        opset=17,
        checkpoint=tmp_path / "w.pt",
    )
    assert result.passed and result.opset == 17
    assert result.exporter.name == "torchscript"
    assert result.provenance["checkpoint_sha256"] == sha256_file(tmp_path / "w.pt")
    model = onnx.load(str(result.model_path))
    assert any(o.domain in ("", "ai.onnx") and o.version == 17 for o in model.opset_import)
    manifest = read_manifest(result.model_path)
    assert manifest is not None
    rebuilt = load_model_from_manifest(manifest, tmp_path)
    assert torch.all(rebuilt.module.fc.weight == 0.25)


def test_torchscript_and_exported_program_sources(tmp_path: Path) -> None:
    model = torch_zoo.tiny_linear()
    torch.jit.script(model).save(str(tmp_path / "m.ts"))
    scripted = export_model(
        str(tmp_path / "m.ts"), tmp_path / "ts.onnx", inputs=["x:2x4"], dynamic=["batch"]
    )
    assert scripted.passed and scripted.exporter.name == "torchscript"
    assert "TorchScript" in (scripted.exporter.reason or "")

    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (torch.randn(2, 4),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(tmp_path / "m.pt2"))
    exported = export_model(str(tmp_path / "m.pt2"), tmp_path / "ep.onnx")
    assert exported.passed and exported.exporter.name == "dynamo"
    assert isinstance(exported.signature.inputs[0].shape[0], str)  # dynamic, from the program
    first, second = (c.sizes for c in exported.parity.cases)
    assert first != second


def test_auto_falls_back_and_records_why(tmp_path: Path) -> None:
    result = _export(tmp_path, "data_dependent", exporter="auto")
    assert result.passed
    assert (result.exporter.name, result.exporter.requested) == ("torchscript", "auto")
    assert "dynamo failed" in (result.exporter.reason or "")
    assert "data-dependent" in (result.exporter.reason or "")
    manifest = read_manifest(result.model_path)
    assert manifest is not None and manifest["exporter"]["reason"] == result.exporter.reason


def test_parity_failure_keeps_file_and_marks_manifest(tmp_path: Path) -> None:
    with pytest.raises(ExportCheckFailed) as info:
        _export(tmp_path, "shape_branch", exporter="torchscript", dynamic=["batch"])
    error = info.value
    assert isinstance(error, CheckFailed) and error.exit_code == 1
    assert "parity check failed" in str(error) and "batch=1" in str(error)
    assert error.result.model_path.is_file()
    manifest = read_manifest(error.result.model_path)
    assert manifest is not None and manifest["parity"]["passed"] is False
    failed = [c for c in manifest["parity"]["cases"] if not c["passed"]]
    assert failed[0]["sizes"] == {"batch": 1} and failed[0]["outputs"][0]["max_abs"] > 0.1


def test_dynamo_specialising_a_dynamic_dim_is_bad_input(tmp_path: Path) -> None:
    text = _input_error(tmp_path, "shape_branch", dynamic=["batch"])
    assert "fixed dynamic dimensions" in text and "x axis 0 (batch) = 2" in text


def test_external_data(tmp_path: Path) -> None:
    result = _export(tmp_path, "wide", dynamic=["batch"], external_data=True)
    data = tmp_path / "wide.onnx.data"
    assert result.external_data and data.is_file()
    assert result.files == {
        "wide.onnx": sha256_file(result.model_path),
        "wide.onnx.data": sha256_file(data),
    }
    assert result.model_path.stat().st_size < 20_000 < data.stat().st_size
    onnx.checker.check_model(str(result.model_path), full_check=True)  # by path: finds the data
    assert result.passed
    # Re-exported as one file: the stale data file listed by the old manifest goes away.
    again = _export(tmp_path, "wide", dynamic=["batch"], external_data=False)
    assert list(again.files) == ["wide.onnx"] and not data.exists()


# --- bad input: one line, exit 2 -----------------------------------------------------------------


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_unsupported_operator_named_with_opset(tmp_path: Path, exporter: str) -> None:
    text = _input_error(tmp_path, "custom_op", exporter=exporter, opset=18)
    assert "cannot convert operator optieval_test::mystery at opset 18" in text
    assert "`exporter`" in text and "`opset`" in text
    assert not list(tmp_path.iterdir())  # the staging folder is gone, nothing written


def test_shapes_that_do_not_fit(tmp_path: Path) -> None:
    text = _input_error(tmp_path, "tiny_linear", inputs=["x:2x5"])
    assert "fails on the example inputs (x: float32[2x5])" in text
    assert "mat1 and mat2 shapes cannot be multiplied" in text


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({}, ["without example inputs", "`inputs`", "(x)"]),
        ({"inputs": ["y:2x4"]}, ["forward has no input 'y'", "x"]),
        ({"inputs": ["x:2x4"], "input_ranges": ["z:0:3"]}, ["input_ranges", "no input 'z'"]),
        ({"inputs": ["x:2x4"], "dynamic": ["x:3"]}, ["dynamic", "no axis 3"]),
        (
            {"inputs": ["x:2x4"], "dynamic": ["x:1:feat"]},
            ["dynamic", "fails when the dynamic dimensions change (feat=2", "mat1 and mat2"],
        ),
        ({"exporter": "onnxmagic"}, ["exporter", "onnxmagic"]),
        ({"opset": 999}, ["opset", "999"]),
        ({"atol": -1.0}, ["atol"]),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, Any], fragments: list[str]) -> None:
    text = _input_error(tmp_path, "tiny_linear", **kwargs)
    for fragment in fragments:
        assert fragment in text


def test_output_path_not_writable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        export_model("tests.export.torch_zoo:tiny_linear", tmp_path / "no" / "m.onnx")
    with pytest.raises(InputError, match="is a folder"):
        export_model("tests.export.torch_zoo:tiny_linear", tmp_path)
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir()
        locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="output path not writable"):
            export_model("tests.export.torch_zoo:tiny_linear", locked / "m.onnx")
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)


def test_checker_failure_is_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise onnx.checker.ValidationError("Node (n0) has input size 3 not in range [1, 2]")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(ExportCheckFailed) as info:
        _export(tmp_path, "tiny_linear", inputs=["x:2x4"], exporter="torchscript")
    assert "onnx.checker" in str(info.value) and "input size 3" in str(info.value)
    manifest = read_manifest(tmp_path / "tiny_linear.onnx")
    assert manifest is not None and manifest["parity"]["passed"] is False
    assert manifest["parity"]["error"].startswith("onnx.checker")


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_an_output_named_like_an_inner_value(tmp_path: Path, exporter: str) -> None:
    # Exported as asked, the output "embedding" and torch's inner "embedding" broke SSA.
    result = _export(tmp_path, "embedding_named_output", exporter=exporter, dynamic=["batch"])
    graph = onnx.load(str(result.model_path)).graph
    assert [o.name for o in graph.output] == ["embedding"]
    produced = [v for node in graph.node for v in node.output]
    assert produced.count("embedding") == 1
    onnx.checker.check_model(str(result.model_path), full_check=True)
