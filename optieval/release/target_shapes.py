"""A gate target's shape sets (``shape`` / ``shapes`` in the release config): which set a later
look of a cell measures again, the shapes parity's generated inputs take, and shape errors that
name the target's key rather than a parameter of :func:`optieval.benchmark`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optieval.bench import Cell
from optieval.errors import InputError
from optieval.release.config import GateConfig, TargetConfig

__all__ = ["cell_shape_set", "in_target", "parity_shapes", "shape_error"]

_EXAMPLE = 'shape = { input_ids = "1x128" } (or shapes = [...] to sweep)'


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
