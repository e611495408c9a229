"""The one table of backend and precision names (docs/design.md, "Names").

Every module that checks, lists or orders these names imports them from here, so that adding a
backend or a precision is one edit.
"""

from __future__ import annotations

BACKEND_NAMES = ("torch-cpu", "torch-cuda", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt")
"""Every backend, in the order reports list them."""
ONNX_BACKENDS = ("ort-cpu", "ort-cuda", "ort-trt", "tensorrt")
"""Backends that run an ONNX artifact (or an engine built from one)."""
TORCH_BACKENDS = ("torch-cpu", "torch-cuda")
"""Backends that run the PyTorch source."""
GPU_BACKENDS = ("torch-cuda", "ort-cuda", "ort-trt", "tensorrt")
"""Backends that need a GPU."""

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
"""Every precision a result can be labelled with, widest first."""
ONNX_PRECISIONS = ("fp32", "fp16", "int8")
"""Precisions an ONNX artifact carries (bf16 runs only through torch autocast or TensorRT)."""
CONVERTIBLE_PRECISIONS = ("fp16", "int8")
"""Precisions optieval converts an FP32 ONNX model into."""
TORCH_PRECISIONS = ("fp32", "fp16", "bf16")
"""Precisions the torch backends run (fp16 and bf16 through autocast, on CUDA only)."""
TENSORRT_PRECISIONS = ("fp32", "fp16", "bf16", "int8")
"""Precisions a native TensorRT engine can be built in."""
CENSUS_ORDER = ("int8", "fp16", "bf16", "fp32", "other")
"""How a precision census lists what a graph computes in, narrowest first."""


def is_precision(name: str) -> bool:
    """Whether ``name`` is a precision optieval knows."""
    return name in PRECISIONS


def is_backend(name: str) -> bool:
    """Whether ``name`` is a backend optieval knows."""
    return name in BACKEND_NAMES
