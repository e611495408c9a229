"""Rich rendering of parity results: one table per candidate, pass/fail per output, the worst
metric highlighted; then localization and auto-exclude lines."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from optieval.parity import CandidateParity, Interval, OutputParity, ParityReport

# Which column shows the evidence of each check (for highlighting the worst one).
_CHECK_COLUMN = {
    "finite": "nan/inf",
    "tolerance": "max_abs",
    "accuracy_delta": "acc Δ",
    "accuracy_ratio": "acc ratio",
    "top1_agreement": "flip rate",
}
_COLUMNS = (
    "output", "result", "max_abs", "max_rel", "cosine", "snr_db", "nan/inf", "outside tol",
    "flip rate", "accuracy", "acc Δ", "acc ratio", "worst samples",
)  # fmt: skip


def _g(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def _pct(value: float | None, interval: Interval | None = None, signed: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"
    if interval is not None:
        text += f" [{interval.low * 100:.1f},{interval.high * 100:.1f}]"
    return text


def _ratio(value: float | None, interval: Interval | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}"
    if interval is not None:
        text += f" [{interval.low:.3f},{_g(interval.high, 4)}]"
    return text


def _cells(out: OutputParity) -> dict[str, str]:
    return {
        "output": out.name,
        "result": "PASS" if out.passed else "FAIL",
        "max_abs": _g(out.max_abs),
        "max_rel": _g(out.max_rel),
        "cosine": f"{out.cosine:.6f}",
        "snr_db": _g(out.snr_db, 4),
        "nan/inf": f"{out.nan_count}/{out.inf_count}",
        "outside tol": str(out.violations),
        "flip rate": _pct(out.flip_rate, out.flip_rate_ci),
        "accuracy": "-"
        if out.accuracy_reference is None
        else f"{_pct(out.accuracy_reference)} -> {_pct(out.accuracy_candidate)}",
        "acc Δ": _pct(out.accuracy_delta, out.accuracy_delta_ci, signed=True),
        "acc ratio": _ratio(out.accuracy_ratio, out.accuracy_ratio_ci),
        "worst samples": ", ".join(map(str, out.worst_samples[:3])) or "-",
    }


def candidate_table(result: CandidateParity) -> Table:
    """One table for one candidate: a row per output, the worst metric of each highlighted
    (red when it failed, yellow when it is the closest to its limit)."""
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    table = Table(
        title=f"{result.candidate} vs {result.reference}: {verdict} ({result.samples} samples, "
        f"{result.inputs})",
        title_justify="left",
    )
    rows = [_cells(o) for o in result.outputs]
    # Leave out columns that are empty for every output (no classification, no labels).
    columns = [c for c in _COLUMNS if any(r[c] != "-" for r in rows) or c in ("output", "result")]
    for column in columns:
        table.add_column(column, justify="left" if column == "output" else "right")
    for out, row in zip(result.outputs, rows, strict=True):
        highlight = _CHECK_COLUMN.get(out.worst_metric or "")
        cells: list[Text | str] = []
        for column in columns:
            value = row[column]
            if column == "result":
                cells.append(Text(value, style="bold green" if out.passed else "bold red"))
            elif column == highlight:
                cells.append(Text(value, style="bold red" if not out.passed else "yellow"))
            else:
                cells.append(value)
        table.add_row(*cells)
    tolerances = "; ".join(
        f"{o.name}: atol {o.tolerance.atol:g} rtol {o.tolerance.rtol:g} ({o.tolerance.source})"
        for o in result.outputs
    )
    table.caption = f"tolerance {tolerances}; intervals 95%"
    table.caption_justify = "left"
    return table


def candidate_lines(result: CandidateParity, model: str = "MODEL") -> list[str]:
    """Plain lines after a candidate's table: localization and auto-exclude (rich markup)."""
    lines: list[str] = []
    loc = result.localization
    if loc is not None:
        if loc.first_bad_nodes:
            by_node = {n.node: n for n in loc.nodes if n.breaks}
            described = ", ".join(
                f"{name} ({by_node[name].op_type}, max_abs {_g(by_node[name].max_abs)})"
                if name in by_node
                else name
                for name in loc.first_bad_nodes
            )
            lines.append(f"error is born at: [bold]{described}[/] ({loc.samples} samples)")
            if result.candidate.endswith(":int8") and loc.exclude:
                lines.append(
                    f"keep them in float: optieval convert {model} -p int8 {loc.exclude_args()}"
                )
        else:
            lines.append(
                f"localization: no node where the error jumps past tolerance "
                f"({loc.compared} tensors compared, {loc.unmatched} unmatched)"
            )
    auto = result.auto_exclude
    if auto is not None:
        state = "[green]passes[/]" if auto.passed else "[red]still fails[/]"
        cost = ""
        if auto.latency_ms_before is not None and auto.latency_ms_after is not None:
            cost = (
                f"; latency of one batch {auto.latency_ms_before:.3g} -> "
                f"{auto.latency_ms_after:.3g} ms (x{_g(auto.slowdown)})"
            )
        lines.append(
            f"auto-exclude: {len(auto.excluded)} node(s) kept in float in {auto.rounds} "
            f"round(s), {state}: {' '.join('--exclude ' + n for n in auto.excluded)}{cost}"
        )
        lines.append(f"  artifact: {auto.artifact}")
    return lines


def report_summary(report: ParityReport) -> str:
    """One line: how many candidates passed."""
    passed = sum(r.passed for r in report.results)
    total = len(report.results)
    colour = "green" if passed == total else "red"
    return f"[bold {colour}]{passed}/{total} candidate(s) within parity[/] of {report.reference}"
