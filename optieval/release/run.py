"""``optieval.gate``: one release config in, one verdict out, with the evidence for every check.

The pipeline (docs/design.md, data flow): export the model if the config gives a spec (a model whose
export parity failed is refused: a FAIL, exit 1), build each precision artifact once, compare
every target's outputs with the reference's (:func:`optieval.parity.comparison.compare`; for
``[task] kind = "detection"``, :func:`optieval.detection.compare.compare_detection`: box
matching and mAP), benchmark every target (:func:`optieval.bench.runner.benchmark`, cells
isolated by default, in the target's load scenario; a ``max_qps_min`` budget adds a max-QPS
search cell per batch), check every
budget (:mod:`optieval.release.budgets`), compare with a baseline report when one is given, and
write the reports (:mod:`optieval.release.reports`). The steps are in
:mod:`optieval.release.steps`, the report in :mod:`optieval.release.gate_report`.

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
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from optieval.errors import BackendUnavailable, InputError, OptievalError
from optieval.execution import Executor
from optieval.release.baseline_check import baseline_checks
from optieval.release.budgets import Check
from optieval.release.config import GateConfig
from optieval.release.config_loader import load_config, parse_config
from optieval.release.gate_report import GateReport, exit_code_for, overall
from optieval.release.reports import (
    clear_reports,
    report_paths,
    write_failure_reports,
    write_reports,
)
from optieval.release.steps import GateRun, Progress
from optieval.release.target_shapes import check_target_shapes

DEFAULT_OUT_DIR = "optieval-report"


def gate(
    config_path: str | os.PathLike[str] | GateConfig | Mapping[str, Any],
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
        config_path: the release TOML (docs/reference/release-toml.md); relative paths in it
            start at its folder. Or a config object: a :class:`GateConfig` (from
            :func:`load_config` or :func:`parse_config`, changed with ``dataclasses.replace``),
            or the TOML's content as a mapping (relative paths then start at the current
            folder).
        out_dir: where the reports (and an exported model) go; default ``./optieval-report``,
            created if missing.
        allow_inconclusive: INCONCLUSIVE checks exit 0 instead of 1.
        duration_s: replaces ``[measure] duration_s`` (``max_duration_s`` is raised to it if
            shorter); None keeps the config's.
        progress: ``progress(message, done, total)`` for a progress display.
        executor: where the cells run: ``local`` (isolated subprocesses here, the default),
            ``ray``, or an :class:`optieval.execution.Executor` (left open).
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

    # An earlier run's reports must never pass for this run's, whatever happens next.
    reports_dir = _report_dir(out_dir)
    if reports_dir.is_dir():
        clear_reports(reports_dir)
    owned = None
    if isinstance(executor, str):
        owned = create_executor(executor, ray_address=ray_address)
    config = _config(config_path)  # a bad config (exit 2) before a missing executor (3)
    try:
        if owned is not None:
            owned.check()
        return _gate(
            config,
            out_dir=out_dir,
            allow_inconclusive=allow_inconclusive,
            duration_s=duration_s,
            progress=progress,
            executor=owned if owned is not None else executor,  # type: ignore[arg-type]
        )
    except BaseException as exc:
        # The config was read: say in the reports that this run did not finish.
        if reports_dir.is_dir():
            write_failure_reports(reports_dir, _failure_text(exc))
        raise
    finally:
        if owned is not None:
            owned.close()


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OptievalError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _config(given: str | os.PathLike[str] | GateConfig | Mapping[str, Any]) -> GateConfig:
    """The validated config: read from a path, taken as is, or parsed from a mapping."""
    if isinstance(given, GateConfig):
        return given
    if isinstance(given, Mapping):
        return parse_config(given, source=Path.cwd() / "release.toml")
    return load_config(Path(given))


def _gate(
    config: GateConfig,
    *,
    out_dir: str | os.PathLike[str] | None,
    allow_inconclusive: bool,
    duration_s: float | None,
    progress: Progress | None,
    executor: Executor,
) -> GateReport:
    started = time.perf_counter()
    if duration_s is not None:
        if not duration_s > 0:
            raise InputError(f"`duration_s` {duration_s} must be positive", where="duration_s")
        measure = replace(
            config.measure,
            duration_s=duration_s,
            max_duration_s=max(config.measure.max_duration_s, duration_s),
        )
        config = replace(config, measure=measure)
    out = _out_dir(out_dir)
    run = GateRun(config, out, progress, executor)
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

    check_target_shapes(config, model_path)  # shape sets that cannot run: exit 2 before work
    artifacts = run.artifacts(model_path)
    parity = run.parity(model_path)
    accuracy_checks = run.accuracy_checks(parity)
    cells, latency_checks = run.latency(model_path)
    baseline_json, regression_checks = baseline_checks(run, model_path, cells, env)
    checks = (*latency_checks, *accuracy_checks, *regression_checks)
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
    report = replace(
        report,
        reports={k: str(v) for k, v in report_paths(out).items()},
        seconds=time.perf_counter() - started,
    )
    write_reports(report, out)
    return report


def _report_dir(out_dir: str | os.PathLike[str] | None) -> Path:
    return Path(out_dir if out_dir is not None else DEFAULT_OUT_DIR).expanduser()


def _out_dir(out_dir: str | os.PathLike[str] | None) -> Path:
    out = _report_dir(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the report folder ({exc.strerror})",
            where=str(out),
            hint="choose a writable `out_dir`",
        ) from exc
    if not out.is_dir():
        raise InputError("not a folder", where=str(out), hint="choose a folder for `out_dir`")
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


__all__ = ["DEFAULT_OUT_DIR", "gate"]
