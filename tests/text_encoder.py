"""A small transformer-like sentence encoder for the dynamic-dimension tests (issue 17):
token embedding, one self-attention layer with a padding mask, LayerNorm and a masked mean
pool; inputs ``input_ids`` and ``attention_mask`` (int64, ``[batch, seq]``, both dynamic and
tied by name), output ``embedding`` ``[batch, 16]``. Exported once per test session through
``optieval.export_model``; :func:`sentences` writes variable-length data as one ``.npz`` per
sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

VOCAB = 64


def tiny_encoder() -> tuple[Any, dict[str, Any]]:
    """The export spec: the module and example inputs (batch 2, seq 8)."""
    import torch
    from torch import nn

    class TinyEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, 16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.norm = nn.LayerNorm(16)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            x = self.tokens(input_ids)
            h, _ = self.attn(x, x, x, key_padding_mask=attention_mask == 0, need_weights=False)
            x = self.norm(x + h)
            m = attention_mask.unsqueeze(-1).to(x.dtype)
            return (x * m).sum(1) / m.sum(1).clamp(min=1.0)

    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (2, 8))
    return TinyEncoder().eval(), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def encoder_onnx(factory: pytest.TempPathFactory) -> Path:
    """The exported encoder, made once per session under the session's temporary folder."""
    folder = factory.getbasetemp() / "text-encoder"
    model = folder / "encoder.onnx"
    if model.is_file():
        return model
    from optieval.export import export_model

    folder.mkdir(exist_ok=True)
    export_model(
        f"{__file__}:tiny_encoder",
        model,
        dynamic=["batch", "input_ids:1:seq", "attention_mask:1:seq"],
    )
    return model


def sentences(folder: Path, lengths: list[int], seed: int = 0) -> Path:
    """Write one ``.npz`` per sentence (token ids and an all-ones mask of its length)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, n in enumerate(lengths):
        ids = rng.integers(0, VOCAB, n).astype(np.int64)
        np.savez(folder / f"s{i}.npz", input_ids=ids, attention_mask=np.ones(n, np.int64))
    return folder


def padded(path: Path, count: int, length: int, seed: int = 0) -> Path:
    """Write ``count`` sentences padded to ``length`` as one ``.npz`` (mask 0 on the padding)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (count, length)).astype(np.int64)
    mask = np.ones((count, length), np.int64)
    for i in range(count):
        real = int(rng.integers(3, length + 1))
        ids[i, real:] = 0
        mask[i, real:] = 0
    np.savez(path, input_ids=ids, attention_mask=mask)
    return path
