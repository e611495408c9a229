"""A gate target's shape sets (``shape`` / ``shapes`` in the release config): reading them,
which set a later look of a cell measures again, the shapes parity's generated inputs take, and
shape errors that name the target's key rather than a parameter of :func:`optieval.benchmark`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from optieval.bench import Cell
from optieval.errors import InputError
from optieval.release.config import GateConfig, TargetConfig

__all__ = [
    "cell_shape_set",
    "cells_text",
    "check_target_shapes",
    "in_target",
    "parity_shapes",
    "parse_shape_sets",
    "shape_error",
]

_EXAMPLE = 'shape = { input_ids = "1x128" } (or shapes = [...] to sweep)'


def parse_shape_sets(
    table: Mapping[str, Any], path: str, problems: list[str]
) -> list[dict[str, tuple[int, ...]]]:
    """A target table's ``shape = {input_ids = "1x128"}`` (one set) or ``shapes = [{...}, ...]``
    (a sweep), each set naming some inputs' full shapes, batch first, as ``"1x128"`` or
    ``[1, 128]``; each problem found is added to ``problems`` as ``"KEY PATH: message"``."""
    from optieval.core import parse_dims

    def add(at: str, message: str, hint: str | None = None) -> None:
        problems.append(f"{at}: {message}" + (f" (hint: {hint})" if hint else ""))

    if "shape" in table and "shapes" in table:
        add(f"{path}.shapes", "give shape (one set) or shapes (a list of sets), not both")
        return []
    key = "shape" if "shape" in table else "shapes"
    if key not in table:
        return []
    raw = [table[key]] if key == "shape" else table[key]
    example = 'shape = { input_ids = "1x128" }, or shapes = [{ input_ids = "1x16" }, ...]'
    if not isinstance(raw, list) or not raw:
        got = "" if isinstance(raw, list) else f", not {type(raw).__name__} {raw!r}"
        add(f"{path}.{key}", f"must be a non-empty list of tables{got}", example)
        return []
    if "batch" in table:
        add(f"{path}.batch", f"does not go with {key}: each shape's first dimension is its batch",
            "drop batch, or write the batch into the shapes")  # fmt: skip
    sets = []
    for j, item in enumerate(raw):
        at = f"{path}.{key}" if key == "shape" else f"{path}.{key}[{j}]"
        if not isinstance(item, dict) or not item:
            add(at, f"must be a table of input = shape, not {item!r}", example)
            continue
        shapes: dict[str, tuple[int, ...]] = {}
        for name, dims in item.items():
            if isinstance(dims, list) and all(type(d) is int for d in dims):
                dims = "x".join(map(str, dims))
            if not isinstance(dims, str):
                add(f"{at}.{name}", f'must be a shape such as "1x128", not {dims!r}')
                continue
            try:
                shapes[name] = parse_dims(dims, where=None, name=name)
            except InputError as exc:
                add(f"{at}.{name}", exc.message)
        if len(shapes) == len(item):
            sets.append(shapes)
    return sets


def check_target_shapes(config: GateConfig, model: Path) -> None:
    """Before any work: every target's shape sets fit ``model``, and a target without them has
    its dynamic dimensions filled (by the batch, or by evaluation data when there is some).

    Raises:
        InputError: naming the target (and its ``shape``/``shapes`` key) as at run time.
    """
    from optieval.core import expand_shape_sets
    from optieval.precision import model_signature

    signature = model_signature(model)
    for target in config.targets:
        if not target.shape_sets and config.data.evaluation is not None:
            continue
        try:
            expand_shape_sets(signature, [] if target.shape_sets else target.batches,
                              target.shape_sets)  # fmt: skip
        except InputError as exc:
            if exc.where not in ("shapes", "batch"):
                raise
            raise shape_error(target, exc) from exc


def cells_text(target: TargetConfig, batches: list[int], only: Cell | None = None) -> str:
    """What a bench of ``target`` runs, for progress lines: ``batch 1, 8``, or its shape sets
    (``3 shape sets``; ``b1 seq=64`` for one cell's later look)."""
    if not target.shape_sets:
        return f"batch {', '.join(map(str, batches))}"
    if only is not None:
        return only.label.removeprefix(f"{target.label} ")
    count = len(target.shape_sets)
    return f"{count} shape set{'s' if count > 1 else ''}"


def cell_shape_set(target: TargetConfig, cell: Cell) -> list[dict[str, tuple[int, ...]]] | None:
    """The shape set of ``cell`` when its target sweeps sets (a later look measures that set
    again), else None (the batch says which cell)."""
    if not target.shape_sets:
        return None
    return [{name: tuple(dims) for name, dims in cell.shapes.items()}]


def parity_shapes(config: GateConfig, warnings: list[str]) -> dict[str, tuple[int, ...]] | None:
    """Without evaluation data, the shapes parity's generated inputs take: the first shape set
    of the first target that has one (a model with a dynamic sequence needs one), with a
    warning added to ``warnings`` that says so; None otherwise."""
    if config.data.evaluation is not None:
        return None
    for target in config.targets:
        if target.shape_sets:
            first = target.shape_sets[0]
            shapes = " ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in first.items())
            warnings.append(
                f"accuracy was measured on generated inputs of shapes {shapes} "
                f"(target[{target.index}]'s first shape set); set data.evaluation to measure "
                "it on real inputs"
            )
            return first
    return None


def in_target(
    target: TargetConfig, bench: Callable[..., Any], only: Cell | None = None
) -> Callable[..., Any]:
    """``bench`` (:func:`optieval.benchmark`) for ``target``: a target with shape sets runs
    one cell per set (only ``only``'s set, a later look of that cell) on generated inputs of
    those shapes, in place of the ``batches`` and ``data`` it is called with; shape errors
    name the target (its ``shape``/``shapes`` key), not the ``shapes`` parameter (exit 2)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        sets = cell_shape_set(target, only) if only is not None else list(target.shape_sets)
        if sets:
            kwargs.update(batches=[], shape_sets=sets, data=None)
        try:
            return bench(*args, **kwargs)
        except InputError as exc:
            if exc.where != "shapes":
                raise
            raise shape_error(target, exc) from exc

    return run


def shape_error(target: TargetConfig, exc: InputError) -> InputError:
    """``exc`` (about the ``shapes`` parameter) as a problem of ``target``'s shapes, or of its
    missing shape (with what to add)."""
    if target.shape_sets:
        key = "shapes" if len(target.shape_sets) > 1 else "shape"
        where, hint = f"target[{target.index}].{key}", exc.hint
    else:
        where = f"target[{target.index}]"
        hint = f"give the target {_EXAMPLE}, or set data.evaluation"
    message = exc.message.replace("only `shapes` can fill", "only a shape can fill")
    return InputError(message.replace("`shapes` ", ""), where=where, hint=hint)
