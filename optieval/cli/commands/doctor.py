"""``optieval doctor``: this machine's fingerprint and which backends are usable here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console
from optieval.cli.options import check_outputs, write_json_output


def doctor(
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")
    ] = None,
) -> None:
    """Show this machine's fingerprint and which backends are usable here, and why not."""
    check_outputs(json_file=json_file)
    from optieval.cli.render.bench import doctor_table, environment_table
    from optieval.runtime import diagnose

    report = diagnose()
    console.print(environment_table(report.env))
    console.print(doctor_table(report))
    write_json_output(json_file, report.to_json())
