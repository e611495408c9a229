"""``optieval demo``: the main job on the bundled digits CNN, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.commands.gate import run_gate_command
from optieval.cli.console import console


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the exported model and the reports.")
    ] = Path("optieval-demo"),
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to measure each cell (default: the demo config's 1 s)."),
    ] = None,
) -> None:
    """Run the main job on the bundled digits CNN: export it from PyTorch, build fp16 and int8
    artifacts, bench and compare them on ONNX Runtime CPU, gate them, write the reports."""
    from optieval.assets import DEMO_CONFIG

    console.print(
        f"optieval demo: gating the bundled digits CNN with {DEMO_CONFIG.name}",
        highlight=False,
        markup=False,
    )
    run_gate_command(
        DEMO_CONFIG, out, allow_inconclusive=False, json_file=None, duration_s=duration
    )
