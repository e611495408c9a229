"""The demo detector: a few-layer single-stage detector for 32x32 grey images of simple shapes
(class 0 filled rectangle, 1 disc, 2 hollow rectangle), trained by
``scripts/make_detector_assets.py``.

Every cell of an 8x8 grid (stride 4) predicts a box and one score per class, so the raw head
gives ``boxes`` [B, 64, 4] (xyxy, pixels) and ``scores`` [B, 64, 3] (sigmoid). The export spec is
``optieval.assets.detector:build_model`` (weights ``detector.pt`` beside this file, through
``--checkpoint``) or ``optieval.assets.detector:build_trained_model``.
"""

from __future__ import annotations

from typing import Any

IMAGE_SIZE = 32
STRIDE = 4
CLASSES = ("rectangle", "disc", "frame")


def build_model() -> Any:
    """Return the untrained grid detector (load ``detector.pt`` with ``--checkpoint``).

    forward(images [B, 1, 32, 32] float32 in [0, 1]) -> (boxes [B, 64, 4] xyxy pixels,
    scores [B, 64, 3] in [0, 1]).
    """
    import torch
    from torch import nn

    class GridDetector(nn.Module):
        origin: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(
                nn.Conv2d(1, 16, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1),
                nn.ReLU(),
            )
            self.head = nn.Conv2d(32, 4 + len(CLASSES), 1)
            cells = IMAGE_SIZE // STRIDE
            ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
            # Cell origins (x, y) in pixels, row-major like the flattened head.
            origin = torch.stack([xs.flatten(), ys.flatten()], dim=1).float() * STRIDE
            self.register_buffer("origin", origin, persistent=False)

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.head(self.backbone(images)).flatten(2).transpose(1, 2)
            centre = self.origin + torch.sigmoid(out[..., :2]) * STRIDE
            size = torch.sigmoid(out[..., 2:4]) * IMAGE_SIZE
            boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
            return boxes, torch.sigmoid(out[..., 4:])

    return GridDetector()


def build_trained_model() -> Any:
    """Return the grid detector with its bundled trained weights, in eval mode."""
    import torch

    from optieval.assets import DETECTOR_WEIGHTS

    model = build_model()
    model.load_state_dict(torch.load(DETECTOR_WEIGHTS, weights_only=True))
    return model.eval()
