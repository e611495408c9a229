"""Isolated cells: crashes, exceptions and hangs become failed outcomes; the caller goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from optieval.errors import InputError
from optieval.execution.isolation import CellOutcome, run_isolated

T = "tests.execution.isolation_targets"


def test_ok_returns_plain_data() -> None:
    out = run_isolated(f"{T}:echo", {"a": [1, 2]}, timeout_s=60)
    assert out.ok, out
    assert out.value == {"echo": {"a": [1, 2]}, "torch_imported": False}
    assert CellOutcome.from_json(out.to_json()) == out


def test_exception_is_a_failed_outcome_with_stderr_tail() -> None:
    out = run_isolated(f"{T}:boom", {"value": 7}, timeout_s=60)
    assert out.status == "error"
    assert out.error_type == "ValueError" and "bad value 7" in out.reason
    assert out.exit_code == 3
    assert "about to fail" in out.stderr_tail and "Traceback" in out.stderr_tail


def test_input_error_keeps_exit_code_2() -> None:
    out = run_isolated(f"{T}:input_error", {}, timeout_s=60)
    assert out.status == "error" and out.exit_code == 2 and "do not fit" in out.reason


@pytest.mark.parametrize("fn, signal_name", [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_crash_is_a_failed_outcome(fn: str, signal_name: str) -> None:
    out = run_isolated(f"{T}:{fn}", {}, timeout_s=60)
    assert out.status == "crashed", out
    assert signal_name in out.reason and out.exit_code == 3
    assert out.returncode is not None and out.returncode < 0
    # faulthandler leaves the Python stack of the crash in the tail
    assert "Fatal Python error" in out.stderr_tail or "aborting now" in out.stderr_tail
    # ... and the caller goes on with the next cell
    assert run_isolated(f"{T}:echo", {}, timeout_s=60).ok


def test_hang_times_out() -> None:
    out = run_isolated(f"{T}:hang", {}, timeout_s=1.5)
    assert out.status == "timeout" and "1.5 s" in out.reason and out.exit_code == 3
    assert out.duration_s < 30


def test_unserializable_result_is_an_error() -> None:
    out = run_isolated(f"{T}:not_plain", {}, timeout_s=60)
    assert out.status == "error" and out.error_type == "TypeError"


def test_caller_bugs_are_input_errors() -> None:
    with pytest.raises(InputError, match="module:function"):
        run_isolated("no_colon", {}, timeout_s=5)
    with pytest.raises(InputError, match="plain JSON"):
        run_isolated(f"{T}:echo", {"x": object()}, timeout_s=5)


def test_ort_cell_does_not_import_torch(mlp_onnx: Path) -> None:
    out = run_isolated(
        "optieval.execution.isolation:infer_cell",
        {"backend": "ort-cpu", "model": str(mlp_onnx), "shapes": {"x": [2, 4]}},
        timeout_s=120,
    )
    assert out.ok, out
    assert out.value["outputs"] == {"logits": {"shape": [2, 3], "dtype": "float32"}}
    assert "onnxruntime" in out.value["imported"]
    assert "torch" not in out.value["imported"]


def test_unusable_backend_cell_fails_with_reason(mlp_onnx: Path) -> None:
    out = run_isolated(
        "optieval.execution.isolation:infer_cell",
        {"backend": "tensorrt", "model": str(mlp_onnx)},
        timeout_s=120,
    )
    if out.ok:
        pytest.skip("TensorRT runs here")
    assert out.status == "error" and out.exit_code == 3 and "TensorRT" in out.reason
