"""Detection parity: output roles, box formats, post-processing, box matching, COCO-style mAP,
the detection compare, and NMS appended to an exported ONNX detector.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.detection.boxes import PostProcess as PostProcess
    from optieval.detection.compare import DetectionOptions as DetectionOptions
    from optieval.detection.compare import DetectionTask as DetectionTask
    from optieval.detection.compare import compare_detection as compare_detection
    from optieval.detection.compare import parse_task_table as parse_task_table
    from optieval.detection.ground_truth import has_ground_truth as has_ground_truth
    from optieval.detection.nms import NmsSettings as NmsSettings
    from optieval.detection.nms import append_nms as append_nms
    from optieval.detection.results import DETECTION_BUDGET_KEYS as DETECTION_BUDGET_KEYS
    from optieval.detection.results import DetectionBudget as DetectionBudget
    from optieval.detection.results import DetectionParity as DetectionParity
    from optieval.detection.results import DetectionReport as DetectionReport
    from optieval.detection.results import budget_value as budget_value

_EXPORTS = {
    "DETECTION_BUDGET_KEYS": "optieval.detection.results",
    "DetectionBudget": "optieval.detection.results",
    "DetectionOptions": "optieval.detection.compare",
    "DetectionParity": "optieval.detection.results",
    "DetectionReport": "optieval.detection.results",
    "DetectionTask": "optieval.detection.compare",
    "NmsSettings": "optieval.detection.nms",
    "PostProcess": "optieval.detection.boxes",
    "append_nms": "optieval.detection.nms",
    "budget_value": "optieval.detection.results",
    "compare_detection": "optieval.detection.compare",
    "has_ground_truth": "optieval.detection.ground_truth",
    "parse_task_table": "optieval.detection.compare",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
