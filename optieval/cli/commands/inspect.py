"""``optieval inspect``: an ONNX file's I/O, opset, size, precision census and provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console
from optieval.cli.options import check_outputs, write_json_output


def inspect(
    model: Annotated[Path, typer.Argument(help="ONNX model or artifact.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the description JSON here.")
    ] = None,
) -> None:
    """Show an ONNX file's I/O, opset, size, precision census and provenance."""
    check_outputs(json_file=json_file)
    from optieval.cli.render.precision import info_renderables
    from optieval.precision import inspect_model

    if model.suffix.lower() == ".json":
        from optieval.errors import InputError

        hint = "`optieval show FILE` renders bench, compare and gate results"
        raise InputError("a JSON file, not an ONNX model", where=str(model), hint=hint)
    info = inspect_model(model)
    for renderable in info_renderables(info):
        console.print(renderable)
    write_json_output(json_file, info.to_json())
