"""How the command line reports errors (optieval/cli/app.py, docs/design.md "Exit codes"): an
OptievalError is one line with the parameters shown as flags; any other exception is a bug,
exit 4, with its traceback saved to a file; ``--debug`` re-raises; ``--version``."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.cli.flags import error_line, flag_for, to_flags
from optieval.errors import BackendUnavailable, InputError, InternalError
from optieval.version import __version__

runner = CliRunner()


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("kaboom in the library")


def test_a_bug_inside_a_command_exits_4_and_saves_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("optieval.runtime.diagnose", _boom)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1, result.output
    assert "internal error: RuntimeError: kaboom in the library" in lines[0]
    match = re.search(r"traceback saved in (\S+?)\)?$", lines[0])
    assert match, lines[0]
    saved = Path(match.group(1))
    assert saved.is_file()
    text = saved.read_text()
    assert text.startswith(f"optieval {__version__}\n")
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: kaboom in the library" in text
    assert "_boom" in text  # the frame that raised


def test_debug_re_raises_the_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optieval.runtime.diagnose", _boom)
    result = runner.invoke(app, ["--debug", "doctor"])
    assert isinstance(result.exception, RuntimeError)
    assert str(result.exception) == "kaboom in the library"
    assert _error_lines(result.output) == []


def test_debug_re_raises_an_optieval_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def unusable(*args: object, **kwargs: object) -> None:
        raise BackendUnavailable("no GPU", where="ort-cuda")

    monkeypatch.setattr("optieval.runtime.diagnose", unusable)
    result = runner.invoke(app, ["--debug", "doctor"])
    assert isinstance(result.exception, BackendUnavailable)


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"optieval {__version__}"


def test_error_line_maps_where_to_its_flag() -> None:
    error = InputError("INT8 needs calibration data", where="calib")
    assert error_line(error) == "--calib: INT8 needs calibration data"
    assert str(error) == "calib: INT8 needs calibration data"  # Python callers read parameters


def test_error_line_maps_backticked_parameters_in_message_and_hint() -> None:
    error = InputError(
        "`calib_samples` is larger than `calib`",
        where="calib_samples",
        hint="lower `calib_samples`, e.g. `profiles` x:1x4:8x4:32x4",
    )
    assert error_line(error) == (
        "--calib-samples: --calib-samples is larger than --calib "
        "(hint: lower --calib-samples, e.g. --profile x:1x4:8x4:32x4)"
    )


def test_error_line_leaves_unknown_names_alone() -> None:
    error = InputError("`not_a_parameter` and `optieval export` stay", where="model.onnx")
    assert error_line(error) == "model.onnx: `not_a_parameter` and `optieval export` stay"
    assert flag_for("model.onnx") == "model.onnx"
    assert to_flags("no backticks: calib") == "no backticks: calib"


def test_internal_error_names_the_report_file() -> None:
    error = InternalError("KeyError: 'x'", report="/tmp/crash.txt")
    assert error.exit_code == 4
    assert error_line(error).endswith("with the traceback saved in /tmp/crash.txt)")


def test_a_library_error_shows_the_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def bad_calibration(*args: object, **kwargs: object) -> None:
        raise InputError("INT8 needs calibration data", where="calib", hint="give `calib` DATA")

    monkeypatch.setattr("optieval.precision.convert", bad_calibration)
    result = runner.invoke(app, ["convert", str(tmp_path / "m.onnx"), "-p", "int8"])
    assert result.exit_code == 2, result.output
    assert _error_lines(result.output) == [
        "error: --calib: INT8 needs calibration data (hint: give --calib DATA)"
    ]


def test_a_real_library_error_shows_the_flag(cnn_onnx: Path) -> None:
    result = runner.invoke(app, ["convert", str(cnn_onnx), "-p", "int8"])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and lines[0].startswith("error: --calib: "), result.output
