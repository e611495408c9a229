"""``compare``: accuracy parity of candidates (``backend:precision``) against a reference.

Every candidate runs the same inputs as the reference (a data set, golden inputs, or seeded
generated inputs); each output is compared element-wise and, when it is classification-shaped,
by argmax and against labels (:mod:`optieval.parity.results`). A failing candidate can be
localized to the ONNX nodes where its error is born (:mod:`optieval.parity.localize`) and, for
INT8, re-quantized with those nodes kept in float until the tolerance holds
(``auto_exclude``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from optieval.errors import InputError
from optieval.parity.exclusion import ExcludeJob, run_auto_exclude
from optieval.parity.golden import Golden, save_golden
from optieval.parity.kinds import parse_output_kinds
from optieval.parity.localize import DEFAULT_LOCALIZE_SAMPLES
from optieval.parity.metrics import DEFAULT_CONFIDENCE
from optieval.parity.output_compare import compare_outputs
from optieval.parity.results import CandidateParity, OutputParity, ParityReport
from optieval.parity.runs import (
    DEFAULT_BATCH,
    GatheredInputs,
    RunCell,
    fixed_batch,
    gather_inputs,
    localize_artifact,
    manifest_warnings,
    open_backend,
    parse_cell,
    split_batches,
)
from optieval.parity.sample_groups import SampleGroups, run_grouped, sample_count
from optieval.parity.sample_metrics import DEFAULT_KNN_K
from optieval.parity.tolerances import TaskBudget, Tolerance, ToleranceSet, parse_tol

__all__ = [
    "CandidateParity",
    "OutputParity",
    "ParityReport",
    "compare",
    "parse_cell",
    "run_parity_shard",
]

DEFAULT_REFERENCE = "ort-cpu:fp32"
DEFAULT_EXCLUDE_ROUNDS = 5


def _tol_overrides(tol: Mapping[str, Tolerance] | Sequence[str] | None) -> dict[str, Tolerance]:
    if tol is None:
        return {}
    if isinstance(tol, Mapping):
        return dict(tol)
    return dict(parse_tol(t) for t in tol)


def _run(backend: Any, inputs: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Run ``backend`` over ``inputs`` in batches; concatenate outputs along axis 0."""
    parts: dict[str, list[np.ndarray]] = {}
    for feeds in split_batches(inputs, batch):
        for name, value in backend.infer(feeds).items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {
        name: np.concatenate(values, axis=0) if values[0].ndim else values[0]
        for name, values in parts.items()
    }


def _artifact(model: Path, cell: RunCell, calib: str | None) -> Path:
    if not cell.runs_onnx or cell.precision == "fp32":
        return model
    from optieval.precision import artifact_for

    return Path(artifact_for(model, cell.precision, calib=calib, backend=cell.backend))


def _run_cell(
    cell: RunCell,
    artifact: Path,
    inputs: Mapping[str, np.ndarray] | SampleGroups,
    *,
    spec: str | None,
    threads: int | None,
    batch: int | None,
    runner: Callable[..., dict[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    if isinstance(inputs, SampleGroups):
        # Each shape group in batches of its own shape; outputs back in the data's order.
        def one(group: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return _run_cell(
                cell, artifact, group, spec=spec, threads=threads, batch=batch, runner=runner
            )

        return run_grouped(one, inputs)
    if runner is not None:
        # Elsewhere (optieval.execution), in the same batches as here: the batch is
        # fixed before the inputs are split, so every sample sees the batch it sees here.
        size = batch or DEFAULT_BATCH
        return runner(cell, artifact, inputs, batch=size, spec=spec, threads=threads)
    return run_parity_shard(cell, artifact, inputs, spec=spec, threads=threads, batch=batch)


def run_parity_shard(
    cell: RunCell,
    artifact: Path,
    inputs: Mapping[str, np.ndarray],
    *,
    spec: str | None,
    threads: int | None,
    batch: int | None,
) -> dict[str, np.ndarray]:
    """The outputs of ``cell`` on ``artifact`` over ``inputs``, run here in batches of
    ``batch`` (default: the model's fixed batch, else 16) and concatenated along the sample
    axis. An executor runs it on each shard of a parity run split over a cluster
    (:meth:`optieval.execution.Executor.outputs_runner`), so every sample sees the batch it
    sees in a single run.
    """
    with open_backend(cell, artifact, spec=spec, threads=threads) as backend:
        size = batch or fixed_batch(backend.signature) or DEFAULT_BATCH
        return _run(backend, inputs, size)


def compare(
    model: str | os.PathLike[str],
    candidates: Sequence[str],
    *,
    reference: str = DEFAULT_REFERENCE,
    spec: str | None = None,
    data: str | os.PathLike[str] | None = None,
    labels: str | None = None,
    calib: str | os.PathLike[str] | None = None,
    samples: int | None = None,
    batch: int | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    tol: Mapping[str, Tolerance] | Sequence[str] | None = None,
    budget: TaskBudget | None = None,
    localize: bool = False,
    auto_exclude: bool = False,
    max_exclude_rounds: int = DEFAULT_EXCLUDE_ROUNDS,
    localize_samples: int = DEFAULT_LOCALIZE_SAMPLES,
    save_golden_dir: str | os.PathLike[str] | None = None,
    golden: str | os.PathLike[str] | None = None,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    threads: int | None = None,
    runner: Callable[..., dict[str, np.ndarray]] | None = None,
    output_kinds: Mapping[str, str] | Sequence[str] | None = None,
    knn_k: int = DEFAULT_KNN_K,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    labels_key: str | None = None,
) -> ParityReport:
    """Compare each candidate's outputs with the reference's on the same inputs.

    Args:
        model: the FP32 ONNX model (from ``optieval export``); its precision artifacts come
            from ``optieval.precision.artifacts.artifact_for`` (cached).
        candidates: ``backend:precision`` cells, e.g. ``["ort-cpu:fp16", "ort-cpu:int8"]``.
        reference: the reference cell (default ``ort-cpu:fp32``; ``torch-cpu:fp32`` runs the
            PyTorch source rebuilt from the export manifest, or from ``spec``).
        spec: model spec for a torch reference or candidate when the manifest has none.
        data: a data set (``.npz``, folder, or ``module:function``); default: seeded generated
            inputs (64 samples; a warning for INT8, where random inputs say little). Samples
            whose dynamic dimensions vary (sentences of several lengths) run grouped by shape,
            outputs judged in the data's sample order (:mod:`optieval.parity.sample_groups`).
        labels: the labels' key in ``data`` (``--labels``); adds the accuracy metrics.
        labels_key: deprecated name of ``labels`` (warns).
        calib: calibration data for INT8 artifacts (default: the precision step's).
        samples: use at most this many samples (default: all of ``data``, or 64 generated).
        batch: batch size for the runs (default: the model's fixed batch, else 16).
        atol, rtol: replace the precision's default tolerance for every output.
        tol: per-output tolerances: ``{"logits": Tolerance(...)}`` or ``["logits:1e-3:1e-2"]``.
        budget: task budgets on accuracy, argmax agreement, per-sample cosine and
            nearest-neighbour agreement (default: none).
        localize: on a failing ONNX candidate, find the nodes where the error is born.
        auto_exclude: for a failing INT8 candidate, re-quantize keeping those nodes in float,
            up to ``max_exclude_rounds`` times (implies ``localize``).
        localize_samples: samples run through the exposed graphs (default 16).
        save_golden_dir: save the reference outputs, inputs and model hash there.
        golden: compare against outputs saved by ``save_golden_dir`` instead of running the
            reference.
        seed: seed of generated inputs.
        shapes: the shapes of generated inputs, per input (batch first; the batch is
            ``batch``'s): needed when the model has dynamic dimensions beyond the batch and
            there is no ``data``, where every dimension comes from the data. Inputs left out
            follow tied dimensions (``attention_mask`` follows ``input_ids``).
        confidence: of every interval (default 0.95).
        threads: intra-op threads for the backends (default: the backend's).
        runner: runs the reference's and candidates' outputs elsewhere, e.g. sharded over a Ray
            cluster (:meth:`optieval.execution.Executor.outputs_runner`); default: here.
        output_kinds: the kind of each output (:mod:`optieval.parity.kinds`):
            ``{"emb": "embedding"}`` or ``["emb=embedding"]``; ``"*"`` or a bare kind for every
            output not named; the rest are inferred from names, shapes and values.
        knn_k: neighbours per sample for the nearest-neighbour agreement of embeddings.

    Returns:
        A :class:`ParityReport`; ``report.passed`` is False when any candidate failed (the CLI
        exits 1).

    Raises:
        InputError: bad cells, options or data; reference and candidate outputs that differ in
            names or shapes; labels of the wrong length or type; a data set missing an input;
            a golden folder from another model; a ``tol`` naming no output; an output kind that
            does not fit its output, or a budget that no output's kind has; with samples of
            several lengths, an output whose shape follows the length, ``save_golden_dir``, or
            INT8 without ``calib`` (exit 2).
        BackendUnavailable / BackendFailed: a backend cannot run here or crashed (exit 3).
    """
    from optieval.core import load_onnx, sha256_file, signature_from_onnx

    model_path = Path(model)
    if labels_key is not None:
        import warnings as py_warnings

        py_warnings.warn("compare(labels_key=...) is deprecated; pass labels=...",
                         DeprecationWarning, stacklevel=2)  # fmt: skip
        if labels is not None and labels != labels_key:
            raise InputError("`labels` and `labels_key` disagree", where="labels",
                             hint="pass `labels` only")  # fmt: skip
        labels = labels_key
    if not candidates:
        raise InputError(
            "no candidate to compare", where="candidates", hint="e.g. `candidates` ort-cpu:int8"
        )
    if golden is not None and save_golden_dir is not None:
        raise InputError("`golden` and `save_golden_dir` exclude each other", where="golden")
    if batch is not None and batch < 1:
        raise InputError(f"batch {batch} must be at least 1", where="batch")
    if knn_k < 1:
        raise InputError(f"`knn_k` {knn_k} must be at least 1", where="knn_k")
    kinds = parse_output_kinds(output_kinds)
    ref_cell = parse_cell(reference, where="reference")
    cells = [parse_cell(c) for c in candidates]
    overrides = _tol_overrides(tol)
    budget = budget or TaskBudget()
    auto_exclude_on = auto_exclude
    localize = localize or auto_exclude

    model_proto = load_onnx(model_path)
    signature = signature_from_onnx(model_proto)
    output_names = [o.name for o in signature.outputs]
    ToleranceSet(per_output=overrides).check_outputs(output_names)
    unknown = sorted(set(kinds) - set(output_names) - {"*"})
    if unknown:
        raise InputError(
            f"the model has no output called {', '.join(unknown)}",
            where="output_kinds",
            hint=f"the outputs are {', '.join(output_names)}",
        )
    model_sha = sha256_file(model_path)
    warnings = manifest_warnings(model_path)
    calib_from_data = (
        calib is None and data is not None and any(c.precision == "int8" for c in cells)
    )
    if calib_from_data:
        # Calibrating on the evaluation data flatters INT8; say so rather than refuse.
        calib = data
        warnings.append("no `calib`: INT8 calibrated on the `data` samples it is evaluated on")

    given = gather_inputs(
        signature,
        model_sha256=model_sha,
        data=data,
        labels_key=labels,
        samples=samples,
        golden=golden,
        seed=seed,
        shapes=shapes,
    )
    inputs: Mapping[str, np.ndarray] | SampleGroups = given.feeds
    run_batch = batch or fixed_batch(signature)
    fixed = fixed_batch(signature)
    count = given.samples
    if given.groups is not None:
        # Each shape group runs in batches of its own shape (see parity.sample_groups).
        _check_grouped(given.groups, fixed, save_golden_dir, calib_from_data)
    elif fixed is not None and count % fixed:
        keep = count - count % fixed
        if keep == 0:
            raise InputError(
                f"{count} samples do not fill one batch of {fixed} (the model's fixed batch)",
                where=str(data or golden or "samples"),
                hint="provide more samples, or re-export with a dynamic batch",
            )
        warnings.append(
            f"the model's batch is fixed at {fixed}: using the first {keep} of {count} samples"
        )
        inputs = {k: v[:keep] for k, v in given.inputs.items()}
        kept_labels = None if given.labels is None else given.labels[:keep]
        kept_golden = given.golden
        if kept_golden is not None:
            kept_golden = replace(
                kept_golden, outputs={k: v[:keep] for k, v in kept_golden.outputs.items()}
            )
        given = GatheredInputs(inputs, kept_labels, given.source, kept_golden)
    if given.golden is not None:
        ref_outputs = dict(given.golden.outputs)
        ref_label = given.golden.reference or ref_cell.label
    else:
        ref_artifact = _artifact(model_path, ref_cell, str(calib) if calib else None)
        ref_outputs = _run_cell(
            ref_cell,
            ref_artifact,
            inputs,
            spec=spec,
            threads=threads,
            batch=run_batch,
            runner=runner,
        )
        ref_label = ref_cell.label
        if save_golden_dir is not None:
            save_golden(
                save_golden_dir,
                Golden(
                    model_sha,
                    ref_label,
                    dict(given.inputs),
                    ref_outputs,
                    given.labels,
                    given.source,
                ),
            )

    results = []
    for cell in cells:
        results.append(
            _compare_cell(
                cell,
                model_path=model_path,
                model_proto=model_proto,
                inputs=inputs,
                given=given,
                ref_outputs=ref_outputs,
                ref_label=ref_label,
                tolerances=ToleranceSet(cell.precision, atol, rtol, overrides),
                budget=budget,
                calib=str(calib) if calib else None,
                spec=spec,
                threads=threads,
                batch=run_batch,
                confidence=confidence,
                localize=localize,
                auto_exclude=auto_exclude_on,
                max_exclude_rounds=max_exclude_rounds,
                localize_samples=localize_samples,
                runner=runner,
                output_kinds=kinds,
                knn_k=knn_k,
            )
        )
    return ParityReport(
        model=str(model_path),
        model_sha256=model_sha,
        reference=ref_label,
        results=tuple(results),
        warnings=tuple(warnings),
    )


def _check_grouped(
    groups: SampleGroups, fixed: int | None, save_golden_dir: Any, calib_from_data: bool
) -> None:
    """Refuse what grouped samples cannot do: a fixed batch that a group does not fill whole,
    a golden folder (one array per input), INT8 calibrated on them (calibration takes samples
    of one shape)."""
    if calib_from_data:
        raise InputError(
            "INT8 calibration takes samples of one length, and the `data` samples differ in "
            f"length ({groups.describe()}); with no `calib`, INT8 would calibrate on them",
            where="calib",
            hint="pass `calib`: data of one length (padded, marking the padding)",
        )
    if fixed is not None:
        sizes = [int(p.shape[0]) for p in groups.positions]
        if any(n % fixed for n in sizes):
            raise InputError(
                f"the model's batch is fixed at {fixed} and the samples differ in length: "
                f"shape groups of {', '.join(map(str, sizes))} samples do not fill whole batches",
                where=groups.source,
                hint="re-export with a dynamic batch, or pad the samples to one length",
            )
    if save_golden_dir is not None:
        raise InputError(
            "a golden folder holds one array per input; these samples differ in length",
            where="save_golden_dir",
            hint="save golden outputs from data of one length (pad every sample to one size)",
        )


def _compare_cell(
    cell: RunCell,
    *,
    model_path: Path,
    model_proto: Any,
    inputs: Mapping[str, np.ndarray] | SampleGroups,
    given: GatheredInputs,
    ref_outputs: Mapping[str, np.ndarray],
    ref_label: str,
    tolerances: ToleranceSet,
    budget: TaskBudget,
    calib: str | None,
    spec: str | None,
    threads: int | None,
    batch: int | None,
    confidence: float,
    localize: bool,
    auto_exclude: bool,
    max_exclude_rounds: int,
    localize_samples: int,
    runner: Callable[..., dict[str, np.ndarray]] | None = None,
    output_kinds: Mapping[str, str] | None = None,
    knn_k: int = DEFAULT_KNN_K,
) -> CandidateParity:
    warnings: list[str] = []
    if cell.precision == "int8" and given.source.startswith("generated"):
        warnings.append(
            "INT8 compared on random inputs: its error depends on the data it was calibrated "
            "for, so these numbers say little; pass `data`"
        )
    artifact = _artifact(model_path, cell, calib)
    cand_outputs = _run_cell(
        cell, artifact, inputs, spec=spec, threads=threads, batch=batch, runner=runner
    )
    outputs = compare_outputs(
        ref_outputs,
        cand_outputs,
        tolerances=tolerances,
        labels=given.labels,
        budget=budget,
        confidence=confidence,
        reference_label=ref_label,
        candidate_label=cell.label,
        output_kinds=output_kinds,
        knn_k=knn_k,
    )
    passed = all(o.passed for o in outputs)
    samples = sample_count(inputs)
    result = CandidateParity(
        candidate=cell.label,
        reference=ref_label,
        passed=passed,
        samples=samples,
        outputs=outputs,
        artifact=str(artifact),
        inputs=given.source,
        budget=budget,
    )
    if passed or not localize:
        return replace(result, warnings=tuple(warnings))
    if not cell.runs_onnx:
        warnings.append(f"`localize` needs an ONNX backend; {cell.backend} runs PyTorch")
        return replace(result, warnings=tuple(warnings))
    loc_batch = batch or DEFAULT_BATCH
    loc = localize_artifact(
        model_proto, artifact, inputs, tolerances, loc_batch, localize_samples, outputs
    )
    if not loc.first_bad_nodes:
        warnings.append(
            "localization found no node where the error jumps past tolerance "
            "(it builds up gradually, or lies in the backend, not the graph)"
        )
    result = replace(result, localization=loc)
    if auto_exclude and cell.precision == "int8":

        def run(path: Path) -> dict[str, np.ndarray]:
            return _run_cell(cell, path, inputs, spec=None, threads=threads, batch=batch,
                             runner=runner)  # fmt: skip

        job = ExcludeJob(run, cell, model_path, model_proto, artifact, inputs, ref_outputs,
                         given.labels, tolerances, budget, calib, threads, batch, confidence,
                         localize_samples, output_kinds, knn_k, outputs)  # fmt: skip
        result = replace(result, auto_exclude=run_auto_exclude(job, loc, max_exclude_rounds))
    elif auto_exclude:
        warnings.append("`auto_exclude` applies to INT8 candidates only")
    return replace(result, warnings=tuple(warnings))
