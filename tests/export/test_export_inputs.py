"""`inputs` / `input_ranges` / `dynamic` parsing, dynamic-dimension resolution, seeded tensors."""

from __future__ import annotations

import pytest
import torch

from optieval.errors import InputError
from optieval.export.inputs import (
    DimInfo,
    DynamicDim,
    InputSpec,
    alternate_size,
    apply_export_sizes,
    make_tensors,
    parse_dynamic,
    parse_input,
    parse_input_range,
    resolve_dynamic,
    spec_from_tensor,
)


def test_parse_input_forms() -> None:
    assert parse_input("x:2x3x224x224") == InputSpec("x", (2, 3, 224, 224), "float32")
    # The shape parser is optieval.core's: the name ends at the last colon before the shape.
    assert parse_input("enc:ids:2x16") == InputSpec("enc:ids", (2, 16), "float32")
    assert parse_input("enc:ids:2x16:int64") == InputSpec("enc:ids", (2, 16), "int64")
    assert parse_input_range("enc:ids:0:5") == ("enc:ids", 0.0, 5.0)
    assert parse_input("input_ids:2x16:int64") == InputSpec("input_ids", (2, 16), "int64")
    assert parse_input("m:4:half").dtype == "float16"
    assert parse_input("b:3:bool").dtype == "bool"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x", "NAME:SHAPE"),
        ("x:2xa", "is not a shape"),
        ("x:2x0", "at least 1"),
        ("x:-2x3", "at least 1"),
        ("x::int64", "NAME:SHAPE"),
        ("x:2:complex7", "unknown dtype"),
        (":2x3", "NAME:SHAPE"),
    ],
)
def test_parse_input_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_input(text)
    assert fragment in str(info.value)
    assert text in str(info.value)  # names the offending value


def test_parse_input_range() -> None:
    assert parse_input_range("input_ids:0:30522") == ("input_ids", 0.0, 30522.0)
    assert parse_input_range("x:-1:1") == ("x", -1.0, 1.0)
    for bad in ("x:1", "x:a:b", "x:3:1"):
        with pytest.raises(InputError):
            parse_input_range(bad)


def test_parse_dynamic() -> None:
    assert parse_dynamic("batch") == DynamicDim(None, 0, "batch")
    assert parse_dynamic("batch:1..64") == DynamicDim(None, 0, "batch", 1, 64)
    assert parse_dynamic("input_ids:1:seq") == DynamicDim("input_ids", 1, "seq")
    assert parse_dynamic("input_ids:1") == DynamicDim("input_ids", 1, "input_ids_1")
    assert parse_dynamic("x:2:h:8..") == DynamicDim("x", 2, "h", 8, None)
    for bad in ("x", "x:a", "x:1:seq:9..3", "x:1:2abc"):
        with pytest.raises(InputError) as info:
            parse_dynamic(bad)
        assert "`dynamic`" in str(info.value) and bad in str(info.value)


def test_resolve_dynamic_batch_and_shared_labels() -> None:
    specs = [InputSpec("ids", (1, 8), "int64"), InputSpec("mask", (1, 8), "int64")]
    dims = resolve_dynamic(
        [parse_dynamic("batch"), parse_dynamic("ids:1:seq"), parse_dynamic("mask:1:seq")], specs
    )
    assert dims["ids"][0] == DimInfo("batch", None, None, 2)  # batch 1 raised to 2
    assert dims["mask"][1].label == "seq" and dims["mask"][1].size == 8
    fitted = apply_export_sizes(specs, dims)
    assert [s.shape for s in fitted] == [(2, 8), (2, 8)]


def test_resolve_dynamic_collects_every_problem() -> None:
    specs = [InputSpec("a", (2, 8)), InputSpec("b", (2, 4))]
    with pytest.raises(InputError) as info:
        resolve_dynamic(
            [
                parse_dynamic("zz:0"),
                parse_dynamic("a:5"),
                parse_dynamic("a:1:s"),
                parse_dynamic("b:1:s"),
            ],
            specs,
        )
    text = str(info.value)
    assert "no input 'zz'" in text and "no axis 5" in text and "share label 's'" in text
    assert "\n" not in text


def test_negative_axis_and_alternate_sizes() -> None:
    dims = resolve_dynamic([parse_dynamic("x:-1:w")], [InputSpec("x", (2, 3, 16))])
    assert dims["x"][2].size == 16
    assert alternate_size(DimInfo("batch", None, None, 2)) == 1
    assert alternate_size(DimInfo("seq", None, None, 16)) == 8
    assert alternate_size(DimInfo("h", 8, None, 8)) == 9  # halving would leave the bounds
    assert alternate_size(DimInfo("h", 8, 8, 8)) == 8


def test_make_tensors_is_seeded_and_respects_ranges() -> None:
    specs = [
        InputSpec("ids", (4, 32), "int64", 5, 9),
        InputSpec("mask", (4, 32), "int64"),
        InputSpec("x", (3,), "float32", 10, 11),
        InputSpec("b", (2,), "bool"),
    ]
    one, two = make_tensors(specs, seed=3), make_tensors(specs, seed=3)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert one["ids"].min() >= 5 and one["ids"].max() < 9 and one["ids"].dtype == torch.int64
    assert set(one["mask"].unique().tolist()) <= {0, 1}
    assert one["x"].min() >= 10 and one["x"].max() < 11
    assert one["b"].dtype == torch.bool


def test_spec_from_tensor_keeps_integer_range() -> None:
    spec = spec_from_tensor("mask", torch.tensor([[0, 1, 1]]))
    assert (spec.low, spec.high, spec.dtype) == (0.0, 2.0, "int64")
    assert spec_from_tensor("x", torch.zeros(2, 3)).low is None
    assert InputSpec.from_json(spec.to_json()) == spec
