"""The command line owns its flags: library errors name Python parameters (``where="calib"``, or
```calib``` in backticks inside a message or hint), and this module prints them as the flags a
command-line user typed (``--calib``). A Python caller never reads about a flag."""

from __future__ import annotations

import re

from optieval.errors import OptievalError

# Python parameter (of optieval's public functions and settings objects) -> command-line flag.
PARAMETER_FLAGS: dict[str, str] = {
    "atol": "--atol",
    "auto_exclude": "--auto-exclude",
    "backend": "--backend",
    "backends": "--backend",
    "baseline": "--baseline",
    "batch": "--batch",
    "batch_index_output": "--batch-index-output",
    "batches": "--batch",
    "blocks": "--blocks",
    "box_format": "--box-format",
    "box_match_min": "--box-match-min",
    "boxes_output": "--boxes-output",
    "calib": "--calib",
    "calib_method": "--calib-method",
    "calib_repeats": "--calib-repeats",
    "calib_samples": "--calib-samples",
    "candidate": "--candidate",
    "candidates": "--candidate",
    "checkpoint": "--checkpoint",
    "classes_output": "--classes-output",
    "concurrency": "--concurrency",
    "cuda_graph": "--cuda-graph",
    "data": "--data",
    "device_id": "--device",
    "duration_s": "--duration",
    "dynamic": "--dynamic",
    "exclude": "--exclude",
    "executor": "--executor",
    "exporter": "--exporter",
    "external_data": "--external-data",
    "find_max_qps": "--find-max-qps",
    "golden": "--golden",
    "graph_optimization": "--graph-optimization",
    "gt": "--gt",
    "idle_ms": "--idle-ms",
    "input_ranges": "--input-range",
    "inputs": "--input",
    "int8_format": "--int8-format",
    "io": "--io",
    "iou": "--iou",
    "isolate": "--isolate",
    "labels": "--labels",
    "labels_key": "--labels",
    "localize": "--localize",
    "map_drop_max": "--map-drop-max",
    "max_duration_s": "--max-duration",
    "mean_iou_min": "--mean-iou-min",
    "min_samples": "--min-samples",
    "max_accuracy_drop": "--max-accuracy-drop",
    "max_exclude_rounds": "--max-exclude-rounds",
    "min_accuracy_ratio": "--min-accuracy-ratio",
    "min_cosine": "--min-cosine",
    "min_knn_agreement": "--min-knn-agreement",
    "min_top1_agreement": "--min-top1-agreement",
    "knn_k": "--knn-k",
    "output_kinds": "--output-kind",
    "num_detections_output": "--num-detections-output",
    "opset": "--opset",
    "out_dir": "--out",
    "output": "--output",
    "precision": "--precision",
    "precisions": "--precision",
    "profile_ops": "--profile-ops",
    "profiles": "--profile",
    "qps": "--qps",
    "ray_address": "--ray-address",
    "reference": "--reference",
    "resamples": "--resamples",
    "rtol": "--rtol",
    "samples": "--samples",
    "save_golden_dir": "--save-golden",
    "scenario": "--scenario",
    "scores_output": "--scores-output",
    "shapes": "--shape",
    "spec": "--spec",
    "streams": "--streams",
    "target_percentile": "--target-percentile",
    "task": "--task",
    "threads": "--threads",
    "threshold": "--threshold",
    "time_limit": "--time-limit",
    "tol": "--tol",
    "warmup_iters": "--warmup-iters",
    "warmup_s": "--warmup",
    "min_duration_s": "--duration",
    "p99_ms_max": "--p99-ms-max",
    "boxes": "--boxes-output",
    "scores": "--scores-output",
    "classes": "--classes-output",
    "batch_index": "--batch-index-output",
    "num_detections": "--num-detections-output",
    "match_iou": "--iou",
    "options": "--task detection",
    "postprocess": "--task detection",
}

_BACKTICKED = re.compile(r"`([a-z_]+)`")


def flag_for(parameter: str) -> str:
    """The flag a command-line user gives for a Python parameter (the name itself if none)."""
    return PARAMETER_FLAGS.get(parameter, parameter)


def to_flags(text: str) -> str:
    """Replace every backticked parameter name in ``text`` with its flag."""

    def replace(match: re.Match[str]) -> str:
        flag = PARAMETER_FLAGS.get(match.group(1))
        return flag if flag is not None else match.group(0)

    return _BACKTICKED.sub(replace, text)


def error_line(error: OptievalError) -> str:
    """``str(error)`` as a command-line user should read it: parameters shown as flags."""
    text = to_flags(error.message)
    where = error.where
    if where is not None:
        text = f"{flag_for(where)}: {text}"
    if error.hint:
        text = f"{text} (hint: {to_flags(error.hint)})"
    return text
