"""The optieval command line."""

from optieval.cli.app import app, main

__all__ = ["app", "main"]
