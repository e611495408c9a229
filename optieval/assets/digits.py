"""The demo model: a small CNN classifying 8x8 digit images (scikit-learn's digits) into 10
classes. ``optieval.assets.digits:build_model`` is an export spec; its weights are
``digits_cnn.pt`` beside this file."""

from __future__ import annotations

from typing import Any


def build_model() -> Any:
    """Return the untrained digits CNN in eval mode (load ``digits_cnn.pt`` with
    ``--checkpoint``)."""
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    return model.eval()


def build_trained_model() -> Any:
    """Return the digits CNN with its bundled trained weights, in eval mode."""
    import torch

    from optieval.assets import DIGITS_WEIGHTS

    model = build_model()
    model.load_state_dict(torch.load(DIGITS_WEIGHTS, weights_only=True))
    return model.eval()
