"""Bundled demo material: a small CNN trained on scikit-learn's digits, its data and config.

Made by ``scripts/make_digits_assets.py``; see that script for how.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DIGITS_ONNX = ASSETS / "digits_cnn.onnx"
DIGITS_WEIGHTS = ASSETS / "digits_cnn.pt"
DIGITS_DATA = ASSETS / "digits.npz"
DEMO_CONFIG = ASSETS / "demo.toml"
"""The release config ``optieval demo`` gates (its data loaders: ``demo_data.py``)."""
