"""``optieval build``: a deployable TensorRT engine (model.plan + manifest) from an ONNX
artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from optieval.cli.console import console
from optieval.cli.options import check_outputs, split_list, write_json_output
from optieval.errors import InputError


def build(
    model: Annotated[
        Path, typer.Argument(help="ONNX artifact (fp32, or from `optieval convert`).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Engine path (model.plan).")],
    backend: Annotated[
        str, typer.Option("--backend", help="Engine builder: tensorrt.")
    ] = "tensorrt",
    precision: Annotated[
        str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (the artifact's).")
    ] = "fp32",
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="NAME:MIN:OPT:MAX, e.g. x:1x4:8x4:32x4; repeatable."),
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option("--shape", help="NAME:D0xD1x... a shape to cover (min=opt=max); repeatable."),
    ] = None,
    version_compatible: Annotated[
        bool, typer.Option(help="Build a TensorRT version-compatible engine.")
    ] = False,
    hardware_compatible: Annotated[
        bool, typer.Option(help="Build an engine that runs on any Ampere+ GPU.")
    ] = False,
    device_id: Annotated[
        int,
        typer.Option("--device", help="CUDA device to build on; the manifest records its GPU."),
    ] = 0,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here.")
    ] = None,
) -> None:
    """Build a deployable engine (model.plan + model.plan.json manifest) from an ONNX artifact."""
    check_outputs(json_file=json_file, files={"--output": output})
    from optieval.core import parse_named_shape
    from optieval.runtime import check_backend_name, parse_profile_option

    check_backend_name(backend)
    if backend != "tensorrt":
        raise InputError(
            f"{backend} does not build deployable engines", where="--backend", hint="use tensorrt"
        )
    profiles = [parse_profile_option(p) for p in split_list(profile, "--profile")]
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for item in shape or []:
        name, dims = parse_named_shape(item, where="shapes")
        shapes.setdefault(name, []).append(dims)
    if precision == "int8" and model.is_file():
        from optieval.precision import artifact_int8_format, check_artifact_format

        # A u8s8 or dynamic artifact (ORT CPU forms) cannot become a TensorRT engine: exit 2.
        check_artifact_format(artifact_int8_format(model), backend, where=str(model))
    from optieval.cli.progress import step_progress
    from optieval.runtime import build_plan

    with step_progress(
        f"build: building a {precision} TensorRT engine from {model.name} on device {device_id}"
    ):
        result = build_plan(
            model,
            output,
            precision=precision,
            shapes=shapes,
            profiles=profiles,
            version_compatible=version_compatible,
            hardware_compatible=hardware_compatible,
            device_id=device_id,
        )
    data = result.manifest_data
    read_back = data["precision"]["read_back"]["precision"]
    console.print(
        f"wrote {escape(result.plan)} (TensorRT {data['tensorrt']['version']}, device "
        f"{device_id} {escape(data['gpu']['name'])} sm {data['gpu']['compute_capability']}, "
        f"precision {data['precision']['requested']} read back {read_back}"
        f", built in {data['build_seconds']} s)",
        highlight=False,
    )
    write_json_output(json_file, result.to_json())
