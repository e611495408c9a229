"""``python -m optieval``."""

from optieval.cli import main

main()
