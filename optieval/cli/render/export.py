"""Rich renderables for an :class:`~optieval.export.ExportResult` (``optieval
export``): what was written, and the parity of ONNX Runtime against PyTorch per case and output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from optieval.export import ExportResult


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _size(nbytes: int) -> str:
    from optieval.core import format_size

    return format_size(nbytes)


def summary_table(result: ExportResult) -> Table:
    """Files, exporter, opset and I/O of the export."""
    table = Table(title="export", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    folder = result.model_path.parent
    for name in result.files:
        path = folder / name
        size = _size(path.stat().st_size) if path.is_file() else "?"
        table.add_row("file", escape(f"{path} ({size})"))
    table.add_row("manifest", escape(str(result.manifest_path)))
    exporter = result.exporter.name
    if result.exporter.reason:
        exporter += f" (requested {result.exporter.requested}: {result.exporter.reason})"
    table.add_row("exporter", escape(exporter))
    table.add_row("opset", str(result.opset))
    for spec in result.signature.inputs:
        table.add_row("input", escape(f"{spec.name}: {spec.dtype}[{spec.shape_text()}]"))
    for spec in result.signature.outputs:
        table.add_row("output", escape(f"{spec.name}: {spec.dtype}[{spec.shape_text()}]"))
    timings = result.timings
    if timings:
        table.add_row(
            "seconds", ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in timings.items())
        )
    return table


def parity_table(result: ExportResult) -> Table:
    """One row per case and output: max abs, max rel, cosine, verdict."""
    parity = result.parity
    verdict = "[green]PASSED[/]" if parity.passed else "[red]FAILED[/]"
    table = Table(
        title=f"parity: onnxruntime CPU vs PyTorch (atol {parity.atol:g}, rtol {parity.rtol:g}) "
        f"{verdict}",
        title_justify="left",
    )
    for column in ("case", "output", "shape", "max abs", "max rel", "cosine", "status"):
        justify: Any = "right" if column.startswith(("max", "cos")) else "left"
        table.add_column(column, justify=justify)
    if parity.error:
        table.add_row("-", "-", "-", "-", "-", "-", Text(parity.error, style="red"))
    for case in parity.cases:
        if case.error:
            table.add_row(case.name, "-", "-", "-", "-", "-", Text(case.error, style="red"))
        for out in case.outputs:
            status = Text("ok", style="green") if out.passed else Text(out.note or "over", "red")
            table.add_row(
                case.name,
                out.name,
                "x".join(map(str, out.shape)),
                _num(out.max_abs, ".2e"),
                _num(out.max_rel, ".2e"),
                _num(out.cosine, ".6f"),
                status,
            )
    return table


def export_renderables(result: ExportResult) -> list[Any]:
    """Everything ``optieval export`` prints on stdout, in order."""
    return [summary_table(result), parity_table(result)]
