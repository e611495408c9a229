"""append_nms: the NMS-in-graph form gives the same detections as optieval's post-processing."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from optieval.assets import DETECTOR_DATA, DETECTOR_NMS_ONNX, DETECTOR_ONNX
from optieval.detection.boxes import BoxFormat, PostProcess, decode_batch, resolve_roles
from optieval.detection.nms import NmsSettings, append_nms
from optieval.errors import InputError


def _run(model: onnx.ModelProto | str, images: np.ndarray) -> dict[str, np.ndarray]:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": images}), strict=True))


def test_nms_graph_matches_optieval_postprocessing() -> None:
    images = np.load(DETECTOR_DATA)["images"][:16]
    raw = _run(str(DETECTOR_ONNX), images)
    nms_model = append_nms(onnx.load(str(DETECTOR_ONNX)), settings=NmsSettings(0.5, 0.05, 20))
    flat = _run(nms_model, images)
    assert set(flat) == {"boxes", "scores", "classes", "batch_index"}
    assert flat["boxes"].shape[1] == 4 and flat["classes"].dtype == np.int64
    post = PostProcess(0.05, 0.5, 100)
    a = decode_batch(raw, resolve_roles(list(raw)), 16, BoxFormat(), None, post)
    b = decode_batch(flat, resolve_roles(list(flat)), 16, BoxFormat(), None, post)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-6)
        np.testing.assert_allclose(x.boxes, y.boxes, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(x.classes, y.classes)


def test_shipped_nms_model_sizes_depend_on_the_data() -> None:
    images = np.load(DETECTOR_DATA)["images"]
    one = _run(str(DETECTOR_NMS_ONNX), images[:1])["scores"].shape[0]
    many = _run(str(DETECTOR_NMS_ONNX), images[:8])["scores"].shape[0]
    assert one < many


def test_append_nms_refuses_unknown_outputs() -> None:
    with pytest.raises(InputError, match="no output called nope"):
        append_nms(onnx.load(str(DETECTOR_ONNX)), boxes="nope")


def test_trained_factory_matches_the_onnx_export() -> None:
    torch = pytest.importorskip("torch")
    from optieval.assets.detector import build_trained_model

    images = np.load(DETECTOR_DATA)["images"][:4]
    with torch.no_grad():
        boxes, scores = build_trained_model()(torch.from_numpy(images))
    raw = _run(str(DETECTOR_ONNX), images)
    np.testing.assert_allclose(boxes.numpy(), raw["boxes"], atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), raw["scores"], atol=1e-5)
