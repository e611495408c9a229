"""The one parser of tensor shapes written as text: ``D0xD1x...`` and ``NAME:D0xD1x...``.

Every command and library call that takes a shape as text (``bench`` and ``build`` shapes,
TensorRT profiles, export example inputs) parses it here, so the rules are the same everywhere:

* dimensions are positive integers joined by ``x`` (``8x3x224x224``; ``X`` is accepted too);
* a named shape splits on the **last** colon, so input names may themselves contain colons
  (``encoder:input_ids:1x16`` names the input ``encoder:input_ids``).

Errors are :class:`~optieval.errors.InputError` naming the offending text and, through
``where``, the Python parameter it came from (the command line shows it as its flag).
"""

from __future__ import annotations

from optieval.errors import InputError

Shape = tuple[int, ...]
"""A concrete tensor shape."""

SHAPE_EXAMPLE = "8x3x224x224"
NAMED_SHAPE_FORMAT = "NAME:D0xD1x..., e.g. x:8x3x224x224"


def is_dims(text: str) -> bool:
    """Whether ``text`` reads as integers joined by ``x`` (any sign; :func:`parse_dims` checks
    that they are positive)."""
    parts = text.strip().lower().split("x")
    return all(_is_int(p) for p in parts)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_dims(text: str, *, where: str | None = "shapes", name: str | None = None) -> Shape:
    """Parse ``D0xD1x...`` (``1x3x224x224``) into a tuple of positive ints.

    Args:
        text: the dimensions, joined by ``x``.
        where: the parameter the text came from (the error's ``where``).
        name: the input the shape belongs to, named in errors when given.

    Raises:
        InputError: a part that is not an integer, or a dimension below 1.
    """
    of = f" of input {name!r}" if name is not None else ""
    if not is_dims(text):
        raise InputError(
            f"{text!r}{of} is not a shape (integers joined by 'x', like {SHAPE_EXAMPLE})",
            where=where,
        )
    dims = tuple(int(d) for d in text.strip().lower().split("x"))
    if any(d < 1 for d in dims):
        raise InputError(
            f"shape {text!r}{of} has a dimension below 1 (each must be at least 1)", where=where
        )
    return dims


def split_named(
    text: str, *, where: str | None = "shapes", form: str = "NAME:D0xD1x..."
) -> tuple[str, str]:
    """Split ``NAME:REST`` on the last colon into ``(NAME, REST)``; InputError naming ``form``
    when there is no colon or either side is empty."""
    name, sep, rest = text.rpartition(":")
    if not sep or not name.strip() or not rest.strip():
        raise InputError(f"{text!r} is not {form}", where=where, hint=f"e.g. x:{SHAPE_EXAMPLE}")
    return name.strip(), rest.strip()


def parse_named_shape(text: str, *, where: str | None = "shapes") -> tuple[str, Shape]:
    """Parse ``NAME:D0xD1x...`` (split on the last colon) into ``(name, shape)``.

    Raises:
        InputError: no ``NAME:`` part, an empty name or shape, or bad dimensions.
    """
    name, dims = split_named(text, where=where)
    return name, parse_dims(dims, where=where, name=name)


def parse_shape_option(text: str, where: str | None = "shapes") -> tuple[str, list[Shape]]:
    """Parse ``NAME:D0xD1x...[,D0xD1x...]`` (split on the last colon) into the input name and
    one or more shapes (``ids:1x16,1x32`` -> ``("ids", [(1, 16), (1, 32)])``).

    Raises:
        InputError: as :func:`parse_named_shape`, for any of the shapes.
    """
    name, dims = split_named(text, where=where, form="NAME:D0xD1x...[,D0xD1x...]")
    return name, [parse_dims(part, where=where, name=name) for part in dims.split(",")]


def format_shape(shape: Shape) -> str:
    """``(8, 3, 224, 224)`` -> ``"8x3x224x224"`` (the inverse of :func:`parse_dims`)."""
    return "x".join(str(d) for d in shape)
