"""Precision artifacts: an FP32 ONNX model turned into an FP16 or a calibrated INT8 (QDQ) model.

Precision lives in the ONNX graph (docs/design.md, decision 1): every ONNX backend runs the same
artifact, built once and cached by content hash. The two public entry points::

    convert(model, "int8", calib="calib.npz")   # optieval convert: build, write beside, report
    artifact_for(model, "int8", calib=...)       # bench/compare/gate: the cached artifact path

FP16: onnxconverter_common's ``convert_float_to_float16`` with FP32 inputs and outputs kept
(casts at the edges) and a block list of ops that lose accuracy or lack fp16 kernels
(:data:`DEFAULT_FP16_BLOCK_LIST` plus ``exclude``).

INT8: onnxruntime.quantization: ``quant_pre_process`` (shape inference, fusions), then
``quantize_static`` in QDQ form with per-channel symmetric int8 weights and symmetric int8
activations (zero point 0, which TensorRT requires), calibrated on real data with MinMax,
Entropy or Percentile.

A model that already computes in the requested precision (census) is its own artifact; asking
to convert it again is an :class:`~optieval.errors.InputError`, as is a request whose artifact
ends up with no compute in that precision.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.core import (
    Dataset,
    Signature,
    atomic_path,
    cache_dir,
    cache_key,
    load_dataset,
    load_onnx,
    manifest_path,
    read_manifest,
    sha256_file,
    signature_from_onnx,
    write_manifest,
)
from optieval.errors import InputError
from optieval.precision.graph_census import Census, census, node_names

__all__ = [
    "CALIB_METHODS",
    "DEFAULT_FP16_BLOCK_LIST",
    "ORT_CPU_INT8_DISABLED_OPTIMIZERS",
    "CalibrationSpread",
    "ConversionResult",
    "OutputSpread",
    "artifact_for",
    "convert",
]

RESULT_SCHEMA_VERSION = 1
ARTIFACT_KIND = "precision-artifact"
# Bump when the way artifacts are built changes: old cache entries then stop matching.
_BUILD_VERSION = 2

CONVERTIBLE = ("fp16", "int8")
CALIB_METHODS = ("minmax", "entropy", "percentile")
RANDOM_CALIB = "random"
_RANDOM_SAMPLES = 32
_SPREAD_EVAL_SAMPLES = 256
# Above this a model must be written with external data (protobuf's 2 GB limit).
_EXTERNAL_THRESHOLD = 1_800_000_000


def _fp16_default_block_list() -> tuple[str, ...]:
    from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST

    # Beyond the converter's list (ML ops, Resize, TopK, NMS, ...): ops whose fp16 results
    # overflow or lose too much (exp/log/pow, sums of squares).
    extra = ("Exp", "Log", "Pow", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp")
    return tuple(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *extra]))


DEFAULT_FP16_BLOCK_LIST: tuple[str, ...] = _fp16_default_block_list()
"""Op types kept in FP32 by ``convert(..., "fp16")`` (``exclude`` adds more)."""

ORT_CPU_INT8_DISABLED_OPTIMIZERS: tuple[str, ...] = ("CommonSubexpressionElimination",)
"""Pass as ``disabled_optimizers`` to an ONNX Runtime CPU session of an INT8 artifact.

The artifact has one Q/DQ pair per consumer; ORT's common-subexpression elimination merges them
back, and on x86 an int8 QuantizeLinear with several consumers is not turned into uint8, so the
Convs behind it stay in float (ResNet-18: 9 of 20 fused). Without it all 20 become QLinearConv.
"""


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputSpread:
    """How one output moves with the calibration subset.

    Attributes:
        name: the output.
        max_abs_vs_fp32: per subset, the largest absolute difference from the FP32 model.
        cosine_vs_fp32: per subset, the lowest per-sample cosine similarity to FP32.
        max_abs_between: the largest absolute difference between any two subsets' models.
        cosine_between: the lowest per-sample cosine similarity between any two of them.
    """

    name: str
    max_abs_vs_fp32: tuple[float, ...]
    cosine_vs_fp32: tuple[float, ...]
    max_abs_between: float
    cosine_between: float

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "name": self.name,
            "max_abs_vs_fp32": list(self.max_abs_vs_fp32),
            "cosine_vs_fp32": list(self.cosine_vs_fp32),
            "max_abs_between": self.max_abs_between,
            "cosine_between": self.cosine_between,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputSpread:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            tuple(float(v) for v in data["max_abs_vs_fp32"]),
            tuple(float(v) for v in data["cosine_vs_fp32"]),
            float(data["max_abs_between"]),
            float(data["cosine_between"]),
        )


@dataclass(frozen=True)
class CalibrationSpread:
    """Calibration robustness: K INT8 models, each calibrated on its own resampled subset.

    Subset 0 is the artifact itself (the first ``samples_per_subset`` samples); subsets 1..K-1
    are drawn with replacement from the whole data set (seeds 1..K-1). Every model runs on the
    same ``eval_samples`` samples of the data set, on ONNX Runtime CPU.
    """

    repeats: int
    samples_per_subset: int
    eval_samples: int
    outputs: tuple[OutputSpread, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "repeats": self.repeats,
            "samples_per_subset": self.samples_per_subset,
            "eval_samples": self.eval_samples,
            "outputs": [o.to_json() for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationSpread:
        """Inverse of :meth:`to_json`."""
        return cls(
            int(data["repeats"]),
            int(data["samples_per_subset"]),
            int(data["eval_samples"]),
            tuple(OutputSpread.from_json(o) for o in data["outputs"]),
        )


@dataclass(frozen=True)
class ConversionResult:
    """What ``convert`` built and how.

    Attributes:
        source: the FP32 model converted.
        precision: ``fp16`` or ``int8``.
        output: the artifact written (its manifest is ``output + ".json"``).
        cached: True when the artifact came from the optieval cache instead of being rebuilt.
        census: the artifact's precision census; ``source_census`` the source's.
        options: the conversion options (method, samples, exclusions, block list).
        calibration: the calibration data used (source, samples, fingerprint), INT8 only.
        spread: calibration robustness (``calib_repeats`` > 1).
        warnings: things the user must see (random calibration, ...).
        notes: things worth knowing (ignored keys, excluded nodes fused away, ...).
        seconds: wall time of the call.
    """

    source: str
    precision: str
    output: str
    cached: bool
    census: Census
    source_census: Census
    options: dict[str, Any]
    calibration: dict[str, Any] | None = None
    spread: CalibrationSpread | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "source": self.source,
            "precision": self.precision,
            "output": self.output,
            "manifest": str(manifest_path(self.output)),
            "cached": self.cached,
            "census": self.census.to_json(),
            "source_census": self.source_census.to_json(),
            "options": self.options,
            "calibration": self.calibration,
            "spread": None if self.spread is None else self.spread.to_json(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversionResult:
        """Inverse of :meth:`to_json`; InputError for an unknown schema version."""
        version = data.get("schema_version")
        if version != RESULT_SCHEMA_VERSION:
            raise InputError(
                f"conversion result schema_version {version!r} is not {RESULT_SCHEMA_VERSION}",
                hint="re-run `optieval convert` with this optieval version",
            )
        spread = data.get("spread")
        return cls(
            source=str(data["source"]),
            precision=str(data["precision"]),
            output=str(data["output"]),
            cached=bool(data["cached"]),
            census=Census.from_json(data["census"]),
            source_census=Census.from_json(data["source_census"]),
            options=dict(data["options"]),
            calibration=data.get("calibration"),
            spread=None if spread is None else CalibrationSpread.from_json(spread),
            warnings=tuple(data.get("warnings", ())),
            notes=tuple(data.get("notes", ())),
            seconds=float(data.get("seconds", 0.0)),
        )


# -- public API -----------------------------------------------------------------------------------


def convert(
    model: str | Path,
    precision: str,
    *,
    output: str | Path | None = None,
    calib: str | Path | Dataset | None = None,
    calib_method: str = "minmax",
    calib_samples: int | None = None,
    calib_repeats: int = 1,
    exclude: Sequence[str] = (),
) -> ConversionResult:
    """Convert an FP32 ONNX model into an FP16 or a calibrated INT8 (QDQ) artifact.

    The artifact is built in (or reused from) the optieval cache and written to ``output`` with
    its manifest (``output + ".json"``: kind ``precision-artifact``, source hash, options,
    calibration, census, file hashes).

    Args:
        model: the FP32 ONNX file (external data beside it is handled).
        precision: ``"fp16"`` or ``"int8"``.
        output: where to write the artifact (default: ``MODEL.fp16.onnx`` / ``MODEL.int8.onnx``
            beside the source).
        calib: INT8 calibration data: an ``.npz``, a directory of ``.npy``/``.npz``, a
            ``module:function`` loader, a loaded :class:`Dataset`, or ``"random"`` (explicit
            only; its scales say nothing about accuracy and a warning says so). Ignored for fp16.
        calib_method: ``minmax`` (default), ``entropy`` or ``percentile``.
        calib_samples: calibrate on the first N samples (default: all; 32 for random).
        calib_repeats: K > 1 also calibrates K-1 more models on resampled subsets and reports
            how far their outputs spread (:class:`CalibrationSpread`).
        exclude: node names or op types kept in float (each must name something in the model).

    Returns:
        A :class:`ConversionResult`.

    Raises:
        InputError: an unknown precision or option value; a missing or unreadable model; a
            model that already carries the requested precision (or int8 asked of fp16 and the
            reverse); INT8 without calibration data; calibration data that does not fit the
            model (missing input, dtype, shape, too few samples, NaN/Inf, empty directory,
            loader that raises); an ``exclude`` that names nothing; an artifact left with no
            compute in the requested precision.
    """
    started = time.perf_counter()
    request = _Request.make(
        model, precision, calib, calib_method, calib_samples, calib_repeats, exclude
    )
    destination = _default_output(request.source, precision) if output is None else Path(output)
    if destination.resolve() == request.source.resolve():
        raise InputError(
            "the output would overwrite the source model", where=str(destination), hint="use -o"
        )
    built = _cached_artifact(request)
    manifest = _publish(built.path, built.manifest, destination)
    spread = None
    notes = list(request.notes) + list(built.notes)
    if request.calib_repeats > 1:
        if precision == "int8":
            spread = _calibration_spread(request, built.path)
        else:
            notes.append("--calib-repeats applies to int8 only; ignored for fp16")
    return ConversionResult(
        source=str(request.source),
        precision=precision,
        output=str(destination),
        cached=built.cached,
        census=Census.from_json(manifest["census"]),
        source_census=request.source_census,
        options=request.options(),
        calibration=manifest.get("calibration"),
        spread=spread,
        warnings=tuple(request.warnings),
        notes=tuple(dict.fromkeys(notes)),
        seconds=time.perf_counter() - started,
    )


def artifact_for(
    model: str | Path,
    precision: str,
    *,
    calib: str | Path | Dataset | None = None,
    calib_method: str = "minmax",
    calib_samples: int | None = None,
    exclude: Sequence[str] = (),
) -> Path:
    """Return the ONNX file that computes ``model`` in ``precision``.

    * ``fp32``: the model itself (InputError when it has compute but none in fp32).
    * ``fp16`` / ``int8``: the model itself when its census already shows compute in that
      precision (bring your own: QAT, other toolkits); otherwise the cached artifact, built on
      first use with the same options as :func:`convert` (and verified by hash on later uses,
      rebuilt when corrupt).

    Raises:
        InputError: as :func:`convert`; in particular a request whose artifact has no compute in
            ``precision`` (exit 2, never a silent fp32 run).
    """
    path = Path(model)
    if precision not in ("fp32", *CONVERTIBLE):
        raise InputError(
            f"unknown precision {precision!r}",
            where="--precision",
            hint="choose fp32, fp16 or int8",
        )
    proto = load_onnx(path, load_external_data=False)
    found = census(proto)
    if precision == "fp32":
        if found.total_compute and not found.has_precision("fp32"):
            raise InputError(
                f"the model has no fp32 compute ({found.describe()})",
                where=str(path),
                hint="pass the FP32 source model for fp32",
            )
        return path
    if found.has_precision(precision):
        return path
    request = _Request.make(path, precision, calib, calib_method, calib_samples, 1, exclude)
    built = _cached_artifact(request)
    return built.path


# -- the request ----------------------------------------------------------------------------------


@dataclass
class _Request:
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
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        model: str | Path,
        precision: str,
        calib: str | Path | Dataset | None,
        calib_method: str,
        calib_samples: int | None,
        calib_repeats: int,
        exclude: Sequence[str],
    ) -> _Request:
        if precision not in CONVERTIBLE:
            hint = (
                "fp32 is the source model itself" if precision == "fp32" else "choose fp16 or int8"
            )
            raise InputError(f"cannot convert to {precision!r}", where="--precision", hint=hint)
        if calib_method not in CALIB_METHODS:
            raise InputError(
                f"unknown calibration method {calib_method!r}",
                where="--calib-method",
                hint=f"choose {', '.join(CALIB_METHODS)}",
            )
        if calib_samples is not None and calib_samples < 1:
            raise InputError(f"{calib_samples} must be at least 1", where="--calib-samples")
        if calib_repeats < 1:
            raise InputError(f"{calib_repeats} must be at least 1", where="--calib-repeats")
        source = Path(model)
        proto = load_onnx(source, load_external_data=False)
        request = cls(
            source=source,
            precision=precision,
            proto=proto,
            signature=signature_from_onnx(proto),
            source_census=census(proto),
            calib_method=calib_method,
            calib_samples=calib_samples,
            calib_repeats=calib_repeats,
            exclude=tuple(dict.fromkeys(e.strip() for e in exclude if e.strip())),
        )
        request.refuse_converted()
        request._check_exclude()
        if precision == "int8":
            request._load_calibration(calib)
        elif calib is not None:
            request.notes.append("calibration data is used for int8 only; ignored for fp16")
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
                where="--exclude",
                hint="give node names or op types (`optieval inspect` lists the op types)",
            )

    def _load_calibration(self, calib: str | Path | Dataset | None) -> None:
        if calib is None:
            raise InputError(
                "INT8 needs calibration data",
                where="--calib",
                hint="--calib DATA (.npz, directory, module:function); "
                "--calib random only for smoke tests",
            )
        if isinstance(calib, str) and calib == RANDOM_CALIB:
            self.random = True
            count = self.calib_samples or _RANDOM_SAMPLES
            self.data = _random_dataset(self.signature, count, seed=0)
            self.calib_data = self.data
            self.calib_label = f"random ({count} samples, seed 0)"
            message = (
                "INT8 calibrated on RANDOM data: its scales say nothing about accuracy on real "
                "inputs; use --calib with real samples for any result you rely on"
            )
            self.warnings.append(message)
            warnings.warn(message, stacklevel=3)
            return
        data = calib if isinstance(calib, Dataset) else load_dataset(calib, self.signature)
        self.notes.extend(data.notes)
        if self.calib_samples is not None and self.calib_samples > data.num_samples:
            raise InputError(
                f"{self.calib_samples} calibration samples asked, the data set has "
                f"{data.num_samples}",
                where=f"--calib-samples ({data.source})",
                hint="ask for fewer or provide more samples",
            )
        self.data = data
        used = self.calib_samples or data.num_samples
        self.calib_data = data if used == data.num_samples else data.subset(range(used))
        self.calib_label = data.source

    def options(self) -> dict[str, Any]:
        """The options that shape the artifact (part of the cache key and the manifest)."""
        if self.precision == "fp16":
            return {
                "keep_io_types": True,
                "op_block_list": sorted(
                    {*DEFAULT_FP16_BLOCK_LIST, *(e for e in self.exclude if self._is_op(e))}
                ),
                "node_block_list": sorted(e for e in self.exclude if not self._is_op(e)),
            }
        return {
            "format": "QDQ",
            "weights": "int8 per-channel symmetric",
            "activations": "int8 symmetric (zero point 0)",
            "dedicated_qdq_pairs": True,
            "calib_method": self.calib_method,
            "calib_samples": None if self.calib_data is None else self.calib_data.num_samples,
            "exclude": list(self.exclude),
        }

    def _is_op(self, entry: str) -> bool:
        """True when ``entry`` is an op type of the model and not also a node name."""
        return any(n.op_type == entry for n in self.proto.graph.node) and (
            entry not in node_names(self.proto)
        )


def _random_dataset(signature: Signature, count: int, *, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        dims = spec.shape[1:]
        if any(not isinstance(d, int) for d in dims):
            raise InputError(
                f"input {spec.name!r} has dynamic dims ({spec.shape_text()}): random "
                "calibration cannot choose them",
                where="--calib random",
                hint="give real calibration data with --calib DATA",
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


def _default_output(source: Path, precision: str) -> Path:
    return source.with_name(f"{source.stem}.{precision}.onnx")


# -- source identity ------------------------------------------------------------------------------


def _external_locations(proto: onnx.ModelProto) -> list[str]:
    from onnx.external_data_helper import ExternalDataInfo

    locations: dict[str, None] = {}
    for tensor in _all_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            locations[ExternalDataInfo(tensor).location] = None
    return list(locations)


def _all_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from proto.graph.initializer
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def _source_files(source: Path, proto: onnx.ModelProto) -> dict[str, str]:
    files = {source.name: sha256_file(source)}
    for location in _external_locations(proto):
        data = source.parent / location
        if not data.is_file():
            raise InputError(
                f"external data file {location!r} is missing",
                where=str(source),
                hint="keep the .data file beside the model",
            )
        files[location] = sha256_file(data)
    return files


def _source_hash(files: dict[str, str]) -> str:
    return cache_key({"files": files})


def _versions() -> dict[str, str]:
    import onnxconverter_common
    import onnxruntime

    from optieval.version import __version__

    return {
        "optieval": __version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxconverter_common": onnxconverter_common.__version__,
        "numpy": np.__version__,
    }


# -- the cache ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Built:
    path: Path
    manifest: dict[str, Any]
    cached: bool
    notes: tuple[str, ...] = ()


def _cached_artifact(request: _Request, data: Dataset | None = None) -> _Built:
    """Return the artifact for ``request`` (calibrated on ``data`` or the request's data) from
    the cache, verifying its files' hashes; build it when missing or corrupt."""
    calib = data if data is not None else request.calib_data
    source_files = _source_files(request.source, request.proto)
    options = request.options()
    if calib is not None:
        options = {**options, "calib_samples": calib.num_samples}
    versions = _versions()
    # Labels do not change calibration: the key covers the inputs only.
    fingerprint = None if calib is None else Dataset(calib.inputs).fingerprint()
    key = cache_key(
        {
            "kind": ARTIFACT_KIND,
            "build": _BUILD_VERSION,
            "source": _source_hash(source_files),
            "precision": request.precision,
            "options": options,
            "calibration": fingerprint,
            "versions": versions,
        }
    )
    folder = cache_dir("precision", key)
    artifact = folder / "model.onnx"
    notes: list[str] = []
    manifest = _verified_manifest(artifact)
    if manifest is not None:
        return _Built(artifact, manifest, True)
    if artifact.exists() or manifest_path(artifact).exists():
        notes.append(f"cache entry {key} failed its hash check and was rebuilt")
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    external = bool(_external_locations(request.proto))
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as work:
        built_model, build_notes = _build(request, calib, Path(work), external)
        notes.extend(build_notes)
        _install(built_model, artifact)
    found = census(onnx.load(str(artifact), load_external_data=False))
    try:
        _require_compute(found, request)
    except InputError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    manifest = {
        "kind": ARTIFACT_KIND,
        "precision": request.precision,
        "files": _artifact_files(artifact),
        "source": {
            "path": str(request.source.resolve()),
            "files": source_files,
            "sha256": source_files[request.source.name],
        },
        "options": options,
        "calibration": None
        if calib is None
        else {
            "source": request.calib_label,
            "samples": calib.num_samples,
            "method": request.calib_method,
            "fingerprint": fingerprint,
            "random": request.random,
        },
        "census": found.to_json(),
        "source_census": request.source_census.to_json(),
        "signature": request.signature.to_json(),
        "opset": {imp.domain or "ai.onnx": imp.version for imp in request.proto.opset_import},
        "warnings": list(request.warnings),
        "provenance": {
            "tool": "optieval convert",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cache_key": key,
            "versions": versions,
            "source_manifest": _source_provenance(request.source),
        },
    }
    write_manifest(artifact, manifest)
    return _Built(artifact, {"schema_version": 1, **manifest}, False, tuple(notes))


def _require_compute(found: Census, request: _Request) -> None:
    if not found.has_precision(request.precision):
        raise InputError(
            f"the {request.precision} artifact has no compute in {request.precision} "
            f"({found.describe()})",
            where="--exclude" if request.exclude else str(request.source),
            hint=f"exclude fewer nodes; a run labelled {request.precision} would really be fp32",
        )


def _source_provenance(source: Path) -> dict[str, Any] | None:
    try:
        manifest = read_manifest(source)
    except InputError:
        return None
    if not manifest:
        return None
    return {k: manifest[k] for k in ("kind", "provenance", "exporter", "files") if k in manifest}


def _verified_manifest(artifact: Path) -> dict[str, Any] | None:
    try:
        manifest = read_manifest(artifact)
    except InputError:
        return None
    if not manifest or manifest.get("kind") != ARTIFACT_KIND:
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or artifact.name not in files:
        return None
    for name, digest in files.items():
        path = artifact.parent / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return manifest


def _artifact_files(artifact: Path) -> dict[str, str]:
    files = {artifact.name: sha256_file(artifact)}
    data = artifact.with_name(artifact.name + ".data")
    if data.is_file():
        files[data.name] = sha256_file(data)
    return files


def _install(built: Path, destination: Path) -> None:
    """Move a model built under a temporary folder (``name`` and optionally ``name.data``
    beside it, already referring to ``destination.name + ".data"``) into place atomically."""
    data = built.with_name(built.name + ".data")
    stale = destination.with_name(destination.name + ".data")
    if data.is_file():
        with atomic_path(stale) as tmp:
            os.replace(data, tmp)
    elif stale.is_file():
        stale.unlink()
    with atomic_path(destination) as tmp:
        os.replace(built, tmp)


def _save(model: onnx.ModelProto, path: Path, external: bool) -> None:
    if external:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))


def _publish(artifact: Path, manifest: dict[str, Any], destination: Path) -> dict[str, Any]:
    """Write the cached artifact to ``destination`` with its manifest; return the manifest."""
    folder = destination.parent if str(destination.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("output folder does not exist", where=str(destination), hint="create it")
    external = artifact.with_name(artifact.name + ".data").is_file()
    if external:
        # The external data's file name is recorded inside the model: re-save under the new name.
        with tempfile.TemporaryDirectory(prefix=".publish-", dir=folder) as work:
            staged = Path(work) / destination.name
            _save(onnx.load(str(artifact)), staged, True)
            _install(staged, destination)
    else:
        with atomic_path(destination) as tmp:
            shutil.copyfile(artifact, tmp)
        destination.with_name(destination.name + ".data").unlink(missing_ok=True)
    published = {k: v for k, v in manifest.items() if k != "schema_version"}
    published["files"] = _artifact_files(destination)
    write_manifest(destination, published)
    return published


# -- building -------------------------------------------------------------------------------------


def _named(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed nodes the names :func:`_node_names` gives them."""
    for node, name in zip(proto.graph.node, node_names(proto), strict=True):
        node.name = name
    return proto


def _build(
    request: _Request, calib: Dataset | None, work: Path, external: bool
) -> tuple[Path, list[str]]:
    model = _named(onnx.load(str(request.source), load_external_data=True))
    external = external or model.ByteSize() > _EXTERNAL_THRESHOLD
    if request.precision == "fp16":
        return _build_fp16(request, model, work, external), []
    assert calib is not None
    return _build_int8(request, model, calib, work, external)


def _check(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:  # a converter bug, not the user's input
        raise InputError(
            f"the converted model fails onnx.checker ({exc})".splitlines()[0],
            where=str(path),
            hint="try --exclude on the op types named",
        ) from exc


def _build_fp16(request: _Request, model: onnx.ModelProto, work: Path, external: bool) -> Path:
    from onnxconverter_common.float16 import convert_float_to_float16

    # Shape inference by path works for any size (in memory it stops at 2 GB).
    staged = work / "fp32.onnx"
    _save(model, staged, external)
    inferred = work / "fp32.inferred.onnx"
    onnx.shape_inference.infer_shapes_path(str(staged), str(inferred))
    model = onnx.load(str(inferred), load_external_data=True)
    options = request.options()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the converter warns about clipped tiny weights
            fp16 = convert_float_to_float16(
                model,
                keep_io_types=True,
                disable_shape_infer=True,
                op_block_list=options["op_block_list"],
                node_block_list=options["node_block_list"],
            )
    except ValueError as exc:
        raise InputError(f"FP16 conversion failed: {exc}", where=str(request.source)) from exc
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    _save(fp16, out, external)
    _check(out)
    return out


def _pre_process(source: Path, target: Path, external: bool, *, skip_symbolic_shape: bool) -> None:
    from onnxruntime.quantization import quant_pre_process

    with _quiet_ort_logging():
        quant_pre_process(
            str(source),
            str(target),
            skip_symbolic_shape=skip_symbolic_shape,
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            external_data_location=target.name + ".data",
        )


class _Reader:
    """Feeds calibration batches to onnxruntime's calibrator (a CalibrationDataReader)."""

    def __init__(self, data: Dataset, batch_size: int, fixed_batch: bool) -> None:
        self.data = data
        self.batch_size = batch_size
        self.fixed_batch = fixed_batch
        self._iterator: Iterator[dict[str, np.ndarray]] | None = None
        self.rewind()

    def rewind(self) -> None:
        count = -(-self.data.num_samples // self.batch_size)
        # A model with a fixed batch gets full batches: the last one wraps around.
        self._iterator = self.data.batches(self.batch_size, count=count, cycle=self.fixed_batch)

    def get_next(self) -> dict[str, np.ndarray] | None:
        assert self._iterator is not None
        return next(self._iterator, None)

    def __len__(self) -> int:
        return -(-self.data.num_samples // self.batch_size)


def _calibration_batch(signature: Signature, samples: int) -> tuple[int, bool]:
    """Batch size for calibration runs, and whether the model's batch is fixed.

    A fixed batch is used as it is (the last batch wraps around). Otherwise the largest divisor
    of ``samples`` up to 16: onnxruntime's histogram calibrators (entropy, percentile) stack
    the per-batch tensors and need every batch to have the same shape.
    """
    fixed = {s.shape[0] for s in signature.inputs if s.shape and isinstance(s.shape[0], int)}
    if len(fixed) == 1:
        return int(next(iter(fixed))), True
    return max(d for d in range(1, min(16, samples) + 1) if samples % d == 0), False


@contextlib.contextmanager
def _quiet_ort_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _build_int8(
    request: _Request, model: onnx.ModelProto, calib: Dataset, work: Path, external: bool
) -> tuple[Path, list[str]]:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    notes: list[str] = []
    named = work / "named.onnx"
    _save(model, named, external)
    pre = work / "pre.onnx"
    try:
        _pre_process(named, pre, external, skip_symbolic_shape=False)
    except Exception as first:
        # ORT's symbolic shape inference asserts on some graphs (e.g. Reshape of a computed
        # shape); ONNX shape inference and the fusions still apply without it.
        notes.append(
            f"symbolic shape inference failed ({type(first).__name__}); pre-processed without it"
        )
        try:
            _pre_process(named, pre, external, skip_symbolic_shape=True)
        except Exception as exc:
            raise InputError(
                f"INT8 pre-processing failed ({type(exc).__name__}: {exc})".splitlines()[0],
                where=str(request.source),
                hint="try --exclude on the op types named, or simplify the model",
            ) from exc
    pre_proto = onnx.load(str(pre), load_external_data=False)
    present = {n.name for n in pre_proto.graph.node}
    excluded: list[str] = []
    for entry in request.exclude:
        if request._is_op(entry):
            excluded.extend(n.name for n in pre_proto.graph.node if n.op_type == entry)
        elif entry in present:
            excluded.append(entry)
        else:
            notes.append(f"--exclude {entry}: fused away by pre-processing (nothing to keep)")
    batch_size, fixed = _calibration_batch(request.signature, calib.num_samples)
    reader = _Reader(calib, batch_size, fixed)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    out = work / "out" / "model.onnx"
    out.parent.mkdir()
    quantized = work / "quantized.onnx"
    try:
        # The calibrators print progress to stdout; keep the command's output clean.
        with _quiet_ort_logging(), contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(pre),
                str(quantized),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                use_external_data_format=external,
                calibrate_method=methods[request.calib_method],
                calibration_providers=["CPUExecutionProvider"],
                extra_options={
                    "ActivationSymmetric": True,
                    "WeightSymmetric": True,
                    # One Q/DQ pair per consumer: ORT fuses DQ->Conv->Q into QLinearConv only
                    # when the DQ feeds that node alone (residual inputs feed two).
                    "DedicatedQDQPair": True,
                },
            )
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"INT8 quantization failed ({type(exc).__name__}: {exc})".splitlines()[0],
            where=str(request.source),
            hint="check the calibration data; --exclude the op types named",
        ) from exc
    if external:
        _save(onnx.load(str(quantized)), out, True)
    else:
        os.replace(quantized, out)
    _check(out)
    return out, notes


# -- calibration robustness -----------------------------------------------------------------------


def _cpu_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _calibration_spread(request: _Request, primary: Path) -> CalibrationSpread:
    assert request.data is not None and request.calib_data is not None
    data = request.data
    per_subset = request.calib_data.num_samples
    models = [primary]
    for k in range(1, request.calib_repeats):
        if request.random:
            subset = _random_dataset(request.signature, per_subset, seed=k)
        else:
            rng = np.random.default_rng(k)
            subset = data.subset(rng.integers(0, data.num_samples, size=per_subset))
        models.append(_cached_artifact(request, subset).path)
    eval_data = (
        data
        if data.num_samples <= _SPREAD_EVAL_SAMPLES
        else data.subset(range(_SPREAD_EVAL_SAMPLES))
    )
    batch_size, fixed = _calibration_batch(request.signature, eval_data.num_samples)

    count = -(-eval_data.num_samples // batch_size)

    def run(path: Path) -> dict[str, np.ndarray]:
        session = _cpu_session(path)
        outputs: dict[str, list[np.ndarray]] = {}
        names = [o.name for o in session.get_outputs()]
        for feeds in eval_data.batches(batch_size, count=count, cycle=fixed):
            for name, value in zip(names, session.run(names, dict(feeds)), strict=True):
                outputs.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
        return {k: np.concatenate(v)[: eval_data.num_samples] for k, v in outputs.items()}

    reference = run(request.source)
    results = [run(m) for m in models]
    spreads = []
    for name, ref in reference.items():
        vs_abs = tuple(_max_abs(r[name], ref) for r in results)
        vs_cos = tuple(_min_cosine(r[name], ref) for r in results)
        pairs = [(i, j) for i in range(len(results)) for j in range(i + 1, len(results))]
        between_abs = max(
            (_max_abs(results[i][name], results[j][name]) for i, j in pairs), default=0.0
        )
        between_cos = min(
            (_min_cosine(results[i][name], results[j][name]) for i, j in pairs), default=1.0
        )
        spreads.append(OutputSpread(name, vs_abs, vs_cos, between_abs, between_cos))
    return CalibrationSpread(
        request.calib_repeats, per_subset, eval_data.num_samples, tuple(spreads)
    )


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Lowest per-sample cosine similarity (1.0 for two zero vectors)."""
    x = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, -1)
    y = b.reshape(b.shape[0], -1) if b.ndim else b.reshape(1, -1)
    dot = np.sum(x * y, axis=1)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 1.0)
    return float(np.min(cos)) if cos.size else 1.0
