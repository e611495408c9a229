"""Renderings of result files read back: ``optieval show`` (the table that produced the file)
and ``optieval diff`` (two files side by side, for the terminal and as Markdown for a pull
request)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pragma: no cover
    from optieval.release import ResultDiff, ResultFile

_VERDICT_STYLE = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}
_REGRESSION_STYLE = {"slower": "red", "faster": "green", "possible regression": "yellow"}


def show_renderables(result: ResultFile) -> tuple[list[Any], list[str]]:
    """What the command that wrote ``result`` printed: (renderables for stdout, plain lines for
    stderr: footnotes and evidence)."""
    kind, report = result.kind, result.report
    head = Text(f"{result.path} ({_kind_name(kind)}{_written_by(result)})", style="dim")
    if kind == "bench":
        from optieval.cli.render.bench import baseline_table, bench_table, cell_footnotes, op_tables
        from optieval.cli.render.scenarios import scenario_tables

        out: list[Any] = [head, bench_table(report), *scenario_tables(report), *op_tables(report)]
        baseline = result.data.get("baseline")
        if isinstance(baseline, dict):
            from optieval.bench import BaselineComparison

            out.append(baseline_table(BaselineComparison.from_json(baseline)))
        return out, cell_footnotes(report)
    if kind == "gate":
        from optieval.cli.render.gate import evidence_lines, gate_table, verdict_line

        warnings = [f"WARNING: {w}" for w in report.warnings]
        return [head, gate_table(report), verdict_line(report)], [
            *warnings,
            *evidence_lines(report),
        ]
    if kind == "detection":
        from optieval.cli.render.detection import (
            detection_lines,
            detection_summary,
            detection_table,
        )

        lines = [line for r in report.results for line in detection_lines(r)]
        return [head, detection_table(report), *lines, detection_summary(report)], []
    from optieval.cli.render.parity import candidate_lines, candidate_table, report_summary

    out = [head]
    for candidate in report.results:
        out.append(candidate_table(candidate))
        out.extend(candidate_lines(candidate, report.model))
    out.append(report_summary(report))
    return out, list(report.warnings)


def _kind_name(kind: str) -> str:
    return {"bench": "bench JSON", "gate": "gate report", "compare": "compare JSON",
            "detection": "detection compare JSON"}[kind]  # fmt: skip


def _written_by(result: ResultFile) -> str:
    version = result.env.get("optieval")
    return f", optieval {version}" if version else ""


# -- diff ---------------------------------------------------------------------------------------
def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _p50s(diff: ResultDiff) -> dict[str, tuple[float | None, float | None]]:
    from optieval.bench import cell_key, cell_label

    def by_label(cells: list[dict[str, Any]]) -> dict[str, float | None]:
        return {cell_label(cell_key(c)): (c.get("latency_ms") or {}).get("p50") for c in cells}

    old, new = by_label(diff.old.cells), by_label(diff.new.cells)
    return {label: (old.get(label), new.get(label)) for label in {**old, **new}}


def _cell_rows(diff: ResultDiff) -> list[tuple[str, str, str, str, str, str]]:
    """``(cell, old p50, new p50, new/old, interval, verdict)`` per paired cell."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    comparison = diff.cells
    if comparison is None:
        return rows
    p50 = _p50s(diff)
    confidence = f"{comparison.confidence:.0%}"
    for cell in comparison.cells:
        old, new = p50.get(cell.label, (None, None))
        interval = cell.ratio.interval
        rows.append((
            cell.label, _ms(old), _ms(new), f"{cell.ratio.ratio:.3f}",
            f"[{interval[0]:.3f}, {interval[1]:.3f}] ({confidence})" if interval
            else "too few samples",
            cell.verdict.value,
        ))  # fmt: skip
    for label, old_p50, new_p50, why in diff.point_ratios:
        rows.append((label, _ms(old_p50), _ms(new_p50), f"{new_p50 / old_p50:.3f}",
                     f"no interval: {why}", "-"))  # fmt: skip
    shown = {r[0] for r in rows}
    for label, reason in comparison.not_compared:
        if label not in shown:
            rows.append((label, "-", "-", "-", "-", f"not compared: {reason}"))
    return rows


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def diff_renderables(diff: ResultDiff) -> list[Any]:
    """The diff for the terminal: cells, changed checks, environment differences."""
    out: list[Any] = [
        Text(f"optieval diff: {diff.old.path} ({_kind_name(diff.old.kind)}) -> "
             f"{diff.new.path} ({_kind_name(diff.new.kind)})", style="bold")
    ]  # fmt: skip
    rows = _cell_rows(diff)
    if rows:
        threshold = diff.cells.threshold
        table = Table(title=f"cells: new/old median latency (threshold {threshold:.0%})",
                      title_justify="left")  # fmt: skip
        table.add_column("cell", no_wrap=True)
        for name in ("old p50 ms", "new p50 ms", "new/old", "interval"):
            table.add_column(name, justify="right")
        table.add_column("verdict")
        for row in rows:
            style = _REGRESSION_STYLE.get(row[5], "")
            table.add_row(*map(escape, row[:5]), Text(row[5], style=style))
        out.append(table)
    elif diff.cells_note:
        out.append(Text(f"cells: {diff.cells_note}"))
    out.extend(Text(line, style="dim") for line in _unmatched_lines(diff))
    changed = diff.changed_checks
    unchanged = len(diff.checks) - len(changed)
    if changed:
        table = Table(title="checks whose verdict changed", title_justify="left")
        for name in ("check", "old", "new", "old value", "new value", "budget"):
            table.add_column(name, justify="left" if name in ("check", "old", "new") else "right")
        for check in changed:
            table.add_row(escape(check.name), _verdict(check.old), _verdict(check.new),
                          _value(check.old_value), _value(check.new_value),
                          escape(check.budget))  # fmt: skip
        out.append(table)
    if diff.checks:
        out.append(Text(f"checks: {len(changed)} changed verdict, {unchanged} unchanged"))
    if diff.env:
        table = Table(title="environment differences", title_justify="left")
        for name in ("key", "old", "new"):
            table.add_column(name)
        for change in diff.env:
            table.add_row(escape(change.key), escape(_env(change.old)), escape(_env(change.new)))
        out.append(table)
    elif diff.old.env and diff.new.env:
        out.append(Text("environment: the same"))
    return out


def _verdict(verdict: str | None) -> Text:
    if verdict is None:
        return Text("absent", style="dim")
    return Text(verdict, style=_VERDICT_STYLE.get(verdict, ""))


def _env(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    return str(value)


def _unmatched_lines(diff: ResultDiff) -> list[str]:
    comparison = diff.cells
    if comparison is None:
        return []
    lines = []
    if comparison.unmatched_old:
        lines.append(f"only in {diff.old.path}: {', '.join(comparison.unmatched_old)}")
    if comparison.unmatched_new:
        lines.append(f"only in {diff.new.path}: {', '.join(comparison.unmatched_new)}")
    return lines


def diff_markdown(diff: ResultDiff) -> str:
    """The diff as GitHub Markdown, for a pull request comment."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"### optieval diff: `{diff.old.path}` → `{diff.new.path}`", ""]
    rows = _cell_rows(diff)
    if rows:
        lines += [f"**Cells**: new/old median latency (threshold {diff.cells.threshold:.0%})", "",
                  "| cell | old p50 ms | new p50 ms | new/old | interval | verdict |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
        for row in rows:
            verdict = f"**{row[5]}**" if row[5] in ("slower", "possible regression") else row[5]
            lines.append("| " + " | ".join(cell(x) for x in (*row[:5], verdict)) + " |")
        lines.append("")
    elif diff.cells_note:
        lines += [f"Cells: {diff.cells_note}", ""]
    lines += [f"- {cell(x)}" for x in _unmatched_lines(diff)]
    changed = diff.changed_checks
    if changed:
        lines += ["", "**Checks whose verdict changed**", "",
                  "| check | old | new | old value | new value | budget |",
                  "| --- | --- | --- | ---: | ---: | ---: |"]  # fmt: skip
        for check in changed:
            lines.append(f"| {cell(check.name)} | {check.old or 'absent'} | "
                         f"{check.new or 'absent'} | {_value(check.old_value)} | "
                         f"{_value(check.new_value)} | {cell(check.budget)} |")  # fmt: skip
    if diff.checks:
        lines += ["", f"Checks: {len(changed)} changed verdict, "
                      f"{len(diff.checks) - len(changed)} unchanged."]  # fmt: skip
    if diff.env:
        lines += ["", "**Environment differences**", "", "| key | old | new |",
                  "| --- | --- | --- |"]  # fmt: skip
        lines += [f"| `{e.key}` | {cell(_env(e.old))} | {cell(_env(e.new))} |" for e in diff.env]
    elif diff.old.env and diff.new.env:
        lines += ["", "Environment: the same."]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text + "\n"
