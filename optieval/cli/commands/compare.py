"""``optieval compare``: accuracy parity of candidates (backend:precision) against a reference;
``--task detection`` compares boxes and mAP instead."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from optieval.cli.console import console, err_console
from optieval.cli.flags import to_flags
from optieval.cli.options import (
    ShapeOption,
    check_outputs,
    one_shape_set,
    split_list,
    write_json_output,
)
from optieval.errors import InputError


def compare_command(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX model (from `optieval export`).")],
    candidate: Annotated[
        list[str],
        typer.Option("--candidate", "-c", help="BACKEND:PRECISION to check; repeatable."),
    ],
    reference: Annotated[
        str, typer.Option(help="BACKEND:PRECISION the candidates are compared with.")
    ] = "ort-cpu:fp32",
    spec: Annotated[
        str | None, typer.Option(help="Model spec for torch backends when the manifest has none.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Inputs: .npz, a folder, or module:function (default: seeded random inputs)."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Key of the labels in --data (adds accuracy).")
    ] = None,
    calib: Annotated[
        str | None, typer.Option(help="Calibration data for int8 artifacts (default: --data).")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Use at most N samples (default: all, or 64 random).")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size of the runs (default 16).")] = None,
    atol: Annotated[
        float | None,
        typer.Option(help="Absolute tolerance for every output (default: by precision)."),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option(help="Relative tolerance for every output (default: by precision)."),
    ] = None,
    tol: Annotated[
        list[str] | None, typer.Option("--tol", help="OUTPUT:ATOL:RTOL for one output; repeatable.")
    ] = None,
    max_accuracy_drop: Annotated[
        float | None, typer.Option(help="Task budget: accuracy_delta >= -DROP (needs --labels).")
    ] = None,
    min_accuracy_ratio: Annotated[
        float | None, typer.Option(help="Task budget: accuracy_ratio >= R, e.g. 0.99.")
    ] = None,
    min_top1_agreement: Annotated[
        float | None, typer.Option(help="Budget: argmax agreement with the reference >= A.")
    ] = None,
    min_cosine: Annotated[
        float | None,
        typer.Option(help="Budget: every sample's cosine with the reference >= C (worst sample)."),
    ] = None,
    min_knn_agreement: Annotated[
        float | None,
        typer.Option(help="Budget, embeddings: nearest-neighbour agreement (recall@k) >= F."),
    ] = None,
    output_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--output-kind",
            help="NAME=KIND for one output, or KIND for every output not named; repeatable. "
            "Kinds: logits, probabilities, embedding, regression, tensor (default: inferred "
            "from names, shapes and values, and printed).",
        ),
    ] = None,
    knn_k: Annotated[
        int, typer.Option(help="Embeddings: neighbours per sample for the knn agreement.")
    ] = 10,
    max_exclude_rounds: Annotated[
        int, typer.Option(help="--auto-exclude: re-quantization rounds at most.")
    ] = 5,
    localize: Annotated[
        bool, typer.Option("--localize", help="Name the nodes where a failing error is born.")
    ] = False,
    auto_exclude: Annotated[
        bool,
        typer.Option("--auto-exclude", help="INT8: re-quantize keeping those nodes in float."),
    ] = False,
    save_golden: Annotated[
        Path | None, typer.Option("--save-golden", help="Save reference outputs + inputs here.")
    ] = None,
    golden: Annotated[
        Path | None, typer.Option("--golden", help="Compare against saved reference outputs.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated inputs.")] = 0,
    shape: ShapeOption = None,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for CPU backends.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the parity JSON here.")
    ] = None,
    # --- detection (issue 9): --task detection and its options -------------------------------
    task: Annotated[
        str, typer.Option(help="classification (tensor parity) or detection (boxes and mAP).")
    ] = "classification",
    boxes_output: Annotated[str | None, typer.Option(help="Detection: the boxes output.")] = None,
    scores_output: Annotated[str | None, typer.Option(help="Detection: the scores output.")] = None,
    classes_output: Annotated[
        str | None, typer.Option(help="Detection: the class-index output (none for raw heads).")
    ] = None,
    batch_index_output: Annotated[
        str | None, typer.Option(help="Detection: each flat detection's image in the batch.")
    ] = None,
    num_detections_output: Annotated[
        str | None, typer.Option(help="Detection: valid detections per image (padded outputs).")
    ] = None,
    box_format: Annotated[
        str, typer.Option(help="Detection: xyxy, xywh or cxcywh[:pixels|:normalized].")
    ] = "xyxy",
    gt: Annotated[
        str | None,
        typer.Option(
            help="Detection ground truth (.npz gt_boxes/gt_classes/gt_image "
            "or COCO .json; default: --data when it has gt_boxes)."
        ),
    ] = None,
    iou: Annotated[float, typer.Option(help="Detection: IoU for a box match.")] = 0.5,
    score_threshold: Annotated[
        float, typer.Option(help="Detection: drop detections scoring below this.")
    ] = 0.05,
    nms_iou: Annotated[
        float, typer.Option(help="Detection: class-aware NMS IoU (raw heads).")
    ] = 0.5,
    top_k: Annotated[int, typer.Option(help="Detection: keep the top K per image.")] = 100,
    map_drop_max: Annotated[
        float | None, typer.Option(help="Detection budget: mAP@0.5:0.95 drop <= D.")
    ] = None,
    box_match_min: Annotated[
        float | None, typer.Option(help="Detection budget: matched reference boxes >= F.")
    ] = None,
    mean_iou_min: Annotated[
        float | None, typer.Option(help="Detection budget: mean IoU of matches >= I.")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Detection INT8: node/op type kept in float; repeatable."),
    ] = None,
) -> None:
    """Check accuracy parity of candidates (backend:precision) against a reference."""
    import warnings

    check_outputs(json_file=json_file, folders={"--save-golden": save_golden})

    if task == "detection" and output_kind:
        raise InputError("--output-kind applies to tensor outputs; --task detection compares "
                         "boxes", where="--output-kind")  # fmt: skip
    if task == "detection":
        compare_detection_command(
            model, split_list(candidate, "--candidate"), reference=reference, spec=spec,
            data=data, gt=gt, calib=calib, samples=samples, batch=batch, seed=seed,
            threads=threads, localize=localize, auto_exclude=auto_exclude, json_file=json_file,
            options=dict(boxes=boxes_output, scores=scores_output, classes=classes_output,
                         batch_index=batch_index_output, num_detections=num_detections_output,
                         box_format=box_format),
            post=(score_threshold, nms_iou, top_k), iou=iou, exclude=exclude or [],
            budget=(map_drop_max, box_match_min, mean_iou_min),
        )  # fmt: skip
        return
    if task != "classification":
        raise InputError(f"unknown task {task!r}", where="--task",
                         hint="use classification or detection")  # fmt: skip
    given = [name for name, value in (
        ("--boxes-output", boxes_output), ("--scores-output", scores_output),
        ("--classes-output", classes_output), ("--gt", gt), ("--map-drop-max", map_drop_max),
        ("--box-match-min", box_match_min), ("--mean-iou-min", mean_iou_min),
        ("--exclude", exclude)) if value]  # fmt: skip
    if given:
        raise InputError(f"{', '.join(given)} need --task detection", where=given[0])

    from optieval.cli.render.parity import candidate_lines, candidate_table, report_summary
    from optieval.parity import TaskBudget, compare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # report.warnings are printed below
        report = compare(
            model, split_list(candidate, "--candidate"), reference=reference, spec=spec,
            data=data, labels=labels, calib=calib, samples=samples, batch=batch, atol=atol,
            rtol=rtol, tol=tol or [], budget=TaskBudget(max_accuracy_drop, min_accuracy_ratio,
                                                       min_top1_agreement, min_cosine,
                                                       min_knn_agreement),
            localize=localize, auto_exclude=auto_exclude, save_golden_dir=save_golden,
            golden=golden, seed=seed, threads=threads,
            shapes=one_shape_set(shape), output_kinds=output_kind or [],
            knn_k=knn_k, max_exclude_rounds=max_exclude_rounds,
        )  # fmt: skip
    lines = list(report.warnings) + [w for r in report.results for w in r.warnings]
    for line in dict.fromkeys(lines):
        err_console.print(
            f"WARNING: {to_flags(line)}", highlight=False, soft_wrap=True, markup=False
        )
    for result in report.results:
        console.print(candidate_table(result))
        for line in candidate_lines(result, report.model):
            console.print(line, highlight=False, soft_wrap=True)
    console.print(report_summary(report), highlight=False)
    write_json_output(json_file, report.to_json())
    if not report.passed:
        raise typer.Exit(report.exit_code)


def compare_detection_command(
    model: Path,
    candidates: list[str],
    *,
    options: dict[str, Any],
    post: tuple[float, float, int],
    iou: float,
    budget: tuple[float | None, float | None, float | None],
    exclude: list[str],
    json_file: Path | None,
    **kwargs: Any,
) -> None:
    """``compare --task detection``: call compare_detection, render, exit 1 on a broken budget."""
    from optieval.cli.render.detection import (
        detection_lines,
        detection_summary,
        detection_table,
    )
    from optieval.detection import DetectionBudget, DetectionOptions, PostProcess, compare_detection

    report = compare_detection(
        model, candidates,
        options=DetectionOptions(**options, postprocess=PostProcess(*post), match_iou=iou),
        budget=DetectionBudget(map_drop_max=budget[0], box_match_min=budget[1],
                               mean_iou_min=budget[2]),
        exclude=split_list(exclude, "--exclude"), **kwargs,
    )  # fmt: skip
    lines = list(report.warnings) + [w for r in report.results for w in r.warnings]
    for line in dict.fromkeys(lines):
        err_console.print(
            f"WARNING: {to_flags(line)}", highlight=False, soft_wrap=True, markup=False
        )
    console.print(detection_table(report))
    for result in report.results:
        for line in detection_lines(result):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    console.print(detection_summary(report), highlight=False)
    write_json_output(json_file, report.to_json())
    if not report.passed:
        raise typer.Exit(report.exit_code)
