"""I/O signatures: the names, dtypes and (possibly symbolic) shapes of a model's tensors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.errors import InputError

if TYPE_CHECKING:
    import onnx

Dim = int | str | None
"""One dimension: a fixed size, a symbolic name (``"batch"``), or None when unknown."""

# ONNX TensorProto element types to numpy dtype names (the ones models use as I/O).
_ONNX_TO_NUMPY = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}

# onnxruntime's type strings ("tensor(float)") to numpy dtype names.
_ORT_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: name, numpy dtype name and shape (dims may be symbolic)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def is_dynamic(self) -> bool:
        """True when any dimension is not a fixed integer."""
        return any(not isinstance(d, int) for d in self.shape)

    def shape_text(self) -> str:
        """The shape as ``batchx3x224x224`` (``?`` for an unknown dim)."""
        return "x".join("?" if d is None else str(d) for d in self.shape) or "scalar"

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for manifests and results."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorSpec:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["name"]), str(data["dtype"]), tuple(data["shape"]))


@dataclass(frozen=True)
class Signature:
    """A model's inputs and outputs, in graph order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        """Return the input called ``name``; InputError listing the inputs otherwise."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise InputError(
            f"the model has no input {name!r}",
            where=name,
            hint=f"its inputs are {', '.join(s.name for s in self.inputs)}",
        )

    def describe(self) -> str:
        """One line: ``x: float32[batchx3x8x8]; ...``."""
        return "; ".join(f"{s.name}: {s.dtype}[{s.shape_text()}]" for s in self.inputs)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for manifests and results."""
        return {
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Signature:
        """Inverse of :meth:`to_json`."""
        return cls(
            tuple(TensorSpec.from_json(s) for s in data["inputs"]),
            tuple(TensorSpec.from_json(s) for s in data["outputs"]),
        )


def _dims_from_onnx(type_proto: Any) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for d in type_proto.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(str(d.dim_param))
        else:
            dims.append(None)
    return tuple(dims)


def signature_from_onnx(model: onnx.ModelProto) -> Signature:
    """Read the I/O signature of an ONNX model (graph inputs that are not initializers)."""
    initializers = {init.name for init in model.graph.initializer}

    def spec(value: Any) -> TensorSpec:
        elem = value.type.tensor_type.elem_type
        return TensorSpec(
            value.name, _ONNX_TO_NUMPY.get(elem, f"onnx:{elem}"), _dims_from_onnx(value.type)
        )

    return Signature(
        tuple(spec(v) for v in model.graph.input if v.name not in initializers),
        tuple(spec(v) for v in model.graph.output),
    )


def signature_from_ort(session: Any) -> Signature:
    """Read the I/O signature of an onnxruntime InferenceSession."""

    def spec(arg: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, (int, str)) else None for d in (arg.shape or []))
        return TensorSpec(arg.name, _ORT_TO_NUMPY.get(arg.type, arg.type), shape)

    return Signature(
        tuple(spec(a) for a in session.get_inputs()),
        tuple(spec(a) for a in session.get_outputs()),
    )


def load_onnx(path: str | os.PathLike[str], *, load_external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX file, raising :class:`InputError` naming the file when it is missing, not
    ONNX, or truncated."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise InputError("model file not found", where=str(p), hint="check the path")
    try:
        return onnx.load(str(p), load_external_data=load_external_data)
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError...
        raise InputError(
            f"not a readable ONNX model ({type(exc).__name__}: {exc})".rstrip(),
            where=str(p),
            hint="is the file complete? re-export it with `optieval export`",
        ) from exc
