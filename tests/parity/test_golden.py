"""Golden outputs: save, load, and refuse another model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optieval.errors import InputError
from optieval.parity.golden import Golden, load_golden, save_golden


def _golden(labels: bool = True) -> Golden:
    rng = np.random.default_rng(0)
    return Golden(
        model_sha256="a" * 64,
        reference="ort-cpu:fp32",
        inputs={"x": rng.normal(size=(6, 4)).astype(np.float32)},
        outputs={"logits": rng.normal(size=(6, 3)).astype(np.float32)},
        labels=np.arange(6) % 3 if labels else None,
        source="generated:seed=0",
    )


@pytest.mark.parametrize("labels", [True, False])
def test_round_trip(tmp_path: Path, labels: bool) -> None:
    g = _golden(labels)
    save_golden(tmp_path / "g", g)
    back = load_golden(tmp_path / "g", model_sha256="a" * 64)
    assert back.reference == g.reference and back.source == g.source and back.samples == 6
    np.testing.assert_array_equal(back.inputs["x"], g.inputs["x"])
    np.testing.assert_array_equal(back.outputs["logits"], g.outputs["logits"])
    assert back.outputs["logits"].dtype == np.float32
    if labels:
        assert back.labels is not None
        np.testing.assert_array_equal(back.labels, g.labels)
    else:
        assert back.labels is None
    assert not [p for p in (tmp_path / "g").iterdir() if p.name.endswith(".tmp")]


def test_hash_mismatch_is_input_error(tmp_path: Path) -> None:
    save_golden(tmp_path, _golden())
    with pytest.raises(InputError, match="another model") as info:
        load_golden(tmp_path, model_sha256="b" * 64)
    assert info.value.hint and "`save_golden_dir`" in info.value.hint


def test_missing_or_damaged(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_golden(tmp_path / "nothing")
    save_golden(tmp_path, _golden())
    (tmp_path / "outputs.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read"):
        load_golden(tmp_path)
