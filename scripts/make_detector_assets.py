"""Make the bundled detector assets in optieval/assets/: seeded synthetic images of simple shapes
with exact boxes, a few-layer grid detector trained on them on CPU, its weights, two ONNX forms
(raw head; NMS in the graph) and a small evaluation set with ground truth.

Run from the repository root:  python scripts/make_detector_assets.py
Deterministic (seeded generation and training): about a minute of CPU time (56 s user time on
the 2-core CI machine).

Images are 32x32 grey in [0, 1], each with 1-3 non-overlapping shapes of 3 classes (0 filled
rectangle, 1 disc, 2 hollow rectangle), 6-14 pixels across. A box is the exact pixel extent of
its shape, xyxy in pixels (x2, y2 exclusive edges). Training images get pixel noise; the
evaluation set is noise-free (so it compresses to a few tens of KB).
"""

from __future__ import annotations

import time

import numpy as np
import onnx
import torch

from optieval.assets import DETECTOR_DATA, DETECTOR_NMS_ONNX, DETECTOR_ONNX, DETECTOR_WEIGHTS
from optieval.assets.detector import CLASSES, IMAGE_SIZE, STRIDE, build_model
from optieval.detection.nms import NmsSettings, append_nms

SEED = 0
TRAIN_IMAGES = 2000
EVAL_IMAGES = 128
EPOCHS = 12
BATCH = 64


def draw(rng: np.random.Generator, noise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image and its boxes (k x 4, xyxy pixels) and classes (k)."""
    size = IMAGE_SIZE
    image = np.full((size, size), rng.uniform(0.0, 0.3), dtype=np.float32)
    boxes: list[list[float]] = []
    classes: list[int] = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            cls = int(rng.integers(0, len(CLASSES)))
            w = int(rng.integers(6, 15))
            h = w if cls == 1 else int(rng.integers(6, 15))
            x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            # One pixel of clearance: shapes never touch, so every centre has its own cell.
            if all(x0 >= b[2] + 1 or b[0] >= x0 + w + 1 or y0 >= b[3] + 1 or b[1] >= y0 + h + 1
                   for b in boxes):  # fmt: skip
                break
        else:
            continue
        value = np.float32(rng.uniform(0.6, 1.0))
        yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w]
        if cls == 0:
            mask = np.ones((h, w), dtype=bool)
        elif cls == 1:
            r = w / 2.0
            mask = (xx + 0.5 - (x0 + r)) ** 2 + (yy + 0.5 - (y0 + r)) ** 2 <= r * r
        else:
            mask = np.ones((h, w), dtype=bool)
            mask[2:-2, 2:-2] = False
        image[y0 : y0 + h, x0 : x0 + w][mask] = value
        ys, xs = np.nonzero(mask)
        boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
        classes.append(cls)
    if noise:
        image += rng.normal(0.0, 0.04, image.shape).astype(np.float32)
    # Quantized to 1/255 like an 8-bit image.
    image = np.round(np.clip(image, 0.0, 1.0) * 255) / 255
    return image.astype(np.float32), np.asarray(boxes, np.float32), np.asarray(classes, np.int64)


def make_set(count: int, seed: int, noise: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, boxes, classes, owner = [], [], [], []
    for i in range(count):
        image, b, c = draw(rng, noise)
        images.append(image[None])
        boxes.append(b)
        classes.append(c)
        owner.append(np.full(len(c), i, dtype=np.int64))
    return {
        "images": np.stack(images),
        "gt_boxes": np.concatenate(boxes),
        "gt_classes": np.concatenate(classes),
        "gt_image": np.concatenate(owner),
    }


def targets(data: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per cell: class one-hot (N x cells x C), box (N x cells x 4, xyxy), positive mask."""
    n, cells = len(data["images"]), (IMAGE_SIZE // STRIDE) ** 2
    cls = np.zeros((n, cells, len(CLASSES)), np.float32)
    box = np.zeros((n, cells, 4), np.float32)
    pos = np.zeros((n, cells), bool)
    for b, c, i in zip(data["gt_boxes"], data["gt_classes"], data["gt_image"], strict=True):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        cell = int(cy // STRIDE) * (IMAGE_SIZE // STRIDE) + int(cx // STRIDE)
        cls[i, cell, c] = 1.0
        box[i, cell] = b
        pos[i, cell] = True
    return torch.from_numpy(cls), torch.from_numpy(box), torch.from_numpy(pos)


def loss_fn(model: torch.nn.Module, x: torch.Tensor, cls: torch.Tensor, box: torch.Tensor,
            pos: torch.Tensor) -> torch.Tensor:  # fmt: skip
    boxes, scores = model(x)
    score_loss = torch.nn.functional.binary_cross_entropy(scores, cls, reduction="sum") / x.shape[0]
    p, t = boxes[pos], box[pos]
    l1 = (p - t).abs().sum() / IMAGE_SIZE
    inter = (torch.min(p[:, 2:], t[:, 2:]) - torch.max(p[:, :2], t[:, :2])).clamp(min=0).prod(1)
    union = (p[:, 2:] - p[:, :2]).prod(1) + (t[:, 2:] - t[:, :2]).prod(1) - inter
    iou_loss = (1 - inter / union).sum()
    return score_loss + (l1 + 2 * iou_loss) / x.shape[0]


def main() -> None:
    started = time.perf_counter()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    train = make_set(TRAIN_IMAGES, SEED, noise=True)
    held = make_set(EVAL_IMAGES, SEED + 1, noise=False)
    x = torch.from_numpy(train["images"])
    cls, box, pos = targets(train)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=4e-3, total_steps=EPOCHS * -(-TRAIN_IMAGES // BATCH)
    )
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(TRAIN_IMAGES)
        total = 0.0
        for start in range(0, TRAIN_IMAGES, BATCH):
            idx = perm[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model, x[idx], cls[idx], box[idx], pos[idx])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}: loss {total / TRAIN_IMAGES:.4f}")
    model.eval()
    print(f"trained in {time.perf_counter() - started:.1f} s")

    torch.save(model.state_dict(), DETECTOR_WEIGHTS)
    np.savez_compressed(DETECTOR_DATA, **held)
    example = torch.from_numpy(held["images"][:4])
    torch.onnx.export(
        model,
        (example,),
        str(DETECTOR_ONNX),
        input_names=["images"],
        output_names=["boxes", "scores"],
        dynamic_axes={"images": {0: "batch"}, "boxes": {0: "batch"}, "scores": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    raw = onnx.load(str(DETECTOR_ONNX))
    onnx.save(append_nms(raw, settings=NmsSettings(0.5, 0.05, 20)), str(DETECTOR_NMS_ONNX))
    print(f"wrote {DETECTOR_WEIGHTS}, {DETECTOR_DATA}, {DETECTOR_ONNX}, {DETECTOR_NMS_ONNX}")


if __name__ == "__main__":
    main()
