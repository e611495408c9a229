"""The gate's reports: ``report.json`` (the versioned :class:`GateReport`), ``report.md`` (a
summary table fit for a pull-request comment, :mod:`optieval.release.report_markdown`),
``junit.xml`` (one test case per check, :mod:`optieval.release.report_junit`) and
``report.html`` (one self-contained file: verdict, check table, inline SVG plots,
:mod:`optieval.release.report_html`).

Every user-supplied string (model and file names, backend labels, evidence, reasons) is escaped
for the format it lands in: HTML-escaped in the HTML report, XML-escaped by ElementTree in the
JUnit file, pipes and newlines neutralised in the Markdown table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from optieval.core import write_json_atomic, write_text_atomic
from optieval.release.gate_report import GateReport
from optieval.release.report_html import render_html
from optieval.release.report_junit import render_junit
from optieval.release.report_markdown import render_markdown

__all__ = ["REPORT_FILES", "report_paths", "write_reports"]

REPORT_FILES = {
    "json": "report.json",
    "md": "report.md",
    "junit": "junit.xml",
    "html": "report.html",
}


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
