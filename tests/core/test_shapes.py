"""The one parser of shapes written as text (optieval.core.shapes)."""

from __future__ import annotations

import pytest

from optieval.core import parse_dims, parse_named_shape, parse_shape_option
from optieval.core.shapes import format_shape, is_dims, split_named
from optieval.errors import InputError


def test_parse_dims() -> None:
    assert parse_dims("8x3x224x224") == (8, 3, 224, 224)
    assert parse_dims(" 1X16 ") == (1, 16)
    assert parse_dims("7") == (7,)
    assert format_shape(parse_dims("2x3")) == "2x3"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is not a shape"),
        ("8xq", "is not a shape"),
        ("8x", "is not a shape"),
        ("8,3", "is not a shape"),
        ("2x0", "at least 1"),
        ("0", "at least 1"),
        ("2x-3", "at least 1"),
        ("-1x4", "at least 1"),
    ],
)
def test_parse_dims_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_dims(text, where="profiles", name="x")
    assert fragment in info.value.message and repr(text) in info.value.message
    assert "input 'x'" in info.value.message and info.value.where == "profiles"


def test_is_dims_accepts_signs_parse_dims_checks_them() -> None:
    assert is_dims("2x-3") and is_dims("4") and not is_dims("int64") and not is_dims("")


def test_named_shape_splits_on_the_last_colon() -> None:
    assert parse_named_shape("x:8x3x224x224") == ("x", (8, 3, 224, 224))
    assert parse_named_shape("encoder:input_ids:1x16") == ("encoder:input_ids", (1, 16))
    assert parse_named_shape("a::b:2") == ("a::b", (2,))
    assert split_named("ns:name:rest") == ("ns:name", "rest")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x", "is not NAME:D0xD1x"),
        ("x:", "is not NAME:D0xD1x"),
        (":8x3", "is not NAME:D0xD1x"),
        ("x:8xq", "is not a shape"),
        ("x:1x16:int64", "is not a shape"),  # no dtype here: the last part must be the shape
        ("x:0x3", "at least 1"),
        ("x:-2x3", "at least 1"),
    ],
)
def test_named_shape_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_named_shape(text)
    assert fragment in info.value.message and info.value.where == "shapes"


def test_shape_option_takes_several_shapes() -> None:
    assert parse_shape_option("ids:1x16,1x32") == ("ids", [(1, 16), (1, 32)])
    assert parse_shape_option("m:ids:1x16,2x16") == ("m:ids", [(1, 16), (2, 16)])
    with pytest.raises(InputError, match="at least 1"):
        parse_shape_option("ids:1x16,0x16")
    with pytest.raises(InputError, match=r"NAME:D0xD1x\.\.\.\[,D0xD1x\.\.\.\]"):
        parse_shape_option("1x16")
