"""Issue 18, item 12: the Python API has the command line's defaults and names, accepts a
config object, and its results show as tables in a notebook and convert to pandas."""

from __future__ import annotations

import inspect
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import optieval
from optieval.bench import MeasureSettings
from optieval.errors import InputError
from tests.release.gate_helpers import GENEROUS, write_config

QUICK = MeasureSettings(warmup_s=0.0, warmup_iters=2, duration_s=0.05, min_samples=20,
                        max_duration_s=1.0)  # fmt: skip


def test_benchmark_isolates_cells_by_default_like_the_cli(mlp_onnx: Path) -> None:
    assert inspect.signature(optieval.benchmark).parameters["isolate"].default is True
    report = optieval.benchmark(mlp_onnx, settings=QUICK)
    assert report.settings["isolated"] is True
    assert report.results[0].status == "ok"


def _labelled(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.normal(size=(32, 4)).astype(np.float32), y=rng.integers(0, 3, 32))
    return path


def test_compare_takes_labels_and_keeps_labels_key_as_a_deprecated_alias(
    mlp_onnx: Path, tmp_path: Path
) -> None:
    data = _labelled(tmp_path)
    new = optieval.compare(mlp_onnx, ["ort-cpu:fp16"], data=data, labels="y")
    assert new.results[0].outputs[0].accuracy_candidate is not None
    with pytest.warns(DeprecationWarning, match="labels_key"):
        old = optieval.compare(mlp_onnx, ["ort-cpu:fp16"], data=data, labels_key="y")
    assert old.results[0].outputs[0].accuracy_candidate == (
        new.results[0].outputs[0].accuracy_candidate
    )
    with pytest.raises(InputError, match="disagree"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        optieval.compare(mlp_onnx, ["ort-cpu:fp16"], data=data, labels="y", labels_key="z")


def test_gate_accepts_a_config_object_and_a_mapping(tmp_path: Path) -> None:
    from optieval.release import GateConfig, load_config

    path = write_config(tmp_path / "cfg", GENEROUS)
    config = load_config(path)
    assert isinstance(config, GateConfig)
    fewer = replace(config, targets=(replace(config.targets[0], batches=(1,)),))
    report = optieval.gate(fewer, out_dir=tmp_path / "obj")
    assert report.exit_code == 0, report.summary
    assert {c.batch for c in report.cells} == {1}
    import tomllib

    mapping = tomllib.loads(path.read_text())
    mapping["model"]["path"] = str(path.parent / mapping["model"]["path"])
    for key in ("calibration", "evaluation"):
        mapping["data"][key] = str(path.parent / mapping["data"][key])
    report = optieval.gate(mapping, out_dir=tmp_path / "map")
    assert report.exit_code == 0, report.summary
    with pytest.raises(InputError):
        optieval.gate({"model": {}}, out_dir=tmp_path / "bad")


def test_results_render_in_a_notebook_and_need_pandas_only_for_dataframes(
    mlp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = optieval.benchmark(mlp_onnx, settings=QUICK, batches=[1, 2], isolate=False)
    page = bench._repr_html_()
    assert page.count("<tr>") == 3 and "ort-cpu:fp32 b2" in page and "p99_high_ms" in page
    parity = optieval.compare(mlp_onnx, ["ort-cpu:fp16"], samples=8)
    assert "ort-cpu:fp16" in parity._repr_html_() and "cosine" in parity._repr_html_()
    gate = optieval.gate(write_config(tmp_path / "g", GENEROUS), out_dir=tmp_path / "o")
    rows = gate.records()
    assert len(rows) == len(gate.checks) and rows[0]["verdict"] in ("PASS", "FAIL")
    assert "<table>" in gate._repr_html_()
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    for result in (bench, parity, gate):
        with pytest.raises(InputError, match="pandas"):
            result.to_dataframe()


def test_to_dataframe_with_pandas(mlp_onnx: Path) -> None:
    pd = pytest.importorskip("pandas")
    bench = optieval.benchmark(mlp_onnx, settings=QUICK, batches=[1, 2], isolate=False)
    frame = bench.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and list(frame["batch"]) == [1, 2]
