"""Append NMS to a raw-head detector's ONNX graph: the deployed form whose output sizes depend on
the data.

A raw-head detector gives ``boxes`` [B, N, 4] (corners) and per-class ``scores`` [B, N, C].
:func:`append_nms` adds ONNX ``NonMaxSuppression`` (class-aware, per image) and gathers the kept
detections into flat outputs: ``boxes`` [K, 4], ``scores`` [K], ``classes`` [K] (int64) and
``batch_index`` [K] (int64, the image of each detection within the batch), K known only after
the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from optieval.errors import InputError

__all__ = ["NmsSettings", "append_nms"]

# Squeeze takes its axes as an input from opset 13 (NonMaxSuppression needs 10, GatherND 11);
# a detector exported at a higher opset keeps it.
_MIN_OPSET = 13


@dataclass(frozen=True)
class NmsSettings:
    """NonMaxSuppression settings (the graph's own; optieval's post-processing is separate).

    Args:
        iou_threshold: boxes overlapping a kept box of the same class at IoU above this go.
        score_threshold: boxes scoring below this go.
        max_per_class: at most this many boxes per class and image.
    """

    iou_threshold: float = 0.5
    score_threshold: float = 0.05
    max_per_class: int = 20


def append_nms(
    model: onnx.ModelProto,
    *,
    boxes: str = "boxes",
    scores: str = "scores",
    settings: NmsSettings | None = None,
) -> onnx.ModelProto:
    """Return a copy of ``model`` whose outputs are NMS-filtered detections.

    Args:
        model: a detector with outputs ``boxes`` [B, N, 4] (any corner pair: xyxy or yxyx) and
            ``scores`` [B, N, C].
        boxes, scores: the names of those outputs.
        settings: NMS thresholds (default :class:`NmsSettings`).

    Returns:
        The model with outputs ``boxes`` [K, 4], ``scores`` [K], ``classes`` [K] int64 and
        ``batch_index`` [K] int64 (the raw outputs become internal tensors).

    Raises:
        InputError: ``boxes`` or ``scores`` names no output of the model.
    """
    settings = settings or NmsSettings()
    names = [o.name for o in model.graph.output]
    missing = [n for n in (boxes, scores) if n not in names]
    if missing:
        raise InputError(
            f"the model has no output called {', '.join(missing)}",
            where="append_nms",
            hint=f"the outputs are {', '.join(names)}",
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    raw_boxes, raw_scores = "raw_" + boxes, "raw_" + scores
    for node in graph.node:
        node.output[:] = [{boxes: raw_boxes, scores: raw_scores}.get(o, o) for o in node.output]
        node.input[:] = [{boxes: raw_boxes, scores: raw_scores}.get(i, i) for i in node.input]
    del graph.output[:]
    graph.initializer.extend(
        [
            helper.make_tensor(
                "nms_max_per_class", TensorProto.INT64, [1], [settings.max_per_class]
            ),
            helper.make_tensor("nms_iou", TensorProto.FLOAT, [1], [settings.iou_threshold]),
            helper.make_tensor("nms_score", TensorProto.FLOAT, [1], [settings.score_threshold]),
            helper.make_tensor("nms_batch_box", TensorProto.INT64, [1], [0]),
            helper.make_tensor("nms_batch_box_end", TensorProto.INT64, [1], [3]),
            helper.make_tensor("nms_batch_box_step", TensorProto.INT64, [1], [2]),
            helper.make_tensor("nms_one", TensorProto.INT64, [1], [1]),
            helper.make_tensor("nms_axis1", TensorProto.INT64, [1], [1]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Transpose", [raw_scores], ["nms_scores_bcn"], perm=[0, 2, 1]),
            helper.make_node(
                "NonMaxSuppression",
                [raw_boxes, "nms_scores_bcn", "nms_max_per_class", "nms_iou", "nms_score"],
                ["nms_selected"],
                center_point_box=0,
            ),
            # selected rows are (batch, class, box): (batch, box) indexes boxes [B, N, 4].
            helper.make_node(
                "Slice",
                [
                    "nms_selected",
                    "nms_batch_box",
                    "nms_batch_box_end",
                    "nms_axis1",
                    "nms_batch_box_step",
                ],
                ["nms_batch_and_box"],
            ),
            helper.make_node("GatherND", [raw_boxes, "nms_batch_and_box"], [boxes]),
            helper.make_node("GatherND", ["nms_scores_bcn", "nms_selected"], [scores]),
            helper.make_node("Gather", ["nms_selected", "nms_one"], ["nms_class_col"], axis=1),
            helper.make_node("Squeeze", ["nms_class_col", "nms_axis1"], ["classes"]),
            helper.make_node(
                "Gather", ["nms_selected", "nms_batch_box"], ["nms_batch_col"], axis=1
            ),
            helper.make_node("Squeeze", ["nms_batch_col", "nms_axis1"], ["batch_index"]),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info(boxes, TensorProto.FLOAT, ["detections", 4]),
            helper.make_tensor_value_info(scores, TensorProto.FLOAT, ["detections"]),
            helper.make_tensor_value_info("classes", TensorProto.INT64, ["detections"]),
            helper.make_tensor_value_info("batch_index", TensorProto.INT64, ["detections"]),
        ]
    )
    for opset in out.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < _MIN_OPSET:
            opset.version = _MIN_OPSET
    onnx.checker.check_model(out)
    return out
