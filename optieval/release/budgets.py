"""Budgets as declarative objects: a key such as ``p99_ms_max = 12`` becomes a budget whose
``check(result)`` returns a :class:`Check` (a verdict with its evidence).

Budget keys follow one rule, metric then ``_min`` or ``_max``:

* latency (checked against one bench cell): ``p50_ms_max``, ``p90_ms_max``, ``p95_ms_max``,
  ``p99_ms_max``, ``mean_ms_max``, ``throughput_min``, ``cold_start_ms_max``,
  ``memory_mb_max``, ``artifact_mb_max``;
* accuracy (checked against one output of one parity candidate): ``max_abs_max``,
  ``cosine_min``, ``snr_db_min``, ``top1_agreement_min``, ``flip_rate_max``,
  ``accuracy_drop_max`` (reference minus candidate, absolute), ``accuracy_ratio_min``
  (candidate over reference).

The verdict rule is :mod:`optieval.stats.verdict`'s: a metric with a confidence interval passes
when the whole interval lies within the budget, fails when it lies outside, and is INCONCLUSIVE
otherwise; a metric without one (cold start, memory, artifact size, max abs, cosine, SNR) is
compared as a point and labelled so. An INCONCLUSIVE check carries advice: how many samples (or
evaluation samples) would likely decide it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from optieval.stats import INTERLEAVED_METHOD, Judgement, Kind, Verdict, confidence_text, judge

Group = Literal["latency", "accuracy", "baseline", "export"]

MIB = float(2**20)

PERCENTILE_KEYS: dict[str, float] = {
    "p50_ms_max": 50.0,
    "p90_ms_max": 90.0,
    "p95_ms_max": 95.0,
    "p99_ms_max": 99.0,
}

LATENCY_KEYS: dict[str, str] = {
    "p50_ms_max": "p50 latency in milliseconds (one-sided order-statistic bounds)",
    "p90_ms_max": "p90 latency in milliseconds (one-sided order-statistic bounds)",
    "p95_ms_max": "p95 latency in milliseconds (one-sided order-statistic bounds)",
    "p99_ms_max": "p99 latency in milliseconds (one-sided order-statistic bounds)",
    "mean_ms_max": "mean latency in milliseconds (batch-means interval)",
    "throughput_min": "items per second, batch / mean latency (batch-means interval)",
    "cold_start_ms_max": "load or build plus first inference, milliseconds (point)",
    "memory_mb_max": "peak host RSS of the cell in MiB (point)",
    "artifact_mb_max": "size of the artifact the cell ran, MiB (point)",
    "max_qps_min": "highest Poisson arrival rate whose p99 interval lies under the target's "
    "p99_ms_max, queries per second (bounded by the rates tried)",
}

ACCURACY_KEYS: dict[str, str] = {
    "max_abs_max": "largest absolute difference from the reference, per output (point)",
    # The per-sample keys are judged by optieval.release.sample_checks (PerSampleBudget).
    "cosine_min": "every evaluated sample's cosine with the reference (the worst sample; "
    "point, with a one-sided bound on the share of inputs below)",
    "cosine_mean_min": "mean per-sample cosine with the reference (bootstrap)",
    "cosine_p1_min": "1st percentile of per-sample cosine (order-statistic interval)",
    "cosine_p5_min": "5th percentile of per-sample cosine (order-statistic interval)",
    "knn_agreement_min": "embeddings: nearest-neighbour agreement with the reference, "
    "recall@k (bootstrap)",
    "rel_error_p95_max": "regression: 95th percentile of per-sample relative error "
    "||c - r|| / ||r|| (order-statistic interval)",
    "snr_db_min": "signal-to-noise ratio against the reference, dB (point)",
    "top1_agreement_min": "fraction of samples whose argmax matches the reference's "
    "(Clopper-Pearson)",
    "flip_rate_max": "fraction of samples whose argmax differs from the reference's "
    "(Clopper-Pearson)",
    "accuracy_drop_max": "reference accuracy minus candidate accuracy, absolute (paired)",
    "accuracy_ratio_min": "candidate accuracy over reference accuracy (paired)",
}

LABEL_KEYS = frozenset({"accuracy_drop_max", "accuracy_ratio_min"})
"""Accuracy budgets that need labels in the evaluation data."""

CLASSIFICATION_KEYS = frozenset(
    {"top1_agreement_min", "flip_rate_max", "accuracy_drop_max", "accuracy_ratio_min"}
)
"""Accuracy budgets that exist only for classification-shaped (batch x classes) outputs."""


def split_key(key: str) -> tuple[str, Kind]:
    """``"p99_ms_max"`` -> ``("p99_ms", "max")``."""
    metric, _, kind = key.rpartition("_")
    if kind not in ("max", "min") or not metric:
        raise ValueError(f"budget key {key!r} does not end in _min or _max")
    return metric, kind  # type: ignore[return-value]


@dataclass(frozen=True)
class Check:
    """One gated check: a budget applied to one result, with its verdict and evidence.

    Attributes:
        group: ``latency``, ``accuracy``, ``baseline`` or ``export``.
        target: the target it belongs to (``"ort-cpu:int8"``), or ``"model"``.
        subject: what was measured (a cell label ``"ort-cpu:int8 b8"`` or an output
            ``"ort-cpu:int8 logits"``).
        key: the budget key (``"p99_ms_max"``).
        judgement: the verdict with value, interval, budget and one sentence of evidence.
        advice: for INCONCLUSIVE checks, what would decide it (None otherwise).
        error: True when the check could not be made because its backend failed (exit 3).
    """

    group: Group
    target: str
    subject: str
    key: str
    judgement: Judgement
    advice: str | None = None
    error: bool = False
    decision: Mapping[str, Any] | None = None
    """How it was decided (latency checks): ``bound`` (``"upper"``, ``"lower"`` or None),
    ``samples``, ``samples_to_decide`` (INCONCLUSIVE: about how many would decide it), and from
    the gate's sequential looks ``look``, ``looks``, ``look_confidence``, ``stopped_early``."""

    @property
    def verdict(self) -> Verdict:
        """The check's verdict."""
        return self.judgement.verdict

    @property
    def name(self) -> str:
        """``"ort-cpu:int8 b8 p99_ms_max"``: unique within a report."""
        return f"{self.subject} {self.key}"

    @property
    def evidence(self) -> str:
        """The evidence sentence, with the advice appended when there is any."""
        text = self.judgement.evidence
        return f"{text}; {self.advice}" if self.advice else text

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (inverse of :meth:`from_json`)."""
        return {
            "group": self.group,
            "target": self.target,
            "subject": self.subject,
            "key": self.key,
            "verdict": self.verdict.value,
            "evidence": self.evidence,
            "advice": self.advice,
            "error": self.error,
            "judgement": _finite_json(self.judgement.to_json()),
            "decision": None if self.decision is None else dict(self.decision),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        """Rebuild from :meth:`to_json` output."""
        judgement = dict(data["judgement"])
        for name in ("value", "low", "high"):
            if isinstance(judgement.get(name), str):
                judgement[name] = float(judgement[name])
        return cls(
            group=data["group"],
            target=str(data["target"]),
            subject=str(data["subject"]),
            key=str(data["key"]),
            judgement=Judgement.from_json(judgement),
            advice=data.get("advice"),
            error=bool(data.get("error", False)),
            decision=data.get("decision"),
        )


def _finite_json(data: dict[str, Any]) -> dict[str, Any]:
    # Strict JSON has no inf (an SNR of identical outputs): write it as a string.
    out = dict(data)
    for name in ("value", "low", "high"):
        value = out.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            out[name] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return out


def unmeasured(metric: str, kind: Kind, budget: float, why: str) -> Judgement:
    """An INCONCLUSIVE judgement for a metric that has no value at all."""
    sign = "<=" if kind == "max" else ">="
    return Judgement(
        metric,
        kind,
        float(budget),
        Verdict.INCONCLUSIVE,
        "point",
        None,
        None,
        None,
        None,
        f"{metric} not measured ({why}); budget {sign} {budget:g}",
    )


def failed(metric: str, kind: Kind, budget: float, why: str) -> Judgement:
    """A FAIL judgement for a check that could not be made because its cell failed."""
    sign = "<=" if kind == "max" else ">="
    return Judgement(
        metric,
        kind,
        float(budget),
        Verdict.FAIL,
        "point",
        None,
        None,
        None,
        None,
        f"{metric} not measured: {why}; budget {sign} {budget:g}",
    )


def samples_to_decide(
    value: float, low: float, high: float, budget: float, n: int, *, what: str = "samples"
) -> str:
    """Advice for an INCONCLUSIVE interval: the sample count at which an interval of this
    shape, shrinking as ``1 / sqrt(n)``, would no longer reach the budget."""
    gap = abs(value - budget)
    half = max(high - value, value - low)
    if gap == 0.0 or half <= 0.0 or n <= 0:
        return (
            f"the estimate sits on the budget: no feasible number of {what} decides it; "
            "move the budget or change the model"
        )
    needed = math.ceil(n * (half / gap) ** 2)
    return f"about {needed} {what} (now {n}) would likely decide it"


# -- latency ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyBudget:
    """A latency budget (``p99_ms_max = 40``) checked against one bench cell.

    Args:
        key: one of :data:`LATENCY_KEYS`.
        limit: the budget.
    """

    key: str
    limit: float

    @property
    def metric(self) -> str:
        """``"p99_ms"``."""
        return split_key(self.key)[0]

    @property
    def kind(self) -> Kind:
        """``"max"`` or ``"min"``."""
        return split_key(self.key)[1]

    @property
    def percentile(self) -> float | None:
        """The percentile this budget gates (99 for ``p99_ms_max``), else None."""
        return PERCENTILE_KEYS.get(self.key)

    @property
    def has_interval(self) -> bool:
        """True for percentiles, mean and throughput: measuring longer can decide them."""
        return self.key in PERCENTILE_KEYS or self.key in ("mean_ms_max", "throughput_min")

    def check(self, cell: Any, *, target: str = "", confidence: float = 0.95) -> Check:
        """Judge ``cell`` (an :class:`optieval.bench.results.Cell`) against this budget, on
        bounds at ``confidence`` (each side errs at most ``(1 - confidence) / 2``).

        ``max_qps_min`` reads the cell's max-QPS search (INCONCLUSIVE when it has none). A
        cell whose load generator could not keep its schedule (``issue_lag_ms.valid`` false)
        makes a percentile, mean or throughput check INCONCLUSIVE, never FAIL: its latencies
        measure the generator, not the backend."""
        judgement, advice, decision = self._judge(cell, confidence)
        error = cell.status != "ok"
        lag = getattr(cell, "issue_lag_ms", None) or {}
        if not error and self.has_interval and lag.get("valid") is False:
            judgement = _invalid_run(judgement, lag)
            advice = "rerun on a quieter machine, or at a lower rate"
        return Check("latency", target or f"{cell.backend}:{cell.precision}", cell_subject(cell),
                     self.key, judgement, advice, error, decision)  # fmt: skip

    def _judge(
        self, cell: Any, confidence: float
    ) -> tuple[Judgement, str | None, dict[str, Any] | None]:
        metric, kind, limit = self.metric, self.kind, self.limit
        if cell.status != "ok":
            return failed(metric, kind, limit, f"cell {cell.status}: {cell.reason}"), None, None
        if self.key == "max_qps_min":
            if not getattr(cell, "search", None):
                why = "no max-qps search in this cell"
                return unmeasured(metric, kind, limit, why), None, None
            from optieval.bench import max_qps_from_cell

            return max_qps_from_cell(cell).check(limit), None, None
        if self.has_interval:
            return self._interval(cell, confidence)
        value: float | None
        if self.key == "cold_start_ms_max":
            value = cell.cold_start_ms
        elif self.key == "memory_mb_max":
            memory = cell.memory or {}
            value = memory.get("peak_rss_mb")
        else:
            value = None if cell.artifact_bytes is None else cell.artifact_bytes / MIB
        if value is None:
            return unmeasured(metric, kind, limit, "the backend did not report it"), None, None
        return judge(metric, kind, limit, value=float(value), basis="point"), None, None

    def _interval(
        self, cell: Any, confidence: float
    ) -> tuple[Judgement, str | None, dict[str, Any] | None]:
        times = cell.times_ms
        if not times:
            return unmeasured(self.metric, self.kind, self.limit, "no samples"), None, None
        if self.percentile is not None:
            from optieval.release.latency_bounds import percentile_decision

            return percentile_decision(self.metric, self.kind, self.limit, self.percentile / 100.0,
                                       times, confidence)  # fmt: skip
        n = len(times)
        need: int | None = None
        if self.key == "mean_ms_max":
            from optieval.stats import mean_ci_batch_means, min_samples_for_mean

            value = float(sum(times) / n)
            ci = mean_ci_batch_means(times, confidence)
            low, high = (None, None) if ci is None else (ci[0], ci[1])
            need = min_samples_for_mean(times) if ci is None else None
        elif _parallel(cell):
            # Requests overlap in the concurrency, server and offline scenarios: throughput is
            # completions per second of wall time (the scenario's own estimate, at the
            # confidence the bench computed it at), not batch / mean latency.
            stored = cell.throughput or {}
            bounds = stored.get("ci") or [None, None]
            value, low, high = float(stored["items_per_s"]), bounds[0], bounds[1]
            confidence = float(stored.get("confidence") or confidence)
        else:
            from optieval.stats import min_samples_for_mean, throughput_estimate

            tp = throughput_estimate(times, batch=int(cell.batch), confidence=confidence)
            value, low, high = tp.items_per_s, tp.low, tp.high
            need = min_samples_for_mean(times) if tp.interval is None else None
        judgement = judge(self.metric, self.kind, self.limit, value=value, low=low, high=high,
                          confidence=confidence)  # fmt: skip
        advice: str | None = None
        decision: dict[str, Any] = {"bound": None, "samples": n, "samples_to_decide": None}
        if judgement.verdict is Verdict.PASS:
            decision["bound"] = "lower" if self.kind == "min" else "upper"
        elif judgement.verdict is Verdict.FAIL:
            decision["bound"] = "upper" if self.kind == "min" else "lower"
        elif low is None or high is None:
            advice = f"too few samples for an interval (now {n})"
            if need is not None:
                advice = (
                    f"about {need} samples (now {n}) would give an interval: 5 batches, each "
                    "of at least 10 samples and 10 autocorrelation times"
                )
                decision["samples_to_decide"] = need
        else:
            advice = samples_to_decide(value, low, high, self.limit, n)
            gap, half = abs(value - self.limit), max(high - value, value - low)
            if gap > 0.0 and half > 0.0:
                decision["samples_to_decide"] = math.ceil(n * (half / gap) ** 2)
        return judgement, advice, decision


def cell_subject(cell: Any) -> str:
    """A check's subject for a bench cell: its label, followed by its load scenario when that
    is not the plain single-stream loop (``"ort-cpu:fp32 b1 server qps=50"``)."""
    kind = getattr(cell, "scenario", None)
    params = getattr(cell, "scenario_params", None) or {}
    if kind in (None, "single-stream") and not params.get("idle_ms"):
        return str(cell.label)
    parts = [str(cell.label), str(kind)]
    if params.get("find_max_qps"):
        parts.append(f"max-qps p99<={params.get('p99_ms_max')}ms")
    elif kind == "server" and params.get("qps") is not None:
        parts.append(f"qps={params['qps']:g}")
    if kind == "concurrency":
        parts.append(f"n={params.get('concurrency') or 1}")
    if params.get("idle_ms"):
        parts.append(f"idle={params['idle_ms']:g}ms")
    return " ".join(parts)


def _parallel(cell: Any) -> bool:
    stored = getattr(cell, "throughput", None) or {}
    return (
        getattr(cell, "scenario", None) not in (None, "single-stream")
        and stored.get("items_per_s") is not None
    )


def _invalid_run(judgement: Judgement, lag: Mapping[str, Any]) -> Judgement:
    from dataclasses import replace

    p99 = lag.get("p99")
    late = f" (issue lag p99 {p99:.3g} ms)" if isinstance(p99, (int, float)) else ""
    if lag.get("reason"):
        late += f", {lag['reason']}"
    why = (
        f"the load generator could not keep its schedule{late}: the run is invalid, so "
        f"{judgement.verdict.value} is not trusted"
    )
    return replace(judgement, verdict=Verdict.INCONCLUSIVE,
                   evidence=f"{judgement.evidence}; {why}")  # fmt: skip


# -- accuracy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccuracyBudget:
    """An accuracy budget (``top1_agreement_min = 0.98``) checked against one output of one
    parity candidate (an :class:`optieval.parity.results.OutputParity`).

    Args:
        key: one of :data:`ACCURACY_KEYS`.
        limit: the budget.
    """

    key: str
    limit: float

    @property
    def metric(self) -> str:
        """``"top1_agreement"``."""
        return split_key(self.key)[0]

    @property
    def kind(self) -> Kind:
        """``"max"`` or ``"min"``."""
        return split_key(self.key)[1]

    def applies_to(self, output: Any) -> bool:
        """True when ``output`` has this budget's metric (classification budgets need a
        batch x classes output; accuracy budgets also need labels)."""
        if self.key in ("top1_agreement_min", "flip_rate_max"):
            return output.flip_rate_ci is not None
        if self.key == "accuracy_drop_max":
            return output.accuracy_delta is not None
        if self.key == "accuracy_ratio_min":
            return output.accuracy_ratio is not None
        return True

    def check(self, output: Any, *, candidate: str, samples: int) -> Check:
        """Judge one output of ``candidate`` (evaluated on ``samples`` samples)."""
        judgement, advice = self._judge(output, samples)
        return Check("accuracy", candidate, f"{candidate} {output.name}", self.key, judgement,
                     advice)  # fmt: skip

    def _judge(self, out: Any, samples: int) -> tuple[Judgement, str | None]:
        metric, kind, limit = self.metric, self.kind, self.limit
        if self.key in ("max_abs_max", "cosine_min", "snr_db_min"):
            value = getattr(out, metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return unmeasured(metric, kind, limit, "NaN or missing"), None
            return judge(metric, kind, limit, value=float(value), basis="point"), None
        value, low, high, confidence = self._interval(out, samples)
        if value is None:
            why = "needs labels" if self.key in LABEL_KEYS else "output is not batch x classes"
            return unmeasured(metric, kind, limit, why), None
        judgement = judge(metric, kind, limit, value=value, low=low, high=high,
                          confidence=confidence)  # fmt: skip
        advice: str | None = None
        if judgement.verdict is Verdict.INCONCLUSIVE and low is not None and high is not None:
            # The data set is fixed: measuring longer cannot help, more evaluation data can.
            advice = samples_to_decide(value, low, high, limit, samples,
                                       what="evaluation samples")  # fmt: skip
        return judgement, advice

    def _interval(
        self, out: Any, samples: int
    ) -> tuple[float | None, float | None, float | None, float | None]:
        if self.key in ("top1_agreement_min", "flip_rate_max"):
            ci = out.flip_rate_ci
            if ci is None or out.flip_rate is None:
                return None, None, None, None
            ci = _exact_flip_interval(float(out.flip_rate), samples, ci)
            if self.key == "flip_rate_max":
                return float(out.flip_rate), ci.low, ci.high, ci.confidence
            return 1.0 - float(out.flip_rate), 1.0 - ci.high, 1.0 - ci.low, ci.confidence
        if self.key == "accuracy_drop_max":
            ci = out.accuracy_delta_ci
            if out.accuracy_delta is None:
                return None, None, None, None
            drop = 0.0 - float(out.accuracy_delta)  # 0.0 - x: no "-0" for an equal accuracy
            if ci is None:
                return drop, None, None, None
            return drop, -ci.high, -ci.low, ci.confidence
        ci = out.accuracy_ratio_ci
        if out.accuracy_ratio is None:
            return None, None, None, None
        if ci is None:
            return float(out.accuracy_ratio), None, None, None
        return float(out.accuracy_ratio), ci.low, ci.high, ci.confidence


def _exact_flip_interval(flip_rate: float, samples: int, reported: Any) -> Any:
    """The gate decides flip rate and top-1 agreement on the Clopper-Pearson (exact) interval
    of ``flips / samples``, always, at the reported interval's confidence: each side errs at
    most ``alpha / 2`` at every count, so a candidate exactly at its budget is failed at most
    ``alpha / 2`` of the time (Wilson, which parity reports, errs more than that at small
    counts). Falls back to the reported interval when the flip count cannot be recovered."""
    from optieval.stats import clopper_pearson_interval

    if samples <= 0:
        return reported
    flips = round(flip_rate * samples)
    if abs(flips / samples - flip_rate) > 1e-9:
        return reported
    return clopper_pearson_interval(flips, samples, reported.confidence)


# -- baseline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionBudget:
    """``[baseline] max_slowdown``: the shared interval rule applied to the ratio of medians
    (new / old) against ``1 + max_slowdown``. The bench's descriptive verdict
    (:func:`optieval.bench.baseline.regression_verdict`: slower, faster, ...) is quoted in the
    evidence, but the gate's verdict is three-way: a run not shown to be within the allowed
    slowdown is INCONCLUSIVE, never PASS."""

    max_slowdown: float = 0.05

    def check(self, comparison: Any) -> Check:
        """Judge one :class:`optieval.bench.baseline.CellComparison`: PASS when the ratio
        interval's upper end is at or under ``1 + max_slowdown``, FAIL when its lower end is
        above it, INCONCLUSIVE otherwise, and INCONCLUSIVE when there is no interval."""
        ratio = comparison.ratio
        limit = 1.0 + self.max_slowdown
        level = confidence_text(ratio.confidence)
        if not ratio.supported or ratio.low is None or ratio.high is None:
            verdict = Verdict.INCONCLUSIVE
            interval = f"no {level} interval (too few samples, or a zero latency)"
            why = "no interval: INCONCLUSIVE, measure more samples in both runs"
        elif ratio.high <= limit:
            verdict = Verdict.PASS
            interval = f"{level} interval [{ratio.low:.4g}, {ratio.high:.4g}]"
            why = f"the whole interval is at or under {limit:g}"
        elif ratio.low > limit:
            verdict = Verdict.FAIL
            interval = f"{level} interval [{ratio.low:.4g}, {ratio.high:.4g}]"
            why = f"the whole interval is above {limit:g}"
        else:
            verdict = Verdict.INCONCLUSIVE
            interval = f"{level} interval [{ratio.low:.4g}, {ratio.high:.4g}]"
            why = f"the interval straddles {limit:g}"
        medians = f"{ratio.new_median_ms:.4g} ms vs {ratio.old_median_ms:.4g} ms"
        if ratio.method == INTERLEAVED_METHOD:
            # The point is the pairs' geometric mean, not the pooled medians' ratio.
            medians = f"geometric mean over {ratio.blocks_new} interleaved pairs of blocks; " + (
                f"pooled medians {medians}"
            )
        evidence = (
            f"median new/old = {ratio.ratio:.4g} ({medians}), {interval}: "
            f"{comparison.verdict.value}; passes only when the whole interval is at or under "
            f"{limit:g}: {why}"
        )
        judgement = Judgement(
            "median_ratio",
            "max",
            limit,
            verdict,
            "interval",
            ratio.ratio,
            ratio.low,
            ratio.high,
            ratio.confidence,
            evidence,
        )
        return Check("baseline", f"{comparison.backend}:{comparison.precision}",
                     _baseline_subject(comparison), "max_slowdown", judgement)  # fmt: skip


def _baseline_subject(comparison: Any) -> str:
    return f"{comparison.backend}:{comparison.precision} b{comparison.batch}"


__all__ = [
    "ACCURACY_KEYS",
    "LATENCY_KEYS",
    "AccuracyBudget",
    "Check",
    "LatencyBudget",
    "RegressionBudget",
    "cell_subject",
    "samples_to_decide",
    "split_key",
]
