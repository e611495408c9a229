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
    Raises :class:`InputError` naming the input and parameter otherwise.
    """
    overrides = dict(overrides or {})
    for name in overrides:
        signature.input(name)  # raises for an unknown input
    shapes: dict[str, Shape] = {}
    for spec in signature.inputs:
        if spec.name in overrides:
            shapes[spec.name] = _check_override(spec, overrides[spec.name], batch)
        else:
            shapes[spec.name] = _fill(spec, batch)
    return shapes


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


def _fill(spec: TensorSpec, batch: int | None) -> Shape:
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
            dims.append(batch if batch is not None else 1)
        else:
            raise InputError(
                f"input {spec.name!r} has a dynamic dimension {axis} ({dim or '?'}) that only "
                "`shapes` can fill",
                where="shapes",
                hint=f"e.g. `shapes` {spec.name}:{_example(spec, batch)}",
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
    fair coin flips."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in signature.inputs:
        feeds[spec.name] = random_array(rng, spec.dtype, shapes[spec.name])
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
