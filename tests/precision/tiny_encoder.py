"""A small transformer sentence encoder, built in torch for the fp16 tests: token and position
embeddings, LayerNorm, softmax attention with an additive mask made by ``.to(torch.float32)``
(the pattern that broke onnxconverter-common's converter on MiniLM), GELU feed-forward and
masked mean pooling. ``make()`` is an optieval factory spec."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.heads
        q, k, v = (t.view(b, s, h, d // h).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        scores = q @ k.transpose(-1, -2) / (d // h) ** 0.5
        additive = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        attention = torch.softmax(scores + additive, dim=-1)
        y = (attention @ v).transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.out(y))
        return self.ln2(x + self.ff(x))


class Encoder(nn.Module):
    def __init__(self, vocab: int = 100, d: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(64, d)
        self.ln = nn.LayerNorm(d)
        self.blocks = nn.ModuleList(Block(d, 4) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.ln(self.emb(input_ids) + self.pos(positions)[None])
        for block in self.blocks:
            x = block(x, attention_mask)
        m = attention_mask.unsqueeze(-1).to(torch.float32)
        return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)


def make() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = Encoder().eval()
    return model, (torch.randint(0, 100, (2, 16)), torch.ones(2, 16, dtype=torch.int64))
