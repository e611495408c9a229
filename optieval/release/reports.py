"""The gate's reports: ``report.json`` (the versioned :class:`GateReport`), ``report.md`` (a
summary table fit for a pull-request comment), ``junit.xml`` (one test case per check; Jenkins,
GitLab and GitHub read it) and ``report.html`` (one self-contained file: verdict, check table,
inline SVG plots).

Every user-supplied string (model and file names, backend labels, evidence, reasons) is escaped
for the format it lands in: HTML-escaped in the HTML report, XML-escaped by ElementTree in the
JUnit file, pipes and newlines neutralised in the Markdown table.
"""

from __future__ import annotations

import html
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.core import write_json_atomic, write_text_atomic
from optieval.release.budgets import Check
from optieval.stats import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from optieval.bench import Cell
    from optieval.release.run import GateReport

REPORT_FILES = {
    "json": "report.json",
    "md": "report.md",
    "junit": "junit.xml",
    "html": "report.html",
}

_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}
_PRECISION_COLOURS = {"fp32": "#0969da", "fp16": "#8250df", "int8": "#bf3989", "bf16": "#1b7c83"}
_SERIES = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#bf3989", "#1b7c83")


def report_paths(out_dir: str | Path) -> dict[str, Path]:
    """The four report files in ``out_dir``, by kind."""
    out = Path(out_dir)
    return {kind: out / name for kind, name in REPORT_FILES.items()}


def write_reports(report: GateReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``junit.xml`` and ``report.html`` atomically.

    Returns:
        The paths written, by kind (``json``, ``md``, ``junit``, ``html``).

    Raises:
        InputError: the folder does not exist or is not writable.
    """
    paths = report_paths(out_dir)
    write_json_atomic(paths["json"], _strict(report.to_json()))
    write_text_atomic(paths["md"], render_markdown(report))
    write_text_atomic(paths["junit"], render_junit(report))
    write_text_atomic(paths["html"], render_html(report))
    return paths


def _strict(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _interval(check: Check) -> str:
    j = check.judgement
    if j.basis == "point":
        return "point"
    if j.low is None or j.high is None:
        return "no interval"
    return f"[{_fmt(j.low)}, {_fmt(j.high)}]"


def _budget(check: Check) -> str:
    j = check.judgement
    return f"{'≤' if j.kind == 'max' else '≥'} {j.budget:g}"


# -- Markdown -----------------------------------------------------------------------------------


def _md(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: GateReport) -> str:
    """A summary for a pull-request comment: the verdict, then one row per check."""
    icon = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️"}
    model = report.model.get("path") or report.model.get("spec") or "model"
    lines = [
        f"## optieval gate: {icon[report.verdict.value]} {report.verdict.value}",
        "",
        f"{_md(report.summary)} · model `{_md(Path(str(model)).name)}` · exit code "
        f"{report.exit_code}",
        "",
        "| verdict | check | value | 95% interval | budget |",
        "| --- | --- | --- | --- | --- |",
    ]
    for check in _ordered(report.checks):
        j = check.judgement
        lines.append(
            f"| {icon[check.verdict.value]} {check.verdict.value} | {_md(check.name)} | "
            f"{_fmt(j.value)} | {_interval(check)} | {_budget(check)} |"
        )
    notes = [c for c in _ordered(report.checks) if c.verdict is not Verdict.PASS]
    if notes:
        lines += ["", "**Evidence**", ""]
        lines += [f"- {_md(c.name)}: {_md(c.evidence)}" for c in notes]
    hardware = _hardware_lines(report.cells)
    if hardware:
        lines += ["", "**Hardware**", ""]
        lines += [f"- {_md(line)}" for line in hardware]
    if report.warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {_md(w)}" for w in report.warnings]
    lines += [
        "",
        "Intervals are 95% and distribution-free for latency percentiles; a check passes only "
        "when its whole interval is within the budget. Details: `report.html`, `report.json`.",
        "",
    ]
    return "\n".join(lines)


def _ordered(checks: Iterable[Check]) -> list[Check]:
    rank = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}
    return sorted(checks, key=lambda c: rank[c.verdict])


# -- JUnit --------------------------------------------------------------------------------------


def render_junit(report: GateReport) -> str:
    """One ``<testcase>`` per check: FAIL is a ``<failure>``, a check its backend could not make
    an ``<error>``, INCONCLUSIVE a ``<failure>`` (a ``<skipped>`` with
    ``allow_inconclusive``); the evidence is the message."""
    failures = errors = skipped = 0
    suite = ET.Element("testsuite", name="optieval.gate")
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"optieval.gate.{check.group}.{check.target}",
            name=check.name,
            time="0",
        )
        if check.error:
            errors += 1
            ET.SubElement(
                case, "error", message=check.evidence, type="BACKEND"
            ).text = check.evidence
        elif check.verdict is Verdict.FAIL:
            failures += 1
            ET.SubElement(
                case, "failure", message=check.evidence, type="FAIL"
            ).text = check.evidence
        elif check.verdict is Verdict.INCONCLUSIVE:
            if report.allow_inconclusive:
                skipped += 1
                ET.SubElement(case, "skipped", message=f"INCONCLUSIVE: {check.evidence}")
            else:
                failures += 1
                ET.SubElement(
                    case, "failure", message=check.evidence, type="INCONCLUSIVE"
                ).text = check.evidence
        ET.SubElement(case, "system-out").text = check.evidence
    suite.set("tests", str(len(report.checks)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{report.seconds:.3f}")
    root = ET.Element(
        "testsuites",
        name="optieval gate",
        tests=str(len(report.checks)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- HTML ---------------------------------------------------------------------------------------


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
        f'<div class="verdict" style="background:{_COLOURS[verdict]}">{_e(verdict)}</div>',
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
    plots = _plots(report)
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += plots
    parts.append("<h2>Cells by hardware</h2>")
    parts += _cells_by_hardware(report.cells)
    if report.artifacts:
        parts.append("<h2>Artifacts</h2>")
        parts.append(_artifact_table(report.artifacts))
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
    for check in _ordered(checks):
        j = check.judgement
        colour = _COLOURS[check.verdict.value]
        rows.append(
            f'<tr><td class="tag" style="color:{colour}">{_e(check.verdict.value)}</td>'
            f"<td>{_e(check.name)}</td><td class=num>{_e(_fmt(j.value))}</td>"
            f"<td class=num>{_e(_interval(check))}</td><td class=num>{_e(_budget(check))}</td>"
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
        p99 = _fmt(latency.get("p99"))
        if ci:
            p99 += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
        throughput = (cell.throughput or {}).get("items_per_s")
        notes = [*([cell.reason] if cell.reason else []), *cell.notes]
        rows.append(
            f"<tr><td>{_e(cell.label)}</td><td>{_e(cell.status)}</td>"
            f"<td class=num>{cell.samples}</td><td class=num>{_e(_fmt(latency.get('p50')))}</td>"
            f"<td class=num>{_e(p99)}</td><td class=num>{_e(_fmt(throughput))}</td>"
            f"<td class=num>{_e(_fmt(cell.cold_start_ms))}</td>"
            f"<td>{'<br>'.join(_e(n) for n in notes)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


# -- cells grouped by the hardware they ran on (executors, issue 10) ----------------------------


def _machines(cells: Sequence[Cell]) -> list[str]:
    """Each distinct machine the cells ran on, in words: host, Ray node, GPUs, CPU."""
    seen: dict[str, None] = {}
    for cell in cells:
        machine = cell.machine or {}
        placement = cell.placement or {}
        if not machine and not placement:
            continue
        parts = [f"host {machine.get('hostname', '?')}"]
        if placement.get("node_id"):
            parts.append(f"Ray node {str(placement['node_id'])[:12]}")
        gpus = [str(g.get("name")) for g in machine.get("gpus") or []]
        if gpus:
            parts.append(", ".join(gpus))
        cpu = machine.get("cpu") or {}
        if cpu.get("model"):
            parts.append(f"{cpu['model']} ({cpu.get('usable_cores', '?')} cores)")
        seen[" · ".join(parts)] = None
    return list(seen)


def _pinning(cells: Sequence[Cell]) -> str:
    pinned = [c for c in cells if ((c.placement or {}).get("pinning") or {}).get("pinned")]
    if not pinned:
        return ""
    return f"{len(pinned)} of {len(cells)} cells pinned to their cores"


def _hardware_lines(cells: Sequence[Cell]) -> list[str]:
    from optieval.execution import group_by_hardware

    if not any(c.machine or c.placement for c in cells):
        return []
    lines = []
    for label, group in group_by_hardware(cells).items():
        executor = (group[0].placement or {}).get("executor", "local")
        extra = [e for e in (_pinning(group),) if e]
        lines.append(
            f"{label}: {len(group)} cell{'s' if len(group) != 1 else ''} ({executor}) on "
            + "; ".join(_machines(group) or ["this machine"])
            + (f"; {', '.join(extra)}" if extra else "")
        )
    return lines


def _cells_by_hardware(cells: Sequence[Cell]) -> list[str]:
    from optieval.execution import group_by_hardware

    groups = group_by_hardware(cells)
    if len(groups) <= 1 and not any(c.machine or c.placement for c in cells):
        return [_cell_table(cells)]
    parts = []
    for label, group in groups.items():
        parts.append(f"<h3>{_e(label)}</h3>")
        lines = [*_machines(group), _pinning(group)]
        if any(lines):
            parts.append('<p class="meta">' + "<br>".join(_e(m) for m in lines if m) + "</p>")
        parts.append(_cell_table(group))
    return parts


def _artifact_table(artifacts: Sequence[dict[str, Any]]) -> str:
    rows = [
        "<table><thead><tr><th>precision</th><th>file</th><th>MiB</th><th>sha256</th>"
        "<th>census</th></tr></thead><tbody>"
    ]
    for a in artifacts:
        census = a.get("census") or {}
        described = census.get("summary") or census.get("compute") or ""
        if isinstance(described, dict):
            described = ", ".join(f"{k}: {v}" for k, v in described.items())
        rows.append(
            f"<tr><td>{_e(a.get('precision'))}</td><td>{_e(Path(str(a.get('path'))).name)}</td>"
            f"<td class=num>{_e(_fmt((a.get('bytes') or 0) / 2**20))}</td>"
            f"<td><code>{_e(str(a.get('sha256', ''))[:16])}…</code></td>"
            f"<td>{_e(described)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _env_list(env: dict[str, Any]) -> str:
    items = []
    for key, value in env.items():
        if isinstance(value, (dict, list)):
            text = (
                ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, (dict, list)))
                if isinstance(value, dict)
                else f"{len(value)} entries"
            )
        else:
            text = str(value)
        items.append(f"<li><b>{_e(key)}</b>: {_e(text)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


# -- SVG plots ----------------------------------------------------------------------------------


def _plots(report: GateReport) -> list[str]:
    from optieval.release.budgets import cell_subject

    out = []
    budgets = _latency_budgets(report.checks)
    histograms = [_histogram(c, budgets.get(cell_subject(c))) for c in report.cells if _ok(c)]
    if histograms:
        out.append("<h3>Latency distribution per cell</h3>")
        out.append('<div class="plots">' + "".join(histograms) + "</div>")
    by_batch = _latency_vs_batch(report.cells)
    if by_batch:
        out.append("<h3>Latency against batch</h3>")
        out.append(by_batch)
    load_curve = latency_vs_throughput(report.cells)
    if load_curve:
        out.append("<h3>Latency against throughput (load scenarios)</h3>")
        out.append(load_curve)
    plotted = [_p99_vs_rate(c) for c in report.cells if c.status == "ok" and c.search]
    searches = [svg for svg in plotted if svg]
    if searches:
        out.append("<h3>p99 against offered rate (max-QPS search)</h3>")
        out.extend(searches)
    scatter = _accuracy_vs_latency(report)
    if scatter:
        out.append("<h3>Accuracy against latency, per precision</h3>")
        out.append(scatter)
    return out


def _ok(cell: Cell) -> bool:
    return cell.status == "ok" and bool(cell.times_ms) and bool(cell.latency_ms)


def _latency_budgets(checks: Iterable[Check]) -> dict[str, list[tuple[str, float]]]:
    """Per cell label, the millisecond budgets to draw (``("p99", 40.0)``)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for check in checks:
        if check.group == "latency" and check.key.endswith("_ms_max") and check.key[0] == "p":
            out.setdefault(check.subject, []).append(
                (check.key.split("_")[0], check.judgement.budget)
            )
    return out


def _histogram(cell: Cell, budgets: list[tuple[str, float]] | None) -> str:
    width, height, left, bottom, top = 320, 170, 40, 30, 22
    times = sorted(cell.times_ms)
    latency = cell.latency_ms or {}
    p50, p99 = latency.get("p50", times[len(times) // 2]), latency.get("p99", times[-1])
    lo = times[0]
    # The axis follows the data (a far budget would squash it); budgets off scale are named.
    hi = max(p99 * 1.25, times[min(len(times) - 1, int(len(times) * 0.999))])
    hi = max(hi, lo * 1.001 + 1e-9)
    bins = 40
    counts = [0] * bins
    over = 0
    for t in times:
        if t > hi:
            over += 1
            continue
        counts[min(bins - 1, int((t - lo) / (hi - lo) * bins))] += 1
    peak = max(counts) or 1
    plot_w, plot_h = width - left - 10, height - bottom - top
    bar_w = plot_w / bins

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = [_svg_open(width, height, f"latency distribution of {cell.label}")]
    parts.append(
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{_e(cell.label)}</text>'
    )
    for i, count in enumerate(counts):
        if count:
            h = count / peak * plot_h
            parts.append(
                f'<rect x="{left + i * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="#8c959f"/>'
            )
    marks = [("p50", p50, "#0969da"), ("p99", p99, "#8250df")]
    marks += [(f"{name} budget", b, "#cf222e") for name, b in budgets or []]
    for i, (name, value, colour) in enumerate(marks):
        if lo <= value <= hi:
            xv = x(value)
            dash = ' stroke-dasharray="4 3"' if "budget" in name else ""
            parts.append(
                f'<line x1="{xv:.1f}" x2="{xv:.1f}" y1="{top}" y2="{top + plot_h}" '
                f'stroke="{colour}" stroke-width="1.5"{dash}/>'
            )
            parts.append(
                f'<text x="{min(xv + 3, width - 60):.1f}" y="{top + 10 + 11 * i}" '
                f'font-size="10" fill="{colour}">{_e(name)} {_e(_fmt(value))}</text>'
            )
    off_scale = [(name, b) for name, b in budgets or [] if b > hi]
    for i, (name, b) in enumerate(off_scale):
        parts.append(
            f'<text x="{width - 10}" y="{top + 10 + 11 * (len(marks) + i)}" font-size="10" '
            f'text-anchor="end" fill="#cf222e">{_e(name)} budget {_e(_fmt(b))} ms →</text>'
        )
    parts += _x_axis(left, top + plot_h, plot_w, lo, hi, "ms")
    if over:
        parts.append(
            f'<text x="{width - 10}" y="14" font-size="9" text-anchor="end" '
            f'fill="#59636e">{over} samples beyond {_e(_fmt(hi))} ms</text>'
        )
    parts.append("</svg>")
    caption = f"{cell.samples} samples; p50 {_fmt(p50)} ms, p99 {_fmt(p99)} ms"
    return f"<figure>{''.join(parts)}<figcaption>{_e(caption)}</figcaption></figure>"


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="system-ui,sans-serif">'
        f"<title>{_e(title)}</title>"
    )


def _x_axis(left: float, y: float, width: float, lo: float, hi: float, unit: str) -> list[str]:
    parts = [f'<line x1="{left}" x2="{left + width}" y1="{y}" y2="{y}" stroke="#59636e"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        xv = left + width * i / 4
        parts.append(
            f'<text x="{xv:.1f}" y="{y + 13}" font-size="9" text-anchor="middle" '
            f'fill="#59636e">{_e(_fmt(v))}</text>'
        )
    parts.append(
        f'<text x="{left + width}" y="{y + 25}" font-size="9" text-anchor="end" '
        f'fill="#59636e">{_e(unit)}</text>'
    )
    return parts


def _y_axis(left: float, top: float, height: float, lo: float, hi: float, unit: str) -> list[str]:
    parts = [f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + height}" stroke="#59636e"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        yv = top + height - height * i / 4
        parts.append(
            f'<text x="{left - 4}" y="{yv + 3:.1f}" font-size="9" text-anchor="end" '
            f'fill="#59636e">{_e(_fmt(v))}</text>'
        )
    parts.append(
        f'<text x="{left - 4}" y="{top - 6}" font-size="9" text-anchor="end" '
        f'fill="#59636e">{_e(unit)}</text>'
    )
    return parts


def _latency_vs_batch(cells: Sequence[Cell]) -> str | None:
    series: dict[str, list[Cell]] = {}
    for cell in cells:
        if _ok(cell):
            series.setdefault(f"{cell.backend}:{cell.precision}", []).append(cell)
    series = {k: sorted(v, key=lambda c: c.batch) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    width, height, left, right, top, bottom = 560, 260, 56, 150, 20, 34
    batches = sorted({c.batch for cs in series.values() for c in cs})
    values = []
    for cs in series.values():
        for c in cs:
            p99_ci = (c.ci95_ms or {}).get("p99") or []
            shown = [(c.latency_ms or {}).get("p50"), (c.latency_ms or {}).get("p99"), *p99_ci]
            values += [v for v in shown if isinstance(v, (int, float))]
    hi = max(values) * 1.1 if values else 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(batch: int) -> float:
        if len(batches) == 1:
            return left + plot_w / 2
        # Batches are usually powers of two: a log axis spaces them evenly.
        lo_b, hi_b = math.log(batches[0]), math.log(batches[-1])
        return left + (math.log(batch) - lo_b) / ((hi_b - lo_b) or 1) * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / hi * plot_h

    parts = [_svg_open(width, height, "p50 and p99 latency against batch size")]
    parts += _y_axis(left, top, plot_h, 0.0, hi, "ms")
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#59636e"/>'
    )
    for b in batches:
        parts.append(
            f'<text x="{x(b):.1f}" y="{top + plot_h + 13}" font-size="9" text-anchor="middle" '
            f'fill="#59636e">{b}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 4}" font-size="9" text-anchor="end" '
        'fill="#59636e">batch (log scale)</text>'
    )
    for i, (label, cs) in enumerate(series.items()):
        colour = _SERIES[i % len(_SERIES)]
        for key, dash in (("p50", ""), ("p99", ' stroke-dasharray="5 3"')):
            points = [
                (x(c.batch), y((c.latency_ms or {})[key]))
                for c in cs
                if key in (c.latency_ms or {})
            ]
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"'
                f"{dash}/>"
            )
        for c in cs:
            bar = (c.ci95_ms or {}).get("p99")
            if bar and bar[0] is not None and bar[1] is not None:
                parts.append(
                    f'<line x1="{x(c.batch):.1f}" x2="{x(c.batch):.1f}" y1="{y(bar[0]):.1f}" '
                    f'y2="{y(bar[1]):.1f}" stroke="{colour}" stroke-width="3" opacity="0.5"/>'
                )
        ly = top + 12 + 28 * i
        lx = left + plot_w + 12
        parts.append(
            f'<text x="{lx}" y="{ly}" font-size="11" fill="{colour}">{_e(label)}</text>'
            f'<text x="{lx}" y="{ly + 12}" font-size="9" fill="#59636e">solid p50, dashed p99'
            "</text>"
        )
    parts.append("</svg>")
    return (
        f"<figure>{''.join(parts)}<figcaption>Bars on the p99 points: the 95% interval."
        "</figcaption></figure>"
    )


def _p99_vs_rate(cell: Cell) -> str | None:
    """The rates a max-QPS search tried: p99 (with its interval) against offered rate, the p99
    budget as a dashed line and the answer marked."""
    search = cell.search or {}
    budget = search.get("p99_ms_max")
    trials = [
        t
        for t in search.get("tried") or []
        if isinstance(t.get("qps"), (int, float)) and isinstance(t.get("p99_ms"), (int, float))
    ]
    if not trials or not isinstance(budget, (int, float)):
        return None
    trials.sort(key=lambda t: t["qps"])
    width, height, left, right, top, bottom = 560, 260, 56, 150, 20, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    highs = [(t.get("p99_ci95_ms") or [None, None])[1] for t in trials]
    ys = [t["p99_ms"] for t in trials] + [h for h in highs if isinstance(h, (int, float))]
    # Overloaded rates can be far over the budget: the axis stops at 3x the budget.
    y_hi = min(max([*ys, budget]) * 1.1, budget * 3.0)
    x_hi = max(t["qps"] for t in trials) * 1.1

    def px(v: float) -> float:
        return left + v / x_hi * plot_w

    def py(v: float) -> float:
        return top + plot_h - min(v, y_hi) / y_hi * plot_h

    title = f"p99 against offered rate for {cell.label}"
    parts = [_svg_open(width, height, title)]
    parts += _y_axis(left, top, plot_h, 0.0, y_hi, "p99, ms")
    parts += _x_axis(left, top + plot_h, plot_w, 0.0, x_hi, "offered rate, queries/s")
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{py(budget):.1f}" y2="{py(budget):.1f}" '
        'stroke="#cf222e" stroke-dasharray="5 3"/>'
        f'<text x="{left + plot_w - 2}" y="{py(budget) - 3:.1f}" font-size="9" '
        f'text-anchor="end" fill="#cf222e">budget p99 {_e(_fmt(budget))} ms</text>'
    )
    path = " ".join(f"{px(t['qps']):.1f},{py(t['p99_ms']):.1f}" for t in trials)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#59636e" stroke-width="1"/>')
    for t, high in zip(trials, highs, strict=True):
        colour = _COLOURS.get(str(t.get("verdict")), "#59636e")
        low = (t.get("p99_ci95_ms") or [None, None])[0]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            parts.append(
                f'<line x1="{px(t["qps"]):.1f}" x2="{px(t["qps"]):.1f}" y1="{py(low):.1f}" '
                f'y2="{py(high):.1f}" stroke="{colour}" stroke-width="3" opacity="0.5"/>'
            )
        parts.append(
            f'<circle cx="{px(t["qps"]):.1f}" cy="{py(t["p99_ms"]):.1f}" r="4" fill="{colour}">'
            f"<title>{_e(_fmt(t['qps']))} qps: p99 {_e(_fmt(t['p99_ms']))} ms, "
            f"{_e(t.get('verdict'))}</title></circle>"
        )
    answer = search.get("answer_qps")
    if isinstance(answer, (int, float)):
        parts.append(
            f'<line x1="{px(answer):.1f}" x2="{px(answer):.1f}" y1="{top}" '
            f'y2="{top + plot_h}" stroke="#1a7f37" stroke-dasharray="2 3"/>'
            f'<text x="{px(answer) + 3:.1f}" y="{top + 9}" font-size="9" fill="#1a7f37">'
            f"answer {_e(_fmt(answer))} qps</text>"
        )
    for i, (verdict, colour) in enumerate(_COLOURS.items()):
        ly = top + 12 + 16 * i
        parts.append(
            f'<circle cx="{left + plot_w + 16}" cy="{ly - 4}" r="5" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{verdict}</text>'
        )
    parts.append("</svg>")
    caption = (
        f"{cell.label}: each rate the search tried, its p99 with the 95% interval (bars), the "
        "p99 budget (dashed) and the answer, the highest rate whose whole interval lies under "
        "the budget."
    )
    return f"<figure>{''.join(parts)}<figcaption>{_e(caption)}</figcaption></figure>"


def latency_vs_throughput(cells: Sequence[Cell]) -> str | None:
    """p99 latency against achieved throughput for the cells of load scenarios (concurrency,
    server, offline), one line per backend:precision:batch in order of throughput: the curve a
    service owner reads to pick an operating point."""
    curves: dict[str, list[tuple[float, float, str]]] = {}
    for cell in cells:
        items = (cell.throughput or {}).get("items_per_s")
        if not _ok(cell) or cell.scenario in (None, "single-stream") or not items:
            continue
        params = cell.scenario_params or {}
        point = next(
            (
                f"{k}={params[k]}"
                for k in ("concurrency", "qps", "streams")
                if params.get(k) is not None
            ),
            str(cell.scenario),
        )
        curves.setdefault(cell.label, []).append(
            (float(items), float((cell.latency_ms or {})["p99"]), point)
        )
    if not curves:
        return None
    width, height, left, right, top, bottom = 560, 260, 56, 170, 20, 34
    xs = [x for pts in curves.values() for x, _, _ in pts]
    ys = [y for pts in curves.values() for _, y, _ in pts]
    x_hi, y_hi = max(xs) * 1.1, max(ys) * 1.15
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + v / x_hi * plot_w

    def py(v: float) -> float:
        return top + plot_h - v / y_hi * plot_h

    parts = [_svg_open(width, height, "p99 latency against throughput")]
    parts += _y_axis(left, top, plot_h, 0.0, y_hi, "p99 ms")
    parts += _x_axis(left, top + plot_h, plot_w, 0.0, x_hi, "throughput, items/s")
    for i, (label, points) in enumerate(sorted(curves.items())):
        points.sort()
        colour = _PRECISION_COLOURS.get(label.split(":")[1].split(" ")[0], "#59636e")
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for x, y, point in points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(label)} {_e(point)}: {_e(_fmt(x))} items/s, p99 {_e(_fmt(y))} ms"
                "</title></circle>"
            )
        ly = top + 12 + 16 * i
        parts.append(
            f'<circle cx="{left + plot_w + 16}" cy="{ly - 4}" r="5" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{_e(label)}</text>'
        )
    parts.append("</svg>")
    caption = (
        "p99 latency against achieved throughput, one point per concurrency, rate or stream "
        "count (hover a point for its setting)."
    )
    return f"<figure>{''.join(parts)}<figcaption>{_e(caption)}</figcaption></figure>"


def _accuracy_vs_latency(report: GateReport) -> str | None:
    results = (report.parity or {}).get("results") or []
    accuracy: dict[str, tuple[float, str]] = {}
    reference_acc = None
    for result in results:
        for out in result.get("outputs") or []:
            value = out.get("accuracy_candidate")
            metric = "accuracy"
            if value is None:
                value, metric = out.get("top1_agreement"), "top-1 agreement with the reference"
            if isinstance(value, (int, float)):
                accuracy.setdefault(str(result.get("candidate")), (float(value), metric))
                if out.get("accuracy_reference") is not None and reference_acc is None:
                    reference_acc = float(out["accuracy_reference"])
                break
    points = []
    for cell in report.cells:
        label = f"{cell.backend}:{cell.precision}"
        if _ok(cell) and label in accuracy:
            points.append((cell, (cell.latency_ms or {})["p50"], accuracy[label][0]))
    if not points:
        return None
    metric = next(iter(accuracy.values()))[1]
    width, height, left, right, top, bottom = 560, 260, 56, 150, 20, 34
    xs = [p[1] for p in points]
    ys = [p[2] for p in points] + ([reference_acc] if reference_acc is not None else [])
    x_hi = max(xs) * 1.15
    y_lo, y_hi = min(ys), max(ys)
    pad = max((y_hi - y_lo) * 0.2, 0.005)
    y_lo, y_hi = max(0.0, y_lo - pad), min(1.0, y_hi + pad)
    if y_hi <= y_lo:
        y_lo, y_hi = y_lo - 0.01, y_hi + 0.01
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + v / x_hi * plot_w

    def py(v: float) -> float:
        return top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    parts = [_svg_open(width, height, f"{metric} against p50 latency")]
    parts += _y_axis(left, top, plot_h, y_lo, y_hi, metric.split(" ")[0])
    parts += _x_axis(left, top + plot_h, plot_w, 0.0, x_hi, "p50 latency, ms")
    if reference_acc is not None:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(reference_acc):.1f}" '
            f'y2="{py(reference_acc):.1f}" stroke="#59636e" stroke-dasharray="3 3"/>'
            f'<text x="{left + plot_w - 2}" y="{py(reference_acc) - 3:.1f}" font-size="9" '
            f'text-anchor="end" fill="#59636e">reference {_e(_fmt(reference_acc))}</text>'
        )
    for cell, lat, acc in points:
        colour = _PRECISION_COLOURS.get(cell.precision, "#59636e")
        parts.append(
            f'<circle cx="{px(lat):.1f}" cy="{py(acc):.1f}" r="{3 + math.log2(cell.batch):.1f}" '
            f'fill="{colour}" fill-opacity="0.75">'
            f"<title>{_e(cell.label)}: p50 {_e(_fmt(lat))} ms, {_e(_fmt(acc))}</title></circle>"
        )
    for i, precision in enumerate(sorted({c.precision for c, _, _ in points})):
        colour = _PRECISION_COLOURS.get(precision, "#59636e")
        ly = top + 12 + 16 * i
        parts.append(
            f'<circle cx="{left + plot_w + 16}" cy="{ly - 4}" r="5" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{_e(precision)}</text>'
        )
    parts.append("</svg>")
    caption = (
        f"{metric} (evaluation data) against p50 latency per cell; one colour per precision, "
        "larger points for larger batches (hover a point for its cell)."
    )
    return f"<figure>{''.join(parts)}<figcaption>{_e(caption)}</figcaption></figure>"


__all__ = ["REPORT_FILES", "render_html", "render_junit", "render_markdown", "report_paths",
           "write_reports"]  # fmt: skip
