"""Load scenarios through ``optieval bench`` and the bench JSON: bad input exits 2 naming the
option, a backend that cannot run a scenario says which and why, and one short real ONNX Runtime
cell per scenario runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optieval.bench import (
    BenchReport,
    MeasureSettings,
    ScenarioSpec,
    check_scenario_support,
    parse_rate_list,
    run_scenario,
    scenario_specs,
)
from optieval.cli import app
from optieval.errors import InputError
from tests.bench.scenario_fakes import FEEDS, GilHoldingBackend

runner = CliRunner()

_FAST = [
    "--no-isolate",
    "--warmup",
    "0.02",
    "--warmup-iters",
    "2",
    "--duration",
    "0.2",
    "--max-duration",
    "3",
    "--threads",
    "1",
]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--scenario", "server", "--qps", "0"], "--qps"),
        (["--scenario", "server", "--qps", "100,-3"], "--qps"),
        (["--scenario", "server", "--qps", "fast"], "--qps"),
        (["--scenario", "concurrency", "--concurrency", "0"], "--concurrency"),
        (["--scenario", "offline", "--streams", "-1"], "--streams"),
        (["--scenario", "server", "--find-max-qps"], "--p99-ms-max"),
        (["--scenario", "server", "--find-max-qps", "--p99-ms-max", "0"], "--p99-ms-max"),
        (["--scenario", "server"], "--qps"),
        (["--scenario", "warp"], "--scenario"),
        (["--scenario", "offline", "--idle-ms", "5"], "--idle-ms"),
        (["--idle-ms", "-1"], "--idle-ms"),
        (["--scenario", "concurrency", "--qps", "10"], "--qps"),
    ],
)
def test_bad_scenario_options_exit_2_naming_the_option(
    mlp_onnx: Path, args: list[str], option: str
) -> None:
    result = runner.invoke(app, ["bench", str(mlp_onnx), *args])
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output


def test_a_backend_holding_the_gil_cannot_run_parallel_scenarios() -> None:
    for kind, extra in (("offline", {}), ("concurrency", {}), ("server", {"qps": 10.0})):
        spec = ScenarioSpec(kind, **extra)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="holds Python's GIL") as info:
            check_scenario_support(GilHoldingBackend, spec)
        assert info.value.where == "scenario"
        assert "fake-gil" in str(info.value)
        with pytest.raises(InputError, match="cannot run the"):
            run_scenario(GilHoldingBackend, FEEDS, spec, MeasureSettings(duration_s=0.1))
    check_scenario_support(GilHoldingBackend, ScenarioSpec())  # single-stream is fine
    for name in ("ort-cpu", "tensorrt", "torch-cpu"):
        check_scenario_support(name, ScenarioSpec("server", qps=10.0))


def test_scenario_specs_expand_one_cell_per_level() -> None:
    specs = scenario_specs("concurrency", concurrency=[1, 2, 4])
    assert [s.concurrency for s in specs] == [1, 2, 4]
    assert [s.qps for s in scenario_specs("server", qps=[100.0, 200.0])] == [100.0, 200.0]
    (search,) = scenario_specs(None, find_max_qps=True, p99_ms_max=5.0, qps=[50.0])
    assert search.kind == "server" and search.qps == 50.0 and search.find_max_qps
    assert parse_rate_list(["100,250.5", "7"]) == [100.0, 250.5, 7.0]
    assert ScenarioSpec.from_json(search.to_json()) == search


def test_real_ort_scenarios_end_to_end(mlp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        [
            "bench",
            str(mlp_onnx),
            *_FAST,
            "--scenario",
            "concurrency",
            "--concurrency",
            "1,2",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "concurrency n=2" in result.output
    report = BenchReport.from_json(json.loads(out.read_text()))
    assert [c.scenario_params["concurrency"] for c in report.results] == [1, 2]  # type: ignore[index]
    for cell in report.results:
        assert cell.status == "ok" and cell.scenario == "concurrency"
        assert cell.throughput and cell.throughput["items_per_s"] > 0
        assert cell.samples == len(cell.times_ms) and cell.ci95_ms is not None

    out = tmp_path / "server.json"
    result = runner.invoke(
        app,
        [
            "bench",
            str(mlp_onnx),
            *_FAST,
            "--scenario",
            "server",
            "--qps",
            "400",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    (cell,) = json.loads(out.read_text())["results"]
    assert cell["scenario"] == "server" and cell["scenario_params"]["qps"] == 400.0
    lag = cell["issue_lag_ms"]
    assert {"p50", "p99", "max", "valid", "reason"} <= set(lag)
    assert cell["samples"] >= 299  # the schedule holds enough queries for a p99 interval
    assert cell["search"] is None


def test_default_cells_say_single_stream(mlp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.json"
    result = runner.invoke(app, ["bench", str(mlp_onnx), *_FAST, "--json", str(out)])
    assert result.exit_code == 0, result.output
    (cell,) = json.loads(out.read_text())["results"]
    assert cell["scenario"] == "single-stream"
    assert cell["scenario_params"] == {"concurrency": 1, "qps": None, "idle_ms": 0.0}
    assert cell["issue_lag_ms"] is None and cell["search"] is None
    assert "load scenarios" not in result.output
