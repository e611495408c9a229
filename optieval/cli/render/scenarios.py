"""Rich renderings of load-scenario cells: one table of the scenario cells and, for a max-QPS
search, the rates it tried."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from optieval.bench import STATUS_OK, BenchReport, Cell


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _with_ci(point: float | None, interval: Any) -> str:
    if point is None:
        return "-"
    if interval:
        return f"{_ms(point)} [{_ms(interval[0])}, {_ms(interval[1])}]"
    return f"{_ms(point)} [no interval]"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


def scenario_label(cell: Cell) -> str:
    """``server qps=200``, ``concurrency n=4``, ``offline streams=2``, ``single-stream``."""
    params = cell.scenario_params or {}
    kind = cell.scenario or "single-stream"
    parts = [kind]
    if params.get("find_max_qps"):
        parts.append(f"max-qps p99<={params.get('p99_ms_max'):g}ms")
    elif kind == "server" and params.get("qps") is not None:
        parts.append(f"qps={params['qps']:g}")
    if kind == "concurrency":
        parts.append(f"n={params.get('concurrency')}")
    if kind == "offline":
        parts.append(f"streams={params.get('streams')}")
    if params.get("idle_ms"):
        parts.append(f"idle={params['idle_ms']:g}ms")
    return " ".join(parts)


def _is_scenario_cell(cell: Cell) -> bool:
    params = cell.scenario_params or {}
    return (cell.scenario or "single-stream") != "single-stream" or bool(params.get("idle_ms"))


def scenario_tables(report: BenchReport) -> list[Table]:
    """A table of the scenario cells (none when every cell is plain single-stream) and one per
    max-QPS search."""
    cells = [c for c in report.results if _is_scenario_cell(c)]
    if not cells:
        return []
    table = Table(
        title="load scenarios (latency from scheduled arrival for server)", title_justify="left"
    )
    table.add_column("cell", no_wrap=True)
    table.add_column("scenario")
    for column in ("n", "p50 ms", "p99 ms", "items/s", "issue lag p99 ms"):
        table.add_column(column, justify="right")
    table.add_column("run")
    tables = [table]
    for cell in cells:
        if cell.status != STATUS_OK or cell.latency_ms is None:
            table.add_row(
                cell.label,
                scenario_label(cell),
                "-",
                "-",
                "-",
                "-",
                "-",
                f"[yellow]{cell.status}[/]",
            )
            continue
        ci = cell.ci95_ms or {}
        throughput = cell.throughput or {}
        lag = cell.issue_lag_ms
        valid = lag is None or lag.get("valid", True)
        table.add_row(
            cell.label,
            scenario_label(cell),
            str(cell.samples),
            _with_ci(cell.latency_ms.get("p50"), ci.get("p50")),
            _with_ci(cell.latency_ms.get("p99"), ci.get("p99")),
            _with_ci(throughput.get("items_per_s"), throughput.get("ci")).replace(".000", ""),
            "-" if lag is None else _ms(lag.get("p99")),
            "valid" if valid else "[bold red]INVALID[/]",
        )
        if cell.search:
            tables.append(search_table(cell))
    return tables


def search_table(cell: Cell) -> Table:
    """The rates a max-QPS search tried, in order, with the answer in the caption."""
    search = cell.search or {}
    answer = search.get("answer_qps")
    table = Table(
        title=f"{cell.label}: highest rate with p99 under {search.get('p99_ms_max'):g} ms",
        caption=f"answer: {_rate(answer)} qps" if answer is not None else "answer: none",
        title_justify="left",
    )
    for column in ("qps", "verdict", "p99 ms [95% CI]", "n", "achieved qps", "lag p99 ms"):
        table.add_column(column, justify="right")
    for trial in search.get("tried", []):
        verdict = trial["verdict"]
        style = {"PASS": "green", "FAIL": "red"}.get(verdict, "yellow")
        table.add_row(
            _rate(trial["qps"]),
            f"[{style}]{verdict}[/]",
            _with_ci(trial.get("p99_ms"), trial.get("p99_ci95_ms")),
            str(trial.get("samples", "-")),
            _rate(trial.get("achieved_qps")),
            _ms(trial.get("issue_lag_p99_ms")),
        )
    return table
