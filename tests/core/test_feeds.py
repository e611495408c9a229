import numpy as np
import pytest

from optieval.core.feeds import generate_feeds, resolve_shapes
from optieval.core.shapes import parse_shape_option
from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError

SIG = Signature(
    (
        TensorSpec("ids", "int64", ("batch", "seq")),
        TensorSpec("mask", "bool", ("batch", "seq")),
        TensorSpec("img", "float32", ("batch", 3, 4)),
    ),
    (TensorSpec("y", "float32", ("batch", 2)),),
)


def test_parse_shape_option() -> None:
    assert parse_shape_option("x:8x3x224x224") == ("x", [(8, 3, 224, 224)])
    assert parse_shape_option("ids:1x16,1x32") == ("ids", [(1, 16), (1, 32)])
    for bad in ("x", "x:", "x:8xq", "x:0x3"):
        with pytest.raises(InputError) as info:
            parse_shape_option(bad)
        assert info.value.where == "shapes"


def test_resolve_fills_batch_and_requires_other_dynamic_dims() -> None:
    with pytest.raises(InputError, match="only `shapes` can fill"):
        resolve_shapes(SIG, 2)
    shapes = resolve_shapes(SIG, 2, {"ids": (2, 16), "mask": (2, 16)})
    assert shapes == {"ids": (2, 16), "mask": (2, 16), "img": (2, 3, 4)}


def test_shape_must_agree_with_batch_and_model() -> None:
    with pytest.raises(InputError, match="`batch` is 4"):
        resolve_shapes(SIG, 4, {"ids": (2, 16), "mask": (2, 16)})
    with pytest.raises(InputError, match="fixed at 3"):
        resolve_shapes(SIG, 2, {"ids": (2, 1), "mask": (2, 1), "img": (2, 5, 4)})
    with pytest.raises(InputError, match="has no input"):
        resolve_shapes(SIG, 2, {"nope": (2,)})


def test_static_batch_is_enforced() -> None:
    static = Signature((TensorSpec("x", "float32", (1, 4)),), ())
    assert resolve_shapes(static, None) == {"x": (1, 4)}
    with pytest.raises(InputError, match="static batch of 1"):
        resolve_shapes(static, 8)


def test_generated_feeds_are_seeded_and_dtype_aware() -> None:
    shapes = {"ids": (2, 5), "mask": (2, 5), "img": (2, 3, 4)}
    a = generate_feeds(SIG, shapes, seed=3)
    b = generate_feeds(SIG, shapes, seed=3)
    assert a["ids"].dtype == np.int64 and a["ids"].min() >= 0
    assert a["mask"].dtype == np.bool_
    assert a["img"].dtype == np.float32
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_masks_are_ones_and_token_types_zeros_as_a_tokenizer_gives_them() -> None:
    sig = Signature(
        (
            TensorSpec("input_ids", "int64", ("batch", "seq")),
            TensorSpec("attention_mask", "int64", ("batch", "seq")),
            TensorSpec("token_type_ids", "int64", ("batch", "seq")),
            TensorSpec("mask", "bool", ("batch", "seq")),
        ),
        (),
    )
    feeds = generate_feeds(sig, resolve_shapes(sig, 2, {"input_ids": (2, 7)}), seed=3)
    assert feeds["attention_mask"].shape == (2, 7) and (feeds["attention_mask"] == 1).all()
    assert feeds["mask"].dtype == bool and feeds["mask"].all()
    assert (feeds["token_type_ids"] == 0).all()
    assert len(np.unique(feeds["input_ids"])) > 1
