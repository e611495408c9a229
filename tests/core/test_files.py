from pathlib import Path

import pytest

from optieval.core.files import atomic_path, read_json, sha256_file, write_json_atomic
from optieval.errors import InputError


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_json_round_trip_and_hash(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    assert read_json(target) == {"a": 1}
    assert len(sha256_file(target)) == 64


def test_unwritable_destination_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_json_atomic(tmp_path / "missing" / "x.json", {})


def test_malformed_json_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="bad.json"):
        read_json(bad)


def test_written_files_get_the_umask_mode(tmp_path: Path) -> None:
    import os

    target = tmp_path / "m.json"
    write_json_atomic(target, {})
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
