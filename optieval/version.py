"""The one place optieval's version is written: the package metadata (``pyproject.toml`` reads it
from here), ``optieval --version`` and the ``env`` block of every JSON optieval writes."""

__version__ = "0.2.0"
