"""Rich renderings of bench results and the doctor report for the terminal."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from optieval.bench import STATUS_OK, BenchReport
from optieval.cli.render.fit import FittedTable


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def bench_table(report: BenchReport) -> FittedTable:
    """One row per cell: status, samples, percentiles (with their 95% intervals when known),
    throughput and cold start; laid out to fit the terminal without cutting a number
    (:class:`~optieval.cli.render.fit.FittedTable`)."""
    table = FittedTable(
        f"optieval bench: {report.model.get('path', '')}",
        [("cell", "left"), ("shapes", "left"), ("n", "right"), ("p50 ms", "right"),
         ("p90 ms", "right"), ("p99 ms", "right"), ("mean ms", "right"),
         ("items/s", "right"), ("cold ms", "right")],
    )  # fmt: skip
    for cell in report.results:
        shapes = " ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in cell.shapes.items())
        if cell.status != STATUS_OK or cell.latency_ms is None:
            table.add_row(
                f"{cell.label} [yellow]{cell.status}[/]", shapes, "-", "-", "-", "-", "-", "-", "-"
            )
            continue
        lat = cell.latency_ms
        ci = cell.ci95_ms or {}
        items = (cell.throughput or {}).get("items_per_s")
        table.add_row(
            cell.label,
            shapes,
            str(cell.samples),
            _with_ci(lat.get("p50"), ci.get("p50")),
            _with_ci(lat.get("p90"), ci.get("p90")),
            _with_ci(lat.get("p99"), ci.get("p99")),
            _ms(lat.get("mean")),
            f"{items:,.0f}" if items else "-",
            _ms(cell.cold_start_ms),
        )
    return table


def _with_ci(point: float | None, interval: Any) -> tuple[str, str]:
    if point is None:
        return ("-", "")
    if interval:
        return (_ms(point), f"[{_ms(interval[0])}, {_ms(interval[1])}]")
    return (_ms(point), "")


def cell_footnotes(report: BenchReport) -> list[str]:
    """Reasons of skipped and failed cells, notes, and environment warnings, one line each."""
    lines = [f"warning: {w}" for w in report.warnings]
    for cell in report.results:
        if cell.reason:
            lines.append(f"{cell.label} {cell.status}: {cell.reason}")
        lines.extend(f"{cell.label}: {note}" for note in cell.notes)
    return lines


def op_tables(report: BenchReport, *, top: int = 8) -> list[Table]:
    """One table per profiled cell: time per op type, slowest first."""
    tables = []
    for cell in report.results:
        profile = cell.op_profile
        if not profile:
            continue
        table = Table(
            title=f"{cell.label}: time per op type ({profile['iterations']} profiled runs)",
            title_justify="left",
        )
        table.add_column("op type")
        table.add_column("ms per run", justify="right")
        table.add_column("share", justify="right")
        for row in profile["by_op_type"][:top]:
            table.add_row(row["op_type"], f"{row['ms']:.4f}", f"{row['share']:.0%}")
        tables.append(table)
    return tables


def baseline_table(comparison: Any) -> Table:
    """The baseline comparison: ratio of medians with its interval and the verdict per cell."""
    table = Table(
        title=f"against the baseline (threshold {comparison.threshold:.0%})", title_justify="left"
    )
    table.add_column("cell")
    table.add_column("new/old median", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("verdict")
    colours = {"slower": "red", "faster": "green", "possible regression": "yellow"}
    for cell in comparison.cells:
        ratio = cell.ratio
        interval = ratio.interval
        verdict = cell.verdict.value
        colour = colours.get(verdict, "white")
        table.add_row(
            cell.label,
            f"{ratio.ratio:.3f}",
            f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "-",
            f"[{colour}]{verdict}[/]",
        )
    for label, reason in comparison.not_compared:
        table.add_row(label, "-", "-", f"not compared: {reason}")
    for difference in comparison.env_differences:
        table.caption = (table.caption or "environments differ: ") + difference + "; "
    blocks = [c.ratio for c in comparison.cells if c.ratio.between]
    if blocks:
        # Issue 15: say that the interval covers variation between processes, and from what.
        from optieval.stats import INTERLEAVED_METHOD

        ratio = blocks[0]
        if ratio.method == INTERLEAVED_METHOD:
            text = (
                f"the baseline's model measured again beside this one: {ratio.blocks_new} "
                "interleaved pairs of blocks, ratio = their geometric mean"
            )
        else:
            text = (
                f"intervals include variation between processes ({ratio.blocks_new} blocks "
                f"new, {ratio.blocks_old} baseline)"
            )
        table.caption = (table.caption or "") + text
    return table


def doctor_table(report: Any) -> Table:
    """The doctor's backend table."""
    table = Table(title="backends", title_justify="left")
    table.add_column("backend")
    table.add_column("usable")
    table.add_column("reason")
    for status in report.backends:
        mark = "[green]yes[/]" if status.usable else "[red]no[/]"
        reason = status.reason + (f" (hint: {status.hint})" if status.hint else "")
        table.add_row(status.name, mark, escape(reason))
    return table


def environment_table(env: dict[str, Any]) -> Table:
    """The environment fingerprint, one row per fact."""
    table = Table(title="environment", title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value")
    cpu = env.get("cpu", {})
    rows = [
        ("optieval", env.get("optieval")),
        ("python", env.get("python")),
        ("os", f"{env.get('os')} ({env.get('machine')})"),
        ("cpu", f"{cpu.get('model')}, {cpu.get('usable_cores')} usable cores"),
        ("cpu flags", ", ".join(cpu.get("flags", [])) or "none of interest"),
    ]
    for name, version in env.get("versions", {}).items():
        rows.append((name, version or "not installed"))
    rows.append(("ort providers", ", ".join(env.get("ort_providers", [])) or "-"))
    gpus = env.get("gpus", [])
    if gpus:
        for gpu in gpus:
            rows.append(
                (
                    f"gpu {gpu.get('index')}",
                    f"{gpu.get('name')}, driver {gpu.get('driver')}, "
                    f"CUDA {gpu.get('cuda_driver', '?')}",
                )
            )
    else:
        rows.append(("gpu", "none found (no NVML, no nvidia-smi)"))
    for key, value in rows:
        table.add_row(key, str(value))
    return table
