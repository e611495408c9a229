"""``report.html``: one self-contained page: the verdict, the check table, the plots (inline
SVG, :mod:`optieval.release.report_plots`), the cells grouped by the hardware they ran on, the
artifacts and the environment.

Every user-supplied string (model and file names, backend labels, evidence, reasons) is
HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.release.budgets import Check
from optieval.release.evidence import (
    VERDICT_COLOURS,
    budget_text,
    format_bound,
    interval_text,
    ordered_checks,
    value_text,
)
from optieval.release.placement import machines, pinning_note
from optieval.release.report_plots import gate_plots

if TYPE_CHECKING:  # pragma: no cover
    from optieval.bench import Cell
    from optieval.release.gate_report import GateReport

__all__ = ["render_html"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;color:#fff;border-radius:6px;padding:6px 14px;font-weight:700;
font-size:20px} .meta{color:#59636e} table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #d1d9e0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.tag{font-weight:700} .plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #d1d9e0;border-radius:6px;padding:6px}
figcaption{font-size:12px;color:#59636e} ul{margin:4px 0}
"""


def render_html(report: GateReport) -> str:
    """One self-contained HTML page: the verdict at the top, the check table, the plots (inline
    SVG: latency distribution per cell, latency against batch where several batches ran,
    accuracy against latency per precision), artifacts, cells and the environment."""
    verdict = report.verdict.value
    model = report.model.get("path") or report.model.get("spec") or "model"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>optieval gate: {_e(verdict)} — {_e(Path(str(model)).name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header>",
        f'<div class="verdict" style="background:{VERDICT_COLOURS[verdict]}">{_e(verdict)}</div>',
        f"<h1>optieval gate — {_e(Path(str(model)).name)}</h1>",
        f'<p class="meta">{_e(report.summary)} · exit code {report.exit_code}'
        f"{' (inconclusive allowed)' if report.allow_inconclusive else ''} · "
        f"{report.seconds:.1f} s · model <code>{_e(model)}</code></p>",
        "</header>",
        "<h2>Checks</h2>",
        _check_table(report.checks),
    ]
    if report.warnings:
        parts.append("<h2>Warnings</h2><ul>")
        parts += [f"<li>{_e(w)}</li>" for w in report.warnings]
        parts.append("</ul>")
    plots = gate_plots(report)
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += plots
    parts.append("<h2>Cells by hardware</h2>")
    parts += _cells_by_hardware(report.cells)
    if report.artifacts:
        parts.append("<h2>Artifacts</h2>")
        parts.append(_artifact_table(report.artifacts, _source_name(report.model)))
    parts.append("<h2>Environment</h2>")
    parts.append(_env_list(report.env))
    parts.append(
        '<p class="meta">Latency percentiles are nearest-rank with distribution-free 95% '
        "order-statistic intervals; a check passes only when its whole interval is within the "
        "budget, fails when the whole interval is outside it, and is inconclusive otherwise. "
        "Point checks have no interval and say so.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _check_table(checks: Sequence[Check]) -> str:
    rows = [
        "<table><thead><tr><th>verdict</th><th>check</th><th>value</th><th>95% interval</th>"
        "<th>budget</th><th>evidence</th></tr></thead><tbody>"
    ]
    for check in ordered_checks(checks):
        colour = VERDICT_COLOURS[check.verdict.value]
        rows.append(
            f'<tr><td class="tag" style="color:{colour}">{_e(check.verdict.value)}</td>'
            f"<td>{_e(check.name)}</td><td class=num>{_e(value_text(check))}</td>"
            f"<td class=num>{_e(interval_text(check))}</td>"
            f"<td class=num>{_e(budget_text(check))}</td>"
            f"<td>{_e(check.evidence)}</td></tr>"
        )
    if not checks:
        rows.append('<tr><td colspan="6">no budgets were configured</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _cell_table(cells: Sequence[Cell]) -> str:
    rows = [
        "<table><thead><tr><th>cell</th><th>status</th><th>samples</th><th>p50 ms</th>"
        "<th>p99 ms [95% CI]</th><th>items/s</th><th>cold start ms</th><th>notes</th></tr>"
        "</thead><tbody>"
    ]
    for cell in cells:
        latency = cell.latency_ms or {}
        ci = (cell.ci95_ms or {}).get("p99")
        p99 = format_bound(latency.get("p99"))
        if ci:
            p99 += f" [{format_bound(ci[0])}, {format_bound(ci[1])}]"
        throughput = (cell.throughput or {}).get("items_per_s")
        notes = [*([cell.reason] if cell.reason else []), *cell.notes]
        rows.append(
            f"<tr><td>{_e(cell.label)}</td><td>{_e(cell.status)}</td>"
            f"<td class=num>{cell.samples}</td>"
            f"<td class=num>{_e(format_bound(latency.get('p50')))}</td>"
            f"<td class=num>{_e(p99)}</td><td class=num>{_e(format_bound(throughput))}</td>"
            f"<td class=num>{_e(format_bound(cell.cold_start_ms))}</td>"
            f"<td>{'<br>'.join(_e(n) for n in notes)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _cells_by_hardware(cells: Sequence[Cell]) -> list[str]:
    from optieval.execution import group_by_hardware

    groups = group_by_hardware(cells)
    if len(groups) <= 1 and not any(c.machine or c.placement for c in cells):
        return [_cell_table(cells)]
    parts = []
    for label, group in groups.items():
        parts.append(f"<h3>{_e(label)}</h3>")
        lines = [*machines(group), pinning_note(group)]
        if any(lines):
            parts.append('<p class="meta">' + "<br>".join(_e(m) for m in lines if m) + "</p>")
        parts.append(_cell_table(group))
    return parts


def _source_name(model: dict[str, Any]) -> str:
    """The source model's name: the module or file of its spec (``digits`` of
    ``optieval.assets.digits:build_model``), else its ONNX file's stem."""
    spec = model.get("spec")
    if spec:
        where = str(spec).split(":")[0]
        return Path(where).stem if ("/" in where or where.endswith(".py")) else where.split(".")[-1]
    return Path(str(model.get("path") or "model")).stem


def _artifact_format(artifact: dict[str, Any]) -> str:
    path = str(artifact.get("path", ""))
    if path.endswith((".plan", ".engine")):
        return "TensorRT engine"
    census = artifact.get("census") or {}
    if artifact.get("precision") == "int8" or census.get("qdq_pairs"):
        fmt = artifact.get("int8_format") or census.get("int8_format")
        return f"ONNX QDQ {fmt}" if fmt else "ONNX QDQ"
    return "ONNX"


def _artifact_table(artifacts: Sequence[dict[str, Any]], source: str) -> str:
    from optieval.core import format_size

    rows = [
        "<table><thead><tr><th>artifact</th><th>precision</th><th>format</th><th>size</th>"
        "<th>sha256</th><th>census</th></tr></thead><tbody>"
    ]
    for a in artifacts:
        census = a.get("census") or {}
        described = census.get("summary") or census.get("compute") or ""
        if isinstance(described, dict):
            described = ", ".join(f"{k}: {v}" for k, v in described.items())
        precision = str(a.get("precision", "?"))
        fmt = _artifact_format(a)
        rows.append(
            f'<tr><td title="{_e(a.get("path"))}">{_e(f"{source} {precision} ({fmt})")}</td>'
            f"<td>{_e(precision)}</td><td>{_e(fmt)}</td>"
            f"<td class=num>{_e(format_size(a.get('bytes') or 0))}</td>"
            f"<td><code>{_e(str(a.get('sha256', ''))[:16])}…</code></td>"
            f"<td>{_e(described)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _env_list(env: dict[str, Any]) -> str:
    items = [f"<li><b>{_e(key)}</b>: {_e(_env_value(value))}</li>" for key, value in env.items()]
    return "<ul>" + "".join(items) + "</ul>"


def _env_value(value: Any) -> str:
    """A fingerprint value written out: ``6.75, 3.66, 2.29``; ``model=Xeon, cores=8``;
    ``none`` for an empty list or a missing value."""
    if value is None or value == "":
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_env_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        if all(isinstance(v, dict) for v in value):
            return "; ".join(_env_value(v) for v in value)
        return ", ".join(map(str, value))
    return str(value)
