"""Model specs, checkpoints, eval switch, output naming, rebuilding from a manifest."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from optieval.core.files import sha256_file
from optieval.errors import InputError
from optieval.source.checkpoints import load_checkpoint
from optieval.source.specs import (
    flatten_outputs,
    load_model,
    load_model_from_manifest,
)
from tests.export import torch_zoo

ZOO = Path(torch_zoo.__file__)
ROOT = ZOO.parents[2]


def _error(spec: str, **kwargs: object) -> str:
    with pytest.raises(InputError) as info:
        load_model(spec, **kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    assert "\n" not in text
    return text


def test_module_factory_with_tuple_examples() -> None:
    with pytest.warns(UserWarning, match="training mode"):
        loaded = load_model("tests.export.torch_zoo:resnet_tiny", base_dir=ROOT)
    assert loaded.kind == "module-factory"
    assert not loaded.module.training
    assert "training mode" in loaded.warnings[0]
    assert list(loaded.example_inputs or {}) == ["x"]
    assert loaded.forward_params == ("x",)


def test_file_factory_with_dict_examples_and_hash() -> None:
    loaded = load_model(f"{ZOO}:bert_tiny")
    assert loaded.kind == "file-factory"
    assert loaded.spec_file_sha256 == sha256_file(ZOO)
    assert list(loaded.example_inputs or {}) == ["input_ids", "attention_mask"]
    outputs = loaded.run({k: v.numpy() for k, v in (loaded.example_inputs or {}).items()})
    assert list(outputs) == [
        "last_hidden_state",
        "pooler_output",
        "hidden_states.0",
        "hidden_states.1",
    ]


def test_relative_file_spec_uses_base_dir() -> None:
    loaded = load_model("tests/export/torch_zoo.py:tiny_linear", base_dir=ROOT)
    assert loaded.example_inputs is None and loaded.warnings == ()


def test_package_spec_from_base_dir(tmp_path: Path) -> None:
    pkg = tmp_path / "userpkg_export_a"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n"
        "    def forward(self, a, b=None):\n        return a\n"
        "    @classmethod\n    def build(cls):\n        return cls().eval()\n"
    )
    loaded = load_model("userpkg_export_a.nets:Net.build", base_dir=tmp_path)
    assert loaded.forward_params == ("a", "b")


def test_torchscript_and_exported_program(tmp_path: Path) -> None:
    model = torch_zoo.tiny_linear()
    for name in ("m.ts", "m.pt"):
        torch.jit.script(model).save(str(tmp_path / name))
        loaded = load_model(name, base_dir=tmp_path)
        assert loaded.is_torchscript and loaded.forward_params == ("x",)
    program = torch.export.export(model, (torch.randn(2, 4),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    loaded = load_model(str(tmp_path / "m.pt2"))
    assert loaded.kind == "exported-program"
    assert list(loaded.example_inputs or {}) == ["x"]


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        (
            "no_such_pkg_optieval.models:build",
            ["cannot import", "ModuleNotFoundError", "no_such_pkg_optieval"],
        ),
        ("tests.export.torch_zoo:nope", ["factory 'nope' not found", "tiny_linear"]),
        ("tests.export.torch_zoo:not_a_module", ["returned a int", "not an nn.Module"]),
        ("tests.export.torch_zoo:raises", ["raised ValueError", "weights server unreachable"]),
        ("tests.export.torch_zoo:NOT_CALLABLE", ["not a callable"]),
        ("missing_file.py:build", ["not found"]),
        ("weights.pth", ["not a model spec", "`checkpoint`"]),
        ("what is this", ["cannot tell"]),
        ("missing.pt2", ["not found"]),
    ],
)
def test_bad_specs(spec: str, fragments: list[str]) -> None:
    text = _error(spec, base_dir=ROOT)
    assert text.startswith(spec)
    for fragment in fragments:
        assert fragment in text


def test_broken_python_file(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('boom at import')\n")
    text = _error("broken.py:build", base_dir=tmp_path)
    assert "RuntimeError: boom at import" in text


def test_state_dict_file_as_torchscript_spec(tmp_path: Path) -> None:
    torch.save(torch_zoo.tiny_linear().state_dict(), tmp_path / "w.pt")
    assert "not a TorchScript archive" in _error("w.pt", base_dir=tmp_path)


# --- checkpoints ----------------------------------------------------------------------------


def _other_weights() -> dict[str, torch.Tensor]:
    return {k: torch.full_like(v, 0.5) for k, v in torch_zoo.tiny_linear().state_dict().items()}


def test_checkpoint_pt_and_wrapped(tmp_path: Path) -> None:
    torch.save(_other_weights(), tmp_path / "w.pt")
    torch.save({"state_dict": _other_weights(), "epoch": 3}, tmp_path / "wrapped.ckpt")
    for name in ("w.pt", "wrapped.ckpt"):
        loaded = load_model(
            "tests.export.torch_zoo:tiny_linear", base_dir=ROOT, checkpoint=tmp_path / name
        )
        assert torch.all(loaded.module.fc.weight == 0.5)
        assert loaded.checkpoint_sha256 == sha256_file(tmp_path / name)


def test_checkpoint_safetensors(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(_other_weights(), str(tmp_path / "w.safetensors"))
    loaded = load_model(
        "tests.export.torch_zoo:tiny_linear", base_dir=ROOT, checkpoint=tmp_path / "w.safetensors"
    )
    assert torch.all(loaded.module.fc.bias == 0.5)


def test_checkpoint_key_mismatch_lists_keys(tmp_path: Path) -> None:
    state = _other_weights()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    state["fc.weight"] = torch.zeros(5, 4)
    torch.save(state, tmp_path / "bad.pt")
    text = _error(
        "tests.export.torch_zoo:tiny_linear", base_dir=ROOT, checkpoint=tmp_path / "bad.pt"
    )
    assert "missing (1): fc.bias" in text
    assert "unexpected (1): extra.weight" in text
    assert "shape mismatch (1): fc.weight [5, 4] vs model [3, 4]" in text


def test_checkpoint_prefix_hint(tmp_path: Path) -> None:
    torch.save({f"module.{k}": v for k, v in _other_weights().items()}, tmp_path / "dp.pt")
    text = _error(
        "tests.export.torch_zoo:tiny_linear", base_dir=ROOT, checkpoint=tmp_path / "dp.pt"
    )
    assert "'module.' prefix" in text


def test_pickled_checkpoint_is_refused_with_reason(tmp_path: Path) -> None:
    torch.save(torch_zoo.tiny_linear(), tmp_path / "whole_model.pt")
    text = _error(
        "tests.export.torch_zoo:tiny_linear", base_dir=ROOT, checkpoint=tmp_path / "whole_model.pt"
    )
    assert "pickled Python objects" in text
    assert "arbitrary code" in text and "weights_only=True" in text
    assert "TinyLinear" in text  # names the class it refused


def test_missing_and_non_state_dict_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(InputError, match="not a state dict"):
        load_checkpoint(tmp_path / "list.pt")


# --- outputs and manifests ------------------------------------------------------------------


def test_flatten_outputs_names() -> None:
    t = torch.zeros(1)
    point = collections.namedtuple("point", ["x", "y"])
    out = {"logits": t, "hidden_states": (t, t), "extra": [{"a": t}, None], "p": point(t, 3)}
    names = [n for n, _ in flatten_outputs(out)]
    assert names == ["logits", "hidden_states.0", "hidden_states.1", "extra.0.a", "p.x"]
    assert [n for n, _ in flatten_outputs(t)] == ["output"]
    assert [n for n, _ in flatten_outputs((t, (t, [t])))] == [
        "output.0",
        "output.1.0",
        "output.1.1.0",
    ]


def test_load_model_from_manifest_checks_checkpoint(tmp_path: Path) -> None:
    torch.save(_other_weights(), tmp_path / "w.pt")
    manifest = {
        "provenance": {
            "spec": "tests/export/torch_zoo.py:tiny_linear",
            "base_dir": str(ROOT),
            "checkpoint": str(tmp_path / "w.pt"),
            "checkpoint_sha256": sha256_file(tmp_path / "w.pt"),
        }
    }
    loaded = load_model_from_manifest(manifest, tmp_path)
    assert torch.all(loaded.module.fc.weight == 0.5)
    torch.save({k: v * 2 for k, v in _other_weights().items()}, tmp_path / "w.pt")
    with pytest.raises(InputError, match="changed since export"):
        load_model_from_manifest(manifest, tmp_path)
    with pytest.raises(InputError, match="no provenance"):
        load_model_from_manifest({}, tmp_path)
