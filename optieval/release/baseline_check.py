"""The gate's ``[baseline]`` step: the latency cells against a previous report, with the
baseline's model measured again beside this one, block by block, when it is at hand
(``interleave``; :func:`optieval.bench.baseline_model_at_hand`), else against the report's
recorded samples (docs/design.md, "Between runs")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from optieval.bench import Cell
from optieval.errors import InputError
from optieval.execution import Executor
from optieval.release.budgets import Check, RegressionBudget
from optieval.release.config import GateConfig
from optieval.release.looks import fixed_sample
from optieval.stats import Verdict

__all__ = ["baseline_checks", "decided"]


class _Run(Protocol):
    """What the step needs of a gate run (:class:`optieval.release.steps.GateRun`)."""

    config: GateConfig
    executor: Executor
    warnings: list[str]

    def step(self, message: str, *, count: bool = True) -> None: ...

    def bench_target(
        self, model: Path, target: Any, batches: Any, settings: Any, *, count: bool = True,
        **options: Any,
    ) -> Any: ...  # fmt: skip


def baseline_checks(
    run: _Run, model: Path, cells: list[Cell], env: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[Check]]:
    """Compare ``cells`` (the gate's latency cells of ``model``) with ``[baseline]``'s report
    and judge each shared cell against ``max_slowdown``; ``(None, [])`` without a baseline.
    The comparison's JSON says whether the baseline's model was measured again
    (``interleaved``) and why (``how``).

    Raises:
        InputError (where ``baseline.report`` / ``baseline.interleave``): a report that shares
            no cell; ``interleave = true`` when the baseline's model is not at hand.
    """
    from optieval.bench import compare_to_baseline, load_baseline

    cfg = run.config.baseline
    if cfg is None:
        return None, []
    run.step(f"comparing with the baseline {cfg.report.name}", count=False)
    old_cells, old_env, _ = load_baseline(cfg.report)
    old_model, how = _baseline_model(run, env)
    new_cells = [c.to_json() for c in cells]
    again: list[dict[str, Any]] = []
    if old_model is not None:
        run.step(f"baseline: {how}", count=False)
        new_cells, again = _measure_beside(run, model, old_model, cells, old_cells)
    try:
        comparison = compare_to_baseline(
            new_cells,
            old_cells,
            new_env=env,
            old_env=old_env,
            threshold=cfg.max_slowdown,
            confidence=run.config.measure.confidence,
            interleaved=again,
        )
    except InputError as exc:
        raise InputError(exc.message, where="baseline.report", hint=exc.hint) from exc
    if comparison.env_differences and old_model is None:
        run.warnings.append(
            "the baseline ran in another environment; these differ: "
            + ", ".join(comparison.env_differences[:12])
        )
    for label, reason in comparison.not_compared:
        run.warnings.append(f"baseline: {label} not compared ({reason})")
    if comparison.unmatched_new:
        run.warnings.append(
            "baseline has no counterpart for " + ", ".join(comparison.unmatched_new)
        )
    budget = RegressionBudget(cfg.max_slowdown)
    run.step("compared with the baseline")
    checks = [decided(budget.check(c), c.ratio) for c in comparison.cells]
    return {**comparison.to_json(), "interleaved": old_model is not None, "how": how}, checks


def decided(check: Check, ratio: Any) -> Check:
    """``check`` (:meth:`RegressionBudget.check` of a cell whose ratio is ``ratio``) with how
    it was decided (:func:`optieval.release.looks.fixed_sample`); on interleaved pairs what
    would decide an INCONCLUSIVE one is more pairs of blocks, not more samples: the advice and
    ``decision.blocks_to_decide`` say about how many (:func:`optieval.stats.pairs_to_decide`)."""
    from optieval.stats import INTERLEAVED_METHOD, MAX_PAIRS, pairs_to_decide

    check = fixed_sample(check, min(ratio.n_new, ratio.n_old))
    if ratio.method != INTERLEAVED_METHOD or check.decision is None:
        return check
    more, advice = None, check.advice
    if check.verdict is Verdict.INCONCLUSIVE:
        limit = check.judgement.budget
        more = pairs_to_decide(ratio, limit)
        advice = (
            f"about {more} blocks per model would decide it if the pairs vary as these did "
            "([baseline] blocks, bench --blocks)"
            if more is not None
            else f"no count of blocks up to {MAX_PAIRS} would decide it at this spread: the "
            f"ratio sits too close to {limit:g} for how much the pairs vary"
        )
    decision = {**check.decision, "samples_to_decide": None, "blocks": ratio.blocks_new,
                "blocks_to_decide": more}  # fmt: skip
    return replace(check, decision=decision, advice=advice)


def _baseline_model(run: _Run, env: dict[str, Any]) -> tuple[Path | None, str]:
    """The baseline's model to measure beside this one, or None; and how the comparison is
    made. ``interleave = true`` that cannot be honoured is an error (exit 2)."""
    from optieval.bench import baseline_model_at_hand

    cfg = run.config.baseline
    assert cfg is not None
    if cfg.interleave is False:
        return None, "interleave = false: compared with the baseline's recorded samples"
    return baseline_model_at_hand(
        cfg.report,
        env,
        blocks=cfg.blocks,
        local=run.executor.name == "local",
        required=bool(cfg.interleave),
        where="baseline.interleave",
    )


def _measure_beside(
    run: _Run,
    model: Path,
    old_model: Path,
    cells: list[Cell],
    old_cells: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measure each single-stream target that shares a cell with the baseline again, in
    ``[baseline] blocks`` blocks alternating with the baseline's model (medians only:
    ``duration_s`` split between the blocks); returns both models' cells as plain data, the
    gate's own cell for any cell not measured again."""
    from optieval.bench import cell_key

    old_keys = {cell_key(c) for c in old_cells}
    config = run.config
    cfg = config.baseline
    assert cfg is not None
    settings = replace(config.measure.settings(50.0), min_samples=None)
    new: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    for target in config.targets:
        if target.scenario_spec() is not None:
            continue
        mine = [
            c
            for c in cells
            if (c.backend, c.precision) == (target.backend, target.precision)
            and cell_key(c.to_json()) in old_keys
        ]
        if not mine:
            continue

        # Measured here, not on an executor: the blocks of both models must alternate.
        report = run.bench_target(model, target, sorted({c.batch for c in mine}), settings,
                                  count=False, executor=None, blocks=cfg.blocks,
                                  baseline_model=old_model)  # fmt: skip
        new.extend(c.to_json() for c in report.results)
        again.extend(c.to_json() for c in report.baseline_results)
    seen = {cell_key(c) for c in new}
    new.extend(c.to_json() for c in cells if cell_key(c.to_json()) not in seen)
    return new, again
