"""Issue 18, item 8: ``optieval show FILE`` renders a bench JSON, compare JSON or gate report
as the table that produced it; ``optieval diff OLD NEW`` pairs two of them (cells with the
ratio of medians and its interval, checks whose verdict changed, environment differences) on
the terminal, as JSON and as Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.cli import app
from tests.release.gate_helpers import GENEROUS, write_config

runner = CliRunner()

FAST = ["--warmup", "0", "--duration", "0.05", "--min-samples", "60", "--no-isolate"]


def _bench(model: Path, out: Path) -> str:
    result = runner.invoke(app, ["bench", str(model), *FAST, "--batch", "1,2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    return result.stdout


def _table(text: str) -> list[str]:
    """The table lines (rich box drawing) of a command's stdout."""
    return [line.rstrip() for line in text.splitlines() if line[:1] in "┏┃┡│└"]


@pytest.fixture(scope="module")
def benches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    from tests.conftest import make_onnx_mlp

    folder = tmp_path_factory.mktemp("benches")
    model = make_onnx_mlp(folder / "mlp.onnx")
    stdout = _bench(model, folder / "old.json")
    _bench(model, folder / "new.json")
    return folder / "old.json", folder / "new.json", stdout


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("gates")
    config = write_config(folder, GENEROUS)
    first = runner.invoke(app, ["gate", str(config), "--out", str(folder / "pass")])
    assert first.exit_code == 0, first.output
    config.write_text(config.read_text().replace("latency.p50_ms_max = 1000.0",
                                                 "latency.p50_ms_max = 0.000001"))  # fmt: skip
    second = runner.invoke(app, ["gate", str(config), "--out", str(folder / "fail")])
    assert second.exit_code == 1, second.output
    return folder / "pass", folder / "fail", first.stdout


def test_show_bench_json_prints_the_bench_table(benches: tuple[Path, Path, str]) -> None:
    old, _, bench_stdout = benches
    shown = runner.invoke(app, ["show", str(old)])
    assert shown.exit_code == 0, shown.output
    assert _table(shown.stdout) == _table(bench_stdout)
    assert "bench JSON" in shown.stdout


def test_show_gate_report_prints_the_gate_table_and_verdict(
    gates: tuple[Path, Path, str],
) -> None:
    passed, _, gate_stdout = gates
    for target in (passed, passed / "report.json"):
        shown = runner.invoke(app, ["show", str(target)])
        assert shown.exit_code == 0, shown.output
        assert _table(shown.stdout) == _table(gate_stdout)
        assert "PASS: " in shown.stdout and "(exit 0)" in shown.stdout


def test_show_compare_json(mlp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    compared = runner.invoke(app, ["compare", str(mlp_onnx), "--candidate", "ort-cpu:fp16",
                                   "--samples", "16", "--json", str(out)])  # fmt: skip
    assert compared.exit_code == 0, compared.output
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert _table(shown.stdout) == _table(compared.stdout)
    assert "ort-cpu:fp16" in shown.stdout


def test_diff_bench_pairs_cells_with_ratio_interval_and_env(
    benches: tuple[Path, Path, str], tmp_path: Path
) -> None:
    old, new, _ = benches
    data = json.loads(new.read_text())
    data["env"].setdefault("versions", {})["onnxruntime"] = "99.0-test"
    del data["results"][1]["times_ms"]  # a file without samples: no interval, said so
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    result = runner.invoke(app, ["diff", str(old), str(edited), "--json", "-"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["kind"] == "diff"
    (cell,) = out["cells"]["cells"]
    ratio = cell["ratio"]
    low, high = ratio["ci"]
    assert low <= ratio["ratio"] <= high and ratio["n_new"] >= 60
    assert cell["verdict"] in ("slower", "faster", "no significant change", "possible regression")
    (point,) = out["point_ratios"]
    assert "no times_ms" in point["no_interval"] and point["ratio"] > 0
    env = {e["key"]: e for e in out["env"]}
    assert env["versions.onnxruntime"]["new"] == "99.0-test"
    assert env["versions.onnxruntime"]["old"] != "99.0-test"


def test_diff_gate_reports_names_checks_whose_verdict_changed(
    gates: tuple[Path, Path, str], tmp_path: Path
) -> None:
    passed, failed, _ = gates
    md = tmp_path / "diff.md"
    result = runner.invoke(app, ["diff", str(passed), str(failed), "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    assert "checks whose verdict changed" in result.stdout
    text = md.read_text()
    rows = [line for line in text.splitlines() if "p50_ms_max" in line]
    assert rows and all("| PASS | FAIL |" in row for row in rows)
    assert all("≤ 1000 -> ≤ 1e-06 |" in row for row in rows)  # the budget that changed
    assert "p99_ms_max" not in text  # unchanged checks are only counted
    assert "| cell | old p50 ms | new p50 ms | new/old | interval | verdict |" in text


@pytest.mark.parametrize("content", [None, "not json", '{"kind": "something-else"}', "[1, 2]"])
def test_unreadable_file_is_one_line_exit_2(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    for argv in (["show", str(path)], ["diff", str(path), str(path)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in result.output


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_file_that_cannot_be_read_is_one_line_exit_2() -> None:
    result = runner.invoke(app, ["show", "/proc/self/mem"])  # exists, read() fails (EIO)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot read it" in lines[0]


def test_inspect_of_a_result_points_to_show(benches: tuple[Path, Path, str]) -> None:
    result = runner.invoke(app, ["inspect", str(benches[0])])
    assert result.exit_code == 2
    assert "optieval show" in result.output


def test_show_and_diff_detection_compare_json(tmp_path: Path) -> None:
    from optieval.assets import DETECTOR_DATA, DETECTOR_ONNX

    out = tmp_path / "det.json"
    compared = runner.invoke(app, [
        "compare", str(DETECTOR_ONNX), "--task", "detection", "-c", "ort-cpu:fp16",
        "--data", str(DETECTOR_DATA), "--samples", "16", "--boxes-output", "boxes",
        "--scores-output", "scores", "--box-format", "xyxy", "--json", str(out),
    ])  # fmt: skip
    assert compared.exit_code == 0, compared.output
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert _table(shown.stdout) == _table(compared.stdout)
    assert "detection compare JSON" in shown.stdout
    same = runner.invoke(app, ["diff", str(out), str(out), "--json", "-"])
    assert same.exit_code == 0, same.output
    data = json.loads(same.stdout)
    assert data["checks_changed"] == [] and data["checks_unchanged"] >= 1
    assert data["cells"] is None and "no bench cells" in data["cells_note"]
