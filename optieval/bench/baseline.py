"""Regression against a baseline: the verdict rule of the bench issue applied to the ratio of
new to old median latency, and the pairing of bench cells.

The ratio and its interval are :func:`optieval.stats.median_ratio_ci` (Price & Bonett 2002,
distribution-free, nearest-rank medians, so the ratio's point is ``new p50 / old p50`` as
printed). Iterations within a run are often correlated (the interval allows for it) and two
runs on one machine differ by more than their samples show (memory layout, clocks, neighbours):
when a cell was measured in blocks, each in its own process (``block_medians_ms``), the spread of
the block medians widens the interval (a Welch t interval on their logs; a baseline without
blocks is taken to vary between runs as one block of the new run does). When the baseline's
model was measured again in this run, block by block beside the new one
(:func:`baseline_model_at_hand`, ``benchmark(baseline_model=)``), a cell is judged on those
pairs instead (:func:`optieval.stats.interleaved_ratio_ci`): slow changes of the machine cancel
within a pair. The ``threshold`` (default 5%) is the change that counts as a regression.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from optieval.errors import InputError
from optieval.stats import RATIO_METHOD, RatioEstimate, interleaved_ratio_ci, median_ratio_ci

DEFAULT_THRESHOLD = 0.05

DEFAULT_ENV_IGNORE: frozenset[str] = frozenset(
    {
        "timestamp",
        "time",
        "date",
        "created",
        "created_at",
        "started_at",
        "finished_at",
        "duration_s",
        "pid",
        "load_average",
        "loadavg",
        "load",
    }
)
"""Last path components of ``env`` keys that differ between any two runs and are not reported
as environment differences."""


class Regression(str, Enum):
    """Verdict of a baseline comparison (a ``str`` subclass: compares equal to its value)."""

    SLOWER = "slower"
    FASTER = "faster"
    NO_CHANGE = "no significant change"
    POSSIBLE_REGRESSION = "possible regression"


def regression_verdict(
    ratio_ci: RatioEstimate | tuple[float, float] | None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Regression:
    """Apply the bench issue's rule to a ratio interval (new / old median).

    * ``slower``: the whole interval lies above ``1 + threshold``;
    * ``faster``: the whole interval lies below ``1 - threshold``;
    * ``possible regression``: the whole interval lies above 1 but reaches down to
      ``1 + threshold`` or below (significant, smaller than the threshold);
    * ``no significant change`` otherwise, including when there is no interval.

    Args:
        ratio_ci: a :class:`RatioEstimate`, a ``(low, high)`` pair, or None.
        threshold: relative change that counts, in [0, 1); default 0.05.

    Raises:
        InputError: threshold out of range, or low > high.
    """
    if not 0.0 <= threshold < 1.0:
        raise InputError(
            f"threshold {threshold!r} is not inside [0, 1)",
            where="max_slowdown",
            hint="a fraction such as 0.05 for 5%",
        )
    interval = ratio_ci.interval if isinstance(ratio_ci, RatioEstimate) else ratio_ci
    if interval is None:
        return Regression.NO_CHANGE
    low, high = float(interval[0]), float(interval[1])
    if low > high:
        raise InputError(f"interval [{low}, {high}] has low > high", where="ratio interval")
    if low > 1.0 + threshold:
        return Regression.SLOWER
    if high < 1.0 - threshold:
        return Regression.FASTER
    if low > 1.0:
        return Regression.POSSIBLE_REGRESSION
    return Regression.NO_CHANGE


# --------------------------------------------------------------------------------------------
# Pairing cells

CellKey = tuple[str, str, int, str]


def _shape_key(shapes: Any) -> str:
    """A canonical text for a cell's ``shapes`` (dict name -> dims, list of dims, or None)."""
    if shapes is None:
        return ""
    if isinstance(shapes, Mapping):
        items = sorted((str(k), [int(d) for d in v]) for k, v in shapes.items())
        return ",".join(f"{k}:{'x'.join(map(str, dims))}" for k, dims in items)
    if isinstance(shapes, (list, tuple)):
        if all(isinstance(d, (int, np.integer)) for d in shapes):
            return "x".join(str(int(d)) for d in shapes)
        return ",".join(_shape_key(s) for s in shapes)
    return json.dumps(shapes, sort_keys=True)


def _scenario_key(cell: Mapping[str, Any]) -> str:
    """The load scenario and its rate or concurrency, for cells that are not plain single-stream
    runs (which files written before scenarios existed hold): a server cell at 200 qps is a
    different experiment from a single-stream one of the same shapes."""
    scenario = cell.get("scenario")
    if scenario in (None, "single-stream") and not (cell.get("scenario_params") or {}).get(
        "idle_ms"
    ):
        return ""
    params = cell.get("scenario_params") or {}
    parts = [str(scenario)] + [
        f"{name}={params[name]}"
        for name in ("concurrency", "qps", "streams", "idle_ms")
        if params.get(name) is not None
    ]
    return " ".join(parts)


def cell_key(cell: Mapping[str, Any]) -> CellKey:
    """Return ``(backend, precision, batch, shapes)`` of a bench cell, shapes as canonical text
    (followed by the load scenario when the cell is not a plain single-stream run).

    Raises:
        InputError: the cell lacks backend, precision or batch.
    """
    try:
        shapes = _shape_key(cell.get("shapes"))
        scenario = _scenario_key(cell)
        return (
            str(cell["backend"]),
            str(cell["precision"]),
            int(cell["batch"]),
            f"{shapes} [{scenario}]" if scenario else shapes,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"a result cell lacks backend, precision or batch ({exc})",
            where="baseline",
            hint="pass a bench JSON or a gate report.json",
        ) from exc


def cell_label(key: CellKey) -> str:
    """``"ort-cpu:fp16 batch 8 x:8x3x224x224"``."""
    backend, precision, batch, shapes = key
    text = f"{backend}:{precision} batch {batch}"
    return f"{text} {shapes}" if shapes else text


@dataclass(frozen=True)
class CellComparison:
    """One paired cell: the ratio of medians and its verdict.

    Attributes:
        backend, precision, batch, shapes (canonical text: ``"x:8x3x224x224"``).
        ratio: :class:`RatioEstimate`.
        verdict: :class:`Regression`.
    """

    backend: str
    precision: str
    batch: int
    shapes: str
    ratio: RatioEstimate
    verdict: Regression

    @property
    def label(self) -> str:
        """Human label of the cell."""
        return cell_label((self.backend, self.precision, self.batch, self.shapes))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "backend": self.backend,
            "precision": self.precision,
            "batch": self.batch,
            "shapes": self.shapes,
            "ratio": self.ratio.to_json(),
            "verdict": self.verdict.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellComparison:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                backend=str(data["backend"]),
                precision=str(data["precision"]),
                batch=int(data["batch"]),
                shapes=str(data["shapes"]),
                ratio=RatioEstimate.from_json(data["ratio"]),
                verdict=Regression(data["verdict"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed cell comparison ({exc})", where="baseline") from exc


@dataclass(frozen=True)
class BaselineComparison:
    """The new run against a baseline, cell by cell.

    Attributes:
        cells: the paired cells that both runs measured, in the new run's order.
        unmatched_new: labels of new cells with no counterpart in the baseline.
        unmatched_old: labels of baseline cells with no counterpart in the new run.
        not_compared: ``(label, reason)`` for paired cells lacking samples on a side (skipped,
            error, no ``times_ms``).
        env_differences: dotted ``env`` keys whose values differ (or exist on one side only).
        threshold: the verdict threshold used.
        confidence: the intervals' confidence.
    """

    cells: tuple[CellComparison, ...]
    unmatched_new: tuple[str, ...]
    unmatched_old: tuple[str, ...]
    not_compared: tuple[tuple[str, str], ...]
    env_differences: tuple[str, ...]
    threshold: float
    confidence: float

    @property
    def slower(self) -> tuple[CellComparison, ...]:
        """The cells judged ``slower`` (each one means exit 1)."""
        return tuple(c for c in self.cells if c.verdict is Regression.SLOWER)

    @property
    def any_slower(self) -> bool:
        """True when any cell is ``slower``."""
        return bool(self.slower)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (inverse of :meth:`from_json`)."""
        return {
            "cells": [c.to_json() for c in self.cells],
            "unmatched_new": list(self.unmatched_new),
            "unmatched_old": list(self.unmatched_old),
            "not_compared": [[label, reason] for label, reason in self.not_compared],
            "env_differences": list(self.env_differences),
            "threshold": self.threshold,
            "confidence": self.confidence,
            "method": RATIO_METHOD,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineComparison:
        """Rebuild from :meth:`to_json` output."""
        try:
            return cls(
                cells=tuple(CellComparison.from_json(c) for c in data["cells"]),
                unmatched_new=tuple(str(s) for s in data["unmatched_new"]),
                unmatched_old=tuple(str(s) for s in data["unmatched_old"]),
                not_compared=tuple((str(a), str(b)) for a, b in data["not_compared"]),
                env_differences=tuple(str(s) for s in data["env_differences"]),
                threshold=float(data["threshold"]),
                confidence=float(data["confidence"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed baseline comparison ({exc})", where="baseline") from exc


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def env_differences(
    new_env: Mapping[str, Any] | None,
    old_env: Mapping[str, Any] | None,
    *,
    ignore: Collection[str] = DEFAULT_ENV_IGNORE,
) -> tuple[str, ...]:
    """Name the ``env`` keys (dotted paths into nested dicts, sorted) whose values differ or
    exist on one side only; keys whose last component is in ``ignore`` are skipped."""
    new_flat: dict[str, Any] = {}
    old_flat: dict[str, Any] = {}
    _flatten(dict(new_env or {}), "", new_flat)
    _flatten(dict(old_env or {}), "", old_flat)
    keys = set(new_flat) | set(old_flat)
    return tuple(
        sorted(
            k
            for k in keys
            if k
            and k.rsplit(".", 1)[-1] not in ignore
            and (k not in new_flat or k not in old_flat or new_flat[k] != old_flat[k])
        )
    )


def _samples_or_reason(cell: Mapping[str, Any], side: str) -> tuple[Any, str | None]:
    status = cell.get("status", "ok")
    if status != "ok":
        return None, f"{side} cell is {status}"
    times = cell.get("times_ms")
    if times is None or isinstance(times, (str, bytes, Mapping)):
        return None, f"{side} cell has no times_ms"
    try:
        arr = np.asarray(times, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None, f"{side} cell's times_ms are not numbers"
    if arr.size == 0:
        return None, f"{side} cell has no times_ms"
    return arr, None


def _block_medians(cell: Mapping[str, Any]) -> list[float] | None:
    """The cell's per-block (per-process) medians, or None in files written before blocks or
    when the list is malformed (the comparison then has no between-run estimate from it)."""
    blocks = cell.get("block_medians_ms")
    if not isinstance(blocks, (list, tuple)):
        return None
    try:
        return [float(b) for b in blocks]
    except (TypeError, ValueError):
        return None


_SETUP_KEYS = ("optieval", "python", "os", "machine", "hostname", "versions")


def _setup(env: Mapping[str, Any] | None) -> dict[str, Any]:
    """What of an ``env`` fingerprint names the software and hardware (not the moment: load,
    clocks): GPUs by name and driver."""
    env = dict(env or {})
    setup = {k: env.get(k) for k in _SETUP_KEYS}
    cpu = env.get("cpu")
    setup["cpu"] = cpu.get("model") if isinstance(cpu, Mapping) else None
    gpus = env.get("gpus")
    setup["gpus"] = {
        str(i): f"{g.get('name')} (driver {g.get('driver_version')})"
        for i, g in enumerate(gpus if isinstance(gpus, list) else [])
        if isinstance(g, Mapping)
    }
    return setup


def setup_differences(
    new_env: Mapping[str, Any] | None, old_env: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The dotted keys in which two runs' software or hardware differ (versions, CPU model,
    host, GPU names and drivers), ignoring what changes from moment to moment (load, clocks)."""
    return env_differences(_setup(new_env), _setup(old_env), ignore=())


def baseline_model_at_hand(
    baseline: str | os.PathLike[str],
    env: Mapping[str, Any],
    *,
    blocks: int = 2,
    local: bool = True,
    required: bool = False,
    where: str = "interleave",
) -> tuple[Path | None, str]:
    """Whether a baseline's model can be measured again beside a new run, so that both see the
    same machine (:func:`optieval.stats.interleaved_ratio_ci`): ``(path, why)`` when its file is
    where the baseline says, unchanged (same SHA-256), the baseline ran with this software and
    hardware (``env``, this run's fingerprint), the run measures in two or more ``blocks`` and
    its cells run here (``local``); ``(None, why not)`` otherwise, when the comparison is with
    the baseline's recorded samples.

    Raises:
        InputError (where the file): an unreadable baseline; (where ``where``) a ``required``
            interleaving that cannot be done, saying why.
    """
    path, why = _model_at_hand(baseline, env)
    if path is not None and blocks < 2:
        path, why = None, "one block a cell: comparing with the baseline's recorded samples"
    if path is not None and not local:
        path, why = None, "cells run elsewhere: comparing with the baseline's recorded samples"
    if required and path is None:
        raise InputError(f"cannot interleave: {why}", where=where)
    return path, why


def _model_at_hand(
    baseline: str | os.PathLike[str], env: Mapping[str, Any]
) -> tuple[Path | None, str]:
    from optieval.bench.results import load_baseline
    from optieval.core import sha256_file

    _, old_env, old_model = load_baseline(Path(baseline))
    recorded = old_model.get("path")
    if not recorded:
        return None, "the baseline does not name its model; comparing with its recorded samples"
    path = Path(str(recorded))
    if not path.is_file():
        return None, (
            f"the baseline's model {path} is not here; comparing with its recorded samples"
        )
    if old_model.get("sha256") and sha256_file(path) != old_model["sha256"]:
        return None, (
            f"the baseline's model {path} changed since the baseline was measured; comparing "
            "with its recorded samples"
        )
    differ = setup_differences(env, old_env)
    if differ:
        return None, (
            "the baseline ran with other software or hardware ("
            + ", ".join(differ[:6])
            + "); comparing with its recorded samples, which is what such a comparison asks"
        )
    return path, (
        f"measuring the baseline's model {path.name} again, in blocks alternating with this "
        "one's, so that both see the same machine"
    )


def _blocks(cell: Mapping[str, Any]) -> list[Any] | None:
    """The cell's samples split into its blocks (``block_samples``), or None without two."""
    counts = cell.get("block_samples")
    times = cell.get("times_ms")
    if not isinstance(counts, list) or len(counts) < 2 or not isinstance(times, list):
        return None
    if sum(int(c) for c in counts) != len(times):
        return None
    bounds = np.cumsum([int(c) for c in counts])[:-1]
    return list(np.split(np.asarray(times, dtype=np.float64), bounds))


def compare_to_baseline(
    new_cells: Iterable[Mapping[str, Any]],
    old_cells: Iterable[Mapping[str, Any]],
    *,
    new_env: Mapping[str, Any] | None = None,
    old_env: Mapping[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = 0.95,
    ignore_env_keys: Collection[str] = DEFAULT_ENV_IGNORE,
    interleaved: Iterable[Mapping[str, Any]] = (),
) -> BaselineComparison:
    """Pair bench cells by (backend, precision, batch, shapes) and judge each pair.

    Args:
        new_cells: the new run's cells (dicts in the bench JSON cell shape: ``backend``,
            ``precision``, ``batch``, ``shapes``, optional ``status``, ``times_ms``,
            ``block_medians_ms``).
        old_cells: the baseline's cells, same shape (a bench JSON's ``results`` or a gate
            report's cells).
        new_env, old_env: the two runs' ``env`` fingerprints, to name what differs.
        threshold: see :func:`regression_verdict`; default 0.05.
        confidence: of the ratio intervals; default 0.95.
        ignore_env_keys: ``env`` key names never reported as differences.
        interleaved: the baseline's model measured again in this run, block by block beside
            the new cells (``benchmark(baseline_model=...)``): a cell found here is judged on
            its paired blocks (:func:`optieval.stats.interleaved_ratio_ci`) instead of the
            recorded one.

    Returns:
        A :class:`BaselineComparison`.

    Raises:
        InputError (where ``baseline``): no cell key is shared; a cell lacks its key fields;
            malformed ``times_ms``.
    """
    regression_verdict(None, threshold)  # validates the threshold before any work
    new_by_key: dict[CellKey, Mapping[str, Any]] = {}
    for cell in new_cells:
        new_by_key.setdefault(cell_key(cell), cell)
    old_by_key: dict[CellKey, Mapping[str, Any]] = {}
    for cell in old_cells:
        old_by_key.setdefault(cell_key(cell), cell)
    again = {cell_key(c): c for c in interleaved if c.get("status", "ok") == "ok"}
    shared = [k for k in new_by_key if k in old_by_key]
    if not shared:
        raise InputError(
            "the baseline shares no cell (backend, precision, batch, shapes) with this run",
            where="baseline",
            hint=(
                f"this run has {', '.join(cell_label(k) for k in new_by_key) or 'no cells'}; "
                f"the baseline has {', '.join(cell_label(k) for k in old_by_key) or 'no cells'}"
            ),
        )
    compared: list[CellComparison] = []
    not_compared: list[tuple[str, str]] = []
    for key in shared:
        new_times, new_reason = _samples_or_reason(new_by_key[key], "new")
        old_times, old_reason = _samples_or_reason(old_by_key[key], "baseline")
        reason = new_reason or old_reason
        if reason is not None:
            not_compared.append((cell_label(key), reason))
            continue
        rerun = again.get(key)
        paired = None if rerun is None else (_blocks(new_by_key[key]), _blocks(rerun))
        try:
            if paired is not None and paired[0] and paired[1] and len(paired[0]) == len(paired[1]):
                ratio = interleaved_ratio_ci(paired[0], paired[1], confidence)
            else:
                ratio = median_ratio_ci(
                    new_times,
                    old_times,
                    confidence,
                    new_blocks=_block_medians(new_by_key[key]),
                    old_blocks=_block_medians(old_by_key[key]),
                )
        except InputError as exc:
            raise InputError(
                f"{cell_label(key)}: {exc.message}", where="baseline", hint=exc.hint
            ) from exc
        compared.append(
            CellComparison(
                backend=key[0],
                precision=key[1],
                batch=key[2],
                shapes=key[3],
                ratio=ratio,
                verdict=regression_verdict(ratio, threshold),
            )
        )
    return BaselineComparison(
        cells=tuple(compared),
        unmatched_new=tuple(cell_label(k) for k in new_by_key if k not in old_by_key),
        unmatched_old=tuple(cell_label(k) for k in old_by_key if k not in new_by_key),
        not_compared=tuple(not_compared),
        env_differences=env_differences(new_env, old_env, ignore=ignore_env_keys),
        threshold=float(threshold),
        confidence=float(confidence),
    )


__all__ = [
    "DEFAULT_ENV_IGNORE",
    "DEFAULT_THRESHOLD",
    "BaselineComparison",
    "CellComparison",
    "Regression",
    "baseline_model_at_hand",
    "cell_key",
    "cell_label",
    "compare_to_baseline",
    "env_differences",
    "regression_verdict",
    "setup_differences",
]
