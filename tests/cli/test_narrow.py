"""Issue 18, item 10: at 80 columns the bench table keeps every number whole (intervals go on
a second line, columns fold), where rich alone cut them (``[11.…``)."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from optieval.bench import BenchReport, Cell
from optieval.cli.render.bench import bench_table


def _report() -> BenchReport:
    cells = []
    for backend, batch, base in (("ort-cpu", 1, 11.234), ("ort-cuda", 32, 123.456)):
        cells.append(Cell.from_json({
            "backend": backend, "precision": "int8", "batch": batch, "status": "ok",
            "shapes": {"input_ids": [batch, 128], "attention_mask": [batch, 128]},
            "samples": 12345,
            "latency_ms": {"p50": base, "p90": base * 1.1, "p99": base * 1.3, "mean": base},
            "ci95_ms": {"p50": [base * 0.99, base * 1.01], "p90": [base * 1.09, base * 1.11],
                        "p99": [base * 1.25, base * 1.38]},
            "throughput": {"items_per_s": 1000.0 * batch / base},
            "cold_start_ms": 1234.5,
        }))  # fmt: skip
    return BenchReport(env={}, model={"path": "minilm.onnx"}, settings={}, results=tuple(cells))


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*\.?\d*", text)


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_no_number_is_cut_at_any_width(width: int) -> None:
    report = _report()
    console = Console(width=width, record=True, color_system=None)
    console.print(bench_table(report))
    text = console.export_text()
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    wide = Console(width=400, record=True, color_system=None)
    wide.print(bench_table(report))
    # every number of the unconstrained table is printed whole at this width too, and no
    # piece of one (the cell column repeats when the table is split in two)
    assert set(_numbers(text)) == set(_numbers(wide.export_text()))
    for needle in ("[11.1, 11.3]", "[154.3, 170.4]", "ort-cuda:int8 b32", "input_ids:1x128",
                   "attention_mask:32x128"):  # fmt: skip
        assert needle in text or needle.replace(", ", ",\n") in text
