"""Inputs for a run: shapes resolved from the model, ``batch`` and ``shapes`` (the parser of
``NAME:D0xD1x...`` text is :mod:`optieval.core.shapes`), and generated feeds (seeded and
dtype-aware) when no data set is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optieval.core.shapes import Shape
from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError

# Integers are drawn from [0, 64): valid indices for any embedding table a test model has.
_INT_RANGE = (0, 64)


def resolve_shapes(
    signature: Signature, batch: int | None, overrides: Mapping[str, Shape] | None = None
) -> dict[str, Shape]:
    """Give every input a concrete shape.

    Dimension 0 of each input is the batch: a symbolic one is filled with ``batch``; a fixed one
    must equal it. ``overrides`` (``shapes``; the CLI's ``--shape``) give an input's full
    shape, batch included, and must fit the model's fixed dims and agree with ``batch``.

    Dimensions are tied by their symbolic names: an input left out of ``overrides`` takes the
    size an override gives a dimension of the same name (``attention_mask[batch, seq]`` follows
    ``input_ids[batch, seq]``), and two overrides that give one name two sizes are refused.
    Raises :class:`InputError` naming the input, the dimension and the parameter otherwise.
    """
    overrides = dict(overrides or {})
    for name in overrides:
        signature.input(name)  # raises for an unknown input
    checked = {
        spec.name: _check_override(spec, overrides[spec.name], batch)
        for spec in signature.inputs
        if spec.name in overrides
    }
    bound = bind_dims(signature, checked)
    shapes: dict[str, Shape] = {}
    for spec in signature.inputs:
        if spec.name in checked:
            shapes[spec.name] = checked[spec.name]
        else:
            shapes[spec.name] = _fill(spec, batch, bound, given=list(checked))
    return shapes


def bind_dims(
    signature: Signature, shapes: Mapping[str, Shape], *, what: str | None = None
) -> dict[str, int]:
    """The size each symbolic dimension name takes in ``shapes`` (concrete shapes of some of
    ``signature``'s inputs, each of the input's rank): ``{"batch": 1, "seq": 64}``.

    ``what`` names the shapes in errors (``sample 3``), when given.

    Raises:
        InputError: two inputs give one dimension name different sizes (naming the dimension
            and both inputs).
    """
    bound: dict[str, tuple[int, str, int]] = {}
    for spec in signature.inputs:
        shape = shapes.get(spec.name)
        if shape is None:
            continue
        for axis, (dim, size) in enumerate(zip(spec.shape, shape, strict=False)):
            if not isinstance(dim, str) or not dim:
                continue
            seen = bound.get(dim)
            if seen is None:
                bound[dim] = (int(size), spec.name, axis)
            elif seen[0] != size:
                at = f"{what}: " if what else ""
                raise InputError(
                    f"{at}inputs disagree on dimension {dim!r}: {seen[1]!r} dim {seen[2]} is "
                    f"{seen[0]} but {spec.name!r} dim {axis} is {size}",
                    where="shapes",
                    hint=f"the model ties them (both are {dim!r}): give them the same size",
                )
    return {name: size for name, (size, _, _) in bound.items()}


def _check_override(spec: TensorSpec, shape: Shape, batch: int | None) -> Shape:
    # The parameter and the input together locate the problem: "`shapes` x: ...".
    at = f"`shapes` {spec.name}: "
    if len(shape) != len(spec.shape):
        raise InputError(
            f"{at}shape {'x'.join(map(str, shape))} has {len(shape)} dims, input {spec.name!r} "
            f"has {len(spec.shape)} ({spec.shape_text()})"
        )
    for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
        if isinstance(want, int) and want != got:
            raise InputError(
                f"{at}dim {axis} of input {spec.name!r} is fixed at {want} in the model, not {got}",
                hint=f"the model expects {spec.shape_text()}",
            )
    if batch is not None and shape and shape[0] != batch:
        raise InputError(
            f"{at}shape {'x'.join(map(str, shape))} has batch {shape[0]} but `batch` is {batch}",
            hint="make the first dimension of `shapes` equal `batch`, or drop `batch`",
        )
    return shape


def _fill(
    spec: TensorSpec,
    batch: int | None,
    bound: Mapping[str, int] | None = None,
    given: Sequence[str] = (),
) -> Shape:
    bound = bound or {}
    dims: list[int] = []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int):
            if axis == 0 and batch is not None and dim != batch:
                raise InputError(
                    f"input {spec.name!r} has a static batch of {dim}; batch {batch} is not "
                    "possible",
                    where="batch",
                    hint=f"use `batch` {dim}, or re-export with a dynamic batch",
                )
            dims.append(dim)
        elif axis == 0:
            tied = bound.get(dim) if isinstance(dim, str) else None
            dims.append(batch if batch is not None else tied or 1)
        elif isinstance(dim, str) and dim in bound:
            dims.append(bound[dim])
        else:
            follows = (
                f"; it shares no dimension name with {', '.join(repr(g) for g in given)}, so "
                "give its shape too"
                if given
                else ""
            )
            raise InputError(
                f"input {spec.name!r} has a dynamic dimension {axis} ({dim or '?'}) that only "
                f"`shapes` can fill{follows}",
                where="shapes",
                hint=f"e.g. `shapes` {spec.name}:{_example(spec, batch)}, or give `data`",
            )
    return tuple(dims)


def _example(spec: TensorSpec, batch: int | None) -> str:
    dims = [str(d) if isinstance(d, int) else "16" for d in spec.shape]
    if dims:
        dims[0] = str(batch or 1)
    return "x".join(dims)


def generate_feeds(
    signature: Signature, shapes: Mapping[str, Shape], *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Make one seeded feed per input: floats standard normal, integers in [0, 64), bools
    fair coin flips; except that an integer or bool input named like a mask
    (``attention_mask``) is all ones and one named like ``token_type_ids`` all zeros, as a
    tokenizer gives them (a random mask would make a transformer's outputs meaningless)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in signature.inputs:
        array = random_array(rng, spec.dtype, shapes[spec.name])
        if array.dtype.kind in "iub":
            name = spec.name.lower()
            if name.endswith("mask"):
                array = np.ones_like(array)
            elif "token_type" in name:
                array = np.zeros_like(array)
        feeds[spec.name] = array
    return feeds


def random_array(rng: np.random.Generator, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """One random array of ``dtype`` and ``shape`` drawn from ``rng``."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    kind: str
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = "?"
    if kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if kind in "iu":
        return rng.integers(*_INT_RANGE, size=shape).astype(dtype)
    raise InputError(f"cannot generate inputs of dtype {dtype}", hint="pass real data (`data`)")
