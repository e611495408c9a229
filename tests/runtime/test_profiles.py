"""Optimization-profile shapes: pure functions shared by tensorrt, ort-trt and `optieval build`."""

from __future__ import annotations

import pytest

from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError
from optieval.runtime.profiles import (
    ProfileShape,
    check_in_profiles,
    compute_profiles,
    ort_trt_shape_options,
    parse_profile_option,
)

SIG = Signature(
    (TensorSpec("x", "float32", ("batch", 3, "h", "w")), TensorSpec("mask", "int64", (2,))),
    (TensorSpec("y", "float32", ("batch", 10)),),
)


def test_profiles_from_requested_shapes() -> None:
    profiles = compute_profiles(SIG, shapes={"x": [(1, 3, 32, 32), (8, 3, 16, 64), (4, 3, 32, 32)]})
    x, mask = profiles
    assert x == ProfileShape("x", (1, 3, 16, 32), (8, 3, 16, 64), (8, 3, 32, 64))
    assert mask == ProfileShape("mask", (2,), (2,), (2,))  # fixed input needs no shape


def test_explicit_profile_wins() -> None:
    explicit = parse_profile_option("x:1x3x8x8:4x3x8x8:16x3x8x8")
    profiles = compute_profiles(SIG, shapes={"x": [(2, 3, 8, 8)]}, explicit=[explicit])
    assert profiles[0] == explicit
    assert ProfileShape.from_json(explicit.to_json()) == explicit


def test_all_problems_collected_once() -> None:
    bad = Signature((*SIG.inputs, TensorSpec("z", "float32", ("n",))), SIG.outputs)
    with pytest.raises(InputError) as info:
        compute_profiles(bad, shapes={"x": [(1, 4, 8, 8)], "nope": [(1,)]})
    text = str(info.value)
    assert "no input 'nope'" in text
    assert "'x' shape 1x4x8x8 does not fit float32[batchx3xhxw]" in text
    assert "'z' has dynamic dims" in text
    assert "`profiles`" in text and "--profile" not in text


@pytest.mark.parametrize(
    "text, match",
    [
        ("x:1x4:8x4", "NAME:MIN:OPT:MAX"),
        ("x:1x4:8x4:4x4", "min <= opt <= max"),
        ("x:1x4:8x4x1:9x4", "mixes ranks"),
        ("x:1xa:8x4:9x4", "not a shape"),
        ("x:0x4:8x4:9x4", "below 1"),
    ],
)
def test_bad_profile_option(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_profile_option(text)


def test_shape_outside_profile_names_the_range() -> None:
    p = ProfileShape("x", (1, 4), (8, 4), (16, 4))
    check_in_profiles({"x": (16, 4)}, [p], where="tensorrt")
    with pytest.raises(InputError, match=r"'x' shape 32x4 is outside .* 1x4 \.\. 16x4 \(opt 8x4\)"):
        check_in_profiles({"x": (32, 4)}, [p], where="tensorrt")


def test_ort_trt_shape_options_format() -> None:
    profiles = [ProfileShape("x", (1, 4), (8, 4), (16, 4)), ProfileShape("m", (2,), (2,), (2,))]
    assert ort_trt_shape_options(profiles) == {
        "trt_profile_min_shapes": "x:1x4,m:2",
        "trt_profile_opt_shapes": "x:8x4,m:2",
        "trt_profile_max_shapes": "x:16x4,m:2",
    }
    assert ort_trt_shape_options([]) == {}


def test_a_single_shape_per_input_is_accepted() -> None:
    (x, _mask) = compute_profiles(SIG, shapes={"x": (2, 3, 8, 8)})
    assert x == ProfileShape("x", (2, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 8))
