"""Deprecated import paths, kept for one release after the 0.2 layout moved their modules.

An alias module is three lines: a docstring naming the new home, and
``__getattr__ = deprecated_alias(__name__, "optieval.new.home")``. Every attribute read through
it warns once (:class:`DeprecationWarning`) and returns the object from its new module.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def deprecated_alias(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that forwards every name of ``old`` to module ``new``, warning.

    Args:
        old: the deprecated module's name (pass ``__name__``).
        new: the module the names live in now.

    Returns:
        A function suitable as the alias module's ``__getattr__``.
    """

    def forward(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(new)
        try:
            value = getattr(target, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return forward
