"""One module per ``optieval`` command: parse its options, call the public Python API, render
the result and exit with its code. :mod:`optieval.cli.app` registers them on the Typer app."""
