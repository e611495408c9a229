"""``optieval convert``: an FP32 ONNX model into an FP16 or calibrated INT8 artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console, err_console
from optieval.cli.flags import to_flags
from optieval.cli.options import check_outputs, split_list, write_json_output


def convert(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX model.")],
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp16 or int8.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Artifact path (default MODEL.<precision>.onnx)."),
    ] = None,
    calib: Annotated[
        str | None,
        typer.Option(
            help="INT8 calibration data: .npz, directory of .npy/.npz, module:function, "
            "or 'random' (smoke tests only)."
        ),
    ] = None,
    calib_method: Annotated[
        str | None,
        typer.Option(
            help="minmax, entropy or percentile (default: the format's, chosen by measurement: "
            "percentile for symmetric, minmax for u8s8)."
        ),
    ] = None,
    calib_samples: Annotated[
        int | None, typer.Option(help="Calibrate on the first N samples (default all).")
    ] = None,
    calib_repeats: Annotated[
        int, typer.Option(help="Calibrate K times on resampled subsets; report the spread.")
    ] = 1,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Node name or op type kept in float; repeatable."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "-b",
            help="Make the artifact for this backend: int8 takes its best format (ort-cpu: "
            "u8s8 for CNNs, dynamic for transformers; ort-cuda/ort-trt/tensorrt: symmetric). "
            "Default: the portable symmetric format.",
        ),
    ] = None,
    int8_format: Annotated[
        str | None,
        typer.Option(
            "--int8-format",
            help="symmetric (zero point 0; TensorRT), u8s8 (uint8 activations; ORT x86 CPU) or "
            "dynamic (MatMul weights, no calibration; transformers on CPU). Overrides --backend's "
            "choice; a format the backend cannot run is refused.",
        ),
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            help="Seconds the FP16 conversion may take; past it, exit 3 naming the stage "
            "(default 600, or $OPTIEVAL_CONVERT_TIME_LIMIT).",
        ),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here.")
    ] = None,
) -> None:
    """Convert an FP32 ONNX model into an FP16 or calibrated INT8 (QDQ) artifact + census."""
    import warnings

    check_outputs(json_file=json_file, files={"--output": output})

    from optieval.cli.progress import step_progress
    from optieval.cli.render.precision import conversion_renderables
    from optieval.precision import convert as convert_model

    doing = "calibrating and quantizing" if precision == "int8" and calib else "converting"
    step = f"convert: {doing} {model.name} to {precision}"
    with warnings.catch_warnings(), step_progress(step) as stage:
        warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
        result = convert_model(
            model,
            precision,
            output=output,
            calib=calib,
            calib_method=calib_method,
            calib_samples=calib_samples,
            calib_repeats=calib_repeats,
            exclude=split_list(exclude, "--exclude"),
            backend=backend,
            int8_format=int8_format,
            time_limit=time_limit,
            progress=stage,
        )
    for line in result.warnings:
        err_console.print(
            f"[bold yellow]WARNING:[/] {to_flags(line)}", highlight=False, soft_wrap=True
        )
    for renderable in conversion_renderables(result):
        console.print(renderable)
    for line in result.notes:
        err_console.print(f"note: {to_flags(line)}", highlight=False, soft_wrap=True, markup=False)
    write_json_output(json_file, result.to_json())
