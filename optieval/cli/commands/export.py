"""``optieval export``: a PyTorch model to ONNX, checked and proven equal to its source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console, err_console
from optieval.cli.flags import to_flags
from optieval.cli.options import check_outputs, write_json_output


def export_command(
    spec: Annotated[
        str,
        typer.Argument(
            help="package.module:factory, path/to/file.py:factory, model.pt/.ts (TorchScript) "
            "or model.pt2 (ExportedProgram)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="State dict to load (torch.load weights_only=True, or .safetensors)."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="Example input NAME:SHAPE[:DTYPE], e.g. x:2x3x224x224; repeatable."
        ),
    ] = None,
    input_ranges: Annotated[
        list[str] | None,
        typer.Option("--input-range", help="Value range NAME:LO:HI (HI excluded); repeatable."),
    ] = None,
    dynamic: Annotated[
        list[str] | None,
        typer.Option(
            "--dynamic",
            help="'batch' (dim 0 of every input) or NAME:AXIS[:LABEL][:MIN..MAX]; repeatable.",
        ),
    ] = None,
    exporter: Annotated[
        str, typer.Option(help="dynamo, torchscript, or auto (dynamo, then torchscript).")
    ] = "dynamo",
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    atol: Annotated[float, typer.Option(help="Parity absolute tolerance.")] = 1e-4,
    rtol: Annotated[float, typer.Option(help="Parity relative tolerance.")] = 1e-3,
    external_data: Annotated[
        bool | None,
        typer.Option(
            "--external-data/--single-file",
            help="Weights in NAME.data beside the file, or in it (default: by size).",
        ),
    ] = None,
    base_dir: Annotated[
        Path | None, typer.Option(help="Folder the spec is resolved from (default: here).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON (the manifest) here.")
    ] = None,
) -> None:
    """Export a PyTorch model to ONNX, check it and prove it equal to the source (parity)."""
    import warnings

    check_outputs(json_file=json_file, files={"--output": output})

    from optieval.cli.progress import step_progress
    from optieval.cli.render.export import export_renderables
    from optieval.export import ExportCheckFailed, export_model

    try:
        with warnings.catch_warnings(), step_progress(f"export: exporting {spec} ({exporter})"):
            warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
            result = export_model(
                spec, output, inputs=inputs, input_ranges=input_ranges, dynamic=dynamic,
                exporter=exporter, opset=opset, checkpoint=checkpoint, atol=atol, rtol=rtol,
                external_data=external_data, base_dir=base_dir,
            )  # fmt: skip
    except ExportCheckFailed as failed:
        result = failed.result
        for renderable in export_renderables(result):
            console.print(renderable)
        write_json_output(json_file, result.to_json())
        raise
    for line in result.warnings:
        err_console.print(
            f"WARNING: {to_flags(line)}", highlight=False, soft_wrap=True, markup=False
        )
    for renderable in export_renderables(result):
        console.print(renderable)
    write_json_output(json_file, result.to_json())
