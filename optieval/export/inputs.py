"""Example inputs and dynamic dimensions for export: parsing the text forms, resolving them
against a model's inputs, and making seeded tensors.

``inputs``: ``NAME:SHAPE[:DTYPE]`` (``x:2x3x224x224``, ``input_ids:2x16:int64``; the CLI's
``--input``), ``input_ranges``: ``NAME:LO:HI`` (integers drawn from ``[LO, HI)``, floats uniform
in it; ``--input-range``) and ``dynamic``: ``batch | NAME:AXIS[:LABEL][:MIN..MAX]`` (``batch``
marks dim 0 of every input; inputs whose axes share a label share the dimension; ``--dynamic``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optieval.core import is_dims, parse_dims, split_named
from optieval.errors import InputError

INPUT_FORMAT = "NAME:SHAPE[:DTYPE], e.g. x:2x3x224x224 or input_ids:2x16:int64"
RANGE_FORMAT = "NAME:LO:HI, e.g. input_ids:0:30522 (HI excluded)"
DYNAMIC_FORMAT = "batch, or NAME:AXIS[:LABEL][:MIN..MAX], e.g. input_ids:1:seq or batch:1..64"

# Accepted dtype spellings -> canonical (numpy/torch) names.
_DTYPES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "f32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "f16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
    "fp64": "float64",
    "int64": "int64",
    "long": "int64",
    "i64": "int64",
    "int32": "int32",
    "int": "int32",
    "i32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
_DEFAULT_INT_RANGE = (0.0, 2.0)
_RANGE_RE = re.compile(r"^(\d+)?\.\.(\d+)?$")
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InputSpec:
    """One example input: name, shape, dtype and, optionally, the value range ``[low, high)``.

    Integer inputs without a range get values in ``[0, 2)`` (valid for masks and any
    embedding); floats without a range are standard normal.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None

    @property
    def is_float(self) -> bool:
        """True for floating-point dtypes."""
        return self.dtype in _FLOATS

    def with_shape(self, shape: Sequence[int]) -> InputSpec:
        """This spec with another shape."""
        return replace(self, shape=tuple(int(d) for d in shape))

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (manifest ``provenance.inputs``)."""
        value_range = None if self.low is None or self.high is None else [self.low, self.high]
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "range": value_range,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_json`."""
        value_range = data.get("range")
        low, high = (None, None) if not value_range else (value_range[0], value_range[1])
        return cls(
            str(data["name"]),
            tuple(int(d) for d in data["shape"]),
            str(data.get("dtype", "float32")),
            low,
            high,
        )


@dataclass(frozen=True)
class DynamicDim:
    """A dynamic dimension request: ``input`` None means dim ``axis`` of every input (batch)."""

    input: str | None
    axis: int
    label: str
    min: int | None = None
    max: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (manifest ``provenance.dynamic``)."""
        return {
            "input": self.input,
            "axis": self.axis,
            "label": self.label,
            "min": self.min,
            "max": self.max,
        }


def canonical_dtype(text: str, *, where: str | None = "inputs", at: str = "") -> str:
    """Return the canonical dtype name for ``text`` (``int`` -> ``int32``, ``half`` ->
    ``float16``); InputError (``where``, message starting with ``at``) listing the accepted
    names otherwise."""
    dtype = _DTYPES.get(text.strip().lower())
    if dtype is None:
        raise InputError(
            f"{at}unknown dtype {text!r}",
            where=where,
            hint=f"use one of {', '.join(sorted(set(_DTYPES.values())))}",
        )
    return dtype


def _at(parameter: str, text: str) -> str:
    """The start of a message about one value of a parameter: ```dynamic` x:one: ``."""
    return f"`{parameter}` {text}: "


def parse_input(text: str) -> InputSpec:
    """Parse ``NAME:SHAPE[:DTYPE]`` (``x:2x3x224x224``, ``input_ids:2x16:int64``).

    The shape is parsed as :func:`optieval.core.parse_named_shape` does (the name ends at the last
    colon before the shape, so names may contain colons); a last part that is not a shape is
    the dtype.
    """
    at = _at("inputs", text)
    head, sep, tail = text.rpartition(":")
    dtype = "float32"
    named = text
    if sep and ":" in head and not is_dims(tail):
        dtype = canonical_dtype(tail, where=None, at=at)
        named = head
    try:
        name, dims = split_named(named, where=None)
    except InputError:
        raise InputError(f"{at}expected NAME:SHAPE[:DTYPE]", hint=INPUT_FORMAT) from None
    try:
        shape = parse_dims(dims, where=None, name=name)
    except InputError as exc:
        raise InputError(at + exc.message, hint=INPUT_FORMAT) from None
    return InputSpec(name, shape, dtype)


def parse_input_range(text: str) -> tuple[str, float, float]:
    """Parse ``NAME:LO:HI`` into ``(name, lo, hi)`` with ``lo < hi`` (HI excluded); the name
    ends at the third colon from the end."""
    at = _at("input_ranges", text)
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0].strip():
        raise InputError(f"{at}expected NAME:LO:HI", hint=RANGE_FORMAT)
    try:
        low, high = float(parts[1]), float(parts[2])
    except ValueError:
        raise InputError(f"{at}LO and HI must be numbers", hint=RANGE_FORMAT) from None
    if not low < high:
        raise InputError(f"{at}LO ({parts[1]}) must be below HI ({parts[2]})")
    return parts[0].strip(), low, high


def parse_dynamic(text: str) -> DynamicDim:
    """Parse ``batch[:MIN..MAX]`` or ``NAME:AXIS[:LABEL][:MIN..MAX]``.

    Without a label, the axis gets its own label ``NAME_AXIS`` (shared with no other input).
    """
    at = _at("dynamic", text)
    parts = [p.strip() for p in text.split(":")]
    low: int | None = None
    high: int | None = None
    if len(parts) > 1 and _RANGE_RE.match(parts[-1]):
        match = _RANGE_RE.match(parts.pop())
        assert match is not None
        low = int(match.group(1)) if match.group(1) else None
        high = int(match.group(2)) if match.group(2) else None
        if low is not None and high is not None and low > high:
            raise InputError(f"{at}MIN {low} is above MAX {high}", hint=DYNAMIC_FORMAT)
    if parts == ["batch"]:
        return DynamicDim(None, 0, "batch", low, high)
    if len(parts) not in (2, 3) or not parts[0]:
        raise InputError(f"{at}expected batch or NAME:AXIS[:LABEL]", hint=DYNAMIC_FORMAT)
    try:
        axis = int(parts[1])
    except ValueError:
        raise InputError(f"{at}axis {parts[1]!r} is not an integer", hint=DYNAMIC_FORMAT) from None
    label = parts[2] if len(parts) == 3 else f"{parts[0]}_{axis}"
    label = re.sub(r"\W", "_", label)
    if not _LABEL_RE.match(label):
        raise InputError(f"{at}label {label!r} must start with a letter")
    return DynamicDim(parts[0], axis, label, low, high)


def parse_many(values: Iterable[Any] | None, parse: Any, kind: type) -> list[Any]:
    """Parse every string in ``values`` with ``parse``; objects of ``kind`` pass through."""
    return [v if isinstance(v, kind) else parse(str(v)) for v in values or []]


@dataclass(frozen=True)
class DimInfo:
    """A resolved dynamic dimension: its label, bounds and the size used at export."""

    label: str
    min: int | None
    max: int | None
    size: int


def resolve_dynamic(
    requests: Sequence[DynamicDim], specs: Sequence[InputSpec]
) -> dict[str, dict[int, DimInfo]]:
    """Resolve dynamic requests against the example inputs: ``{input: {axis: DimInfo}}``.

    Negative axes count from the end. Sizes below 2 at export are raised to 2 (an example
    batch of 1 lets the exporter specialise the dimension to a constant). Raises
    :class:`InputError` listing every unknown input, out-of-range axis, and label whose inputs
    disagree on size or bounds.
    """
    by_name = {s.name: s for s in specs}
    problems: list[str] = []
    chosen: dict[str, dict[int, DynamicDim]] = {}
    for req in requests:
        targets = [s for s in specs if s.shape] if req.input is None else [by_name.get(req.input)]
        if req.input is not None and targets[0] is None:
            problems.append(f"no input {req.input!r} (inputs: {', '.join(by_name) or 'none'})")
            continue
        for spec in targets:
            assert spec is not None
            axis = req.axis + len(spec.shape) if req.axis < 0 else req.axis
            if not 0 <= axis < len(spec.shape):
                problems.append(f"{spec.name} has {len(spec.shape)} dims, no axis {req.axis}")
                continue
            chosen.setdefault(spec.name, {})[axis] = req
    labels: dict[str, tuple[int, int | None, int | None, str]] = {}
    for name, axes in chosen.items():
        for axis, req in axes.items():
            size = max(2, by_name[name].shape[axis])
            seen = labels.get(req.label)
            if seen is None:
                labels[req.label] = (size, req.min, req.max, f"{name}:{axis}")
            elif seen[0] != size:
                problems.append(
                    f"{seen[3]} and {name}:{axis} share label {req.label!r} but have "
                    f"sizes {seen[0]} and {size}"
                )
    if problems:
        raise InputError("; ".join(problems), where="dynamic", hint=DYNAMIC_FORMAT)
    result: dict[str, dict[int, DimInfo]] = {}
    for name, axes in chosen.items():
        for axis, req in axes.items():
            size, low, high, _ = labels[req.label]
            if high is not None and size > high:
                size = high
            result.setdefault(name, {})[axis] = DimInfo(req.label, low, high, size)
    return result


def apply_export_sizes(
    specs: Sequence[InputSpec], dims: Mapping[str, Mapping[int, DimInfo]]
) -> list[InputSpec]:
    """Return ``specs`` with every dynamic axis set to its export size."""
    out = []
    for spec in specs:
        shape = list(spec.shape)
        for axis, info in dims.get(spec.name, {}).items():
            shape[axis] = info.size
        out.append(spec.with_shape(shape))
    return out


def alternate_size(info: DimInfo) -> int:
    """A second size for parity: half the export size (batch 2 -> 1, seq 16 -> 8), kept
    within the bounds; one more when halving would leave them."""
    low = info.min if info.min is not None else 1
    candidate = max(1, info.size // 2)
    if candidate >= low and candidate != info.size:
        return candidate
    bigger = info.size + 1
    return bigger if info.max is None or bigger <= info.max else info.size


def make_tensors(specs: Sequence[InputSpec], *, seed: int) -> dict[str, Any]:
    """Make seeded tensors for ``specs`` (normal floats, or uniform/integers in the range)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for spec in specs:
        dtype = getattr(torch, spec.dtype)
        if spec.is_float:
            if spec.low is None or spec.high is None:
                t = torch.randn(spec.shape, generator=gen)
            else:
                t = torch.rand(spec.shape, generator=gen) * (spec.high - spec.low) + spec.low
            tensors[spec.name] = t.to(dtype)
        else:
            low, high = (spec.low, spec.high) if spec.low is not None else _DEFAULT_INT_RANGE
            assert high is not None
            t = torch.randint(int(low), int(high), spec.shape, generator=gen)
            tensors[spec.name] = t.to(dtype)
    return tensors


def spec_from_tensor(name: str, tensor: Any) -> InputSpec:
    """Describe an example tensor; integer and bool tensors keep their observed value range
    (``[min, max + 1)``), so regenerated masks stay masks."""
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in _DTYPES.values():
        raise InputError(
            f"example input has dtype {dtype}, which optieval cannot generate", where=name
        )
    spec = InputSpec(name, tuple(int(d) for d in tensor.shape), dtype)
    if not spec.is_float and tensor.numel():
        spec = replace(spec, low=float(tensor.min().item()), high=float(tensor.max().item()) + 1)
    return spec
