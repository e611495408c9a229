"""Parity of an exported ONNX file with its PyTorch source: ONNX Runtime CPU against PyTorch on
fresh seeded inputs, at the export sizes and at a second size of every dynamic dimension.

An output passes when every element satisfies ``|onnx - torch| <= atol + rtol * |torch|``
(numpy's ``allclose``), shapes agree, and NaNs sit at the same places. ``max_rel`` is reported
over the elements where ``|torch| > atol`` so that values near zero do not dominate it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optieval.export.inputs import DimInfo, InputSpec, alternate_size, make_tensors
from optieval.source import LoadedModel, flatten_outputs, one_line

__all__ = ["OutputParity", "ParityCase", "ParityReport", "compare_arrays", "run_parity"]


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class OutputParity:
    """One output at one case: errors of ONNX Runtime against PyTorch."""

    name: str
    shape: tuple[int, ...]
    max_abs: float | None
    max_rel: float | None
    cosine: float | None
    passed: bool
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "cosine": self.cosine,
            "passed": self.passed,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputParity:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            tuple(data["shape"]),
            data.get("max_abs"),
            data.get("max_rel"),
            data.get("cosine"),
            bool(data["passed"]),
            data.get("note"),
        )


@dataclass(frozen=True)
class ParityCase:
    """One set of inputs: the sizes of the dynamic dimensions, the seed, the results."""

    name: str
    sizes: dict[str, int]
    seed: int
    inputs: dict[str, list[int]]
    outputs: tuple[OutputParity, ...]
    passed: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "name": self.name,
            "sizes": dict(self.sizes),
            "seed": self.seed,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": [o.to_json() for o in self.outputs],
            "passed": self.passed,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParityCase:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            dict(data.get("sizes", {})),
            int(data.get("seed", 0)),
            {k: list(v) for k, v in data.get("inputs", {}).items()},
            tuple(OutputParity.from_json(o) for o in data.get("outputs", [])),
            bool(data["passed"]),
            data.get("error"),
        )


@dataclass(frozen=True)
class ParityReport:
    """Parity of the whole export: passed only when every case passed."""

    passed: bool
    atol: float
    rtol: float
    cases: tuple[ParityCase, ...]
    error: str | None = None

    def failures(self) -> list[str]:
        """One short line per failed case or output."""
        lines = [f"parity not run: {self.error}"] if self.error else []
        for case in self.cases:
            if case.error:
                lines.append(f"{case.name}: {case.error}")
            for out in case.outputs:
                if not out.passed:
                    detail = out.note or f"max abs {out.max_abs:.3g}, max rel {out.max_rel:.3g}"
                    lines.append(f"{case.name}: {out.name} ({detail})")
        return lines

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (manifest ``parity``)."""
        return {
            "passed": self.passed,
            "atol": self.atol,
            "rtol": self.rtol,
            "cases": [c.to_json() for c in self.cases],
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParityReport:
        """Inverse of :meth:`to_json`."""
        return cls(
            bool(data["passed"]),
            float(data["atol"]),
            float(data["rtol"]),
            tuple(ParityCase.from_json(c) for c in data.get("cases", [])),
            data.get("error"),
        )


def compare_arrays(
    name: str, ref: np.ndarray, got: np.ndarray, *, atol: float, rtol: float
) -> OutputParity:
    """Compare ONNX Runtime's ``got`` with PyTorch's ``ref`` (see the module docstring)."""
    shape = tuple(int(d) for d in ref.shape)
    if tuple(got.shape) != shape:
        return OutputParity(
            name,
            shape,
            None,
            None,
            None,
            False,
            f"shape {list(got.shape)} from ONNX, {list(shape)} from PyTorch",
        )
    a = ref.astype(np.float64)
    b = got.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return OutputParity(name, shape, None, None, None, False, "NaNs at different places")
    keep = ~nan_a
    a, b = a[keep], b[keep]
    if a.size == 0:
        return OutputParity(name, shape, 0.0, 0.0, 1.0, True)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
        same_inf = np.isinf(a) & (a == b)
        diff[same_inf] = 0.0
        max_abs = float(np.max(diff))
        big = np.abs(a) > atol
        max_rel = float(np.max(diff[big] / np.abs(a[big]))) if big.any() else 0.0
        passed = bool(np.all(diff <= atol + rtol * np.abs(a)))
        fa, fb = a[np.isfinite(a) & np.isfinite(b)], b[np.isfinite(a) & np.isfinite(b)]
        norm = float(np.linalg.norm(fa) * np.linalg.norm(fb))
        cosine = (
            float(np.dot(fa, fb) / norm)
            if norm > 0
            else (1.0 if not fa.any() and not fb.any() else 0.0)
        )
    return OutputParity(name, shape, _num(max_abs), _num(max_rel), _num(cosine), passed)


def _to_numpy(tensor: Any) -> np.ndarray:
    import torch

    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.asarray(t.numpy())


def case_sizes(dims: Mapping[str, Mapping[int, DimInfo]]) -> list[dict[str, int]]:
    """The dynamic sizes of the two parity cases: export sizes, then alternate sizes."""
    labels: dict[str, DimInfo] = {}
    for axes in dims.values():
        for info in axes.values():
            labels.setdefault(info.label, info)
    first = {label: info.size for label, info in labels.items()}
    second = {label: alternate_size(info) for label, info in labels.items()}
    return [first, second]


def specs_at(
    specs: Sequence[InputSpec], dims: Mapping[str, Mapping[int, DimInfo]], sizes: Mapping[str, int]
) -> list[InputSpec]:
    """``specs`` with every dynamic axis set to ``sizes[label]``."""
    out = []
    for spec in specs:
        shape = list(spec.shape)
        for axis, info in dims.get(spec.name, {}).items():
            shape[axis] = sizes[info.label]
        out.append(spec.with_shape(shape))
    return out


def run_parity(
    loaded: LoadedModel,
    onnx_path: Path,
    specs: Sequence[InputSpec],
    dims: Mapping[str, Mapping[int, DimInfo]],
    *,
    atol: float,
    rtol: float,
    seed: int = 0,
) -> ParityReport:
    """Run ONNX Runtime CPU and PyTorch on two seeded cases and compare every output.

    Args:
        loaded: the PyTorch source.
        onnx_path: the exported model (external data beside it is found).
        specs: the example inputs (names, shapes at export, dtypes, ranges).
        dims: the dynamic dimensions, as resolved for the export.
        atol, rtol: tolerances.
        seed: base seed; case ``i`` uses ``seed + 1 + i``.

    Returns:
        A :class:`ParityReport`. Failures to run either side are recorded in it (the report
        fails), not raised.
    """
    from optieval.runtime import OrtCpuBackend

    backend = OrtCpuBackend(onnx_path)
    try:
        signature = backend.load().signature
    except Exception as exc:
        return ParityReport(
            False, atol, rtol, (), f"onnxruntime cannot load the model: {one_line(str(exc))}"
        )
    onnx_inputs = {s.name for s in signature.inputs}
    onnx_outputs = [s.name for s in signature.outputs]
    cases: list[ParityCase] = []
    try:
        for index, sizes in enumerate(case_sizes(dims)):
            name = ", ".join(f"{k}={v}" for k, v in sizes.items()) or f"static #{index + 1}"
            case_seed = seed + 1 + index
            feeds = make_tensors(specs_at(specs, dims, sizes), seed=case_seed)
            shapes = {k: list(v.shape) for k, v in feeds.items()}
            try:
                ref = flatten_outputs(loaded.call(feeds))
            except Exception as exc:
                cases.append(
                    ParityCase(
                        name,
                        sizes,
                        case_seed,
                        shapes,
                        (),
                        False,
                        f"PyTorch failed: {one_line(str(exc), 300)}",
                    )
                )
                continue
            try:
                got = backend.infer({k: _to_numpy(v) for k, v in feeds.items() if k in onnx_inputs})
            except Exception as exc:
                cases.append(
                    ParityCase(
                        name,
                        sizes,
                        case_seed,
                        shapes,
                        (),
                        False,
                        f"onnxruntime failed: {one_line(str(exc), 300)}",
                    )
                )
                continue
            outputs = []
            if len(ref) != len(onnx_outputs):
                cases.append(
                    ParityCase(
                        name,
                        sizes,
                        case_seed,
                        shapes,
                        (),
                        False,
                        f"PyTorch gives {len(ref)} outputs, ONNX {len(onnx_outputs)}",
                    )
                )
                continue
            # Matched by position: the exporters flatten outputs in the same order as
            # flatten_outputs, and the ONNX names are the flattened names.
            for (_, tensor), onnx_name in zip(ref, onnx_outputs, strict=True):
                outputs.append(
                    compare_arrays(
                        onnx_name, _to_numpy(tensor), got[onnx_name], atol=atol, rtol=rtol
                    )
                )
            cases.append(
                ParityCase(
                    name, sizes, case_seed, shapes, tuple(outputs), all(o.passed for o in outputs)
                )
            )
    finally:
        backend.close()
    return ParityReport(all(c.passed for c in cases) and bool(cases), atol, rtol, tuple(cases))
