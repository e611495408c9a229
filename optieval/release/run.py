"""``optieval.gate``: one release config in, one verdict out, with the evidence for every check.

The pipeline (docs/design.md, data flow): export the model if the config gives a spec (a model whose
export parity failed is refused: a FAIL, exit 1), build each precision artifact once, compare
every target's outputs with the reference's (:func:`optieval.parity.comparison.compare`; for
``[task] kind = "detection"``, :func:`optieval.detection.compare.compare_detection`: box
matching and mAP), benchmark every target (:func:`optieval.bench.runner.benchmark`, cells
isolated by default, in the target's load scenario; a ``max_qps_min`` budget adds a max-QPS
search cell per batch), check every
budget (:mod:`optieval.release.budgets`), compare with a baseline report when one is given, and
write the reports (:mod:`optieval.release.reports`).

A latency check that is INCONCLUSIVE (its interval straddles the budget) is measured again,
four times longer each time, up to ``[measure] max_duration_s``. An accuracy check cannot be:
the evaluation data is fixed, so its advice says how many more samples would decide it.

Exit codes (docs/design.md): 0 when every check passes; 1 when any fails or is inconclusive (0 for
inconclusive with ``allow_inconclusive``); 2 for a bad config (raised as InputError); 3 when a
target's backend is unusable here (raised as BackendUnavailable before any work) or a cell
crashed (in the report, ``exit_code`` 3).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optieval.bench import GATE_REPORT_SCHEMA_VERSION, Cell
from optieval.errors import (
    EXIT_BACKEND,
    EXIT_CHECK_FAILED,
    EXIT_OK,
    BackendUnavailable,
    InputError,
    combined_exit_code,
)
from optieval.execution import Executor
from optieval.release.budgets import Check, LatencyBudget, RegressionBudget
from optieval.release.config import GateConfig, TargetConfig, load_config
from optieval.stats import Judgement, Verdict

GATE_REPORT_KIND = "gate-report"
DEFAULT_OUT_DIR = "optieval-report"
REMEASURE_FACTOR = 4.0
"""Each re-measurement of an inconclusive latency cell runs this many times longer."""

Progress = Callable[[str, int, int], None]
"""``progress(message, done, total)``: called as each step starts and as each cell ends."""


@dataclass(frozen=True)
class GateReport:
    """What a gate run found: the verdict, every check with its evidence, every cell (in the
    bench cell shape, so the report serves as a baseline), the artifacts and the parity results.

    Attributes:
        verdict: PASS, FAIL or INCONCLUSIVE (the worst check; PASS when there are none).
        exit_code: 0, 1 or 3 (docs/design.md; 2 is raised as InputError before a report exists).
        allow_inconclusive: whether INCONCLUSIVE exits 0.
        config: the validated config (:meth:`GateConfig.to_json`).
        env: the machine's fingerprint.
        model: path, sha256, spec and export parity of the gated model.
        artifacts: per precision: path, sha256, bytes and precision census.
        cells: every bench cell (:class:`optieval.bench.results.Cell`).
        checks: every :class:`optieval.release.budgets.Check`.
        parity: the parity report's JSON (None when the model was refused).
        baseline: the baseline comparison's JSON (None without ``[baseline]``).
        warnings: environment and data warnings worth reading.
        reports: the files written (``{"json": path, "md": ..., "junit": ..., "html": ...}``).
        seconds: wall time of the run.
        executor: where the cells ran (:meth:`optieval.execution.executors.Executor.describe`).
    """

    verdict: Verdict
    exit_code: int
    allow_inconclusive: bool
    config: dict[str, Any]
    env: dict[str, Any]
    model: dict[str, Any]
    artifacts: tuple[dict[str, Any], ...]
    cells: tuple[Cell, ...]
    checks: tuple[Check, ...]
    parity: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    reports: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    executor: dict[str, Any] = field(default_factory=dict)

    def count(self, verdict: Verdict) -> int:
        """How many checks have ``verdict``."""
        return sum(1 for c in self.checks if c.verdict is verdict)

    @property
    def summary(self) -> str:
        """``"FAIL: 7 checks, 5 passed, 1 failed, 1 inconclusive"``."""
        n = len(self.checks)
        return (
            f"{self.verdict.value}: {n} check{'s' if n != 1 else ''}, "
            f"{self.count(Verdict.PASS)} passed, {self.count(Verdict.FAIL)} failed, "
            f"{self.count(Verdict.INCONCLUSIVE)} inconclusive"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data with ``schema_version`` and ``kind: "gate-report"``; cells sit under
        ``cells`` in the bench cell shape (:func:`optieval.bench.results.load_baseline` reads
        them)."""
        return {
            "schema_version": GATE_REPORT_SCHEMA_VERSION,
            "kind": GATE_REPORT_KIND,
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "allow_inconclusive": self.allow_inconclusive,
            "summary": self.summary,
            "counts": {v.value: self.count(v) for v in Verdict},
            "seconds": round(self.seconds, 3),
            "config": self.config,
            "env": self.env,
            "model": self.model,
            "artifacts": list(self.artifacts),
            "checks": [c.to_json() for c in self.checks],
            "cells": [c.to_json() for c in self.cells],
            "parity": self.parity,
            "baseline": self.baseline,
            "warnings": list(self.warnings),
            "reports": dict(self.reports),
            "executor": dict(self.executor),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = "gate report") -> GateReport:
        """Read a gate report; refuses another kind or schema version with what to do."""
        if not isinstance(data, dict) or data.get("kind") != GATE_REPORT_KIND:
            raise InputError("not a gate report", where=where,
                             hint="pass a report.json written by `optieval gate`")  # fmt: skip
        version = data.get("schema_version")
        if version != GATE_REPORT_SCHEMA_VERSION:
            raise InputError(
                f"gate report schema_version {version!r} is not {GATE_REPORT_SCHEMA_VERSION}",
                where=where,
                hint="re-run the gate with this optieval version",
            )
        try:
            return cls(
                verdict=Verdict(data["verdict"]),
                exit_code=int(data["exit_code"]),
                allow_inconclusive=bool(data.get("allow_inconclusive", False)),
                config=dict(data.get("config") or {}),
                env=dict(data.get("env") or {}),
                model=dict(data.get("model") or {}),
                artifacts=tuple(data.get("artifacts") or ()),
                cells=tuple(Cell.from_json(c) for c in data.get("cells") or ()),
                checks=tuple(Check.from_json(c) for c in data.get("checks") or ()),
                parity=data.get("parity"),
                baseline=data.get("baseline"),
                warnings=tuple(data.get("warnings") or ()),
                reports=dict(data.get("reports") or {}),
                seconds=float(data.get("seconds", 0.0)),
                executor=dict(data.get("executor") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed gate report ({exc})", where=where) from exc


def overall(checks: Iterable[Check]) -> Verdict:
    """The worst verdict among ``checks``: FAIL, then INCONCLUSIVE, else PASS."""
    verdicts = {c.verdict for c in checks}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def exit_code_for(checks: Iterable[Check], *, allow_inconclusive: bool = False) -> int:
    """docs/design.md's exit code for a set of checks: 3 when a check could not be made because its
    backend failed, else 1 for FAIL (or INCONCLUSIVE unless allowed), else 0."""
    codes = []
    for check in checks:
        if check.error:
            codes.append(EXIT_BACKEND)
        elif check.verdict is Verdict.FAIL or (
            check.verdict is Verdict.INCONCLUSIVE and not allow_inconclusive
        ):
            codes.append(EXIT_CHECK_FAILED)
        else:
            codes.append(EXIT_OK)
    return combined_exit_code(codes)


def gate(
    config_path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    allow_inconclusive: bool = False,
    duration_s: float | None = None,
    progress: Progress | None = None,
    executor: str | Executor = "local",
    ray_address: str | None = None,
) -> GateReport:
    """Gate a release: run the config's pipeline, check every budget, write the reports.

    Args:
        config_path: the release TOML (README, "Gate"); relative paths in it start at its folder.
        out_dir: where the reports (and an exported model) go; default ``./optieval-report``,
            created if missing.
        allow_inconclusive: INCONCLUSIVE checks exit 0 instead of 1.
        duration_s: replaces ``[measure] duration_s`` (``max_duration_s`` is raised to it if
            shorter); None keeps the config's.
        progress: ``progress(message, done, total)`` for a progress display.
        executor: where the cells run: ``local`` (isolated subprocesses here, the default),
            ``ray``, or an :class:`optieval.execution.executors.Executor` (left open).
        ray_address: the Ray cluster for ``executor="ray"`` (default: ``RAY_ADDRESS``, else a
            Ray instance on this machine).

    Returns:
        The :class:`GateReport`, already written to ``out_dir`` (``report.json``,
        ``report.md``, ``junit.xml``, ``report.html``; paths in ``report.reports``). Its
        ``exit_code`` is what the CLI exits with.

    Raises:
        InputError: a bad config, model, data or baseline (exit 2).
        BackendUnavailable: the reference's or a target's backend cannot run here (exit 3);
            ``executor="ray"`` without the ray package.
    """
    from optieval.execution import create_executor

    owned = None
    if isinstance(executor, str):
        owned = create_executor(executor, ray_address=ray_address)
        load_config(Path(config_path))  # a bad config (exit 2) before a missing executor (3)
        owned.check()
        executor = owned
    try:
        return _gate(
            config_path,
            out_dir=out_dir,
            allow_inconclusive=allow_inconclusive,
            duration_s=duration_s,
            progress=progress,
            executor=executor,
        )
    finally:
        if owned is not None:
            owned.close()


def _gate(
    config_path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None,
    allow_inconclusive: bool,
    duration_s: float | None,
    progress: Progress | None,
    executor: Executor,
) -> GateReport:
    started = time.perf_counter()
    config = load_config(Path(config_path))
    if duration_s is not None:
        if not duration_s > 0:
            raise InputError(f"{duration_s} must be positive", where="--duration")
        measure = replace(
            config.measure,
            duration_s=duration_s,
            max_duration_s=max(config.measure.max_duration_s, duration_s),
        )
        config = replace(config, measure=measure)
    out = _out_dir(out_dir)
    run = _Run(config, out, progress, executor)
    if executor.checks_here:
        _require_backends(config)
    env = _fingerprint()
    run.warnings.extend(_validity_warnings(env))

    model_path, model_info, refusal = run.model()
    if refusal is not None:
        checks: tuple[Check, ...] = (refusal,)
        report = GateReport(
            verdict=overall(checks),
            exit_code=exit_code_for(checks, allow_inconclusive=allow_inconclusive),
            allow_inconclusive=allow_inconclusive,
            config=config.to_json(),
            env=env,
            model=model_info,
            executor=executor.describe(),
            artifacts=(),
            cells=(),
            checks=checks,
            warnings=tuple(run.warnings),
        )
        return _finish(report, out, started)

    artifacts = run.artifacts(model_path)
    parity = run.parity(model_path)
    accuracy_checks = run.accuracy_checks(parity)
    cells, latency_checks = run.latency(model_path)
    baseline_json, baseline_checks = run.baseline(cells, env)
    checks = (*latency_checks, *accuracy_checks, *baseline_checks)
    if not checks:
        run.warnings.append("no budgets in the config: PASS means that nothing was checked")
    run.step("checked every budget")
    report = GateReport(
        verdict=overall(checks),
        exit_code=exit_code_for(checks, allow_inconclusive=allow_inconclusive),
        allow_inconclusive=allow_inconclusive,
        config=config.to_json(),
        env=env,
        model=model_info,
        executor=executor.describe(),
        artifacts=tuple(artifacts),
        cells=tuple(cells),
        checks=checks,
        parity=parity.to_json(),
        baseline=baseline_json,
        warnings=tuple(dict.fromkeys(run.warnings)),
    )
    return _finish(report, out, started)


def _finish(report: GateReport, out: Path, started: float) -> GateReport:
    from optieval.release.reports import report_paths, write_reports

    report = replace(
        report,
        reports={k: str(v) for k, v in report_paths(out).items()},
        seconds=time.perf_counter() - started,
    )
    write_reports(report, out)
    return report


def _out_dir(out_dir: str | os.PathLike[str] | None) -> Path:
    out = Path(out_dir if out_dir is not None else DEFAULT_OUT_DIR).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the report folder ({exc.strerror})",
            where=str(out),
            hint="choose a writable --out",
        ) from exc
    if not out.is_dir():
        raise InputError("not a folder", where=str(out), hint="choose a folder for --out")
    return out


def _require_backends(config: GateConfig) -> None:
    """Exit 3 before any work when the reference's or a target's backend cannot run here: the
    release cannot be judged on this machine."""
    from optieval.runtime import availability

    wanted = [("reference", config.reference.backend)]
    wanted += [(f"target[{t.index}]", t.backend) for t in config.targets]
    users: dict[str, list[str]] = {}
    for where, name in wanted:
        users.setdefault(name, []).append(where)
    problems = []
    hints = []
    for name, needed_by in users.items():
        state = availability(name)
        if not state.usable:
            problems.append(f"{name} (needed by {', '.join(needed_by)}): {state.reason}")
            if state.detail.get("hint"):
                hints.append(str(state.detail["hint"]))
    if problems:
        raise BackendUnavailable(
            "; ".join(dict.fromkeys(problems)),
            where="gate",
            hint="; ".join(dict.fromkeys(hints)) or "run `optieval doctor` to see what is usable",
        )


def _validity_warnings(env: dict[str, Any]) -> list[str]:
    from optieval.core import validity_warnings

    return list(validity_warnings(env))


def _fingerprint() -> dict[str, Any]:
    from optieval.core import fingerprint

    return fingerprint()


class _Run:
    """The steps of one gate run, sharing the config, output folder and progress."""

    def __init__(
        self, config: GateConfig, out: Path, progress: Progress | None, executor: Executor
    ) -> None:
        self.config = config
        self.executor = executor
        self.out = out
        self.progress = progress
        self.warnings: list[str] = []
        self.done = 0
        self.total = 4 + sum(
            len(t.batches) * (2 if t.search_spec() is not None else 1) for t in config.targets
        )
        self.total += 1 if config.baseline else 0

    def step(self, message: str, *, count: bool = True) -> None:
        if count:
            self.done = min(self.done + 1, self.total)
        if self.progress is not None:
            self.progress(message, self.done, self.total)

    # -- model ----------------------------------------------------------------------------------
    def model(self) -> tuple[Path, dict[str, Any], Check | None]:
        from optieval.core import read_manifest, sha256_file

        cfg = self.config.model
        info: dict[str, Any] = {}
        if cfg.spec is not None:
            self.step(f"exporting {cfg.spec}", count=False)
            path, info, refusal = self._export()
            self.step("exported the model")
            if refusal is not None:
                return path, info, refusal
        else:
            assert cfg.path is not None
            path = cfg.path
            manifest = read_manifest(path) or {}
            parity = manifest.get("parity")
            info = {"path": str(path), "spec": None}
            if isinstance(parity, dict):
                info["export_parity"] = {"passed": parity.get("passed")}
                if parity.get("passed") is False:
                    info["sha256"] = sha256_file(path)
                    return path, info, _refusal(path, "its manifest records a failed export "
                                                      "parity check against PyTorch")  # fmt: skip
            self.step(f"model {path.name}")
        info["sha256"] = sha256_file(path)
        return path, info, None

    def _export(self) -> tuple[Path, dict[str, Any], Check | None]:
        from optieval.export import ExportCheckFailed, export_model

        cfg = self.config.model
        assert cfg.spec is not None
        output = self.out / "model.onnx"
        try:
            result = export_model(
                cfg.spec,
                output,
                inputs=list(cfg.inputs) or None,
                dynamic=list(cfg.dynamic) or None,
                checkpoint=cfg.checkpoint,
                base_dir=self.config.base_dir,
            )
        except ExportCheckFailed as exc:
            info: dict[str, Any] = {
                "path": str(exc.result.model_path),
                "spec": cfg.spec,
                "export_parity": exc.result.parity.to_json(),
            }
            return exc.result.model_path, info, _refusal(exc.result.model_path, exc.message)
        self.warnings.extend(result.warnings)
        info = {
            "path": str(result.model_path),
            "spec": cfg.spec,
            "checkpoint": None if cfg.checkpoint is None else str(cfg.checkpoint),
            "io": result.signature.to_json(),
            "export_parity": {"passed": result.parity.passed},
        }
        return result.model_path, info, None

    # -- artifacts ------------------------------------------------------------------------------
    def artifacts(self, model: Path) -> list[dict[str, Any]]:
        from optieval.core import load_onnx, sha256_file
        from optieval.precision import artifact_for, census
        from optieval.runtime import ONNX_BACKENDS

        self.step("building precision artifacts", count=False)
        precisions = [self.config.reference.precision]
        precisions += [t.precision for t in self.config.targets if t.backend in ONNX_BACKENDS]
        out: list[dict[str, Any]] = []
        for precision in dict.fromkeys(precisions):
            path = Path(artifact_for(model, precision, calib=self.config.data.calibration))
            found = census(load_onnx(path, load_external_data=False))
            out.append(
                {
                    "precision": precision,
                    "path": str(path),
                    "sha256": sha256_file(path),
                    "bytes": path.stat().st_size,
                    "census": found.to_json(),
                }
            )
        self.step(f"artifacts: {', '.join(a['precision'] for a in out)}")
        return out

    # -- accuracy -------------------------------------------------------------------------------
    def parity(self, model: Path) -> Any:
        from optieval.parity import compare

        cfg = self.config
        candidates = list(dict.fromkeys(t.label for t in cfg.targets))
        self.step(f"comparing {', '.join(candidates)} with {cfg.reference.label}", count=False)
        if cfg.task is not None:
            return self._detection_parity(model, candidates)
        report = compare(
            model,
            candidates,
            reference=cfg.reference.label,
            data=cfg.data.evaluation,
            labels_key=cfg.data.labels,
            calib=cfg.data.calibration,
            runner=self.executor.outputs_runner({t.label: t.hardware for t in cfg.targets}),
        )
        self.warnings.extend(report.warnings)
        for result in report.results:
            self.warnings.extend(result.warnings)
        self.step("compared outputs")
        return report

    def _detection_parity(self, model: Path, candidates: list[str]) -> Any:
        from optieval.detection import compare_detection

        cfg = self.config
        assert cfg.task is not None
        if not self.executor.checks_here:
            self.warnings.append(
                "detection parity ran on this machine (the executor runs the latency cells only)"
            )
        report = compare_detection(
            model,
            candidates,
            options=cfg.task.options,
            reference=cfg.reference.label,
            data=cfg.data.evaluation,
            gt=cfg.task.ground_truth,
            calib=cfg.data.calibration,
        )
        self.warnings.extend(report.warnings)
        for result in report.results:
            self.warnings.extend(result.warnings)
        self.step("compared detections")
        return report

    def accuracy_checks(self, parity: Any) -> list[Check]:
        if self.config.task is not None:
            return self._detection_checks(parity)
        checks: list[Check] = []
        for target in self.config.targets:
            if not target.accuracy:
                continue
            result = parity.result(target.label)
            for budget in target.accuracy:
                outputs = [o for o in result.outputs if budget.applies_to(o)]
                if not outputs:
                    raise InputError(
                        f"no output of the model has {budget.metric}",
                        where=f"target[{target.index}].accuracy.{budget.key}",
                        hint="argmax and accuracy budgets need a (batch x classes) output; "
                        "accuracy budgets also need data.labels",
                    )
                for output in outputs:
                    checks.append(
                        budget.check(output, candidate=target.label, samples=result.samples)
                    )
        return checks

    def _detection_checks(self, parity: Any) -> list[Check]:
        """Detection budgets on each candidate's :class:`DetectionParity`, judged on their
        intervals (bootstrap over images) where they have one, else as points."""
        from optieval.detection import DETECTION_BUDGET_KEYS, budget_value
        from optieval.release.budgets import samples_to_decide, split_key, unmeasured
        from optieval.stats import judge

        checks: list[Check] = []
        for target in self.config.targets:
            if not target.accuracy:
                continue
            result = parity.result(target.label)
            for budget in target.accuracy:
                metric, kind = split_key(budget.key)
                value, interval = budget_value(result, budget.key)
                advice = None
                if value is None:
                    why = (
                        "no ground truth"
                        if budget.key.startswith("map")
                        else "no matched detections"
                    )
                    judgement = unmeasured(metric, kind, budget.limit, why)
                elif interval is None:
                    judgement = judge(metric, kind, budget.limit, value=value, basis="point")
                else:
                    low, high = interval.low, interval.high
                    judgement = judge(metric, kind, budget.limit, value=value, low=low,
                                      high=high, confidence=interval.confidence)  # fmt: skip
                    if judgement.verdict is Verdict.INCONCLUSIVE:
                        advice = samples_to_decide(value, interval.low, interval.high,
                                                   budget.limit, result.images,
                                                   what="evaluation images")  # fmt: skip
                judgement = replace(
                    judgement,
                    evidence=f"{judgement.evidence} ({DETECTION_BUDGET_KEYS[budget.key]})",
                )
                checks.append(Check("accuracy", target.label, f"{target.label} detections",
                                    budget.key, judgement, advice))  # fmt: skip
        return checks

    # -- latency --------------------------------------------------------------------------------
    def latency(self, model: Path) -> tuple[list[Cell], list[Check]]:
        cells: list[Cell] = []
        checks: list[Check] = []
        if self.executor.concurrent and len(self.config.targets) > 1:
            # Targets on a cluster run side by side (each on its own hardware); results keep
            # the config's order.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=len(self.config.targets)) as pool:
                done = list(pool.map(lambda t: self._target(model, t), self.config.targets))
        else:
            done = [self._target(model, t) for t in self.config.targets]
        for target_cells, target_checks in done:
            cells.extend(target_cells)
            checks.extend(target_checks)
        return cells, checks

    def _target(self, model: Path, target: TargetConfig) -> tuple[list[Cell], list[Check]]:
        cells: list[Cell] = []
        checks: list[Check] = []
        for cell in self._bench(model, target, target.batches, self.config.measure.duration_s):
            cell, cell_checks = self._decide(model, target, cell)
            cells.append(cell)
            checks.extend(cell_checks)
        search = target.search_spec()
        budget = target.max_qps_budget
        if search is not None and budget is not None:
            duration = self.config.measure.duration_s
            for cell in self._bench(model, target, target.batches, duration, scenario=search):
                cells.append(cell)
                checks.append(budget.check(cell, target=target.label))
        return cells, checks

    def _bench(
        self,
        model: Path,
        target: TargetConfig,
        batches: Iterable[int],
        duration_s: float,
        *,
        scenario: Any = None,
    ) -> list[Cell]:
        """Bench ``target`` at ``batches`` in its own load scenario, or in ``scenario`` (a
        :class:`optieval.bench.scenarios.core.ScenarioSpec`, the max-QPS search)."""
        from optieval.bench import benchmark

        cfg = self.config
        batches = list(batches)
        spec = scenario if scenario is not None else target.scenario_spec()
        self.step(
            f"benchmarking {target.label} batch {', '.join(map(str, batches))}"
            + ("" if spec is None else f", {spec.label}")
            + f" ({duration_s:g} s per cell)",
            count=False,
        )

        def on_cell(cell: Cell) -> None:
            self.step(f"measured {cell.label}: {_cell_summary(cell)}")

        report = benchmark(
            model,
            backends=[target.backend],
            precisions=[target.precision],
            batches=batches,
            threads=target.threads,
            settings=cfg.measure.settings(target.gated_percentile, duration_s),
            data=cfg.data.evaluation,
            calib=cfg.data.calibration,
            isolate=cfg.measure.isolate,
            on_cell=on_cell,
            executor=self.executor,
            hardware=target.hardware,
            scenarios=None if spec is None else [spec],
        )
        from optieval.core import validity_warnings

        # The machine's own warnings (load, governor) are added once, from the gate's fingerprint.
        known = set(validity_warnings(report.env))
        self.warnings.extend(w for w in report.warnings if w not in known)
        return list(report.results)

    def _decide(self, model: Path, target: TargetConfig, cell: Cell) -> tuple[Cell, list[Check]]:
        """Check a cell's latency budgets; measure it again, longer, while an interval check is
        inconclusive and ``max_duration_s`` allows."""
        measure = self.config.measure
        duration = measure.duration_s
        label = target.label
        # max_qps_min is judged on the search cell (_target), not on this one.
        budgets = tuple(b for b in target.latency if b.key != "max_qps_min")
        checks = [b.check(cell, target=label) for b in budgets]
        if cell.status != "ok" and not checks:
            # No budget reads this cell, but a crashed cell still decides the exit code (3).
            checks = [_crashed(cell, label)]
        while cell.status == "ok" and _undecided(budgets, checks):
            if duration >= measure.max_duration_s:
                break
            duration = min(duration * REMEASURE_FACTOR, measure.max_duration_s)
            self.total += 1
            longer = self._bench(model, target, [cell.batch], duration)[0]
            note = (
                f"re-measured for {duration:g} s: an interval check was inconclusive after "
                f"{cell.samples} samples"
            )
            cell = replace(longer, notes=[*longer.notes, note])
            checks = [b.check(cell, target=label) for b in budgets]
        return cell, checks

    # -- baseline -------------------------------------------------------------------------------
    def baseline(
        self, cells: list[Cell], env: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[Check]]:
        from optieval.bench import compare_to_baseline, load_baseline

        cfg = self.config.baseline
        if cfg is None:
            return None, []
        self.step(f"comparing with the baseline {cfg.report.name}", count=False)
        old_cells, old_env, _ = load_baseline(cfg.report)
        try:
            comparison = compare_to_baseline(
                [c.to_json() for c in cells],
                old_cells,
                new_env=env,
                old_env=old_env,
                threshold=cfg.max_slowdown,
            )
        except InputError as exc:
            raise InputError(exc.message, where="baseline.report", hint=exc.hint) from exc
        if comparison.env_differences:
            self.warnings.append(
                "the baseline ran in another environment; these differ: "
                + ", ".join(comparison.env_differences[:12])
            )
        for label, reason in comparison.not_compared:
            self.warnings.append(f"baseline: {label} not compared ({reason})")
        if comparison.unmatched_new:
            self.warnings.append(
                "baseline has no counterpart for " + ", ".join(comparison.unmatched_new)
            )
        budget = RegressionBudget(cfg.max_slowdown)
        self.step("compared with the baseline")
        return comparison.to_json(), [budget.check(c) for c in comparison.cells]


def _undecided(budgets: tuple[LatencyBudget, ...], checks: list[Check]) -> bool:
    return any(
        b.has_interval and c.verdict is Verdict.INCONCLUSIVE
        for b, c in zip(budgets, checks, strict=True)
    )


def _cell_summary(cell: Cell) -> str:
    if cell.status != "ok":
        return f"{cell.status}: {cell.reason}"
    latency = cell.latency_ms or {}
    p50, p99 = latency.get("p50"), latency.get("p99")
    if p50 is None or p99 is None:
        return f"{cell.samples} samples"
    return f"p50 {p50:.3g} ms, p99 {p99:.3g} ms, {cell.samples} samples"


def _crashed(cell: Cell, target: str) -> Check:
    from optieval.release.budgets import failed

    judgement = failed("cell", "max", 0.0, f"cell {cell.status}: {cell.reason}")
    return Check("latency", target, cell.label, "cell_ran", judgement, error=True)


def _refusal(path: Path, why: str) -> Check:
    judgement = Judgement(
        "export_parity",
        "min",
        1.0,
        Verdict.FAIL,
        "point",
        0.0,
        None,
        None,
        None,
        f"{path.name} refused: {why}; the gate does not judge a model that differs from its "
        "PyTorch source",
    )
    return Check("export", "model", path.name, "export_parity", judgement)


__all__ = ["GATE_REPORT_KIND", "GateReport", "exit_code_for", "gate", "overall"]
