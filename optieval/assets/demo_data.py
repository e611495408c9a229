"""Data loaders of the demo config (``demo.toml``): the bundled held-out digits split in two, so
that the INT8 artifact is calibrated on images the accuracy is never measured on.

Both are ``module:function`` loaders (:func:`optieval.core.data.load_dataset`): each yields one
dict per sample, ``{"input": float32 [1, 8, 8], "labels": int64}`` (``input``: the name of the
model's input once exported from ``optieval.assets.digits:build_model``, an ``nn.Sequential``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CALIBRATION_SAMPLES = 128


def _samples(start: int, stop: int | None) -> Iterator[dict[str, Any]]:
    import numpy as np

    from optieval.assets import DIGITS_DATA

    with np.load(DIGITS_DATA) as data:
        images, labels = data["x"][start:stop], data["labels"][start:stop]
    for image, label in zip(images, labels, strict=True):
        yield {"input": image, "labels": np.int64(label)}


def calibration() -> Iterator[dict[str, Any]]:
    """The first 128 held-out images: INT8 calibration only."""
    return _samples(0, CALIBRATION_SAMPLES)


def evaluation() -> Iterator[dict[str, Any]]:
    """The other 469 held-out images with their labels: parity and accuracy."""
    return _samples(CALIBRATION_SAMPLES, None)
