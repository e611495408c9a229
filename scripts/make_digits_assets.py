"""Make the bundled demo assets in optieval/assets/: train the digits CNN on scikit-learn's
digits (8x8 grey images, 10 classes), save its weights, an ONNX export and the data.

Run from the repository root:  python scripts/make_digits_assets.py
Needs scikit-learn (not an optieval dependency). Deterministic: seeded split and training.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from optieval.assets import DIGITS_DATA, DIGITS_ONNX, DIGITS_WEIGHTS
from optieval.assets.digits import build_model

SEED = 0


def main() -> None:
    torch.manual_seed(SEED)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # N x 1 x 8 x 8 in [0, 1]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(labels))
    train, held = order[:1200], order[1200:]

    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_train, y_train = torch.from_numpy(images[train]), torch.from_numpy(labels[train])
    epochs = 30
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(train))
        for start in range(0, len(train), 64):
            idx = perm[start : start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(torch.from_numpy(images[held])).argmax(1).numpy()
    accuracy = float((predictions == labels[held]).mean())
    print(f"held-out accuracy: {accuracy:.4f} on {len(held)} images after {epochs} epochs")

    torch.save(model.state_dict(), DIGITS_WEIGHTS)
    # Held-out images only: the demo's evaluation and calibration data never saw training.
    np.savez_compressed(
        DIGITS_DATA,
        x=images[held],
        labels=labels[held],
    )
    example = torch.from_numpy(images[:4])
    torch.onnx.export(
        model,
        (example,),
        str(DIGITS_ONNX),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {DIGITS_WEIGHTS}, {DIGITS_DATA}, {DIGITS_ONNX}")


if __name__ == "__main__":
    main()
