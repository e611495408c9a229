"""Deterministic real photos: 224x224 crops of the images scikit-image ships.

Only files inside the installed ``scikit-image`` wheel are read (``skimage/data/*.png|jpg``),
found without importing scikit-image (so its own dependencies need not be installed), and
decoded with Pillow. Nothing is downloaded.

:func:`crops` draws ``n`` crops from a seeded generator: a photo (round robin), a square of
35-100% of the photo's shorter side at a random place, an optional horizontal flip, resized to
``size`` (bilinear). The same ``(n, seed)`` always gives the same pixels. Grayscale photos are
repeated into three channels; RGBA ones are composited onto white.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np

# Colour photos first: they matter most for an ImageNet network. Textures and grayscale scenes
# widen the calibration range the way real traffic does.
PHOTOS = (
    "chelsea.png",
    "coffee.png",
    "astronaut.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "color.png",
    "logo.png",
    "horse.png",
    "camera.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "coins.png",
    "clock_motion.png",
    "page.png",
    "text.png",
    "cell.png",
)


def data_dir() -> Path:
    """scikit-image's bundled data folder (ImportError when scikit-image is not installed)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-image is not installed (its bundled photos are the inputs)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def load_photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 H x W x 3 RGB."""
    from PIL import Image

    with Image.open(data_dir() / name) as image:
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    array.setflags(write=False)
    return array


def crop(photo: np.ndarray, box: tuple[int, int, int], flip: bool, size: int) -> np.ndarray:
    """The square ``(left, top, side)`` of ``photo``, flipped if asked, resized to ``size``."""
    from PIL import Image

    left, top, side = box
    image = Image.fromarray(photo).resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side)
    )
    out = np.asarray(image, dtype=np.uint8)
    return out[:, ::-1] if flip else out


def crops(n: int, seed: int = 0, size: int = 224, photos: tuple[str, ...] = PHOTOS) -> np.ndarray:
    """``n`` deterministic crops, uint8 ``n x size x size x 3`` (RGB)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        photo = load_photo(photos[i % len(photos)])
        h, w = photo.shape[:2]
        short = min(h, w)
        # The first crop of each photo is its centre square: the "clean" view.
        if i < len(photos):
            side = short
            left, top = (w - side) // 2, (h - side) // 2
            flip = False
        else:
            side = int(rng.integers(int(0.35 * short), short + 1))
            left = int(rng.integers(0, w - side + 1))
            top = int(rng.integers(0, h - side + 1))
            flip = bool(rng.integers(0, 2))
        out[i] = crop(photo, (left, top, side), flip, size)
    return out


def normalise(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W, ``(x / 255 - mean) / std`` per channel."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def centre(name: str, size: int = 224) -> np.ndarray:
    """The centre square of one photo, uint8 ``1 x size x size x 3``."""
    photo = load_photo(name)
    h, w = photo.shape[:2]
    side = min(h, w)
    return crop(photo, ((w - side) // 2, (h - side) // 2, side), False, size)[None]
