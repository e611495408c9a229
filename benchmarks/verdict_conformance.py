"""Verdict conformance: does every check kind keep its error rates?

Simulates each check kind of ``optieval gate`` on synthetic data whose true value is known, and
judges it with optieval's own decision functions (``LatencyBudget.check``,
``RegressionBudget.check`` on ``compare_to_baseline``, ``AccuracyBudget.check``, the detection
budgets' ``budget_value`` and ``judge`` on the paired bootstrap over images), latency checks
through the gate's sequential looks (``optieval.stats.look_plan``: each look adds samples and is
judged at ``1 - alpha / looks``). For each check kind, distribution and truth it prints:

* ``P(PASS)``, ``P(FAIL)`` and the decided share;
* the false rate that matters: at the budget, a PASS is false when the true value is a hair
  over the budget and a FAIL is false when it is a hair under (both are printed, ``at+`` and
  ``at-``); at 0.8x a FAIL is false, at 1.25x a PASS is;
* mean samples to a verdict (latency: samples when measuring stopped).

For ``_max`` budgets "0.8x" is a true value at 80% of the budget (should PASS), "1.25x" at 125%
(should FAIL). For ratios (baseline slowdown, accuracy ratio) the factor scales the distance
from 1: a slowdown of 0.8 x 5% should PASS ``max_slowdown = 0.05``.

Latency distributions (milliseconds): lognormal (sigma 1), bimodal (90% at 1 ms, 10% at 3 ms),
Pareto tail (1 + 0.5 Lomax(3): finite variance, infinite skewness), AR(1) (lognormal sigma 0.5
driven by a Gaussian AR(1) with rho 0.9) and clock-quantized (lognormal sigma 0.5 rounded up to a
0.05 ms tick). Each is scaled to the model speed: ``fast`` (5 ms scale: a few thousand samples
in 30 s; faster models only add samples) and ``slow`` (80 ms scale: a few hundred in 30 s).

Run::

    python benchmarks/verdict_conformance.py --reps 300      # the full table
    python benchmarks/verdict_conformance.py --reps 200 --only p99_ms_max
    python benchmarks/verdict_conformance.py --reps 150 --only map_drop_max   # ~25 min

The ``map_drop_max`` rows are slow (a bootstrap of 1000 resamples per replication, about 3 s on
one core): a full ``--reps 300`` run spends an extra hour on them.

The quick seeded subset runs in ``tests/stats/test_conformance.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optieval.bench import Cell, compare_to_baseline
from optieval.release.budgets import AccuracyBudget, LatencyBudget, RegressionBudget
from optieval.stats import (
    MIN_LOOK_S,
    Verdict,
    look_plan,
    min_samples_for_mean,
    paired_difference_interval,
    paired_ratio_interval,
    rank_autocorrelation_time,
    wilson_interval,
)

ALPHA_HALF = 0.025
FACTORS = ("at+", "at-", "0.8x", "1.25x")
SPEEDS = {"fast": 5.0, "slow": 80.0}  # latency scale in ms (lognormal: mean 1.65x that)


# -- latency distributions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """A latency distribution at unit scale: ``draw(rng, n)`` and its true quantile and mean."""

    name: str
    draw: Callable[[np.random.Generator, int], np.ndarray]
    quantile: Callable[[float], float]
    mean: float


_N = NormalDist()


def _lognormal(sigma: float) -> tuple[Callable[[np.random.Generator, int], np.ndarray], Any, float]:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.exp(sigma * rng.standard_normal(n))

    return draw, lambda p: math.exp(sigma * _N.inv_cdf(p)), math.exp(sigma * sigma / 2)


def _bimodal_draw(rng: np.random.Generator, n: int) -> np.ndarray:
    high = rng.random(n) < 0.1
    return np.where(high, rng.normal(3.0, 0.1, n), rng.normal(1.0, 0.05, n))


def _bimodal_quantile(p: float) -> float:
    def cdf(x: float) -> float:
        return 0.9 * _N.cdf((x - 1.0) / 0.05) + 0.1 * _N.cdf((x - 3.0) / 0.1)

    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def _ar1_draw(rng: np.random.Generator, n: int, rho: float = 0.9) -> np.ndarray:
    e = rng.standard_normal(n) * math.sqrt(1 - rho * rho)
    e[0] = rng.standard_normal()
    return np.exp(0.5 * _ar1_filter(e, rho))


def _ar1_filter(e: np.ndarray, rho: float, chunk: int = 128) -> np.ndarray:
    """``z[t] = rho * z[t-1] + e[t]`` from ``z[-1] = 0``, vectorised in chunks (within a chunk
    ``z[s+j] = rho^(j+1) z[s-1] + sum_i rho^(j-i) e[s+i]``; chunks keep ``rho^-j`` small)."""
    z = np.empty(len(e))
    powers = rho ** np.arange(chunk)
    previous = 0.0
    for start in range(0, len(e), chunk):
        seg = e[start : start + chunk]
        pw = powers[: len(seg)]
        z[start : start + len(seg)] = np.cumsum(seg / pw) * pw + previous * rho * pw
        previous = z[start + len(seg) - 1]
    return z


TICK = 0.05


def _quantized_mean() -> float:
    # E[ceil(X / t) t] for X lognormal(0, 0.5): sum over ticks of t * P(X > k t).
    total, k = 0.0, 0
    while True:
        x = k * TICK
        survive = 1.0 if x <= 0 else 1.0 - _N.cdf(math.log(x) / 0.5)
        if survive < 1e-15:
            return total
        total += TICK * survive
        k += 1


_LN1 = _lognormal(1.0)
_LN05 = _lognormal(0.5)
DISTS = {
    "lognormal": Dist("lognormal", *_LN1),
    "bimodal": Dist("bimodal", _bimodal_draw, _bimodal_quantile, 0.9 * 1.0 + 0.1 * 3.0),
    "pareto": Dist(
        "pareto",
        lambda rng, n: 1.0 + 0.5 * rng.pareto(3.0, n),
        lambda p: 1.0 + 0.5 * ((1.0 - p) ** (-1.0 / 3.0) - 1.0),
        1.25,
    ),
    "ar1": Dist("ar1", _ar1_draw, _LN05[1], _LN05[2]),
    "quantized": Dist(
        "quantized",
        lambda rng, n: np.ceil(_LN05[0](rng, n) / TICK) * TICK,
        lambda p: math.ceil(_LN05[1](p) / TICK - 1e-9) * TICK,
        _quantized_mean(),
    ),
}


# -- latency checks through the gate's sequential looks ----------------------------------------

LATENCY_KEYS = ("p50_ms_max", "p99_ms_max", "mean_ms_max", "throughput_min")


def _truth(key: str, dist: Dist, scale: float) -> float:
    if key == "mean_ms_max":
        return dist.mean * scale
    if key == "throughput_min":
        return 1000.0 / (dist.mean * scale)
    return dist.quantile(float(key[1:3]) / 100.0) * scale


def _budget(key: str, truth: float, factor: str) -> float:
    """The budget that puts ``truth`` at ``factor`` of it (``at+``: a hair over a _max
    budget or under a _min one, so the budget is broken; ``at-``: a hair inside)."""
    is_max = key.endswith("_max")
    eps = 1e-9
    if factor == "at+":
        return truth * (1 - eps) if is_max else truth * (1 + eps)
    if factor == "at-":
        return truth * (1 + eps) if is_max else truth * (1 - eps)
    f = 0.8 if factor == "0.8x" else 1.25
    return truth / f


def _should(key: str, factor: str) -> Verdict:
    """The correct verdict (PASS or FAIL) at ``factor``."""
    is_max = key.endswith("_max")
    if factor in ("at+",):
        return Verdict.FAIL
    if factor in ("at-",):
        return Verdict.PASS
    within = (factor == "0.8x") == is_max
    return Verdict.PASS if within else Verdict.FAIL


def gate_looks(
    key: str,
    budget: float,
    draw: Callable[[int], np.ndarray],
    scale_ms: float,
    *,
    duration_s: float = 3.0,
    max_duration_s: float = 30.0,
    confidence: float = 0.95,
) -> tuple[Verdict, int]:
    """Judge one simulated cell as the gate does (optieval.release.steps): looks of
    ``look_plan``, each ending at its sample count (after ``MIN_LOOK_S``) or at its time,
    samples added to the earlier ones, stopping at the first decisive look."""
    percentile = float(key[1:3]) if key.startswith("p") else 99.0
    plan = look_plan(duration_s, max_duration_s, confidence=confidence, percentile=percentile)
    check_budget = LatencyBudget(key, budget)
    state = {"times": np.empty(0), "elapsed": 0.0}

    def measure(want: int | None, cap: float) -> None:
        """Draw until ``want`` more samples (after MIN_LOOK_S) or the cumulative time ``cap``."""
        times, elapsed = state["times"], float(state["elapsed"])
        started, goal = elapsed, None if want is None else times.size + want
        while True:
            size = 4096 if goal is None else max(goal - times.size, 64)
            chunk = draw(size) * scale_ms
            ends = elapsed + np.cumsum(chunk) / 1000.0
            stop = int(np.searchsorted(ends, cap))  # index of the first end >= cap
            cut = stop + 1 if stop < chunk.size else chunk.size + 1
            if goal is not None:
                counts = np.arange(times.size + 1, times.size + chunk.size + 1)
                ready = (counts >= goal) & (ends - started >= min(MIN_LOOK_S, cap - started))
                first = int(np.argmax(ready)) if ready.any() else chunk.size
                cut = min(cut, first + 1)
            take = min(cut, chunk.size)
            times = np.concatenate([times, chunk[:take]])
            elapsed = float(ends[take - 1])
            if cut <= chunk.size:
                break
        state["times"], state["elapsed"] = times, elapsed

    verdict = Verdict.INCONCLUSIVE
    for look in range(1, plan.looks + 1):
        cap = plan.durations_s[look - 1]
        want = plan.samples_at(look)  # the first look's count; later looks come at their time
        measure(want, cap)
        if look == 1:
            # As GateRun._fill_first_look: correlated samples count as n / tau.
            for _ in range(2):
                times = state["times"]
                need = math.ceil(plan.first_samples * rank_autocorrelation_time(times))
                if key in ("mean_ms_max", "throughput_min"):
                    need = max(need, min_samples_for_mean(times))
                if times.size >= need or float(state["elapsed"]) >= cap * 0.98:
                    break
                measure(need - times.size, cap)
        times = state["times"]
        cell = Cell("sim", "fp32", 1, {}, "ok", samples=times.size, times_ms=times.tolist())
        verdict = check_budget.check(cell, confidence=plan.look_confidence).verdict
        if verdict is not Verdict.INCONCLUSIVE:
            break
    return verdict, int(state["times"].size)


# -- baseline ratio, flip rate, accuracy --------------------------------------------------------


def baseline_trial(
    rng: np.random.Generator, dist: Dist, factor: str, n: int, slowdown: float = 0.05
) -> tuple[Verdict, int]:
    """New latencies are the old ones' distribution scaled by the true ratio of medians."""
    limit = 1.0 + slowdown
    ratio = {"at+": limit * (1 + 1e-9), "at-": limit * (1 - 1e-9)}.get(factor)
    if ratio is None:
        ratio = 1.0 + slowdown * (0.8 if factor == "0.8x" else 1.25)
    if dist.name == "quantized":
        # One clock for both runs: quantize after scaling, on a tick 0.5% of the median (the
        # latency rows' 5% tick is as coarse as the budget), the median off a tick. The truth
        # is then the ratio of the quantized medians: the nearest tick on the right side.
        tick, s = 0.005, 1.0123
        base = math.ceil(s / tick)  # the old median, in ticks
        x = base * ratio
        steps = {
            "at+": math.floor(x + 1e-6) + 1,  # the first tick ratio over the limit
            "at-": math.ceil(x - 1e-6) - 1,  # the last one at or under it
            "1.25x": math.ceil(x),
            "0.8x": math.floor(x),
        }[factor]

        def clock(x: np.ndarray, r: float) -> np.ndarray:
            return np.ceil(x * s * r / tick) * tick

        # Continuous medians s and s * r_cont land on base and steps ticks.
        r_cont = (steps - 0.5) * tick / s
        old = clock(_LN05[0](rng, n), 1.0)
        new = clock(_LN05[0](rng, n), r_cont)
    else:
        old = dist.draw(rng, n)
        new = dist.draw(rng, n) * ratio
    cell = {"backend": "sim", "precision": "fp32", "batch": 1, "shapes": {}, "status": "ok"}
    comparison = compare_to_baseline(
        [{**cell, "times_ms": new.tolist()}], [{**cell, "times_ms": old.tolist()}],
        threshold=slowdown,
    )  # fmt: skip
    return RegressionBudget(slowdown).check(comparison.cells[0]).verdict, 2 * n


def flip_trial(rng: np.random.Generator, factor: str, n: int, budget: float) -> Verdict:
    p = {"at+": budget * (1 + 1e-6), "at-": budget * (1 - 1e-6)}.get(factor)
    if p is None:
        p = budget * (0.8 if factor == "0.8x" else 1.25)
    flips = int(rng.binomial(n, p))
    ci = wilson_interval(flips, n)  # what parity reports; the gate recomputes Clopper-Pearson
    out = SimpleNamespace(name="logits", flip_rate=flips / n, flip_rate_ci=ci)
    return AccuracyBudget("flip_rate_max", budget).check(out, candidate="c", samples=n).verdict


def accuracy_trial(
    rng: np.random.Generator, key: str, factor: str, n: int, budget: float
) -> Verdict:
    """Paired correctness of reference and candidate: the reference is right 90% of the time;
    the candidate loses ``b`` of those and gains ``c = 0.005`` the reference missed. The drop
    is ``b - c``; the ratio ``(0.9 - b + c) / 0.9``."""
    c = 0.005
    if key == "accuracy_drop_max":
        drop = {"at+": budget + 1e-6, "at-": budget - 1e-6}.get(factor)
        if drop is None:
            drop = budget * (0.8 if factor == "0.8x" else 1.25)
    else:  # accuracy_ratio_min: the factor scales the loss 1 - ratio
        loss = {"at+": (1 - budget) + 1e-6, "at-": (1 - budget) - 1e-6}.get(factor)
        if loss is None:
            loss = (1 - budget) * (0.8 if factor == "0.8x" else 1.25)
        drop = loss * 0.9
    b = drop + c
    u = rng.random(n)
    ref_ok = u < 0.9
    cand_ok = np.where(ref_ok, u >= b, u >= 1.0 - c)  # u in [0.9, 1): gain with prob c
    delta = paired_difference_interval(cand_ok, ref_ok)
    ratio = paired_ratio_interval(cand_ok, ref_ok)
    out = SimpleNamespace(
        name="logits",
        accuracy_delta=float(cand_ok.mean() - ref_ok.mean()),
        accuracy_delta_ci=delta,
        accuracy_ratio=float(cand_ok.mean() / ref_ok.mean()),
        accuracy_ratio_ci=ratio,
    )
    return AccuracyBudget(key, budget).check(out, candidate="c", samples=n).verdict


# -- mAP drop (detection) ------------------------------------------------------------------------
#
# Scenes of 1-3 boxes (3 classes, 10-40 px in a 100 px image); the reference finds each box with
# probability 0.9, its corners off by 6% of the box's size, scores around 0.8, plus Poisson(0.6)
# false positives per image scored 0.05-0.85. The candidate is the reference's detections with
# their corners moved by another ``t`` of the box size and their scores by ``t`` (what a lossy
# precision does): mAP@0.5:0.95 drops by a few points. The true drop of a setting is its mean
# over ``TRUTH_IMAGES`` images; the gate judges the drop on the paired percentile bootstrap over
# images it reports (``optieval.detection``'s ``bootstrap_intervals`` and ``budget_value``).

TRUTH_IMAGES = 40_000


def _scene(rng: np.random.Generator, images: int) -> Any:
    from optieval.detection.ground_truth import GroundTruth

    counts = rng.integers(1, 4, images)
    total = int(counts.sum())
    wh = rng.uniform(10.0, 40.0, (total, 2))
    xy = rng.uniform(0.0, 1.0, (total, 2)) * (100.0 - wh)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    classes = rng.integers(0, 3, total).astype(np.int64)
    return GroundTruth(boxes, classes, np.repeat(np.arange(images), counts), images)


def _reference(rng: np.random.Generator, gt: Any) -> list[Any]:
    from optieval.detection.boxes import Detections

    out = []
    for i in range(gt.images):
        boxes, classes = gt.for_image(i)
        found = rng.random(len(boxes)) > 0.1
        boxes, classes = boxes[found], classes[found]
        size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
        boxes = boxes + rng.normal(0.0, 0.06, boxes.shape) * size
        scores = np.clip(rng.normal(0.8, 0.1, len(boxes)), 0.01, 1.0)
        extra = int(rng.poisson(0.6))
        wh = rng.uniform(10.0, 40.0, (extra, 2))
        xy = rng.uniform(0.0, 1.0, (extra, 2)) * (100.0 - wh)
        out.append(Detections.make(
            np.concatenate([boxes, np.concatenate([xy, xy + wh], axis=1)]),
            np.concatenate([scores, rng.uniform(0.05, 0.85, extra)]),
            np.concatenate([classes, rng.integers(0, 3, extra)]),
        ))  # fmt: skip
    return out


def _candidate(rng: np.random.Generator, reference: list[Any], t: float) -> list[Any]:
    from optieval.detection.boxes import Detections

    out = []
    for d in reference:
        size = np.concatenate([d.boxes[:, 2:] - d.boxes[:, :2]] * 2, axis=1)
        boxes = d.boxes + rng.normal(0.0, t, d.boxes.shape) * size
        scores = np.clip(d.scores + rng.normal(0.0, t, len(d)), 0.001, 1.0)
        out.append(Detections.make(boxes, scores, d.classes))
    return out


_TRUTHS: dict[float, float] = {}


def map_truth(t: float) -> float:
    """The true mAP@0.5:0.95 drop (reference minus candidate) at degradation ``t``: measured
    once on ``TRUTH_IMAGES`` images (its standard error about 0.0003), seeded."""
    if t not in _TRUTHS:
        from optieval.detection.metrics import evaluate

        rng = np.random.default_rng(1234)
        gt = _scene(rng, TRUTH_IMAGES)
        ref = _reference(rng, gt)
        cand = _candidate(rng, ref, t)
        _TRUTHS[t] = _map(evaluate(ref, gt)) - _map(evaluate(cand, gt))
    return _TRUTHS[t]


def map_trial(
    rng: np.random.Generator, factor: str, n: int, t: float, resamples: int = 1000
) -> Verdict:
    """One gate decision on ``map_drop_max`` over ``n`` images, the budget placed by
    ``factor`` around the true drop."""
    from optieval.detection import budget_value
    from optieval.detection.metrics import bootstrap_intervals, evaluate, match_detections
    from optieval.stats import judge

    truth = map_truth(t)
    budget = {"at+": truth * (1 - 1e-9), "at-": truth * (1 + 1e-9)}.get(factor)
    if budget is None:  # "0.8x", "1.25x": the true drop at that multiple of the budget
        budget = truth / float(factor.rstrip("x"))
    gt = _scene(rng, n)
    ref = _reference(rng, gt)
    cand = _candidate(rng, ref, t)
    a, b = evaluate(ref, gt), evaluate(cand, gt)
    matches = [match_detections(r, c) for r, c in zip(ref, cand, strict=True)]
    ci = bootstrap_intervals(matches, a, b, resamples=resamples,
                             seed=int(rng.integers(2**31)))["map_delta"]  # fmt: skip
    parity = SimpleNamespace(map_delta=_map(b) - _map(a), map_delta_ci=ci)
    value, interval = budget_value(parity, "map_drop_max")  # type: ignore[arg-type]
    assert value is not None and interval is not None
    return judge("map", "max", budget, value=value, low=interval.low, high=interval.high,
                 confidence=interval.confidence).verdict  # fmt: skip


def _map(table: Any) -> float:
    from optieval.detection.metrics import MapScores, average_precisions

    return MapScores.of(average_precisions(table)).map50_95


# -- the table -----------------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    data: str
    setting: str
    factor: str
    should: Verdict
    passes: int = 0
    fails: int = 0
    reps: int = 0
    samples: int = 0

    @property
    def false_rate(self) -> float:
        wrong = self.fails if self.should is Verdict.PASS else self.passes
        return wrong / max(1, self.reps)

    @property
    def decided(self) -> float:
        return (self.passes + self.fails) / max(1, self.reps)

    @property
    def bound(self) -> float:
        """The largest false rate allowed: alpha/2 plus 3 Monte Carlo standard errors at the
        boundary; away from it only the Monte Carlo error (any error is then a bug)."""
        mc = 3.0 * math.sqrt(ALPHA_HALF * (1 - ALPHA_HALF) / max(1, self.reps))
        return ALPHA_HALF + mc

    def line(self) -> str:
        kind = "false PASS" if self.should is Verdict.FAIL else "false FAIL"
        flag = "" if self.false_rate <= self.bound else "  <-- over"
        return (
            f"| {self.kind} | {self.data} | {self.setting} | {self.factor} | {kind} "
            f"{self.false_rate:.3f} | {self.decided:.2f} | {self.samples / max(1, self.reps):.0f} |"
            f"{flag}"
        )


@dataclass(frozen=True)
class Spec:
    """One row of the table: a check kind on some data, in some setting, at one truth."""

    kind: str
    data: str
    setting: str
    factor: str


def grid(only: str | None = None) -> list[Spec]:
    """Every row of the full table (or of one check kind)."""
    out: list[Spec] = []
    for key in LATENCY_KEYS:
        out += [Spec(key, d, sp, f) for d in DISTS for sp in SPEEDS for f in FACTORS]
    out += [Spec("max_slowdown", d, f"n={n}", f) for d in DISTS for n in (300, 3000)
            for f in FACTORS]  # fmt: skip
    out += [Spec("flip_rate_max", "binomial", s, f) for s in ("n=200 b=0.02", "n=2000 b=0.01")
            for f in FACTORS]  # fmt: skip
    out += [Spec(k, "paired", s, f) for k, s in (("accuracy_drop_max", "n=1000 b=0.02"),
            ("accuracy_drop_max", "n=5000 b=0.02"), ("accuracy_ratio_min", "n=1000 b=0.98"),
            ("accuracy_ratio_min", "n=5000 b=0.98")) for f in FACTORS]  # fmt: skip
    out += [Spec("map_drop_max", "detections", s, f) for s in ("n=300 t=0.02",)
            for f in FACTORS]  # fmt: skip
    return [spec for spec in out if only in (None, spec.kind)]


def _setting(setting: str) -> dict[str, float]:
    return {k: float(v) for k, v in (part.split("=") for part in setting.split())}


def run_row(spec: Spec, reps: int, rng: np.random.Generator) -> Row:
    """Simulate ``reps`` replications of one row with optieval's decision functions."""
    ratio_like = spec.kind not in LATENCY_KEYS  # slowdown and accuracy: a _max distance
    row = Row(spec.kind, spec.data, spec.setting, spec.factor,
              _should("x_max" if ratio_like else spec.kind, spec.factor))  # fmt: skip
    for _ in range(reps):
        if spec.kind in LATENCY_KEYS:
            dist, scale = DISTS[spec.data], SPEEDS[spec.setting]
            budget = _budget(spec.kind, _truth(spec.kind, dist, scale), spec.factor)
            verdict, n = gate_looks(spec.kind, budget, lambda m, d=dist: d.draw(rng, m), scale)
        elif spec.kind == "max_slowdown":
            n_each = int(_setting(spec.setting)["n"])
            verdict, n = baseline_trial(rng, DISTS[spec.data], spec.factor, n_each)
        else:
            opts = _setting(spec.setting)
            n = int(opts["n"])
            if spec.kind == "flip_rate_max":
                verdict = flip_trial(rng, spec.factor, n, opts["b"])
            elif spec.kind == "map_drop_max":
                verdict = map_trial(rng, spec.factor, n, opts["t"], int(opts.get("r", 1000)))
            else:
                verdict = accuracy_trial(rng, spec.kind, spec.factor, n, opts["b"])
        _count(row, verdict, n)
    return row


def rows(reps: int, seed: int, only: str | None = None) -> Iterator[Row]:
    """Yield one filled :class:`Row` per check kind x data x setting x truth."""
    rng = np.random.default_rng(seed)
    for spec in grid(only):
        yield run_row(spec, reps, rng)


def _count(row: Row, verdict: Verdict, n: int) -> None:
    row.reps += 1
    row.samples += n
    row.passes += verdict is Verdict.PASS
    row.fails += verdict is Verdict.FAIL


HEADER = (
    "| check | data | setting | truth | false rate | decided | mean samples |\n"
    "| --- | --- | --- | --- | --- | --- | --- |"
)


SUMMARY_HEADER = (
    "| check | data | worst false rate at the budget | worst at 0.8x / 1.25x | decided at 0.8x "
    "| decided at 1.25x |\n| --- | --- | --- | --- | --- | --- |"
)


def summary(done: list[Row]) -> list[str]:
    """One line per check kind x data: the worst false rate at the budget (``at+``/``at-``,
    over settings), away from it, and the decided shares at 0.8x and 1.25x per setting."""
    lines = []
    keys = dict.fromkeys((r.kind, r.data) for r in done)
    for kind, data in keys:
        rows_ = [r for r in done if (r.kind, r.data) == (kind, data)]
        at = max(r.false_rate for r in rows_ if r.factor in ("at+", "at-"))
        away = max(r.false_rate for r in rows_ if r.factor in ("0.8x", "1.25x"))

        def decided(factor: str, rows_: list[Row] = rows_) -> str:
            return ", ".join(f"{r.setting} {r.decided:.2f}" for r in rows_ if r.factor == factor)

        lines.append(
            f"| {kind} | {data} | {at:.3f} | {away:.3f} | {decided('0.8x')} | {decided('1.25x')} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000, help="replications per row")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--only", default=None, help="one check kind, e.g. p99_ms_max")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"reps per row: {args.reps}, seed {args.seed}; bound: 0.025 + 3 MC standard errors")
    print(HEADER)
    over = 0
    done = []
    for row in rows(args.reps, args.seed, args.only):
        print(row.line(), flush=True)
        over += row.false_rate > row.bound
        done.append(row)
    print(f"\n{SUMMARY_HEADER}")
    print("\n".join(summary(done)))
    print(f"\n{over} rows over their bound; {time.perf_counter() - started:.0f} s")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
