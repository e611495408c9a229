"""The release config: the issue's example works as written; every bad config is one InputError
naming the key path, with the nearest valid key where there is one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optieval.errors import InputError
from optieval.release.config_loader import load_config
from tests.conftest import make_onnx_mlp
from tests.release.gate_helpers import write_data

ISSUE_EXAMPLE = """
[model]
path = "model.onnx"            # or: spec = "pkg.mod:factory"

[data]
calibration = "calib.npz"      # for int8 artifacts
evaluation = "eval.npz"        # inputs for parity, optionally with labels
labels = "labels"              # key of the labels in the evaluation file

[reference]
backend = "ort-cpu"
precision = "fp32"

[measure]                      # optional; defaults as in `optieval bench`
duration_s = 3.0
max_duration_s = 30.0

[[target]]
backend = "ort-cpu"
precision = "int8"
batch = 8                      # or a list: [1, 8, 32]
threads = 2
latency = { p99_ms_max = 40.0, throughput_min = 200.0 }
accuracy = { top1_agreement_min = 0.98, accuracy_drop_max = 0.01, cosine_min = 0.99 }

[baseline]                     # optional
report = "previous/report.json"
max_slowdown = 0.05
"""


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """The issue's example with every file it names, in its own folder."""
    folder = tmp_path / "release"
    folder.mkdir()
    make_onnx_mlp(folder / "model.onnx")
    data = write_data(folder)
    (folder / "calib.npz").write_bytes(data.read_bytes())
    (folder / "previous").mkdir()
    (folder / "previous" / "report.json").write_text("{}")
    return folder


def _config(folder: Path, text: str) -> Path:
    path = folder / "release.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_example_parses_and_resolves_paths_against_the_config_folder(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(release, ISSUE_EXAMPLE)
    monkeypatch.chdir(tmp_path)  # elsewhere: paths must not depend on the working folder
    config = load_config(os.path.relpath(path))
    assert config.model.path == release / "model.onnx"
    assert config.data.calibration == str(release / "calib.npz")
    assert config.data.evaluation == str(release / "eval.npz")
    assert config.data.labels == "labels"
    assert config.baseline is not None
    assert config.baseline.report == release / "previous" / "report.json"
    assert config.baseline.max_slowdown == 0.05
    assert config.baseline.interleave is None  # the default: when the model is at hand
    assert config.baseline.blocks == 3
    (target,) = config.targets
    assert (target.backend, target.precision, target.batches, target.threads) == (
        "ort-cpu", "int8", (8,), 2,
    )  # fmt: skip
    assert {b.key: b.limit for b in target.latency} == {"p99_ms_max": 40.0,
                                                        "throughput_min": 200.0}  # fmt: skip
    assert {b.key for b in target.accuracy} == {"top1_agreement_min", "accuracy_drop_max",
                                                "cosine_min"}  # fmt: skip
    assert target.gated_percentile == 99.0
    assert config.measure.duration_s == 3.0 and config.measure.max_duration_s == 30.0
    assert config.to_json()["targets"][0]["batch"] == [8]


def test_defaults_and_batch_lists(release: Path) -> None:
    config = load_config(
        _config(
            release,
            '[model]\npath = "model.onnx"\n[[target]]\nbackend = "ort-cpu"\nbatch = [1, 8, 32]\n'
            "latency = { p90_ms_max = 5 }\n",
        )
    )
    (target,) = config.targets
    assert target.precision == "fp32" and target.batches == (1, 8, 32)
    assert target.gated_percentile == 90.0
    assert config.reference.label == "ort-cpu:fp32"
    assert config.measure.isolate is True and config.baseline is None


def test_spec_model_with_inputs_dynamic_and_checkpoint(release: Path) -> None:
    (release / "w.pt").write_bytes(b"weights")
    (release / "net.py").write_text("def build():\n    pass\n")
    config = load_config(
        _config(
            release,
            '[model]\nspec = "net.py:build"\ninputs = ["x:2x4"]\ndynamic = ["batch"]\n'
            'checkpoint = "w.pt"\n[[target]]\nbackend = "ort-cpu"\n',
        )
    )
    assert config.model.spec == f"{release / 'net.py'}:build"
    assert config.model.inputs == ("x:2x4",) and config.model.dynamic == ("batch",)
    assert config.model.checkpoint == release / "w.pt"


def _error(folder: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        load_config(_config(folder, text))
    assert info.value.exit_code == 2
    return str(info.value)


MODEL = '[model]\npath = "model.onnx"\n'
TARGET = '[[target]]\nbackend = "ort-cpu"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unknown keys, with the nearest valid key
        (MODEL + TARGET + "[measure]\nduraton_s = 3\n", ["measure.duraton_s", "'duration_s'"]),
        (MODEL + TARGET + "[modle]\n", ["modle: unknown key", "'model'"]),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nlatency = { p99_ms_mx = 4 }\n',
            ["target[0].latency.p99_ms_mx", "'p99_ms_max'"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { top1_agrement_min = 0.9 }\n',
            ["target[0].accuracy.top1_agrement_min", "'top1_agreement_min'"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\np99_ms_max = 4\n',
            ["target[0].p99_ms_max", "belongs in latency"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nbatches = [1]\n',
            ["target[0].batches", "'batch'"],
        ),
        (MODEL.replace("path", "pth") + TARGET, ["model.pth", "'path'"]),
        (MODEL + '[[target]]\nbackend = "ort-gpu"\n', ["target[0].backend", "ort-gpu"]),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nprecision = "int4"\n',
            ["target[0].precision", "int4"],
        ),
        # wrong types
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nbatch = "8"\n',
            ["target[0].batch", "must be an integer"],
        ),
        (MODEL + '[[target]]\nbackend = "ort-cpu"\nthreads = 1.5\n', ["target[0].threads"]),
        (MODEL + '[[target]]\nbackend = "ort-cpu"\nbatch = [1, true]\n', ["target[0].batch[1]"]),
        (MODEL + '[[target]]\nbackend = "ort-cpu"\nlatency = 5\n', ["target[0].latency", "table"]),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nlatency = { p99_ms_max = "4" }\n',
            ["target[0].latency.p99_ms_max", "must be a number"],
        ),
        (
            MODEL + TARGET + '[measure]\nduration_s = "3"\n',
            ["measure.duration_s", "must be a number"],
        ),
        (MODEL + TARGET + '[measure]\nisolate = "yes"\n', ["measure.isolate"]),
        (MODEL + '[target]\nbackend = "ort-cpu"\n', ["target", "[[target]]"]),
        ("model = 3\n" + TARGET, ["model: must be a table"]),
        (MODEL + TARGET + "[baseline]\nreport = 5\n", ["baseline.report"]),
        # impossible values
        (MODEL + TARGET + "[measure]\nduration_s = -1\n", ["measure.duration_s", "impossible"]),
        (MODEL + TARGET + "[measure]\nwarmup_s = -0.5\n", ["measure.warmup_s", "negative"]),
        (
            MODEL + TARGET + "[measure]\nduration_s = 5\nmax_duration_s = 2\n",
            ["measure.max_duration_s", "shorter"],
        ),
        (MODEL + TARGET + "[measure]\nmin_samples = 0\n", ["measure.min_samples"]),
        (MODEL + '[[target]]\nbackend = "ort-cpu"\nbatch = 0\n', ["target[0].batch", "at least 1"]),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nlatency = { p99_ms_max = -4 }\n',
            ["target[0].latency.p99_ms_max", "impossible"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\nlatency = { throughput_min = -1 }\n',
            ["target[0].latency.throughput_min"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { top1_agreement_min = 1.5 }\n',
            ["target[0].accuracy.top1_agreement_min", "[0, 1]"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { flip_rate_max = 2 }\n',
            ["target[0].accuracy.flip_rate_max"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { cosine_min = 1.2 }\n',
            ["target[0].accuracy.cosine_min", "[-1, 1]"],
        ),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { max_abs_max = -1 }\n',
            ["target[0].accuracy.max_abs_max"],
        ),
        (
            MODEL + TARGET + '[baseline]\nreport = "model.onnx"\nmax_slowdown = 1.5\n',
            ["baseline.max_slowdown", "[0, 1)"],
        ),
        (
            MODEL + TARGET + '[baseline]\nreport = "model.onnx"\nmax_slowdown = -0.1\n',
            ["baseline.max_slowdown"],
        ),
        (
            MODEL + TARGET + '[baseline]\nreport = "model.onnx"\ninterleave = "yes"\n',
            ["baseline.interleave", "true or false"],
        ),
        (MODEL + TARGET + '[baseline]\nreport = "model.onnx"\nblocks = 1\n', ["baseline.blocks"]),
        (MODEL + TARGET + '[baseline]\nreport = "model.onnx"\nblocks = 64\n', ["over 32"]),
        # missing or inconsistent pieces
        (TARGET, ["missing section [model]"]),
        (MODEL, ["no [[target]]"]),
        ('[model]\npath = "model.onnx"\nspec = "a.b:c"\n' + TARGET, ["exactly one of path"]),
        ('[model]\npath = "missing.onnx"\n' + TARGET, ["model.path", "file not found"]),
        (
            '[model]\npath = "model.onnx"\ninputs = ["x:1x4"]\n' + TARGET,
            ["model.inputs", "only with spec"],
        ),
        (MODEL + TARGET + '[data]\nevaluation = "nope.npz"\n', ["data.evaluation", "not found"]),
        (MODEL + TARGET + '[data]\nlabels = "labels"\n', ["data.labels", "evaluation"]),
        (
            MODEL + '[[target]]\nbackend = "ort-cpu"\naccuracy = { accuracy_drop_max = 0.01 }\n',
            ["target[0].accuracy.accuracy_drop_max", "needs labels"],
        ),
        (MODEL + TARGET + TARGET, ["target[1]", "already target[0]"]),
        (MODEL + TARGET + "[baseline]\nmax_slowdown = 0.1\n", ["baseline.report", "missing"]),
        (
            MODEL + TARGET + '[baseline]\nreport = "old.json"\n',
            ["baseline.report", "file not found"],
        ),
        (MODEL + '[[target]]\nprecision = "fp16"\n', ["target[0].backend: missing"]),
    ],
)
def test_bad_configs_name_the_key_path(release: Path, text: str, expected: list[str]) -> None:
    message = _error(release, text)
    for part in expected:
        assert part in message, message


def test_every_problem_is_collected_and_raised_once(release: Path) -> None:
    message = _error(
        release,
        MODEL + '[[target]]\nbackend = "ort-cpu"\nbatch = 0\nlatency = { p99_ms_mx = 1 }\n'
        "[measure]\nduration_s = -2\n",
    )
    assert "3 problems" in message
    for part in ("target[0].batch", "target[0].latency.p99_ms_mx", "measure.duration_s"):
        assert part in message


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\npath = 1\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError):
        load_config(binary)


@pytest.mark.parametrize("name", ["demo.toml", "gpu.toml"])
def test_example_configs_are_valid(name: str) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    config = load_config(examples / name)
    assert config.targets and config.model.checkpoint is not None
    assert config.model.checkpoint.is_file()


def test_packaged_demo_config_is_valid() -> None:
    from optieval.assets import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    assert {t.precision for t in config.targets} == {"fp32", "fp16", "int8"}
