"""scripts/gpu_check.py in its dry run: everything but the device, on the CPU, from the source
tree with PYTHONPATH=. (as on a bare GPU machine), writing its one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_writes_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": "."}
    done = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--dry-run", "--iters", "2", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(out.read_text())
    assert summary["schema"] == "optieval-gpu-check/1" and summary["dry_run"] is True
    assert summary["problems"] == []
    assert "gpus" in summary["environment"]["fingerprint"]
    assert "gpu_state_before" in summary["environment"]
    for name in ("resnet50", "encoder"):
        leg = summary["models"][name]
        fp32 = leg["fp32"]
        assert fp32["bare_event_p50_ms"] > 0 and fp32["optieval_event_p50_ms"] > 0
        assert fp32["ratio_optieval_to_bare"] > 0 and fp32["optieval_samples"] == 2
        assert leg["fp16_speedup"] > 0
        # the "fp16" leg (bf16 on the CPU) is close to fp32, and not identical
        assert 0 < leg["fp16_parity"]["max_abs"] < 0.5 and leg["fp16_parity"]["cosine"] > 0.99
        ort = summary["onnx"][name]["ort-cpu"]
        assert ort["parity_vs_torch_fp32"]["max_abs"] < 1e-3 and ort["host_p50_ms"] > 0
    assert f"wrote {out}" in done.stdout
