"""``optieval diff``: two result files side by side: bench cells paired with the ratio of
medians and its interval, checks whose verdict changed, environment differences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optieval.cli.console import console
from optieval.cli.options import STDOUT, check_outputs, write_json_output, write_output_file


def diff(
    old: Annotated[
        Path, typer.Argument(help="The earlier bench JSON, compare JSON or gate report.")
    ],
    new: Annotated[Path, typer.Argument(help="The later one.")],
    threshold: Annotated[
        float, typer.Option(help="Slowdown that counts as a regression (0.05: 5%).")
    ] = 0.05,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the diff as JSON here ('-': stdout).")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option(help="Write the diff as Markdown here, for a pull request ('-': stdout)."),
    ] = None,
) -> None:
    """Pair two bench JSONs, compare JSONs or gate reports: each cell's new/old median latency
    with its interval, the checks whose verdict changed, and what differs in the environment."""
    if json_file == STDOUT and markdown == STDOUT:
        from optieval.errors import InputError

        raise InputError("only one of --json and --markdown can be '-'", where="--markdown")
    check_outputs(
        json_file=json_file, files={"--markdown": None if markdown == STDOUT else markdown}
    )
    if markdown == STDOUT:
        from optieval.cli.console import human_output_to_stderr

        human_output_to_stderr()
    from optieval.cli.render.readback import diff_markdown, diff_renderables
    from optieval.release import diff_results, read_result

    result = diff_results(read_result(old), read_result(new), threshold=threshold)
    for renderable in diff_renderables(result):
        console.print(renderable, highlight=False)
    write_json_output(json_file, result.to_json())
    if markdown == STDOUT:
        import sys

        sys.stdout.write(diff_markdown(result))
    elif markdown is not None:
        write_output_file(markdown, diff_markdown(result), "--markdown")
