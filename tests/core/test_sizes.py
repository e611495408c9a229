"""Issue 18, item 11: one style for sizes (binary units, three significant digits)."""

from __future__ import annotations

import pytest

from optieval.core import format_mib, format_size


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0 B"),
        (476, "476 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1500, "1.46 KiB"),
        (232_448, "227 KiB"),
        (14_155_776, "13.5 MiB"),
        (4_107_000, "3.92 MiB"),
        (1_100_000_000, "1.02 GiB"),
    ],
)
def test_format_size(nbytes: int, text: str) -> None:
    assert format_size(nbytes) == text


def test_format_mib_is_format_size_of_mebibytes() -> None:
    assert format_mib(3.917) == "3.92 MiB"
    assert format_mib(100) == "100 MiB"
    assert format_mib(0.0004539) == "476 B"
