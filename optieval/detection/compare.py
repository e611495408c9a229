"""``compare --task detection``: run a detector's reference and candidates on the same images,
turn their outputs into per-image detections (post-processing raw heads alike), match boxes,
and with ground truth compute mAP and its delta (:mod:`optieval.detection.results`).

Built on :mod:`optieval.parity`'s run pieces (cells, backends, inputs, batches) and
:mod:`optieval.parity.localize` (where INT8 error is born; re-quantizing with those nodes kept
in float). Runs go batch by batch, so outputs whose size depends on the data (NMS in the graph)
stay with their images.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from optieval.detection.boxes import (
    BoxFormat,
    Detections,
    PostProcess,
    Roles,
    check_iou,
    decode_batch,
    image_size_of,
    parse_box_format,
    resolve_roles,
)
from optieval.detection.ground_truth import GroundTruth, has_ground_truth, load_ground_truth
from optieval.detection.metrics import DEFAULT_MATCH_IOU, DEFAULT_RESAMPLES
from optieval.detection.results import (
    DetectionBudget,
    DetectionParity,
    DetectionReport,
    compare_detections,
)
from optieval.errors import InputError
from optieval.parity import (
    DEFAULT_BATCH,
    DEFAULT_CONFIDENCE,
    DEFAULT_EXCLUDE_ROUNDS,
    DEFAULT_LOCALIZE_SAMPLES,
    DEFAULT_REFERENCE,
    AutoExcludeResult,
    Localization,
    RunCell,
    ToleranceSet,
    fixed_batch,
    gather_inputs,
    localize_artifact,
    manifest_warnings,
    measure_latency_ms,
    open_backend,
    parse_cell,
    split_batches,
)

__all__ = ["DetectionOptions", "DetectionTask", "compare_detection", "parse_task_table"]


@dataclass(frozen=True)
class DetectionOptions:
    """How a detector's outputs are read and post-processed.

    Args:
        boxes, scores, classes, batch_index, num_detections: output names of each role
            (None: a conventional name, see ``optieval.detection.boxes.ROLE_NAMES``).
        box_format: ``xyxy`` / ``xywh`` / ``cxcywh``, optionally ``:pixels`` (default) or
            ``:normalized``.
        postprocess: score threshold, class-aware NMS IoU (raw heads only), top-k.
        match_iou: IoU at or above which a candidate box matches a reference box (and, for
            mAP@0.5, ground truth); in (0, 1].
    """

    boxes: str | None = None
    scores: str | None = None
    classes: str | None = None
    batch_index: str | None = None
    num_detections: str | None = None
    box_format: str = "xyxy"
    postprocess: PostProcess = field(default_factory=PostProcess)
    match_iou: float = DEFAULT_MATCH_IOU


def _image_input(signature: Any, inputs: Mapping[str, np.ndarray]) -> str | None:
    for spec in signature.inputs:
        if spec.name in inputs and np.ndim(inputs[spec.name]) == 4:
            return str(spec.name)
    return None


def _run_detections(
    backend: Any,
    inputs: Mapping[str, np.ndarray],
    batch: int,
    roles: Roles,
    fmt: BoxFormat,
    image: str | None,
    post: PostProcess,
) -> list[Detections]:
    result: list[Detections] = []
    for feeds in split_batches(inputs, batch):
        outputs = {k: np.asarray(v) for k, v in backend.infer(feeds).items()}
        size = int(next(iter(feeds.values())).shape[0])
        hw = image_size_of(feeds[image].shape) if fmt.normalized and image else None
        result.extend(decode_batch(outputs, roles, size, fmt, hw, post))
    return result


def _artifact(model: Path, cell: RunCell, calib: str | None, exclude: Sequence[str]) -> Path:
    if not cell.runs_onnx or cell.precision == "fp32":
        return model
    from optieval.precision import artifact_for

    excluded = tuple(exclude) if cell.precision == "int8" else ()
    return Path(
        artifact_for(model, cell.precision, calib=calib, exclude=excluded, backend=cell.backend)
    )


def compare_detection(
    model: str | os.PathLike[str],
    candidates: Sequence[str],
    *,
    options: DetectionOptions | None = None,
    reference: str = DEFAULT_REFERENCE,
    spec: str | None = None,
    data: str | os.PathLike[str] | None = None,
    gt: str | os.PathLike[str] | None = None,
    calib: str | os.PathLike[str] | None = None,
    samples: int | None = None,
    batch: int | None = None,
    budget: DetectionBudget | None = None,
    exclude: Sequence[str] = (),
    localize: bool = False,
    auto_exclude: bool = False,
    max_exclude_rounds: int = DEFAULT_EXCLUDE_ROUNDS,
    localize_samples: int = DEFAULT_LOCALIZE_SAMPLES,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    threads: int | None = None,
) -> DetectionReport:
    """Compare each candidate's detections with the reference's on the same images.

    Args:
        model: the FP32 ONNX detector (raw head, padded or flat NMS outputs).
        candidates: ``backend:precision`` cells, e.g. ``["ort-cpu:int8"]``.
        options: output roles, box format, post-processing, match IoU
            (:class:`DetectionOptions`).
        reference: the reference cell (default ``ort-cpu:fp32``).
        spec: model spec for torch backends when the manifest has none.
        data: the images (``.npz``, folder, ``module:function``); default: seeded generated
            inputs (box matching only, with a warning).
        gt: ground truth (``.npz`` flat layout or COCO ``.json``); default: ``data`` when it is
            an ``.npz`` holding ``gt_boxes``. Adds mAP@0.5 and @0.5:0.95 with their delta.
        calib: INT8 calibration data (default: ``data``, with a warning).
        samples: use the first N images.
        batch: batch of the runs (default: the model's fixed batch, else 16; 1 for flat NMS
            outputs without a batch index).
        budget: detection budgets (default: none).
        exclude: node names or op types kept in float in INT8 artifacts (e.g. the box head).
        localize: on a failing ONNX candidate, name the nodes where its error is born.
        auto_exclude: for a failing INT8 candidate, re-quantize keeping those nodes in float
            until the budgets hold, up to ``max_exclude_rounds`` times (implies ``localize``).
        localize_samples: images run through the exposed graphs (the worst images first).
        resamples: bootstrap resamples over images (default 1000).
        seed: seed of generated inputs and of the bootstrap.
        confidence: of every interval (default 0.95).
        threads: intra-op threads for CPU backends.

    Returns:
        A :class:`DetectionReport`; ``passed`` is False when a candidate broke a budget.

    Raises:
        InputError: bad cells or options; roles naming outputs that do not exist; boxes not
            shaped (..., 4); classes that are not integers; malformed ground truth or ground
            truth naming images not in the data; an IoU outside (0, 1] (exit 2).
        BackendUnavailable / BackendFailed: a backend cannot run here or crashed (exit 3).
    """
    from optieval.core import load_onnx, sha256_file, signature_from_onnx

    opts = options or DetectionOptions()
    match_iou = check_iou(opts.match_iou)
    post = opts.postprocess.validate()
    fmt = parse_box_format(opts.box_format)
    budget = (budget or DetectionBudget()).validate()
    if not candidates:
        raise InputError(
            "no candidate to compare", where="candidates", hint="e.g. `candidates` ort-cpu:int8"
        )
    if batch is not None and batch < 1:
        raise InputError(f"batch {batch} must be at least 1", where="batch")
    if resamples < 1:
        raise InputError(f"`resamples` {resamples} must be at least 1", where="resamples")
    ref_cell = parse_cell(reference, where="reference")
    cells = [parse_cell(c) for c in candidates]
    model_path = Path(model)
    model_proto = load_onnx(model_path)
    signature = signature_from_onnx(model_proto)
    roles = resolve_roles(
        [o.name for o in signature.outputs],
        boxes=opts.boxes,
        scores=opts.scores,
        classes=opts.classes,
        batch_index=opts.batch_index,
        num_detections=opts.num_detections,
    )
    warnings = manifest_warnings(model_path)
    if gt is None and data is not None and has_ground_truth(os.fspath(data)):
        gt = data
    if gt is not None and data is None:
        raise InputError("ground truth needs the images it describes", where="gt",
                         hint="pass `data`")  # fmt: skip
    if calib is None and data is not None and any(c.precision == "int8" for c in cells):
        calib = data
        warnings.append("no `calib`: INT8 calibrated on the `data` images it is evaluated on")
    given = gather_inputs(signature, model_sha256=sha256_file(model_path), data=data,
                           labels_key=None, samples=samples, golden=None, seed=seed)  # fmt: skip
    inputs = given.inputs
    count = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    truth: GroundTruth | None = None
    if gt is not None:
        total = _total_images(data, signature, count)
        truth = load_ground_truth(os.fspath(gt), total).head(count)
    if data is None:
        warnings.append("no `data`: detections on random inputs say little; pass real images")
    image = _image_input(signature, inputs)
    run_batch = batch or fixed_batch(signature) or DEFAULT_BATCH
    flat = roles.batch_index is None and _flat_outputs(signature, roles)
    if flat and batch is None:
        run_batch = 1  # flat NMS outputs without a batch index: one image per run
    calib_text = None if calib is None else str(calib)
    ref_artifact = _artifact(model_path, ref_cell, calib_text, ())
    with open_backend(ref_cell, ref_artifact, spec=spec, threads=threads) as backend:
        ref_dets = _run_detections(backend, inputs, run_batch, roles, fmt, image, post)

    results = []
    for cell in cells:
        artifact = _artifact(model_path, cell, calib_text, exclude)
        with open_backend(cell, artifact, spec=spec, threads=threads) as backend:
            cand_dets = _run_detections(backend, inputs, run_batch, roles, fmt, image, post)
        result = compare_detections(ref_dets, cand_dets, gt=truth, match_iou=match_iou,
                                    budget=budget, resamples=resamples, seed=seed,
                                    confidence=confidence, reference_label=ref_cell.label,
                                    candidate_label=cell.label)  # fmt: skip
        result = replace(result, artifact=str(artifact))
        notes: list[str] = []
        if exclude and cell.precision != "int8":
            notes.append("`exclude` applies to INT8 candidates only")
        if not result.passed and (localize or auto_exclude):
            result = _localize_and_exclude(
                result, cell, model_path=model_path, model_proto=model_proto, inputs=inputs,
                artifact=artifact, ref_dets=ref_dets, truth=truth, roles=roles, fmt=fmt,
                image=image, post=post, match_iou=match_iou, budget=budget, calib=calib_text,
                exclude=exclude, threads=threads, batch=run_batch, auto_exclude=auto_exclude,
                max_rounds=max_exclude_rounds, localize_samples=localize_samples,
                resamples=resamples, seed=seed, confidence=confidence, notes=notes,
            )  # fmt: skip
        results.append(replace(result, warnings=tuple(notes)))
    return DetectionReport(
        model=str(model_path),
        model_sha256=sha256_file(model_path),
        reference=ref_cell.label,
        results=tuple(results),
        roles=roles,
        box_format=fmt.label,
        postprocess=post,
        match_iou=match_iou,
        ground_truth=None if truth is None else truth.source,
        inputs=given.source,
        budget=budget,
        warnings=tuple(warnings),
    )


def _flat_outputs(signature: Any, roles: Roles) -> bool:
    for spec in signature.outputs:
        if spec.name == roles.scores:
            return spec.shape is not None and len(spec.shape) == 1
    return False


def _total_images(data: Any, signature: Any, count: int) -> int:
    """Images in the whole data set (ground truth may describe more than ``samples`` uses)."""
    from optieval.core import load_dataset

    try:
        return load_dataset(str(data), signature).num_samples
    except InputError:
        return count


def _localize_and_exclude(
    result: DetectionParity,
    cell: RunCell,
    *,
    model_path: Path,
    model_proto: Any,
    inputs: Mapping[str, np.ndarray],
    artifact: Path,
    ref_dets: Sequence[Detections],
    truth: GroundTruth | None,
    roles: Roles,
    fmt: BoxFormat,
    image: str | None,
    post: PostProcess,
    match_iou: float,
    budget: DetectionBudget,
    calib: str | None,
    exclude: Sequence[str],
    threads: int | None,
    batch: int,
    auto_exclude: bool,
    max_rounds: int,
    localize_samples: int,
    resamples: int,
    seed: int,
    confidence: float,
    notes: list[str],
) -> DetectionParity:
    if not cell.runs_onnx:
        notes.append(f"`localize` needs an ONNX backend; {cell.backend} runs PyTorch")
        return result
    tolerances = ToleranceSet(cell.precision)

    def locate(current: Path, worst: Sequence[int]) -> Localization:
        # The images that differ most go first, so the exposed runs see the error.
        order = list(dict.fromkeys([*worst, *range(len(ref_dets))]))
        subset = {k: v[np.asarray(order, dtype=np.int64)] for k, v in inputs.items()}
        return localize_artifact(model_proto, current, subset, tolerances, batch, localize_samples)

    loc = locate(artifact, [w.index for w in result.worst_images])
    result = replace(result, localization=loc)
    if not loc.first_bad_nodes:
        notes.append("localization found no node where the error jumps past tolerance")
    if not auto_exclude:
        return result
    if cell.precision != "int8":
        notes.append("`auto_exclude` applies to INT8 candidates only")
        return result
    from optieval.core import cache_dir, cache_key
    from optieval.precision import convert

    excluded = list(dict.fromkeys([*exclude, *loc.exclude]))
    folder = cache_dir("auto-exclude", cache_key({"model": str(model_path.resolve())}))
    current, final, rounds = artifact, result, 0
    for rounds in range(1, max(max_rounds, 1) + 1):  # noqa: B007 - read after the loop
        if not excluded:
            break
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".int8.onnx", delete=False) as tmp:
            current = Path(tmp.name)
        convert(model_path, "int8", output=current, calib=calib, exclude=tuple(excluded))
        with open_backend(cell, current, spec=None, threads=threads) as backend:
            dets = _run_detections(backend, inputs, batch, roles, fmt, image, post)
        final = compare_detections(ref_dets, dets, gt=truth, match_iou=match_iou, budget=budget,
                                   resamples=resamples, seed=seed, confidence=confidence,
                                   reference_label=result.reference,
                                   candidate_label=result.candidate)  # fmt: skip
        if final.passed:
            break
        again = locate(current, [w.index for w in final.worst_images])
        new = [n for n in again.exclude if n not in excluded]
        if not new:
            break
        excluded.extend(new)
    feeds = next(split_batches(inputs, batch))
    before = measure_latency_ms(cell, artifact, feeds, threads)
    after = measure_latency_ms(cell, current, feeds, threads) if current != artifact else None
    auto = AutoExcludeResult(tuple(excluded), rounds, final.passed, str(current), before, after)
    notes.append(
        f"auto-exclude: {'budgets hold' if final.passed else 'budgets still broken'} with "
        f"{len(excluded)} node(s) in float: box match {final.box_match:.3f}"
        + ("" if final.map_delta is None else f", mAP delta {final.map_delta:+.4f}")
    )
    return replace(result, auto_exclude=auto)


TASK_KEYS = ("kind", "boxes", "scores", "classes", "batch_index", "num_detections", "box_format",
             "ground_truth", "match_iou", "score_threshold", "nms_iou", "top_k")  # fmt: skip
"""Keys of a release config's ``[task]`` table (``kind = "detection"``)."""


@dataclass(frozen=True)
class DetectionTask:
    """A parsed ``[task]`` table: the options of :func:`compare_detection` and the ground truth
    (an absolute path, or None to use the evaluation data's ``gt_boxes``)."""

    options: DetectionOptions
    ground_truth: Path | None = None


def parse_task_table(
    table: Mapping[str, Any], *, base: Path, where: str = "task"
) -> DetectionTask | None:
    """Validate a release config's ``[task]`` table.

    Args:
        table: the table (``kind`` = ``"classification"`` or ``"detection"``; the other keys
            are :data:`TASK_KEYS`, all optional).
        base: the folder relative paths start from (the config's).
        where: the key path used in error messages.

    Returns:
        A :class:`DetectionTask`, or None for ``kind = "classification"``.

    Raises:
        InputError: an unknown key or kind, a value of the wrong type, an IoU or threshold out of
            range, a box format that does not parse, a missing ground-truth file (all problems
            listed once, each with its key path).
    """
    problems: list[str] = []
    unknown = sorted(set(table) - set(TASK_KEYS))
    problems += [f"{where}.{k}: unknown key (valid: {', '.join(TASK_KEYS)})" for k in unknown]
    kind = table.get("kind", "detection")
    if kind not in ("classification", "detection"):
        problems.append(f"{where}.kind: {kind!r} is not classification or detection")
    texts = {}
    for key in ("boxes", "scores", "classes", "batch_index", "num_detections", "box_format",
                "ground_truth"):  # fmt: skip
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}.{key}: must be a string")
        texts[key] = value if isinstance(value, str) else None
    numbers: dict[str, float] = {}
    for key, default in (("match_iou", DEFAULT_MATCH_IOU), ("score_threshold", 0.05),
                         ("nms_iou", 0.5), ("top_k", 100)):  # fmt: skip
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}.{key}: must be a number")
            value = default
        numbers[key] = float(value)
    gt_path = None
    if texts["ground_truth"]:
        gt_path = (base / texts["ground_truth"]).resolve()
        if not gt_path.is_file():
            problems.append(f"{where}.ground_truth: {gt_path} not found")
    options = DetectionOptions(
        boxes=texts["boxes"],
        scores=texts["scores"],
        classes=texts["classes"],
        batch_index=texts["batch_index"],
        num_detections=texts["num_detections"],
        box_format=texts["box_format"] or "xyxy",
        postprocess=PostProcess(
            numbers["score_threshold"], numbers["nms_iou"], int(numbers["top_k"])
        ),
        match_iou=numbers["match_iou"],
    )
    for check in (
        lambda: parse_box_format(options.box_format, where=f"{where}.box_format"),
        lambda: check_iou(options.match_iou, where=f"{where}.match_iou"),
        options.postprocess.validate,
    ):
        try:
            check()
        except InputError as exc:
            problems.append(f"{exc.where}: {exc.message}" if exc.where else exc.message)
    if problems:
        raise InputError("; ".join(problems), where=where, hint="see docs/guides/detection.md")
    return None if kind == "classification" else DetectionTask(options, gt_path)
