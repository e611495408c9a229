"""One-off cross-check of benchmarks.models against the reference libraries (not a dependency).

Run: ``python -m benchmarks.models.crosscheck`` (needs sentence-transformers and transformers,
which optieval and its tests never import). Prints:

- WordPiece: the own tokenizer's ids against transformers' tokenizer of the packaged model, on
  every suite sentence (count equal);
- MiniLM: per-sentence cosine of the plain-torch encoder with sentence-transformers' ``encode``
  (mean, min over the 200 sentences, padded to the longest);
- EfficientNet-Lite0: top-1 of the centre crop of each colour photo.
"""

from __future__ import annotations

import numpy as np
import torch


def main() -> int:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from benchmarks.models import efficientnet_lite as effnet
    from benchmarks.models.minilm import WordPieceTokenizer, load_encoder, model_dir
    from benchmarks.models.photos import PHOTOS, centre, normalise
    from benchmarks.models.sentences import SENTENCES

    texts = list(SENTENCES)
    own = WordPieceTokenizer()
    reference = AutoTokenizer.from_pretrained(str(model_dir()))
    same = sum(own.encode(t) == reference(t)["input_ids"] for t in texts)
    print(f"wordpiece: {same}/{len(texts)} sentences give transformers' ids")

    st = SentenceTransformer(str(model_dir()), device="cpu")
    expected = st.encode(texts, batch_size=50, convert_to_numpy=True)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    ids, mask = own.encode_batch(texts)
    with torch.no_grad():
        got = load_encoder()(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    cosine = (got * expected).sum(axis=1)
    print(
        f"minilm vs sentence-transformers ({len(texts)} sentences, seq {ids.shape[1]}): "
        f"cosine mean {cosine.mean():.7f} min {cosine.min():.7f}"
    )

    model = effnet.load_model()
    for name in PHOTOS[:8]:
        with torch.no_grad():
            probs = torch.softmax(
                model(torch.from_numpy(normalise(centre(name), effnet.MEAN, effnet.STD))), 1
            )
        p, k = probs[0].max(0)
        print(
            f"effnet {name}: top-1 {int(k)} "
            f"{effnet.IMAGENET_CLASSES.get(int(k), '?')} p={float(p):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
