"""The steps of one gate run (:class:`GateRun`): the model (exported, or refused when its export
parity failed), the precision artifacts, parity against the reference, the latency cells (each
measured again, longer, while an interval check is inconclusive); each step turns what it
measured into checks. The baseline comparison is :mod:`optieval.release.baseline_check`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from optieval.bench import Cell
from optieval.errors import InputError
from optieval.execution import Executor
from optieval.release.budgets import Check, LatencyBudget
from optieval.release.config import GateConfig, TargetConfig
from optieval.release.looks import elapsed_s, fixed_sample, pooled, with_looks
from optieval.release.target_shapes import cells_text, in_target, parity_shapes, shape_error
from optieval.stats import Judgement, LookPlan, Verdict

__all__ = ["GateRun", "Progress"]

Progress = Callable[[str, int, int], None]
"""``progress(message, done, total)``: called as each step starts and as each cell ends."""


class GateRun:
    """The steps of one gate run, sharing the config, the output folder, the executor, the
    progress callback and the warnings gathered on the way.

    ``total`` counts the steps a progress display expects, fixed before the run (a later
    look of a cell adds samples to it, not a step); ``step`` reports one; ``measure_left_s``
    bounds the measuring time still to come, for an ETA.
    """

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
        self.measure_spent_s = 0.0
        self.measure_budget_s = sum(
            len(t.batches) * config.measure.max_duration_s for t in config.targets
        )

    def step(self, message: str, *, count: bool = True) -> None:
        """Report ``message`` to the progress callback, counting it as a step unless not
        ``count``."""
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
        # INT8 has one format per runtime family: one artifact per (precision, backend).
        wanted: list[tuple[str, str | None]] = [(self.config.reference.precision, None)] + [
            (t.precision, t.backend if t.precision == "int8" else None)
            for t in self.config.targets if t.backend in ONNX_BACKENDS
        ]  # fmt: skip
        out: list[dict[str, Any]] = []
        for precision, backend in dict.fromkeys(wanted):
            calib = self.config.data.calibration
            path = Path(artifact_for(model, precision, calib=calib, backend=backend))
            if any(a["path"] == str(path) for a in out):
                continue
            found = census(load_onnx(path, load_external_data=False))
            out.append(
                {
                    "precision": precision,
                    "int8_format": found.int8_format,
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
        from optieval.parity import compare, run_parity_shard

        cfg = self.config
        candidates = list(dict.fromkeys(t.label for t in cfg.targets))
        self.step(f"comparing {', '.join(candidates)} with {cfg.reference.label}", count=False)
        if cfg.task is not None:
            return self._detection_parity(model, candidates)
        try:
            report = compare(
                model,
                candidates,
                reference=cfg.reference.label,
                data=cfg.data.evaluation,
                labels=cfg.data.labels,
                calib=cfg.data.calibration,
                confidence=cfg.measure.confidence,
                shapes=parity_shapes(cfg, self.warnings),
                runner=self.executor.outputs_runner(
                    run_parity_shard, {t.label: t.hardware for t in cfg.targets}
                ),
                output_kinds=cfg.output_kinds,
            )
        except InputError as exc:
            if exc.where == "shapes":
                raise shape_error(cfg.targets[0], exc) from exc
            if exc.where != "output_kinds":
                raise
            # In the gate, the kinds come from the config's [outputs], not a parameter.
            raise InputError(exc.message, where="outputs", hint=exc.hint) from exc
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
            confidence=cfg.measure.confidence,
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
                        hint="argmax and accuracy budgets need an output of class scores "
                        "(accuracy budgets also data.labels), knn_agreement_min an embedding, "
                        "rel_error_p95_max a regression output; the report names each "
                        "output's kind: set it in [outputs] if it is wrong",
                    )
                for output in outputs:
                    check = budget.check(output, candidate=target.label, samples=result.samples)
                    checks.append(fixed_sample(check, result.samples))
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
                check = Check("accuracy", target.label, f"{target.label} detections",
                              budget.key, judgement, advice)  # fmt: skip
                checks.append(fixed_sample(check, result.images))
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

    def plan(self, target: TargetConfig) -> LookPlan:
        """The sequential plan of ``target``'s cells: at most ``duration_s``, 4x, 16x, ...
        seconds of measuring (cumulative, capped at ``max_duration_s``), each look judged at
        ``1 - (1 - confidence) / looks`` (:func:`optieval.stats.look_plan`)."""
        from optieval.stats import look_plan

        m = self.config.measure
        return look_plan(m.duration_s, m.max_duration_s, confidence=m.confidence,
                         percentile=target.gated_percentile,
                         min_samples=m.min_samples)  # fmt: skip

    @property
    def measure_left_s(self) -> float:
        """At most how many seconds of measuring are left (every undecided cell measured to
        ``max_duration_s``; warm-up and process starts not counted): with ``total`` and
        ``done``, what a progress display needs for a fixed total and an ETA."""
        return max(0.0, self.measure_budget_s - self.measure_spent_s)

    def _target(self, model: Path, target: TargetConfig) -> tuple[list[Cell], list[Check]]:
        cells: list[Cell] = []
        checks: list[Check] = []
        plan = self.plan(target)
        first = self._look_settings(target, plan, 1, samples=0, elapsed_s=0.0)
        for cell in self._bench(model, target, target.batches, first):
            cell, cell_checks = self._decide(model, target, cell, plan)
            cells.append(cell)
            checks.extend(cell_checks)
        search = target.search_spec()
        budget = target.max_qps_budget
        confidence = self.config.measure.confidence
        if search is not None and budget is not None:
            settings = self.config.measure.settings(target.gated_percentile)
            for cell in self._bench(model, target, target.batches, settings, scenario=search):
                cells.append(cell)
                checks.append(budget.check(cell, target=target.label, confidence=confidence))
        return cells, checks

    def _look_settings(
        self, target: TargetConfig, plan: LookPlan, look: int, *, samples: int, elapsed_s: float
    ) -> Any:
        """The :class:`optieval.bench.MeasureSettings` of look ``look``: the first look
        measures until its sample count (after at least ``MIN_LOOK_S``) or its time, whichever
        comes first; later looks, and load scenarios, until the look's cumulative time."""
        from optieval.stats import LOOK_FACTOR, MIN_LOOK_S

        base = self.config.measure.settings(target.gated_percentile)
        left = max(plan.durations_s[look - 1] - elapsed_s, 0.05)
        want = plan.samples_at(look)
        if target.scenario_spec() is not None:
            # A load scenario issues at least min_samples queries; their latencies queue, so
            # successive ones are correlated: ask for twice the count a PASS needs, growing
            # as the looks' times do.
            grown = 2 * plan.first_samples * LOOK_FACTOR ** (look - 1)
            return replace(base, duration_s=left, max_duration_s=left,
                           min_samples=max(1, math.ceil(grown) - samples),
                           confidence=plan.look_confidence)  # fmt: skip
        if want is None:
            # Later looks come at their time.
            return replace(base, duration_s=left, min_samples=None, max_duration_s=left,
                           confidence=plan.look_confidence)  # fmt: skip
        return replace(
            base,
            duration_s=min(MIN_LOOK_S, left),
            min_samples=max(1, want - samples),
            max_duration_s=left,
            confidence=plan.look_confidence,
        )

    def _bench(
        self,
        model: Path,
        target: TargetConfig,
        batches: Iterable[int],
        settings: Any,
        *,
        scenario: Any = None,
        count: bool = True,
        only: Cell | None = None,
    ) -> list[Cell]:
        return list(self.bench_target(model, target, batches, settings, scenario=scenario,
                                      count=count, only=only).results)  # fmt: skip

    def bench_target(
        self,
        model: Path,
        target: TargetConfig,
        batches: Iterable[int],
        settings: Any,
        *,
        scenario: Any = None,
        count: bool = True,
        only: Cell | None = None,
        **options: Any,
    ) -> Any:
        """Bench ``target`` at ``batches`` with ``settings`` in its own load scenario, or in
        ``scenario`` (a :class:`optieval.bench.ScenarioSpec`, the max-QPS search), and return
        the :class:`optieval.bench.BenchReport`; each cell measured counts as a progress step
        unless not ``count`` (a later look). ``options`` go to :func:`optieval.benchmark`
        over the target's own (``blocks``, ``baseline_model``, ``executor``)."""
        from optieval.bench import benchmark

        cfg = self.config
        batches = list(batches)
        spec = scenario if scenario is not None else target.scenario_spec()
        self.step(
            f"benchmarking {target.label} {cells_text(target, batches, only)}"
            + ("" if spec is None else f", {spec.label}")
            + f" (up to {settings.max_duration_s:.3g} s per cell; at most "
            f"{self.measure_left_s:.0f} s of measuring left in this gate)",
            count=False,
        )

        def on_cell(cell: Cell) -> None:
            self.step(f"measured {cell.label}: {_cell_summary(cell)}", count=count)

        kwargs: dict[str, Any] = {
            "backends": [target.backend],
            "precisions": [target.precision],
            "batches": batches,
            "threads": target.threads,
            "settings": settings,
            "data": cfg.data.evaluation,
            "calib": cfg.data.calibration,
            "isolate": cfg.measure.isolate,
            "on_cell": on_cell,
            "executor": self.executor,
            "hardware": target.hardware,
            "scenarios": None if spec is None else [spec],
        }
        # shape sets: release/target_shapes.py
        report = in_target(target, benchmark, only)(model, **{**kwargs, **options})
        from optieval.core import validity_warnings

        # The machine's own warnings (load, governor) are added once, from the gate's fingerprint.
        known = set(validity_warnings(report.env))
        self.warnings.extend(w for w in report.warnings if w not in known)
        return report

    def _decide(
        self, model: Path, target: TargetConfig, cell: Cell, plan: LookPlan
    ) -> tuple[Cell, list[Check]]:
        """Check a cell's latency budgets at each look of ``plan``; while an interval check is
        inconclusive and looks remain, measure more and ADD the samples to the earlier ones
        (docs/design.md, "Sequential verdicts")."""
        label = target.label
        # max_qps_min is judged on the search cell (_target), not on this one.
        budgets = tuple(b for b in target.latency if b.key != "max_qps_min")
        conf = plan.look_confidence

        def judge_all(c: Cell) -> list[Check]:
            return [b.check(c, target=label, confidence=conf) for b in budgets]

        cell = self._fill_first_look(model, target, cell, plan, budgets)
        checks = judge_all(cell)
        if cell.status != "ok" and not checks:
            # No budget reads this cell, but a crashed cell still decides the exit code (3).
            checks = [_crashed(cell, label)]
        look = 1
        elapsed = elapsed_s(cell, plan, look)
        while cell.status == "ok" and _undecided(budgets, checks) and look < plan.looks:
            look += 1
            settings = self._look_settings(target, plan, look, samples=cell.samples,
                                           elapsed_s=elapsed)  # fmt: skip
            more = self._bench(model, target, [cell.batch], settings, count=False, only=cell)[0]
            if more.status != "ok":
                cell = more
                checks = judge_all(cell)
                break
            cell = pooled(cell, more, look, plan)
            elapsed = elapsed_s(cell, plan, look)
            checks = judge_all(cell)
        self.measure_spent_s += plan.durations_s[-1]
        cap = self.config.measure.max_duration_s
        judged = zip(budgets, checks, strict=False)
        checks = [with_looks(c, b, look, plan, cap) for b, c in judged] + checks[len(budgets) :]
        return cell, checks

    def _fill_first_look(
        self,
        model: Path,
        target: TargetConfig,
        cell: Cell,
        plan: LookPlan,
        budgets: tuple[LatencyBudget, ...],
    ) -> Cell:
        """Before the first look is judged, measure on (up to its time, at most twice) while
        its samples, counted as ``n / tau`` when successive latencies are correlated, fall
        short of what a PASS needs. It does not look at any verdict, so it costs no alpha."""
        from optieval.stats import min_samples_for_mean, rank_autocorrelation_time

        if cell.status != "ok" or target.scenario_spec() is not None or not cell.times_ms:
            return cell
        means = any(b.key in ("mean_ms_max", "throughput_min") for b in budgets)
        for _ in range(2):
            times = cell.times_ms
            need = math.ceil(plan.first_samples * rank_autocorrelation_time(times))
            if means:
                need = max(need, min_samples_for_mean(times))
            elapsed = elapsed_s(cell, plan, 1)
            if len(times) >= need or elapsed >= plan.durations_s[0] * 0.98:
                break
            settings = self._look_settings(target, plan, 1, samples=len(times),
                                           elapsed_s=elapsed)  # fmt: skip
            settings = replace(settings, min_samples=need - len(times))
            more = self._bench(model, target, [cell.batch], settings, count=False, only=cell)[0]
            if more.status != "ok":
                return more
            cell = pooled(cell, more, 1, plan)
        return cell


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
