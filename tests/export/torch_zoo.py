"""Tiny PyTorch models for the export tests, each behind a factory (the spec
``tests.export.torch_zoo:NAME`` or ``path/to/torch_zoo.py:NAME``).

They cover the issue's "must work on" list at toy sizes: residual CNN with BatchNorm, depthwise
separable convolutions with squeeze-excitation, a vision transformer, a BERT-style encoder with
an attention mask, multi-input/multi-output, dict and nested-tuple outputs; and the failure cases
(an operator no exporter converts, data-dependent control flow, a shape-specialised branch).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _seed() -> None:
    torch.manual_seed(0)


# --- CNNs -----------------------------------------------------------------------------------


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResNetTiny(nn.Module):
    """Stem + one residual block with BatchNorm + pooling + classifier."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.block = _Residual(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def _randomize_bn(model: nn.Module) -> None:
    # Non-trivial running statistics, so eval-mode BatchNorm is really exercised.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


def resnet_tiny() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Residual CNN (left in training mode on purpose: export switches it to eval)."""
    _seed()
    model = ResNetTiny()
    _randomize_bn(model)
    return model, (torch.randn(2, 3, 16, 16),)


def resnet_tiny_module() -> nn.Module:
    """The same residual CNN, without example inputs (eval mode)."""
    _seed()
    model = ResNetTiny()
    _randomize_bn(model)
    return model.eval()


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(s))))


class MobileTiny(nn.Module):
    """Depthwise separable convolution + squeeze-excitation + hardswish."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pointwise = nn.Conv2d(8, 16, 1)
        self.se = _SqueezeExcite(16, 4)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.bn(self.depthwise(self.stem(x))))
        y = self.se(nn.functional.hardswish(self.pointwise(y)))
        return self.fc(y.mean(dim=(2, 3)))


def mobile_tiny() -> tuple[nn.Module, tuple[torch.Tensor]]:
    _seed()
    model = MobileTiny()
    _randomize_bn(model)
    return model.eval(), (torch.randn(2, 3, 12, 12),)


# --- transformers ---------------------------------------------------------------------------


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        if bias is not None:
            scores = scores + bias
        y = torch.softmax(scores, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class ViTTiny(nn.Module):
    """Patch embedding, class token, position embedding, one pre-norm encoder layer."""

    def __init__(self, image: int = 16, patch: int = 4, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.1)
        self.layer = _Layer(dim, heads=2)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.layer(x))[:, 0])


def vit_tiny() -> tuple[nn.Module, tuple[torch.Tensor]]:
    _seed()
    return ViTTiny().eval(), (torch.randn(2, 3, 16, 16),)


class BertTiny(nn.Module):
    """BERT-style encoder: token + position + type embeddings, masked attention, pooler; returns
    a dict with nested entries."""

    def __init__(self, vocab: int = 50, dim: int = 16, max_len: int = 32) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.types = nn.Embedding(2, dim)
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([_Layer(dim, heads=2) for _ in range(2)])
        self.pooler = nn.Linear(dim, dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.norm(
            self.tokens(input_ids)
            + self.positions(positions)[None]
            + self.types(torch.zeros_like(input_ids))
        )
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        hidden = []
        for layer in self.layers:
            x = layer(x, bias)
            hidden.append(x)
        return {
            "last_hidden_state": x,
            "pooler_output": torch.tanh(self.pooler(x[:, 0])),
            "hidden_states": tuple(hidden),
        }


def bert_tiny() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    _seed()
    ids = torch.randint(0, 50, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, 6:] = 0
    return BertTiny().eval(), {"input_ids": ids, "attention_mask": mask}


# --- multi-input / multi-output ----------------------------------------------------------------


class MultiIO(nn.Module):
    """Two inputs (image, features); nested tuple output ``(logits, (embedding, [aux]))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 + 5, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, image: torch.Tensor, features: torch.Tensor) -> Any:
        pooled = self.conv(image).mean(dim=(2, 3))
        embedding = torch.relu(self.fc(torch.cat([pooled, features], dim=1)))
        return self.head(embedding), (embedding, [features.sum(dim=1)])


def multi_io() -> nn.Module:
    """Without example inputs: the tests pass --input."""
    _seed()
    return MultiIO().eval()


class TinyLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def tiny_linear() -> nn.Module:
    _seed()
    return TinyLinear().eval()


def tiny_linear_examples() -> tuple[nn.Module, tuple[torch.Tensor]]:
    _seed()
    return TinyLinear().eval(), (torch.randn(2, 4),)


class Wide(nn.Module):
    """A few hundred KiB of weights: big enough to be worth external data in a test."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 256)
        self.fc2 = nn.Linear(256, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def wide() -> tuple[nn.Module, tuple[torch.Tensor]]:
    _seed()
    return Wide().eval(), (torch.randn(2, 64),)


# --- failure cases ------------------------------------------------------------------------------


def _mystery_op() -> Any:
    try:
        return torch.ops.optieval_test.mystery.default
    except (AttributeError, RuntimeError):
        pass

    @torch.library.custom_op("optieval_test::mystery", mutates_args=())
    def mystery(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @mystery.register_fake
    def _(x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    return torch.ops.optieval_test.mystery.default


class CustomOp(nn.Module):
    """Calls an operator neither exporter can convert."""

    def __init__(self) -> None:
        super().__init__()
        self.op = _mystery_op()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x) + 1


def custom_op() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return CustomOp(), (torch.randn(2, 4),)


class DataDependent(nn.Module):
    """Python control flow on a tensor value: dynamo cannot capture it, tracing bakes the
    branch (always taken here, so the traced model is right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() >= 0:
            return x * 2
        return x * 3


def data_dependent() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return DataDependent(), (torch.randn(2, 4),)


class ShapeBranch(nn.Module):
    """Branches on the batch size: tracing at batch 2 bakes the wrong branch for batch 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 2:
            return x * 2
        return x * 3


def shape_branch() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return ShapeBranch(), (torch.randn(2, 4),)


def not_a_module() -> int:
    return 42


def raises() -> nn.Module:
    raise ValueError("weights server unreachable")


NOT_CALLABLE = 3


def embedding_named_output() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A token encoder whose output is called ``embedding``, the name torch gives the
    ``nn.Embedding`` result inside the graph."""

    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(50, 8)

        def forward(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"embedding": self.embedding(input_ids).mean(1)}

    _seed()
    return Pooled().eval(), {"input_ids": torch.randint(0, 50, (2, 5))}
