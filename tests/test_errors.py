from optieval.errors import (
    BackendFailed,
    BackendUnavailable,
    CheckFailed,
    InputError,
    InternalError,
    OptievalError,
    combined_exit_code,
)


def test_exit_codes_follow_design() -> None:
    assert InputError("x").exit_code == 2
    assert BackendUnavailable("x").exit_code == 3
    assert BackendFailed("x").exit_code == 3
    assert CheckFailed("x").exit_code == 1
    assert issubclass(BackendUnavailable, OptievalError)


def test_message_names_where_and_hint() -> None:
    error = InputError("file not found", where="model.onnx", hint="check the path")
    assert str(error) == "model.onnx: file not found (hint: check the path)"


def test_precedence_is_2_then_3_then_1() -> None:
    assert combined_exit_code([1, 3, 2]) == 2
    assert combined_exit_code([1, 3]) == 3
    assert combined_exit_code([0, 1]) == 1
    assert combined_exit_code([]) == 0


def test_precedence_is_4_then_2_then_3_then_1() -> None:
    assert combined_exit_code([1, 3, 2, 4]) == 4
    assert combined_exit_code([4, 0]) == 4
    assert combined_exit_code([3, 2, 1]) == 2
    assert combined_exit_code([1, 3, 0]) == 3
    assert combined_exit_code([0, 1, 0]) == 1
    assert combined_exit_code([0, 0]) == 0
    assert combined_exit_code(iter([2, 4])) == 4  # any iterable


def test_internal_error_exits_4_and_names_its_report() -> None:
    error = InternalError("boom", report="/tmp/crash.txt")
    assert error.exit_code == 4
    assert error.report == "/tmp/crash.txt"
    assert str(error).startswith("internal error: boom")
    assert "/tmp/crash.txt" in str(error)
