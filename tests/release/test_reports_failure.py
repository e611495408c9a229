"""Issue 18: earlier reports cleared, a failed run's reports say so."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from optieval.release.reports import REPORT_FILES, clear_reports, write_failure_reports


def test_clear_reports_removes_only_the_four_reports(tmp_path: Path) -> None:
    for name in REPORT_FILES.values():
        (tmp_path / name).write_text("old")
    (tmp_path / "model.onnx").write_text("keep")
    clear_reports(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_failure_reports_say_the_gate_did_not_finish(tmp_path: Path) -> None:
    written = write_failure_reports(tmp_path, "target[0]: <boom> &\nsecond line")
    assert set(written) == {"md", "junit"}
    md = (tmp_path / "report.md").read_text()
    assert "optieval gate did not finish: target[0]: <boom> & second line" in md
    case = next(ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    assert "<boom>" in (case.find("error").get("message") or "")  # type: ignore[union-attr]


def test_failure_reports_in_a_missing_folder_write_nothing(tmp_path: Path) -> None:
    assert write_failure_reports(tmp_path / "absent", "x") == {}
