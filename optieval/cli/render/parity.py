"""Rich rendering of parity results: one table per candidate, pass/fail per output, the worst
metric highlighted; then each output's kind and worst samples, localization and auto-exclude
lines (every round's metrics and why it stopped)."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from optieval.cli.flags import to_flags
from optieval.parity import CandidateParity, Interval, OutputParity, ParityReport

# Which column shows the evidence of each check (for highlighting the worst one).
_CHECK_COLUMN = {
    "finite": "nan/inf",
    "tolerance": "max_abs",
    "accuracy_delta": "acc Δ",
    "accuracy_ratio": "acc ratio",
    "top1_agreement": "flip rate",
    "cosine": "cos worst",
    "knn_agreement": "knn",
}
_COLUMNS = (
    "output", "kind", "result", "max_abs", "max_rel", "cos mean", "cos worst", "cos p5", "knn",
    "rel err p95", "nan/inf", "outside tol", "flip rate", "accuracy", "acc Δ", "acc ratio",
    "worst by max_abs",
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


def _cos(value: float, interval: Interval | None = None) -> str:
    text = f"{value:.6f}"
    if interval is not None:
        text += f" [{interval.low:.6f}, {interval.high:.6f}]"
    return text


def _cosine_cells(out: OutputParity) -> dict[str, str]:
    cos = out.cosine_per_sample
    cells = {"cos mean": "-", "cos worst": "-", "cos p5": "-", "knn": "-", "rel err p95": "-"}
    if cos is not None and cos.samples:
        cells["cos mean"] = _cos(cos.mean)
        index = f" (#{cos.worst[0][0]})" if cos.worst else ""
        cells["cos worst"] = f"{_cos(cos.min)}{index}"
        p5 = cos.percentile(5.0)
        if p5 is not None:
            cells["cos p5"] = _cos(p5.value)
    if out.neighbours is not None:
        nb = out.neighbours
        cells["knn"] = f"@{nb.k} {_pct(nb.agreement)}"
    if out.errors is not None:
        p95 = next((p for p in out.errors.rel_percentiles if p.percentile == 95.0), None)
        if p95 is not None:
            cells["rel err p95"] = _g(p95.value)
    return cells


def _cells(out: OutputParity) -> dict[str, str]:
    return {
        "output": out.name,
        "kind": out.kind,
        "result": "PASS" if out.passed else "FAIL",
        "max_abs": _g(out.max_abs),
        "max_rel": _g(out.max_rel),
        **_cosine_cells(out),
        "nan/inf": f"{out.nan_count}/{out.inf_count}",
        "outside tol": str(out.violations),
        "flip rate": _pct(out.flip_rate, out.flip_rate_ci),
        "accuracy": "-"
        if out.accuracy_reference is None
        else f"{_pct(out.accuracy_reference)} -> {_pct(out.accuracy_candidate)}",
        "acc Δ": _pct(out.accuracy_delta, out.accuracy_delta_ci, signed=True),
        "acc ratio": _ratio(out.accuracy_ratio, out.accuracy_ratio_ci),
        "worst by max_abs": ", ".join(map(str, out.worst_samples[:3])) or "-",
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
    columns = [c for c in _COLUMNS
               if any(r[c] != "-" for r in rows) or c in ("output", "result")]  # fmt: skip
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
    table.caption = (
        f"tolerance {tolerances}; cos: per-sample cosine with the reference (worst sample's "
        "index); intervals 95%: Wilson (flip rate), paired (accuracy), bootstrap (cosine "
        "mean, knn), order statistics (percentiles)"
    )
    table.caption_justify = "left"
    return table


def candidate_lines(result: CandidateParity, model: str = "MODEL") -> list[str]:
    """Plain lines after a candidate's table: each output's kind and worst samples,
    localization and auto-exclude (rich markup)."""
    lines = output_lines(result)
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
    lines.extend(_auto_lines(result))
    return lines


def output_lines(result: CandidateParity) -> list[str]:
    """Plain lines after a candidate's table: each output's kind and why, and its worst samples
    (index and value)."""
    lines: list[str] = []
    for out in result.outputs:
        reason = "given" if out.kind_reason == "given" else f"inferred: {out.kind_reason}"
        lines.append(f"{out.name}: {out.kind} ({reason})")
        cos = out.cosine_per_sample
        if cos is not None and cos.worst:
            pcts = "; ".join(
                f"p{p.percentile:g} {_cos(p.value, p.interval)}"
                if p.interval is not None
                else f"p{p.percentile:g} {_cos(p.value)} (too few samples for an interval)"
                for p in cos.percentiles
            )
            lines.append(f"  per-sample cosine over {cos.samples} samples: mean "
                         f"{_cos(cos.mean, cos.mean_ci)}; {pcts}")  # fmt: skip
            worst = ", ".join(f"#{i} {_cos(v)}" for i, v in cos.worst)
            extra = f"; {cos.nonfinite} with NaN/Inf scored -1" if cos.nonfinite else ""
            lines.append(f"  worst samples by cosine: {worst}{extra}")
        nb = out.neighbours
        if nb is not None:
            worst = ", ".join(f"#{i} {v:.0%}" for i, v in nb.worst if v < 1.0) or "none"
            lines.append(
                f"  nearest-neighbour agreement@{nb.k} over {nb.samples} samples: "
                f"{_pct(nb.agreement, nb.agreement_ci)}; same nearest neighbour "
                f"{nb.top1:.1%}; samples that lost most neighbours: {worst}"
            )
        err = out.errors
        if err is not None:
            pcts = ", ".join(f"p{p.percentile:g} {_g(p.value)}" for p in err.rel_percentiles)
            worst = ", ".join(f"#{i} {_g(v)}" for i, v in err.worst)
            lines.append(
                f"  per-sample relative error {pcts}, max {_g(err.rel_max)}; max abs "
                f"{_g(err.max_abs)}; worst samples: {worst}"
            )
    return lines


def _round_metrics(outputs: tuple[OutputParity, ...]) -> str:
    parts = []
    for out in outputs:
        shown = [c for c in out.checks if not c.passed] or list(out.checks)
        checks = ", ".join(f"{c.name} {_g(c.value, 6)} (limit {_g(c.limit, 6)})" for c in shown)
        cos = out.cosine_per_sample
        cos_text = "" if cos is None else f", cos worst {_cos(cos.min)}"
        top1 = "" if out.top1_agreement is None else f", top-1 {_pct(out.top1_agreement)}"
        verdict = "PASS" if out.passed else "FAIL"
        parts.append(f"{out.name} {verdict}: {checks}{cos_text}{top1}")
    return "; ".join(parts)


def _auto_lines(result: CandidateParity) -> list[str]:
    auto = result.auto_exclude
    if auto is None:
        return []
    lines = [f"auto-exclude ({auto.rounds} of {auto.max_rounds or auto.rounds} round(s) run):"]
    for r in auto.history:
        verdict = "kept" if r.kept else "[yellow]rejected[/]: no better than the best so far"
        lines.append(
            f"  round {r.round}: +{len(r.added)} node(s) by {r.chosen_by} "
            f"({', '.join(r.added)}), {r.excluded} in float -> {_round_metrics(r.outputs)}; "
            f"{verdict}"
        )
    state = "[green]passes[/]" if auto.passed else "[red]still fails[/]"
    lines.append(f"  stopped: {to_flags(auto.stop_detail or auto.stop_reason)}")
    cost = ""
    if auto.latency_ms_before is not None and auto.latency_ms_after is not None:
        cost = (
            f"; latency of one batch {auto.latency_ms_before:.3g} -> "
            f"{auto.latency_ms_after:.3g} ms (x{_g(auto.slowdown)})"
        )
    if auto.best_round is None:
        what = "no round improved on it" if auto.history else "no artifact re-quantized"
        lines.append(f"  kept the artifact as built ({what}): {state}")
        return lines
    lines.append(
        f"  kept round {auto.best_round}: {len(auto.excluded)} node(s) in float, {state}: "
        f"{' '.join('--exclude ' + n for n in auto.excluded)}{cost}"
    )
    lines.append(f"  artifact: {auto.artifact}")
    return lines


def report_summary(report: ParityReport) -> str:
    """One line: how many candidates passed."""
    passed = sum(r.passed for r in report.results)
    total = len(report.results)
    colour = "green" if passed == total else "red"
    return f"[bold {colour}]{passed}/{total} candidate(s) within parity[/] of {report.reference}"
