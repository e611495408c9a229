"""Shape sets: the i-th shape of each swept input together, tied dimensions followed, and the
set's label."""

import pytest

from optieval.core import (
    Signature,
    TensorSpec,
    bind_dims,
    expand_shape_sets,
    resolve_shapes,
    zip_shape_sweep,
)
from optieval.errors import InputError

ENCODER = Signature(
    (
        TensorSpec("input_ids", "int64", ("batch", "seq")),
        TensorSpec("attention_mask", "int64", ("batch", "seq")),
    ),
    (TensorSpec("embedding", "float32", ("batch", 16)),),
)


def test_sets_pair_shapes_by_position_never_as_a_product() -> None:
    sweep = {
        "input_ids": [(1, 16), (1, 64), (1, 128)],
        "attention_mask": [(1, 16), (1, 64), (1, 128)],
    }
    sets = expand_shape_sets(ENCODER, [], zip_shape_sweep(sweep))
    assert [s.shapes["attention_mask"] for s in sets] == [(1, 16), (1, 64), (1, 128)]
    assert [s.label for s in sets] == ["seq=16", "seq=64", "seq=128"]
    assert [s.batch for s in sets] == [1, 1, 1]


def test_an_input_left_out_follows_its_tied_partner() -> None:
    sets = expand_shape_sets(ENCODER, [], zip_shape_sweep({"input_ids": [(2, 16), (2, 64)]}))
    assert [s.shapes for s in sets] == [
        {"input_ids": (2, 16), "attention_mask": (2, 16)},
        {"input_ids": (2, 64), "attention_mask": (2, 64)},
    ]
    assert [s.batch for s in sets] == [2, 2]
    assert resolve_shapes(ENCODER, None, {"input_ids": (4, 8)})["attention_mask"] == (4, 8)


def test_a_set_whose_inputs_disagree_names_the_dimension() -> None:
    sweep = {"input_ids": [(1, 16), (1, 64)], "attention_mask": [(1, 16), (1, 32)]}
    with pytest.raises(InputError) as info:
        expand_shape_sets(ENCODER, [], zip_shape_sweep(sweep))
    message = info.value.message
    assert "shape set 2 of 2" in message and "'seq'" in message
    assert "64" in message and "32" in message
    assert info.value.where == "shapes"


def test_different_counts_of_shapes_are_refused() -> None:
    with pytest.raises(InputError, match=r"input_ids: 3, attention_mask: 2") as info:
        zip_shape_sweep(
            {"input_ids": [(1, 16), (1, 64), (1, 128)], "attention_mask": [(1, 16), (1, 64)]}
        )
    assert info.value.where == "shapes"


def test_untied_dimension_still_needs_its_shape() -> None:
    untied = Signature(
        (
            TensorSpec("input_ids", "int64", ("batch", "seq")),
            TensorSpec("attention_mask", "int64", ("batch", "seq_mask")),
        ),
        (),
    )
    with pytest.raises(InputError, match="shares no dimension name with 'input_ids'"):
        expand_shape_sets(untied, [], [{"input_ids": (1, 16)}])


def test_sets_with_batches_and_labels_by_shape_when_unnamed() -> None:
    unnamed = Signature((TensorSpec("x", "float32", ("batch", None)),), ())
    sets = expand_shape_sets(unnamed, [], [{"x": (1, 4)}, {"x": (1, 8)}])
    assert [s.label for s in sets] == ["x:1x4", "x:1x8"]
    with pytest.raises(InputError, match="`batch` is 8"):
        expand_shape_sets(ENCODER, [1, 8], [{"input_ids": (1, 16)}])
    plain = expand_shape_sets(Signature((TensorSpec("x", "float32", ("batch", 3)),), ()), [1, 4])
    assert [(s.batch, s.shapes["x"], s.label) for s in plain] == [
        (1, (1, 3), None),
        (4, (4, 3), None),
    ]


def test_bind_dims_reports_both_inputs() -> None:
    assert bind_dims(ENCODER, {"input_ids": (2, 9), "attention_mask": (2, 9)}) == {
        "batch": 2,
        "seq": 9,
    }
    with pytest.raises(InputError, match="'input_ids' dim 1 is 9 but 'attention_mask' dim 1 is 5"):
        bind_dims(ENCODER, {"input_ids": (2, 9), "attention_mask": (2, 5)})
