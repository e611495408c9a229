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
from optieval.errors import InputError
from optieval.release.gate_report import GateReport
from optieval.release.report_html import render_html
from optieval.release.report_junit import render_junit
from optieval.release.report_markdown import render_markdown

__all__ = [
    "REPORT_FILES",
    "clear_reports",
    "report_paths",
    "write_failure_reports",
    "write_reports",
]

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


def clear_reports(out_dir: str | Path) -> None:
    """Remove the four report files of an earlier run from ``out_dir`` (only those names), so
    a run that stops early never leaves an older verdict looking like its own."""
    for path in report_paths(out_dir).values():
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            continue
        except OSError as exc:
            raise InputError(
                f"cannot remove an earlier report ({exc.strerror})",
                where=str(path),
                hint="choose a writable `out_dir`",
            ) from exc


def write_failure_reports(out_dir: str | Path, error: str) -> dict[str, Path]:
    """Write ``report.md`` and ``junit.xml`` saying the gate did not finish (``error`` is why),
    so CI shows a failed run instead of no report or an earlier one. Best effort: a folder that
    cannot be written is skipped.

    Returns:
        The paths written, by kind (``md``, ``junit``).
    """
    import xml.etree.ElementTree as ET

    line = " ".join(error.split()) or "unknown error"
    paths = report_paths(out_dir)
    markdown = f"# optieval gate: ERROR\n\noptieval gate did not finish: {line}\n"
    suites = ET.Element("testsuites", name="optieval gate", tests="1", failures="0", errors="1")
    suite = ET.SubElement(
        suites, "testsuite", name="optieval.gate", tests="1", failures="0", errors="1"
    )
    suite.set("skipped", "0")
    case = ET.SubElement(suite, "testcase", classname="optieval.gate", name="gate", time="0")
    ET.SubElement(case, "error", message=line, type="ERROR").text = line
    junit = ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
    written: dict[str, Path] = {}
    for kind, text in (("md", markdown), ("junit", junit)):
        try:
            write_text_atomic(paths[kind], text)
        except (InputError, OSError):
            continue
        written[kind] = paths[kind]
    return written


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
