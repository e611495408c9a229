"""``optieval gate``: run a release config and print its verdict; the run and its rendering are
shared with ``optieval demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from optieval.cli.console import VERBOSE, console, err_console, verbosity
from optieval.cli.flags import to_flags
from optieval.cli.options import ExecutorOption, RayAddressOption, check_outputs, write_json_output


def gate(
    config: Annotated[
        Path, typer.Argument(help="Release config (TOML); see docs/reference/release-toml.md.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the reports (created if missing).")
    ] = Path("optieval-report"),
    allow_inconclusive: Annotated[
        bool,
        typer.Option("--allow-inconclusive", help="Exit 0 when checks are only inconclusive."),
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write report.json's content here.")
    ] = None,
    # -- executors (issue 10) --
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Gate a release: export, build artifacts, bench and compare every target, check every
    budget; write report.json, report.md, junit.xml and report.html; exit 0 only on PASS."""
    run_gate_command(
        config,
        out,
        allow_inconclusive=allow_inconclusive,
        json_file=json_file,
        executor=executor,
        ray_address=ray_address,
    )


def run_gate_command(
    config: Path,
    out: Path,
    *,
    allow_inconclusive: bool,
    json_file: Path | None,
    duration_s: float | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> None:
    """Run the gate on ``config``, print its table, evidence and verdict, write ``--json``, and
    exit with the report's code (shared by ``gate`` and ``demo``)."""
    from optieval.cli.progress import gate_progress
    from optieval.cli.render.gate import evidence_lines, gate_table, verdict_line
    from optieval.release import gate as run_gate

    check_outputs(json_file=json_file, folders={"--out": out})
    with gate_progress(err_console) as progress:
        report = run_gate(
            config,
            out_dir=out,
            allow_inconclusive=allow_inconclusive,
            duration_s=duration_s,
            progress=progress,
            executor=executor,
            ray_address=ray_address,
        )
    for line in report.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {escape(to_flags(line))}", highlight=False,
                          soft_wrap=True)  # fmt: skip
    console.print(gate_table(report))
    for line in evidence_lines(report, every=verbosity() >= VERBOSE):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)
    write_json_output(json_file, report.to_json())
    console.print(verdict_line(report), highlight=False)
    console.print(f"reports: {report.reports.get('html')} (and report.md, junit.xml, report.json)",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    if report.exit_code:
        raise typer.Exit(report.exit_code)
