"""A conversion request, validated: the source model, its census, the options and the
calibration data (:meth:`ConversionRequest.make`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.core import (
    CONVERTIBLE_PRECISIONS,
    ONNX_BACKENDS,
    Dataset,
    Signature,
    load_dataset,
    load_onnx,
    signature_from_onnx,
)
from optieval.errors import InputError
from optieval.precision.calibration import default_calib_method
from optieval.precision.formats import (
    best_int8_format,
    check_format_for_backend,
    check_int8_format,
)
from optieval.precision.fp16 import fp16_options
from optieval.precision.graph_census import Census, census, node_names
from optieval.precision.int8 import CALIB_METHODS, int8_options

RANDOM_CALIB = "random"
"""``calib="random"``: calibrate on seeded random inputs (smoke tests only)."""
_RANDOM_SAMPLES = 32


@dataclass
class ConversionRequest:
    """A validated conversion request: the source, its census, the options and the data."""

    source: Path
    precision: str
    proto: onnx.ModelProto  # without external data
    signature: Signature
    source_census: Census
    calib_method: str
    calib_samples: int | None
    calib_repeats: int
    exclude: tuple[str, ...]
    data: Dataset | None = None  # the full data set (INT8)
    calib_data: Dataset | None = None  # the samples calibration uses
    calib_label: str | None = None
    random: bool = False
    int8_format: str | None = None  # int8 only: symmetric, u8s8 or dynamic
    backend: str | None = None  # the backend the artifact is made for (None: portable)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        model: str | Path,
        precision: str,
        calib: str | Path | Dataset | None,
        calib_method: str | None,
        calib_samples: int | None,
        calib_repeats: int,
        exclude: Sequence[str],
        *,
        int8_format: str | None = None,
        backend: str | None = None,
    ) -> ConversionRequest:
        """Validate the arguments of :func:`~optieval.precision.convert` and load what they
        name; InputError for anything that cannot be converted as asked (a format the backend
        cannot run among them)."""
        if precision not in CONVERTIBLE_PRECISIONS:
            hint = (
                "fp32 is the source model itself" if precision == "fp32" else "choose fp16 or int8"
            )
            raise InputError(f"cannot convert to {precision!r}", where="precision", hint=hint)
        if calib_method is not None and calib_method not in CALIB_METHODS:
            raise InputError(
                f"unknown calibration method {calib_method!r}",
                where="calib_method",
                hint=f"choose {', '.join(CALIB_METHODS)}",
            )
        if calib_samples is not None and calib_samples < 1:
            raise InputError(f"{calib_samples} must be at least 1", where="calib_samples")
        if calib_repeats < 1:
            raise InputError(f"{calib_repeats} must be at least 1", where="calib_repeats")
        if backend is not None and backend not in ONNX_BACKENDS:
            raise InputError(
                f"{backend!r} does not run ONNX artifacts",
                where="backend",
                hint=f"choose {', '.join(ONNX_BACKENDS)} (or none for the portable artifact)",
            )
        if int8_format is not None:
            check_int8_format(int8_format)
        source = Path(model)
        proto = load_onnx(source, load_external_data=False)
        request = cls(
            source=source,
            precision=precision,
            proto=proto,
            signature=signature_from_onnx(proto),
            source_census=census(proto),
            calib_method=calib_method or "minmax",
            calib_samples=calib_samples,
            calib_repeats=calib_repeats,
            exclude=tuple(dict.fromkeys(e.strip() for e in exclude if e.strip())),
            backend=backend,
        )
        request.refuse_converted()
        request._check_exclude()
        if precision == "int8":
            chosen = int8_format or best_int8_format(backend, proto)
            check_format_for_backend(chosen, backend)
            request.int8_format = chosen
            if calib_method is None:  # the default chosen by measurement, per format
                request.calib_method = default_calib_method(chosen)
            if chosen != "dynamic":
                request._load_calibration(calib)
            elif calib is not None and not (isinstance(calib, str) and calib == RANDOM_CALIB):
                request.notes.append(
                    "the dynamic INT8 format quantizes activations at run time: `calib` ignored"
                )
        else:
            if calib is not None:
                request.notes.append("calibration data is used for int8 only; ignored for fp16")
            if int8_format is not None:
                request.notes.append("`int8_format` applies to int8 only; ignored for fp16")
        return request

    def refuse_converted(self) -> None:
        """InputError when the source already carries a non-fp32 precision."""
        found = self.source_census
        where = str(self.source)
        if found.has_precision(self.precision) or (self.precision == "int8" and found.qdq_pairs):
            raise InputError(
                f"the model already computes in {self.precision} ({found.describe()}); "
                "converting it again is refused",
                where=where,
                hint=f"use it as the {self.precision} artifact as it is; convert the FP32 source",
            )
        # The first of these the census shows names the source's precision in the error.
        other = [p for p in ("fp16", "int8", "bf16") if found.has_precision(p)]
        if other or found.qdq_pairs:
            label = other[0] if other else "int8"
            raise InputError(
                f"the model computes in {label}, not fp32 ({found.describe()}); "
                f"{self.precision} is made from the FP32 source",
                where=where,
                hint="convert the FP32 model instead",
            )
        if not found.total_compute:
            raise InputError(
                "the model has no compute nodes (Conv, MatMul, Gemm, attention) to convert",
                where=where,
            )

    def _check_exclude(self) -> None:
        names = set(node_names(self.proto))
        ops = {n.op_type for n in self.proto.graph.node}
        unknown = [e for e in self.exclude if e not in names and e not in ops]
        if unknown:
            raise InputError(
                f"names no node or op type in the model: {', '.join(unknown)}",
                where="exclude",
                hint="give node names or op types (`optieval inspect` lists the op types)",
            )

    def _load_calibration(self, calib: str | Path | Dataset | None) -> None:
        if calib is None:
            raise InputError(
                "INT8 needs calibration data",
                where="calib",
                hint="`calib` DATA (.npz, directory, module:function); "
                "`calib` random only for smoke tests",
            )
        if isinstance(calib, str) and calib == RANDOM_CALIB:
            self.random = True
            count = self.calib_samples or _RANDOM_SAMPLES
            self.data = random_dataset(self.signature, count, seed=0)
            self.calib_data = self.data
            self.calib_label = f"random ({count} samples, seed 0)"
            message = (
                "INT8 calibrated on RANDOM data: its scales say nothing about accuracy on real "
                "inputs; use `calib` with real samples for any result you rely on"
            )
            self.warnings.append(message)
            warnings.warn(message, stacklevel=3)
            return
        data = calib if isinstance(calib, Dataset) else load_dataset(calib, self.signature)
        self.notes.extend(data.notes)
        if self.calib_samples is not None and self.calib_samples > data.num_samples:
            raise InputError(
                f"{self.calib_samples} calibration samples asked, the data set has "
                f"{data.num_samples} ({data.source})",
                where="calib_samples",
                hint="ask for fewer or provide more samples",
            )
        self.data = data
        used = self.calib_samples or data.num_samples
        self.calib_data = data if used == data.num_samples else data.subset(range(used))
        self.calib_label = data.source

    def options(self) -> dict[str, Any]:
        """The options that shape the artifact (part of the cache key and the manifest)."""
        if self.precision == "fp16":
            return fp16_options(
                (e for e in self.exclude if self.is_op(e)),
                (e for e in self.exclude if not self.is_op(e)),
            )
        assert self.int8_format is not None
        return int8_options(
            self.int8_format,
            self.calib_method,
            None if self.calib_data is None else self.calib_data.num_samples,
            self.exclude,
        )

    def is_op(self, entry: str) -> bool:
        """True when ``entry`` is an op type of the model and not also a node name."""
        return any(n.op_type == entry for n in self.proto.graph.node) and (
            entry not in node_names(self.proto)
        )

    def excluded_op_types(self) -> set[str]:
        """The entries of ``exclude`` that are op types (:meth:`is_op`)."""
        return {e for e in self.exclude if self.is_op(e)}


def random_dataset(signature: Signature, count: int, *, seed: int) -> Dataset:
    """``count`` seeded random samples for ``signature``'s inputs (``calib="random"``):
    floats standard normal, bools coin flips, integers in [0, 64). InputError for an input
    with dynamic dims beyond the batch."""
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        dims = spec.shape[1:]
        if any(not isinstance(d, int) for d in dims):
            raise InputError(
                f"input {spec.name!r} has dynamic dims ({spec.shape_text()}): random "
                "calibration cannot choose them",
                where="calib",
                hint="give real calibration data as `calib`",
            )
        shape = (count, *(int(d) for d in dims if isinstance(d, int)))
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            inputs[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            inputs[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            inputs[spec.name] = rng.integers(0, 64, size=shape).astype(dtype)
    return Dataset(inputs, None, [], f"random(seed={seed})")
