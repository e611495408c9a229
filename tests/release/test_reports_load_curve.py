"""The HTML report's latency-against-throughput curve for load-scenario cells."""

from html.parser import HTMLParser

from optieval.bench.results import Cell
from optieval.release.report_plots import latency_vs_throughput


def _cell(concurrency: int, items: float, p99: float, precision: str = "fp32") -> Cell:
    return Cell(
        "ort-cpu",
        precision,
        1,
        {"x": [1, 4]},
        "ok",
        samples=3,
        times_ms=[1.0, 1.0, 1.0],
        latency_ms={"p50": p99 / 2, "p99": p99},
        throughput={"items_per_s": items},
        scenario="concurrency",
        scenario_params={"concurrency": concurrency},
    )


def test_one_curve_per_cell_label_with_a_point_per_setting() -> None:
    svg = latency_vs_throughput([_cell(1, 100, 2.0), _cell(4, 350, 9.0), _cell(2, 190, 4.0)])
    assert svg is not None
    assert svg.count("<polyline") == 1
    assert svg.count("<title>ort-cpu:fp32 b1 concurrency=") == 3
    HTMLParser().feed(svg)  # well-formed enough to parse


def test_single_stream_cells_draw_nothing() -> None:
    plain = Cell(
        "ort-cpu",
        "fp32",
        1,
        {},
        "ok",
        samples=1,
        times_ms=[1.0],
        latency_ms={"p50": 1.0, "p99": 1.0},
        throughput={"items_per_s": 1000.0},
    )
    assert latency_vs_throughput([plain]) is None
