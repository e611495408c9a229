"""Bundled demo material: a small CNN trained on scikit-learn's digits, its data and config
(made by ``scripts/make_digits_assets.py``), and a small shape detector with its evaluation set
(made by ``scripts/make_detector_assets.py``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ASSETS",
    "DEMO_CONFIG",
    "DETECTOR_DATA",
    "DETECTOR_NMS_ONNX",
    "DETECTOR_ONNX",
    "DETECTOR_WEIGHTS",
    "DIGITS_DATA",
    "DIGITS_ONNX",
    "DIGITS_WEIGHTS",
]

ASSETS = Path(__file__).resolve().parent
DIGITS_ONNX = ASSETS / "digits_cnn.onnx"
DIGITS_WEIGHTS = ASSETS / "digits_cnn.pt"
DIGITS_DATA = ASSETS / "digits.npz"
DEMO_CONFIG = ASSETS / "demo.toml"
"""The release config ``optieval demo`` gates (its data loaders: ``demo_data.py``)."""
DETECTOR_WEIGHTS = ASSETS / "detector.pt"
DETECTOR_ONNX = ASSETS / "detector.onnx"
"""Raw head: ``images`` [B,1,32,32] -> ``boxes`` [B,64,4] (xyxy pixels), ``scores`` [B,64,3]."""
DETECTOR_NMS_ONNX = ASSETS / "detector_nms.onnx"
"""NMS in the graph: ``images`` -> ``boxes`` [K,4], ``scores`` [K], ``classes`` [K],
``batch_index`` [K] (K depends on the data)."""
DETECTOR_DATA = ASSETS / "detector_eval.npz"
"""``images`` [N,1,32,32] float32 with ground truth ``gt_boxes`` [M,4] (xyxy pixels),
``gt_classes`` [M], ``gt_image`` [M]."""
