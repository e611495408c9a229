"""``optieval.gate`` end to end on the tiny MLP: PASS, FAIL, INCONCLUSIVE (fake backend with a
fixed latency distribution), baseline regressions, a refused model, an unusable backend, and the
reports."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree

import pytest

import optieval
from optieval.bench.results import Cell, load_baseline
from optieval.core.manifest import write_manifest
from optieval.errors import BackendUnavailable, InputError
from optieval.release.budgets import AccuracyBudget, Check, LatencyBudget
from optieval.release.gate_report import GateReport
from optieval.release.run import gate
from optieval.stats import Interval, clopper_pearson_interval
from optieval.stats.verdict import Verdict
from tests.release.gate_helpers import (
    GENEROUS,
    STRADDLING,
    STRADDLING_MEASURE,
    UNMEETABLE,
    CrashingBackend,
    FixedLatencyBackend,
    UnusableBackend,
    json_of,
    read,
    use_backend,
    write_config,
)


def test_gate_is_public_and_lazy() -> None:
    assert optieval.gate is gate


def test_generous_budgets_pass_and_every_report_is_written(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rel", GENEROUS)
    report = gate(config, out_dir=tmp_path / "out")
    assert report.verdict is Verdict.PASS, [c.evidence for c in report.checks]
    assert report.exit_code == 0
    keys = {c.key for c in report.checks}
    assert {"p99_ms_max", "throughput_min", "cold_start_ms_max", "memory_mb_max",
            "artifact_mb_max", "mean_ms_max", "p50_ms_max"} <= keys  # fmt: skip
    assert {"top1_agreement_min", "flip_rate_max", "cosine_min", "max_abs_max", "snr_db_min",
            "accuracy_drop_max", "accuracy_ratio_min"} <= keys  # fmt: skip
    # 7 latency budgets x 2 batches + 7 accuracy budgets on the one output
    assert len(report.checks) == 7 * 2 + 7
    point = {c.key: c.judgement.basis for c in report.checks}
    assert point["cold_start_ms_max"] == point["cosine_min"] == "point"
    assert point["p99_ms_max"] == point["flip_rate_max"] == point["accuracy_drop_max"] == "interval"
    for name in ("report.json", "report.md", "junit.xml", "report.html"):
        assert (tmp_path / "out" / name).is_file()
    data = json_of(tmp_path / "out" / "report.json")
    assert data["kind"] == "gate-report" and data["schema_version"] == 1
    assert data["verdict"] == "PASS" and data["exit_code"] == 0
    assert [c["batch"] for c in data["cells"]] == [1, 4]
    cell = data["cells"][0]
    for key in ("backend", "precision", "batch", "shapes", "status", "samples", "times_ms",
                "latency_ms", "ci95_ms", "throughput", "cold_start_ms", "memory",
                "artifact_bytes"):  # fmt: skip
        assert key in cell
    assert data["artifacts"][0]["precision"] == "fp32" and data["artifacts"][0]["sha256"]
    assert data["artifacts"][0]["census"]
    assert data["model"]["sha256"] and data["env"]
    # The report serves as a baseline (bench's reader), and round-trips.
    cells, env, _ = load_baseline(tmp_path / "out" / "report.json")
    assert len(cells) == 2 and env
    again = GateReport.from_json(data)
    assert again.verdict is Verdict.PASS and len(again.checks) == len(report.checks)
    assert again.checks[0].judgement == report.checks[0].judgement


def test_unmeetable_budget_fails(tmp_path: Path) -> None:
    report = gate(write_config(tmp_path / "rel", UNMEETABLE, data=False), out_dir=tmp_path / "o")
    assert report.verdict is Verdict.FAIL and report.exit_code == 1
    failed = [c for c in report.checks if c.verdict is Verdict.FAIL]
    assert [c.key for c in failed] == ["p50_ms_max"]
    assert "budget <= 1e-06" in failed[0].evidence
    suite = ElementTree.parse(tmp_path / "o" / "junit.xml").getroot()
    assert suite.get("failures") == "1" and suite.get("tests") == "2"
    (failure,) = suite.iter("failure")
    assert "p50_ms" in (failure.get("message") or "")
    assert "p50_ms_max" in read(tmp_path / "o" / "report.md")


def test_straddling_latency_is_inconclusive_after_measuring_longer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(monkeypatch, "ort-cpu", FixedLatencyBackend)
    config = write_config(tmp_path / "rel", STRADDLING, data=False, measure=STRADDLING_MEASURE)
    report = gate(config, out_dir=tmp_path / "o")
    (check,) = report.checks
    assert check.verdict is Verdict.INCONCLUSIVE, check.evidence
    assert check.judgement.low is not None and check.judgement.low < 25.5
    # On a busy machine the sleeps' jitter may leave too few independent samples for an upper
    # bound at all; either way nothing decides it.
    assert check.judgement.high is None or check.judgement.high > 25.5
    assert check.advice
    assert "the bounds straddle the budget" in check.evidence or "no upper bound" in check.evidence
    assert "undecided after look 3 of 3" in check.evidence, check.evidence
    assert check.decision is not None and check.decision["stopped_early"] is False
    assert report.verdict is Verdict.INCONCLUSIVE and report.exit_code == 1
    (cell,) = report.cells
    # Looks at 0.2 s, 0.8 s and 1 s (the cap, max_duration_s), each adding samples to the
    # earlier ones: still straddling, so it stops.
    assert any("look 3 of 3: added" in note for note in cell.notes), cell.notes
    assert cell.samples >= 299
    (failure,) = ElementTree.parse(tmp_path / "o" / "junit.xml").getroot().iter("failure")
    assert failure.get("type") == "INCONCLUSIVE"

    allowed = gate(config, out_dir=tmp_path / "o2", allow_inconclusive=True)
    assert allowed.verdict is Verdict.INCONCLUSIVE and allowed.exit_code == 0
    root = ElementTree.parse(tmp_path / "o2" / "junit.xml").getroot()
    assert root.get("failures") == "0" and root.get("skipped") == "1"


def _shifted_baseline(report_json: Path, factor: float, dest: Path) -> Path:
    data = json.loads(report_json.read_text())
    for cell in data["cells"]:
        cell["times_ms"] = [t * factor for t in cell["times_ms"]]
    dest.write_text(json.dumps(data))
    return dest


def test_baseline_regressions(tmp_path: Path) -> None:
    first = gate(write_config(tmp_path / "rel", UNMEETABLE, data=False), out_dir=tmp_path / "a")
    report_json = Path(first.reports["json"])
    _shifted_baseline(report_json, 0.01, tmp_path / "rel" / "fast.json")
    _shifted_baseline(report_json, 100.0, tmp_path / "rel" / "slow.json")

    targets = UNMEETABLE.replace("p50_ms_max = 0.000001, ", "")
    slower = gate(
        write_config(tmp_path / "rel", targets, data=False,
                     extra='[baseline]\nreport = "fast.json"\nmax_slowdown = 0.05\n'
                           "interleave = false\n"),
        out_dir=tmp_path / "b",
    )  # fmt: skip
    (regression,) = [c for c in slower.checks if c.group == "baseline"]
    assert regression.verdict is Verdict.FAIL and "slower" in regression.evidence
    assert slower.exit_code == 1 and slower.baseline is not None

    faster = gate(
        write_config(tmp_path / "rel", targets, data=False,
                     extra='[baseline]\nreport = "slow.json"\ninterleave = false\n'),
        out_dir=tmp_path / "c",
    )  # fmt: skip
    (improvement,) = [c for c in faster.checks if c.group == "baseline"]
    assert improvement.verdict is Verdict.PASS and "faster" in improvement.evidence
    assert faster.exit_code == 0
    assert faster.baseline is not None and faster.baseline["interleaved"] is False


def test_baseline_model_at_hand_is_measured_again_beside(tmp_path: Path) -> None:
    from optieval.stats import INTERLEAVED_METHOD

    first = gate(write_config(tmp_path / "rel", UNMEETABLE, data=False), out_dir=tmp_path / "a")
    # The recorded samples say the baseline was 100x faster; measured again beside this model
    # (the same file), it is not.
    _shifted_baseline(Path(first.reports["json"]), 0.01, tmp_path / "rel" / "fast.json")
    targets = UNMEETABLE.replace("p50_ms_max = 0.000001, ", "")
    report = gate(
        write_config(tmp_path / "rel", targets, data=False,
                     extra='[baseline]\nreport = "fast.json"\nmax_slowdown = 0.5\n'),
        out_dir=tmp_path / "b",
    )  # fmt: skip
    assert report.baseline is not None and report.baseline["interleaved"] is True
    assert "measuring the baseline's model mlp.onnx again" in report.baseline["how"]
    (regression,) = [c for c in report.checks if c.group == "baseline"]
    assert regression.verdict is not Verdict.FAIL, regression.evidence
    (cell,) = report.baseline["cells"]
    assert cell["ratio"]["method"] == INTERLEAVED_METHOD and cell["ratio"]["blocks_new"] == 3

    (tmp_path / "rel" / "mlp.onnx").unlink()
    extra = '[baseline]\nreport = "fast.json"\ninterleave = true\n'
    config = write_config(tmp_path / "rel", targets, data=False, model_name="other.onnx",
                          extra=extra)  # fmt: skip
    with pytest.raises(InputError, match="cannot interleave") as info:
        gate(config, out_dir=tmp_path / "c")
    assert info.value.where == "baseline.interleave"


def test_baseline_without_a_shared_cell_is_bad_input(tmp_path: Path) -> None:
    first = gate(write_config(tmp_path / "rel", UNMEETABLE, data=False), out_dir=tmp_path / "a")
    data = json.loads(Path(first.reports["json"]).read_text())
    for cell in data["cells"]:
        cell["batch"] = 64
    (tmp_path / "rel" / "other.json").write_text(json.dumps(data))
    config = write_config(tmp_path / "rel", UNMEETABLE, data=False,
                          extra='[baseline]\nreport = "other.json"\n')  # fmt: skip
    with pytest.raises(InputError, match="shares no cell") as info:
        gate(config, out_dir=tmp_path / "b")
    assert info.value.where == "baseline.report"


def test_model_whose_export_parity_failed_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rel", GENEROUS)
    write_manifest(tmp_path / "rel" / "mlp.onnx", {"parity": {"passed": False}})
    report = gate(config, out_dir=tmp_path / "o")
    (check,) = report.checks
    assert check.key == "export_parity" and check.verdict is Verdict.FAIL
    assert "refused" in check.evidence
    assert report.exit_code == 1 and report.cells == ()
    assert (tmp_path / "o" / "report.html").is_file()


def test_unusable_target_backend_is_exit_3_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(monkeypatch, "ort-cuda", UnusableBackend)
    config = write_config(tmp_path / "rel", UNMEETABLE.replace("ort-cpu", "ort-cuda"), data=False)
    with pytest.raises(BackendUnavailable, match="ort-cuda \\(needed by target\\[0\\]\\)") as info:
        gate(config, out_dir=tmp_path / "o")
    assert info.value.exit_code == 3
    assert not (tmp_path / "o" / "report.json").exists()


def test_crashed_cell_is_exit_3_even_without_latency_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(monkeypatch, "ort-cpu", CrashingBackend)
    targets = '[[target]]\nbackend = "ort-cpu"\nbatch = 2\n'
    report = gate(write_config(tmp_path / "rel", targets, data=False), out_dir=tmp_path / "o")
    (check,) = report.checks
    assert check.error and check.verdict is Verdict.FAIL
    assert "simulated crash" in check.evidence
    assert report.exit_code == 3
    (error,) = ElementTree.parse(tmp_path / "o" / "junit.xml").getroot().iter("error")
    assert "simulated crash" in (error.get("message") or "")


def test_no_budgets_passes_with_a_warning(tmp_path: Path) -> None:
    targets = '[[target]]\nbackend = "ort-cpu"\n'
    report = gate(write_config(tmp_path / "rel", targets, data=False), out_dir=tmp_path / "o")
    assert report.verdict is Verdict.PASS and report.checks == ()
    assert any("nothing was checked" in w for w in report.warnings)


def test_accuracy_budget_on_a_model_without_that_metric_is_bad_input(tmp_path: Path) -> None:
    targets = '[[target]]\nbackend = "ort-cpu"\naccuracy = { top1_agreement_min = 0.9 }\n'
    config = write_config(tmp_path / "rel", targets, data=False)
    # The MLP's logits are (batch x 3): replace them with a model of one output column.
    from tests.conftest import make_onnx_mlp

    make_onnx_mlp(tmp_path / "rel" / "mlp.onnx", classes=1)
    with pytest.raises(InputError, match="no output of the model has top1_agreement") as info:
        gate(config, out_dir=tmp_path / "o")
    assert info.value.where == "target[0].accuracy.top1_agreement_min"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_parses_and_escapes_a_hostile_model_name(tmp_path: Path) -> None:
    name = '<img src=x onerror="alert(1)">&<script>alert(2).onnx'
    config = write_config(tmp_path / "rel", GENEROUS, model_name=name)
    report = gate(config, out_dir=tmp_path / "o")
    page = read(tmp_path / "o" / "report.html")
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert "script" not in parser.tags and "img" not in parser.tags
    assert name in "".join(parser.text)  # shown, as text
    assert parser.tags.count("svg") >= len(report.cells) + 2  # per-cell + batch + accuracy
    assert "PASS" in page.split("<h2>", 1)[0]  # the verdict is at the top
    for title in ("Latency distribution per cell", "Latency against batch",
                  "Accuracy against latency"):  # fmt: skip
        assert title in page
    # The Markdown table is not broken by the name either.
    markdown = read(tmp_path / "o" / "report.md")
    assert "<script>" in markdown.split("\n")[2]  # in a code span, where GitHub shows it as text
    ElementTree.parse(tmp_path / "o" / "junit.xml")  # well-formed


# -- budgets on synthetic results -----------------------------------------------------------------


def _cell(times: list[float], **extra: Any) -> Cell:
    return Cell("ort-cpu", "fp32", 1, {"x": [1, 4]}, "ok", samples=len(times),
                times_ms=times, **extra)  # fmt: skip


def test_latency_budget_without_enough_samples_is_inconclusive_and_says_how_many() -> None:
    check = LatencyBudget("p99_ms_max", 10.0).check(_cell([1.0] * 50))
    assert check.verdict is Verdict.INCONCLUSIVE
    assert check.advice == "about 368 samples (now 50) would likely decide it"


def test_point_metrics_and_missing_ones() -> None:
    cell = _cell([1.0] * 10, cold_start_ms=5.0, artifact_bytes=3 * 2**20)
    assert LatencyBudget("cold_start_ms_max", 4.0).check(cell).verdict is Verdict.FAIL
    assert LatencyBudget("artifact_mb_max", 3.0).check(cell).verdict is Verdict.PASS
    missing = LatencyBudget("memory_mb_max", 3.0).check(cell)
    assert missing.verdict is Verdict.INCONCLUSIVE and "not measured" in missing.evidence
    broken = Cell("ort-cpu", "fp32", 1, {}, "error", reason="segfault")
    failed = LatencyBudget("p99_ms_max", 3.0).check(broken)
    assert failed.verdict is Verdict.FAIL and failed.error and "segfault" in failed.evidence


def _output(**metrics: Any) -> Any:
    base = {"name": "logits", "max_abs": 0.1, "cosine": 0.999, "snr_db": 40.0,
            "flip_rate": None, "flip_rate_ci": None, "top1_agreement": None,
            "accuracy_delta": None, "accuracy_delta_ci": None, "accuracy_ratio": None,
            "accuracy_ratio_ci": None}  # fmt: skip
    base.update(metrics)
    return SimpleNamespace(**base)


def test_accuracy_inconclusive_says_how_much_more_evaluation_data_would_decide() -> None:
    out = _output(accuracy_delta=-0.01, accuracy_delta_ci=Interval(-0.03, 0.01))
    check = AccuracyBudget("accuracy_drop_max", 0.02).check(out, candidate="ort-cpu:int8",
                                                            samples=200)  # fmt: skip
    assert check.verdict is Verdict.INCONCLUSIVE
    assert check.judgement.low == pytest.approx(-0.01) and check.judgement.high == 0.03
    # half width 0.02, distance to the budget 0.01: (0.02 / 0.01)^2 * 200 = 800
    assert check.advice == "about 800 evaluation samples (now 200) would likely decide it"
    clear = AccuracyBudget("accuracy_drop_max", 0.05).check(out, candidate="c", samples=200)
    assert clear.verdict is Verdict.PASS


def test_top1_agreement_interval_comes_from_the_flip_rate() -> None:
    out = _output(flip_rate=0.02, flip_rate_ci=Interval(0.01, 0.04), top1_agreement=0.98)
    check = AccuracyBudget("top1_agreement_min", 0.95).check(out, candidate="c", samples=500)
    assert check.verdict is Verdict.PASS
    # The gate decides on the Clopper-Pearson interval of 10 flips in 500, not the reported one.
    cp = clopper_pearson_interval(10, 500)
    assert (check.judgement.low, check.judgement.high) == pytest.approx((1 - cp.high, 1 - cp.low))
    assert (
        AccuracyBudget("flip_rate_max", 0.005).check(out, candidate="c", samples=500).verdict
        is Verdict.FAIL
    )


def test_check_json_round_trip_keeps_infinite_snr() -> None:
    check = AccuracyBudget("snr_db_min", 20.0).check(_output(snr_db=float("inf")),
                                                     candidate="c", samples=10)  # fmt: skip
    data = json.loads(json.dumps(check.to_json(), allow_nan=False))
    assert Check.from_json(data).judgement.value == float("inf")


def test_gate_report_refuses_another_schema_version(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="schema_version 99"):
        GateReport.from_json({"kind": "gate-report", "schema_version": 99})
    with pytest.raises(InputError, match="not a gate report"):
        GateReport.from_json({"kind": "bench", "schema_version": 1})
