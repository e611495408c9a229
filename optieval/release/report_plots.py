"""The HTML report's plots, as inline SVG with no plotting library: latency distribution per
cell (with its budgets), p50/p99 against batch, p99 against throughput for load scenarios, p99
against offered rate for max-QPS searches, and accuracy against latency per precision.

Every user-supplied string is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from optieval.release.budgets import Check
from optieval.release.evidence import VERDICT_COLOURS, format_bound

if TYPE_CHECKING:  # pragma: no cover
    from optieval.bench import Cell
    from optieval.release.gate_report import GateReport

__all__ = ["PRECISION_COLOURS", "SERIES", "gate_plots", "latency_vs_throughput"]

PRECISION_COLOURS = {"fp32": "#0969da", "fp16": "#8250df", "int8": "#bf3989", "bf16": "#1b7c83"}
"""The colour of each precision in the plots."""
SERIES = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#bf3989", "#1b7c83")
"""Colours of successive series (backend:precision lines)."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def gate_plots(report: GateReport) -> list[str]:
    """The report's plots, each a heading and inline SVG: latency distribution per cell, latency
    against batch, latency against throughput, p99 against offered rate (max-QPS searches)
    and accuracy against latency (none for what did not run)."""
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
                f'font-size="10" fill="{colour}">{_e(name)} {_e(format_bound(value))}</text>'
            )
    off_scale = [(name, b) for name, b in budgets or [] if b > hi]
    for i, (name, b) in enumerate(off_scale):
        parts.append(
            f'<text x="{width - 10}" y="{top + 10 + 11 * (len(marks) + i)}" font-size="10" '
            f'text-anchor="end" fill="#cf222e">{_e(name)} budget {_e(format_bound(b))} ms →</text>'
        )
    parts += _x_axis(left, top + plot_h, plot_w, lo, hi, "ms")
    if over:
        parts.append(
            f'<text x="{width - 10}" y="14" font-size="9" text-anchor="end" '
            f'fill="#59636e">{over} samples beyond {_e(format_bound(hi))} ms</text>'
        )
    parts.append("</svg>")
    caption = f"{cell.samples} samples; p50 {format_bound(p50)} ms, p99 {format_bound(p99)} ms"
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
            f'fill="#59636e">{_e(format_bound(v))}</text>'
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
            f'fill="#59636e">{_e(format_bound(v))}</text>'
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
        colour = SERIES[i % len(SERIES)]
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
        f'text-anchor="end" fill="#cf222e">budget p99 {_e(format_bound(budget))} ms</text>'
    )
    path = " ".join(f"{px(t['qps']):.1f},{py(t['p99_ms']):.1f}" for t in trials)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#59636e" stroke-width="1"/>')
    for t, high in zip(trials, highs, strict=True):
        colour = VERDICT_COLOURS.get(str(t.get("verdict")), "#59636e")
        low = (t.get("p99_ci95_ms") or [None, None])[0]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            parts.append(
                f'<line x1="{px(t["qps"]):.1f}" x2="{px(t["qps"]):.1f}" y1="{py(low):.1f}" '
                f'y2="{py(high):.1f}" stroke="{colour}" stroke-width="3" opacity="0.5"/>'
            )
        parts.append(
            f'<circle cx="{px(t["qps"]):.1f}" cy="{py(t["p99_ms"]):.1f}" r="4" fill="{colour}">'
            f"<title>{_e(format_bound(t['qps']))} qps: p99 {_e(format_bound(t['p99_ms']))} ms, "
            f"{_e(t.get('verdict'))}</title></circle>"
        )
    answer = search.get("answer_qps")
    if isinstance(answer, (int, float)):
        parts.append(
            f'<line x1="{px(answer):.1f}" x2="{px(answer):.1f}" y1="{top}" '
            f'y2="{top + plot_h}" stroke="#1a7f37" stroke-dasharray="2 3"/>'
            f'<text x="{px(answer) + 3:.1f}" y="{top + 9}" font-size="9" fill="#1a7f37">'
            f"answer {_e(format_bound(answer))} qps</text>"
        )
    for i, (verdict, colour) in enumerate(VERDICT_COLOURS.items()):
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
        colour = PRECISION_COLOURS.get(label.split(":")[1].split(" ")[0], "#59636e")
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for x, y, point in points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(label)} {_e(point)}: {_e(format_bound(x))} items/s, "
                f"p99 {_e(format_bound(y))} ms"
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
            f'text-anchor="end" fill="#59636e">reference {_e(format_bound(reference_acc))}</text>'
        )
    for cell, lat, acc in points:
        colour = PRECISION_COLOURS.get(cell.precision, "#59636e")
        parts.append(
            f'<circle cx="{px(lat):.1f}" cy="{py(acc):.1f}" r="{3 + math.log2(cell.batch):.1f}" '
            f'fill="{colour}" fill-opacity="0.75">'
            f"<title>{_e(cell.label)}: p50 {_e(format_bound(lat))} ms, "
            f"{_e(format_bound(acc))}</title></circle>"
        )
    for i, precision in enumerate(sorted({c.precision for c, _, _ in points})):
        colour = PRECISION_COLOURS.get(precision, "#59636e")
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
