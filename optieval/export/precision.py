"""Deprecated alias of :mod:`optieval.precision` (moved in 0.2); it goes in the next release."""

from optieval.compat import deprecated_alias

__getattr__ = deprecated_alias(__name__, "optieval.precision")
