"""Shape sets: the concrete shapes of every input that one cell runs, swept together.

A sweep over several inputs pairs their shapes by position, never as a product: the ``i``-th
shape of each input belong together (``input_ids:1x16,1x64`` with ``attention_mask:1x16,1x64``
is two sets, not four). An input left out follows the inputs it shares dimension names with in
the model (:func:`optieval.core.resolve_shapes`), so ``input_ids`` alone fills
``attention_mask`` when both are ``[batch, seq]``. Each set is labelled by its named dynamic
dimensions (``seq=64``) or, when some are unnamed, by its shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from optieval.core.feeds import resolve_shapes
from optieval.core.shapes import Shape, format_shape
from optieval.core.signature import Signature
from optieval.errors import InputError


@dataclass(frozen=True)
class ShapeSet:
    """The shapes of every input of one cell.

    Attributes:
        batch: the batch size (dimension 0 of the inputs).
        shapes: input name -> concrete shape, batch included.
        label: what tells this set apart from the other sets of a sweep (``seq=64``), or None
            when nothing but the batch varies.
    """

    batch: int
    shapes: dict[str, Shape]
    label: str | None = None


def zip_shape_sweep(
    shapes: Mapping[str, Sequence[Shape]], *, where: str = "shapes"
) -> list[dict[str, Shape]]:
    """Pair per-input shape lists by position into shape sets
    (``{"ids": [a, b], "mask": [c, d]}`` -> ``[{"ids": a, "mask": c}, {"ids": b, "mask": d}]``).

    Raises:
        InputError: inputs with different numbers of shapes (naming each count).
    """
    counts = {name: len(list(values)) for name, values in shapes.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise InputError(
            f"inputs have different numbers of shapes ({listed}); the i-th shape of each input "
            "runs together, so every input needs as many",
            where=where,
            hint="give each swept input one shape per set, or leave out an input whose "
            "dimensions follow another's",
        )
    count = next(iter(counts.values()), 0)
    return [{name: tuple(values[i]) for name, values in shapes.items()} for i in range(count)]


def expand_shape_sets(
    signature: Signature,
    batches: Sequence[int],
    sets: Sequence[Mapping[str, Shape]] = (),
    *,
    where: str = "shapes",
) -> list[ShapeSet]:
    """Every cell's :class:`ShapeSet`: each batch x each set (a set without ``batches`` brings
    its own batch, its first dimension), every input resolved and checked against the model.

    Args:
        signature: the model's inputs.
        batches: batch sizes (empty: 1, or each set's own).
        sets: shape sets, each naming some inputs' full shapes (from :func:`zip_shape_sweep`
            or a gate target's ``shapes``).
        where: the parameter the sets came from, named in errors.

    Raises:
        InputError: a batch below 1; a set that does not fit the model, disagrees with a
            batch, or whose inputs disagree on a tied dimension (naming the set and dimension).
    """
    for batch in batches:
        if batch < 1:
            raise InputError(f"batch {batch} must be at least 1", where="batches")
    out: list[ShapeSet] = []
    if not sets:
        for size in batches or [1]:
            out.append(ShapeSet(size, resolve_shapes(signature, size)))
        return out
    for index, shape_set in enumerate(sets):
        if not shape_set:
            raise InputError(f"shape set {index + 1} names no input", where=where)
        options: list[int | None] = list(batches) or [None]
        for asked in options:
            try:
                resolved = resolve_shapes(signature, asked, shape_set)
            except InputError as exc:
                at = f"shape set {index + 1} of {len(sets)}: " if len(sets) > 1 else ""
                raise InputError(f"{at}{exc.message}", where=where, hint=exc.hint) from exc
            first = next(iter(resolved.values()), ())
            own = asked if asked is not None else (first[0] if first else 1)
            out.append(ShapeSet(own, resolved))
    labels = _labels(signature, [s.shapes for s in out])
    return [ShapeSet(s.batch, s.shapes, label) for s, label in zip(out, labels, strict=True)]


def shape_set_label(signature: Signature, shapes: Mapping[str, Shape]) -> str | None:
    """``seq=64`` for shapes whose dynamic dimensions beyond the batch are all named; the shapes
    themselves (``input_ids:1x64 attention_mask:1x64``) when one is unnamed; None when no
    dimension but the batch is dynamic."""
    named: dict[str, int] = {}
    unnamed = False
    for spec in signature.inputs:
        shape = shapes.get(spec.name)
        if shape is None:
            continue
        for axis, dim in enumerate(spec.shape):
            if axis == 0 or isinstance(dim, int) or axis >= len(shape):
                continue
            if isinstance(dim, str) and dim:
                named.setdefault(dim, int(shape[axis]))
            else:
                unnamed = True
    if unnamed:
        return " ".join(f"{name}:{format_shape(s)}" for name, s in shapes.items())
    if not named:
        return None
    return " ".join(f"{name}={size}" for name, size in named.items())


def _labels(signature: Signature, sets: list[dict[str, Shape]]) -> list[str | None]:
    labels = [shape_set_label(signature, s) for s in sets]
    if len(set(labels)) < len({_key(s) for s in sets}):
        # Two sets that differ beyond the batch read the same by name: label them by shapes.
        return [" ".join(f"{n}:{format_shape(x)}" for n, x in s.items()) for s in sets]
    return labels


def _key(shapes: Mapping[str, Shape]) -> tuple[tuple[str, Shape], ...]:
    # The batch is in every cell's label already.
    return tuple(sorted((name, tuple(shape[1:])) for name, shape in shapes.items()))
