"""Rich rendering of detection parity: one table row per candidate (box matching, mAP and its
delta with interval, checks), then the worst images, localization and auto-exclude lines."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from optieval.detection import DetectionParity, DetectionReport
from optieval.parity import Interval

# Which column shows the evidence of each check (the worst failed one is highlighted).
_CHECK_COLUMN = {
    "map_drop": "mAP@.5:.95 Δ",
    "map50_drop": "mAP@.5 Δ",
    "box_match": "box match",
    "mean_iou": "mean IoU",
    "extra_rate": "extra",
    "score_diff": "score |Δ|",
}


def _num(value: float | None, interval: Interval | None = None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:+.4f}" if signed else f"{value:.4f}"
    if interval is not None:
        text += (
            f" [{interval.low:+.4f},{interval.high:+.4f}]"
            if signed
            else (f" [{interval.low:.3f},{interval.high:.3f}]")
        )
    return text


def detection_table(report: DetectionReport) -> Table:
    """One row per candidate: result, detections, box matching, mAP and mAP deltas."""
    table = Table(
        title=f"detection parity vs {report.reference} (match IoU {report.match_iou:g}, "
        f"{report.box_format})",
        title_justify="left",
    )
    columns = ["candidate", "result", "detections ref/cand", "box match", "extra", "mean IoU",
               "score |Δ|", "mAP@.5 ref", "mAP@.5 Δ", "mAP@.5:.95 ref", "mAP@.5:.95 Δ"]  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name == "candidate" else "right")
    for r in report.results:
        cells = {
            "candidate": r.candidate,
            "result": "PASS" if r.passed else "FAIL",
            "detections ref/cand": f"{r.reference_detections}/{r.candidate_detections}",
            "box match": _num(r.box_match, r.box_match_ci),
            "extra": f"{r.extra} ({r.extra_rate * 100:.1f}%)",
            "mean IoU": _num(r.mean_iou),
            "score |Δ|": _num(r.mean_score_diff),
            "mAP@.5 ref": _num(r.map50_reference),
            "mAP@.5 Δ": _num(r.map50_delta, r.map50_delta_ci, signed=True),
            "mAP@.5:.95 ref": _num(r.map_reference),
            "mAP@.5:.95 Δ": _num(r.map_delta, r.map_delta_ci, signed=True),
        }
        worst = _CHECK_COLUMN.get(r.worst_metric or "")
        row: list[str | Text] = []
        for name in columns:
            style = ""
            if name == "result":
                style = "green" if r.passed else "bold red"
            elif name == worst:
                style = "bold red"
            row.append(Text(cells[name], style=style))
        table.add_row(*row)
    return table


def detection_lines(result: DetectionParity) -> list[str]:
    """Checks, worst images, localization and auto-exclude, as plain lines."""
    lines = []
    for check in result.checks:
        verdict = "PASS" if check.passed else "FAIL"
        value = "-" if check.value is None else f"{check.value:.4g}"
        lines.append(f"{result.candidate}: {check.name} {value} vs {check.limit:g}: {verdict}")
    if result.worst_images:
        worst = ", ".join(
            f"#{w.index} ({w.matched}/{w.reference} matched, {w.candidate - w.matched} extra)"
            for w in result.worst_images
        )
        lines.append(f"{result.candidate}: images that differ most: {worst}")
    if result.localization is not None and result.localization.first_bad_nodes:
        lines.append(
            f"{result.candidate}: error born at {', '.join(result.localization.first_bad_nodes)}"
            f" (keep in float with --exclude NODE)"
        )
    auto = result.auto_exclude
    if auto is not None:
        lines.append(
            f"{result.candidate}: auto-exclude kept {', '.join(auto.excluded) or 'nothing'} in "
            f"float after {auto.rounds} round(s): {'PASS' if auto.passed else 'still FAIL'}; "
            f"artifact {auto.artifact}"
        )
    return lines


def detection_summary(report: DetectionReport) -> str:
    """One closing line."""
    failed = [r.candidate for r in report.results if not r.passed]
    gt = f"ground truth {report.ground_truth}" if report.ground_truth else "no ground truth"
    if failed:
        return f"FAIL: {', '.join(failed)} broke a detection budget ({gt})"
    return f"PASS: {len(report.results)} candidate(s) within budgets ({gt})"
