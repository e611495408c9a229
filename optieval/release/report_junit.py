"""``junit.xml``: one test case per check (Jenkins, GitLab and GitHub read it). ElementTree
escapes every user-supplied string."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from optieval.stats import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from optieval.release.gate_report import GateReport

__all__ = ["render_junit"]


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
