"""Reading and validating a release config (:func:`load_config`) into the frozen data of
:mod:`optieval.release.config`.

Every problem (unknown key, wrong type, impossible value, missing file) is collected and raised
once as :class:`InputError` (exit 2), each naming its TOML key path
(``target[1].latency.p99_ms_mx``) and, for unknown keys, the nearest valid key.

Why this module is long: it is the config's one validator, every key's rule and message in
one place next to the validator that collects them; split, each part would need its private
helpers.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.core import BACKEND_NAMES, ONNX_PRECISIONS
from optieval.detection import DETECTION_BUDGET_KEYS
from optieval.errors import InputError
from optieval.release.budgets import (
    ACCURACY_KEYS,
    LABEL_KEYS,
    LATENCY_KEYS,
    PERCENTILE_KEYS,
    LatencyBudget,
)
from optieval.release.config import (
    BASELINE_KEYS,
    DATA_KEYS,
    MEASURE_KEYS,
    MODEL_KEYS,
    REFERENCE_KEYS,
    SECTIONS,
    TARGET_KEYS,
    TARGET_SCENARIOS,
    BaselineConfig,
    DataConfig,
    GateConfig,
    MeasureConfig,
    ModelConfig,
    ReferenceConfig,
    TargetConfig,
)
from optieval.release.outputs_config import parse_outputs_section
from optieval.release.sample_checks import accuracy_budget
from optieval.release.target_shapes import parse_shape_sets

if TYPE_CHECKING:
    from optieval.detection import DetectionTask

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["GROUND_TRUTH_KEYS", "load_config", "parse_config"]


# For the "did you mean" of an unknown key: every key the config knows, with its path.
_ALL_KEYS: dict[str, tuple[str, ...]] = {
    "": SECTIONS,
    "model": MODEL_KEYS,
    "data": DATA_KEYS,
    "reference": REFERENCE_KEYS,
    "measure": MEASURE_KEYS,
    "target": TARGET_KEYS,
    "latency": tuple(LATENCY_KEYS),
    "accuracy": (*ACCURACY_KEYS, *DETECTION_BUDGET_KEYS),
    "baseline": BASELINE_KEYS,
}


def load_config(path: str | Path) -> GateConfig:
    """Read and validate a release config.

    Args:
        path: the TOML file; relative paths inside it resolve against its folder.

    Returns:
        A :class:`GateConfig`.

    Raises:
        InputError: a missing or malformed file, or any problem in it (all collected; each
            names its key path and, for an unknown key, the nearest valid one). Exit 2.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise InputError("config file not found", where=str(source),
                         hint="pass the path of a release .toml")  # fmt: skip
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", where=str(source)) from exc
    except UnicodeDecodeError as exc:
        raise InputError("not a UTF-8 text file", where=str(source)) from exc
    return parse_config(data, source=source.resolve())


def parse_config(data: Mapping[str, Any], *, source: Path) -> GateConfig:
    """Validate already-parsed TOML ``data`` as if read from ``source`` (see
    :func:`load_config`)."""
    v = _Validator(source.parent)
    v.unknown(data, "", SECTIONS)
    model = _model(v, v.table(data, "model", required=True))
    task = _task(v, v.table(data, "task"))
    data_cfg = _data(v, v.table(data, "data"))
    reference = _reference(v, v.table(data, "reference"))
    measure = _measure(v, v.table(data, "measure"))
    targets = _targets(v, data.get("target"), data_cfg, task)
    baseline = _baseline(v, data.get("baseline"))
    kinds, problems = parse_outputs_section(v.table(data, "outputs"), detection=task is not None)
    v.problems.extend(problems)
    v.raise_if_any(str(source))
    return GateConfig(source, model, tuple(targets), data_cfg, reference, measure, baseline, task,
                      output_kinds=kinds)  # fmt: skip


class _Validator:
    """Collects every problem with its key path; raises once."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def add(self, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(f"{path}: {message}" + (f" (hint: {hint})" if hint else ""))

    def raise_if_any(self, where: str) -> None:
        if not self.problems:
            return
        count = len(self.problems)
        head = "bad config" if count == 1 else f"bad config ({count} problems)"
        raise InputError(f"{head}: " + "; ".join(self.problems), where=where,
                         hint="docs/reference/release-toml.md lists every key")  # fmt: skip

    def unknown(self, table: Mapping[str, Any], path: str, valid: tuple[str, ...]) -> None:
        for key in table:
            if key in valid:
                continue
            where = f"{path}.{key}" if path else key
            home = [s for s, keys in _ALL_KEYS.items() if key in keys and s]
            hint = (
                f"{key} belongs in {home[0]}"
                + (" = { ... }" if home[0] in ("latency", "accuracy") else "")
                if home
                else _suggest(key, valid)
            )
            self.add(where, "unknown key", hint)

    def table(self, data: Mapping[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.add(key, f"missing section [{key}]")
            return {}
        if not isinstance(value, dict):
            self.add(key, f"must be a table ([{key}]), not {_type(value)}")
            return {}
        return value

    def string(self, table: Mapping[str, Any], key: str, path: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(f"{path}.{key}", f"must be a non-empty string, not {_type(value)}")
            return None
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...]
    ) -> str | None:
        value = self.string(table, key, path)
        if value is not None and value not in choices:
            self.add(f"{path}.{key}", f"unknown value {value!r}",
                     _suggest(value, choices, f"choose from {', '.join(choices)}"))  # fmt: skip
            return None
        return value

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        *,
        rule: Callable[[float], bool] | None = None,
        rule_text: str = "",
    ) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(f"{path}.{key}", f"must be a number, not {_type(value)}")
            return None
        out = float(value)
        if not math.isfinite(out):
            self.add(f"{path}.{key}", f"must be finite, not {value}")
            return None
        if rule is not None and not rule(out):
            self.add(f"{path}.{key}", f"{value} is impossible: {rule_text}")
            return None
        return out

    def integer(self, value: Any, path: str, *, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be an integer, not {_type(value)}")
            return None
        if value < minimum:
            self.add(path, f"{value} is impossible: must be at least {minimum}")
            return None
        return value

    def strings(self, table: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = table.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(f"{path}.{key}", f"must be a list of strings, not {_type(value)}")
            return ()
        return tuple(value)

    def file(self, table: Mapping[str, Any], key: str, path: str) -> Path | None:
        value = self.string(table, key, path)
        if value is None:
            return None
        resolved = _resolve(value, self.base_dir)
        if not resolved.exists():
            self.add(f"{path}.{key}", f"file not found: {resolved}",
                     "relative paths start at the config file's folder")  # fmt: skip
            return None
        return resolved

    def data_source(self, table: Mapping[str, Any], key: str, path: str) -> str | None:
        """A data set: a file or folder (resolved, must exist) or a ``module:function``."""
        value = self.string(table, key, path)
        if value is None:
            return None
        module, sep, function = value.rpartition(":")
        if (
            sep
            and module
            and function.isidentifier()
            and not _resolve(value, self.base_dir).exists()
        ):
            if module.endswith(".py"):
                file = _resolve(module, self.base_dir)
                if not file.is_file():
                    self.add(f"{path}.{key}", f"loader file not found: {file}")
                    return None
                return f"{file}:{function}"
            return value
        resolved = _resolve(value, self.base_dir)
        if not resolved.exists():
            self.add(f"{path}.{key}", f"not found: {resolved}",
                     "give an .npz, a folder of .npy/.npz, or module:function; relative paths "
                     "start at the config file's folder")  # fmt: skip
            return None
        return str(resolved)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _suggest(word: str, valid: tuple[str, ...] | list[str], fallback: str | None = None) -> str:
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return fallback or f"valid keys: {', '.join(valid)}"


def _resolve(text: str, base_dir: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base_dir / p).resolve()


def _model(v: _Validator, table: dict[str, Any]) -> ModelConfig:
    v.unknown(table, "model", MODEL_KEYS)
    if not table:
        return ModelConfig()
    has_path, has_spec = "path" in table, "spec" in table
    if has_path == has_spec:
        v.add("model", "give exactly one of path (an ONNX file) or spec (pkg.mod:factory)")
    path = v.file(table, "path", "model") if has_path else None
    spec = v.string(table, "spec", "model")
    if spec is not None:
        module, sep, attr = spec.rpartition(":")
        if sep and module.endswith(".py"):
            spec = f"{_resolve(module, v.base_dir)}:{attr}"
        elif not sep and Path(spec).suffix in (".pt", ".ts", ".pt2"):
            spec = str(_resolve(spec, v.base_dir))
    if has_path:
        for key in ("inputs", "dynamic", "checkpoint"):
            if key in table:
                v.add(f"model.{key}", "applies only with spec (an ONNX path is exported already)")
    inputs = v.strings(table, "inputs", "model")
    dynamic = v.strings(table, "dynamic", "model")
    checkpoint = v.file(table, "checkpoint", "model")
    return ModelConfig(path, spec, inputs, dynamic, checkpoint)


def _task(v: _Validator, table: dict[str, Any]) -> DetectionTask | None:
    if not table:
        return None
    from optieval.detection import parse_task_table

    try:
        return parse_task_table(table, base=v.base_dir, where="task")
    except InputError as exc:
        v.problems.append(exc.message)
        return None


def _data(v: _Validator, table: dict[str, Any]) -> DataConfig:
    v.unknown(table, "data", DATA_KEYS)
    calibration = v.data_source(table, "calibration", "data")
    evaluation = v.data_source(table, "evaluation", "data")
    labels = v.string(table, "labels", "data")
    if labels is not None and "evaluation" not in table:
        v.add("data.labels", "labels need evaluation data", "set data.evaluation")
    return DataConfig(calibration, evaluation, labels)


def _reference(v: _Validator, table: dict[str, Any]) -> ReferenceConfig:
    v.unknown(table, "reference", REFERENCE_KEYS)
    backend = v.choice(table, "backend", "reference", BACKEND_NAMES) or "ort-cpu"
    precision = v.choice(table, "precision", "reference", ONNX_PRECISIONS) or "fp32"
    return ReferenceConfig(backend, precision)


def _measure(v: _Validator, table: dict[str, Any]) -> MeasureConfig:
    v.unknown(table, "measure", MEASURE_KEYS)
    default = MeasureConfig()

    def positive(x: float) -> bool:
        return x > 0

    warmup_s = v.number(table, "warmup_s", "measure", rule=lambda x: x >= 0,
                        rule_text="a time cannot be negative")  # fmt: skip
    duration_s = v.number(table, "duration_s", "measure", rule=positive,
                          rule_text="must be positive")  # fmt: skip
    max_duration_s = v.number(table, "max_duration_s", "measure", rule=positive,
                              rule_text="must be positive")  # fmt: skip
    warmup_iters = (
        v.integer(table["warmup_iters"], "measure.warmup_iters", minimum=0)
        if "warmup_iters" in table
        else None
    )
    min_samples = (
        v.integer(table["min_samples"], "measure.min_samples", minimum=1)
        if "min_samples" in table
        else None
    )
    isolate = table.get("isolate", default.isolate)
    if not isinstance(isolate, bool):
        v.add("measure.isolate", f"must be true or false, not {_type(isolate)}")
        isolate = default.isolate
    confidence = v.number(table, "confidence", "measure", rule=lambda x: 0.5 < x < 1,
                          rule_text="a confidence lies inside (0.5, 1), e.g. 0.95")  # fmt: skip
    duration = default.duration_s if duration_s is None else duration_s
    maximum = default.max_duration_s if max_duration_s is None else max_duration_s
    if maximum < duration:
        v.add("measure.max_duration_s", f"{maximum:g} is shorter than duration_s {duration:g}")
    return MeasureConfig(
        warmup_s=default.warmup_s if warmup_s is None else warmup_s,
        warmup_iters=default.warmup_iters if warmup_iters is None else warmup_iters,
        duration_s=duration,
        min_samples=min_samples,
        max_duration_s=max(maximum, duration),
        isolate=isolate,
        confidence=default.confidence if confidence is None else confidence,
    )


# Impossible values per budget key: (rule, text).
_BUDGET_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    **{k: ((lambda x: x > 0), "a time must be positive") for k in PERCENTILE_KEYS},
    "mean_ms_max": ((lambda x: x > 0), "a time must be positive"),
    "cold_start_ms_max": ((lambda x: x > 0), "a time must be positive"),
    "throughput_min": ((lambda x: x >= 0), "a throughput cannot be negative"),
    "memory_mb_max": ((lambda x: x > 0), "a size must be positive"),
    "artifact_mb_max": ((lambda x: x > 0), "a size must be positive"),
    "max_abs_max": ((lambda x: x >= 0), "an absolute error cannot be negative"),
    "cosine_min": ((lambda x: -1 <= x <= 1), "a cosine lies in [-1, 1]"),
    "cosine_mean_min": ((lambda x: -1 <= x <= 1), "a cosine lies in [-1, 1]"),
    "cosine_p1_min": ((lambda x: -1 <= x <= 1), "a cosine lies in [-1, 1]"),
    "cosine_p5_min": ((lambda x: -1 <= x <= 1), "a cosine lies in [-1, 1]"),
    "knn_agreement_min": ((lambda x: 0 <= x <= 1), "a fraction lies in [0, 1]"),
    "rel_error_p95_max": ((lambda x: x >= 0), "a relative error cannot be negative"),
    "snr_db_min": ((lambda x: True), ""),
    "top1_agreement_min": ((lambda x: 0 <= x <= 1), "a fraction lies in [0, 1]"),
    "flip_rate_max": ((lambda x: 0 <= x <= 1), "a fraction lies in [0, 1]"),
    "accuracy_drop_max": ((lambda x: 0 <= x <= 1), "an accuracy drop lies in [0, 1]"),
    "accuracy_ratio_min": ((lambda x: 0 < x <= 1), "a minimum ratio lies in (0, 1]"),
    "max_qps_min": ((lambda x: x > 0), "a rate must be positive"),
    "map_drop_max": ((lambda x: 0 <= x <= 1), "an mAP drop lies in [0, 1]"),
    "map50_drop_max": ((lambda x: 0 <= x <= 1), "an mAP drop lies in [0, 1]"),
    "box_match_min": ((lambda x: 0 <= x <= 1), "a fraction lies in [0, 1]"),
    "mean_iou_min": ((lambda x: 0 <= x <= 1), "an IoU lies in [0, 1]"),
    "extra_rate_max": ((lambda x: 0 <= x <= 1), "a fraction lies in [0, 1]"),
    "score_diff_max": ((lambda x: x >= 0), "a score difference cannot be negative"),
}

GROUND_TRUTH_KEYS = frozenset({"map_drop_max", "map50_drop_max"})
"""Detection budgets that need ground truth."""


def _budgets(
    v: _Validator,
    table: Any,
    path: str,
    keys: Mapping[str, str],
    wrong: Mapping[str, str] | None = None,
) -> list[tuple[str, float]]:
    """Budgets of ``keys`` in ``table``; a key of ``wrong`` (key -> why it does not apply)
    gets that reason instead of "unknown key"."""
    if table is None:
        return []
    if not isinstance(table, dict):
        v.add(path, f"must be a table of budgets ({{ key = number }}), not {_type(table)}")
        return []
    wrong = wrong or {}
    for key in table:
        if key in wrong:
            v.add(f"{path}.{key}", wrong[key])
    v.unknown({k: x for k, x in table.items() if k not in wrong}, path, tuple(keys))
    out = []
    for key in keys:
        if key not in table:
            continue
        rule, text = _BUDGET_RULES[key]
        limit = v.number(table, key, path, rule=rule, rule_text=text)
        if limit is not None:
            out.append((key, limit))
    return out


def _accuracy_keys(task: DetectionTask | None) -> tuple[dict[str, str], dict[str, str]]:
    """The accuracy keys valid for the task, and the other task's keys with why they are not."""
    if task is None:
        why = 'a detection budget: set [task] kind = "detection" for a detector'
        return dict(ACCURACY_KEYS), {k: why for k in DETECTION_BUDGET_KEYS}
    why = (
        "a tensor-wise (classification) budget does not apply to [task] kind = "
        f'"detection"; use {", ".join(DETECTION_BUDGET_KEYS)}'
    )
    return dict(DETECTION_BUDGET_KEYS), {k: why for k in ACCURACY_KEYS}


def _has_ground_truth(task: DetectionTask, data: DataConfig) -> bool:
    if task.ground_truth is not None:
        return True
    if data.evaluation is None:
        return False
    from optieval.detection import has_ground_truth

    return has_ground_truth(data.evaluation)


def _scenario(
    v: _Validator, table: Mapping[str, Any], path: str
) -> tuple[str | None, float | None, int | None]:
    scenario = v.choice(table, "scenario", path, TARGET_SCENARIOS)
    qps = v.number(table, "qps", path, rule=lambda x: x > 0,
                   rule_text="a rate must be positive (queries per second)")  # fmt: skip
    concurrency = (
        v.integer(table["concurrency"], f"{path}.concurrency", minimum=1)
        if "concurrency" in table
        else None
    )
    if "qps" in table and scenario != "server":
        v.add(f"{path}.qps", 'applies to scenario = "server"', 'add scenario = "server"')
    if "concurrency" in table and scenario != "concurrency":
        v.add(f"{path}.concurrency", 'applies to scenario = "concurrency"',
              'add scenario = "concurrency"')  # fmt: skip
    if scenario == "server" and "qps" not in table:
        v.add(f"{path}.qps", 'missing: scenario = "server" needs an offered rate',
              "qps = 100 (queries per second)")  # fmt: skip
    return scenario, qps, concurrency


def _targets(
    v: _Validator, raw: Any, data: DataConfig, task: DetectionTask | None = None
) -> list[TargetConfig]:
    if raw is None:
        v.add("target", "no [[target]]: give at least one backend and precision to gate")
        return []
    if isinstance(raw, dict):
        v.add("target", "must be an array of tables", "write [[target]], with two brackets")
        return []
    if not isinstance(raw, list) or not raw:
        v.add("target", "must be a non-empty array of tables ([[target]])")
        return []
    targets = []
    seen: dict[tuple[str, str], int] = {}
    for i, table in enumerate(raw):
        path = f"target[{i}]"
        if not isinstance(table, dict):
            v.add(path, f"must be a table, not {_type(table)}")
            continue
        v.unknown(table, path, TARGET_KEYS)
        if "backend" not in table:
            v.add(f"{path}.backend", "missing", f"choose from {', '.join(BACKEND_NAMES)}")
        backend = v.choice(table, "backend", path, BACKEND_NAMES)
        precision = v.choice(table, "precision", path, ONNX_PRECISIONS) or "fp32"
        batches = _batches(v, table.get("batch", 1), f"{path}.batch")
        threads = (
            v.integer(table["threads"], f"{path}.threads", minimum=1)
            if "threads" in table
            else None
        )
        hardware = v.string(table, "hardware", path)
        scenario, qps, concurrency = _scenario(v, table, path)
        latency = _budgets(v, table.get("latency"), f"{path}.latency", LATENCY_KEYS)
        if any(k == "max_qps_min" for k, _ in latency) and not any(
            k == "p99_ms_max" for k, _ in latency
        ):
            v.add(f"{path}.latency.max_qps_min", "needs p99_ms_max in the same target",
                  "the max-qps search looks for the highest rate whose p99 is under "
                  "p99_ms_max")  # fmt: skip
        valid, wrong = _accuracy_keys(task)
        accuracy = _budgets(v, table.get("accuracy"), f"{path}.accuracy", valid, wrong)
        for key, _ in accuracy:
            if key in LABEL_KEYS and data.labels is None:
                v.add(
                    f"{path}.accuracy.{key}", "needs labels", "set data.evaluation and data.labels"
                )
            if key in GROUND_TRUTH_KEYS and task is not None and not _has_ground_truth(task, data):
                v.add(f"{path}.accuracy.{key}", "needs ground truth",
                      "set task.ground_truth, or give data.evaluation as an .npz holding "
                      "gt_boxes, gt_classes and gt_image")  # fmt: skip
        if backend is None:
            continue
        if (backend, precision) in seen:
            v.add(path, f"{backend}:{precision} is already target[{seen[(backend, precision)]}]",
                  "list its batches in one target: batch = [1, 8]")  # fmt: skip
        seen[(backend, precision)] = i
        targets.append(
            TargetConfig(
                index=i,
                backend=backend,
                precision=precision,
                batches=tuple(batches),
                threads=threads,
                latency=tuple(LatencyBudget(k, x) for k, x in latency),
                accuracy=tuple(accuracy_budget(k, x) for k, x in accuracy),
                hardware=hardware,
                scenario=scenario,
                qps=qps,
                concurrency=concurrency,
                shape_sets=tuple(parse_shape_sets(table, path, v.problems)),
            )
        )
    return targets


def _batches(v: _Validator, value: Any, path: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items:
        v.add(path, "an empty list", "give a batch size or a list such as [1, 8]")
        return [1]
    out = []
    for j, item in enumerate(items):
        got = v.integer(item, path if not isinstance(value, list) else f"{path}[{j}]", minimum=1)
        if got is not None and got not in out:
            out.append(got)
    return out or [1]


def _baseline(v: _Validator, raw: Any) -> BaselineConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        v.add("baseline", f"must be a table ([baseline]), not {_type(raw)}")
        return None
    v.unknown(raw, "baseline", BASELINE_KEYS)
    if "report" not in raw:
        v.add("baseline.report", "missing", "the previous report.json or bench JSON")
        return None
    report = v.file(raw, "report", "baseline")
    slowdown = v.number(raw, "max_slowdown", "baseline", rule=lambda x: 0 <= x < 1,
                        rule_text="a fraction in [0, 1), e.g. 0.05 for 5%")  # fmt: skip
    interleave = raw.get("interleave")
    if interleave is not None and not isinstance(interleave, bool):
        v.add("baseline.interleave", f"must be true or false, not {_type(interleave)}")
        interleave = None
    blocks = v.integer(raw.get("blocks", 3), "baseline.blocks", minimum=2)
    if blocks is not None and blocks > 32:
        v.add("baseline.blocks", f"{blocks} is over 32", "3 to 8 processes per model is plenty")
    if report is None:
        return None
    return BaselineConfig(report, 0.05 if slowdown is None else slowdown, interleave,
                          min(blocks or 3, 32))  # fmt: skip


# Every budget key is known to the config's suggestions (kept in one place, checked here).
assert set(_BUDGET_RULES) == set(LATENCY_KEYS) | set(ACCURACY_KEYS) | set(DETECTION_BUDGET_KEYS)
