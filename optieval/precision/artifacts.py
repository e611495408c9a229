"""Precision artifacts: an FP32 ONNX model turned into an FP16 or a calibrated INT8 (QDQ) model.

Precision lives in the ONNX graph (docs/design.md, decision 1): every ONNX backend runs the same
artifact, built once and cached by content hash. The two public entry points::

    convert(model, "int8", calib="calib.npz")   # optieval convert: build, write beside, report
    artifact_for(model, "int8", calib=...)       # bench/compare/gate: the cached artifact path

The pieces: :mod:`~optieval.precision.request` validates a request, :mod:`~.fp16` and
:mod:`~.int8` build the artifact, :mod:`~.cache` keeps it (and holds :func:`artifact_for`),
:mod:`~.spread` measures calibration robustness; this module is :func:`convert`, which writes
the cached artifact where the user asked, and its :class:`ConversionResult`.

A model that already computes in the requested precision (census) is its own artifact; asking
to convert it again is an :class:`~optieval.errors.InputError`, as is a request whose artifact
ends up with no compute in that precision.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from optieval.core import Dataset, manifest_path, publish_onnx, save_onnx, write_manifest
from optieval.errors import InputError
from optieval.precision.cache import cached_artifact
from optieval.precision.fp16 import conversion_limits
from optieval.precision.graph_census import Census
from optieval.precision.request import ConversionRequest
from optieval.precision.spread import CalibrationSpread, calibration_spread

__all__ = ["ConversionResult", "convert"]

RESULT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ConversionResult:
    """What ``convert`` built and how.

    Attributes:
        source: the FP32 model converted.
        precision: ``fp16`` or ``int8``.
        int8_format: ``symmetric``, ``u8s8`` or ``dynamic`` (int8 only).
        backend: the backend the artifact was made for (None: the portable artifact).
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
    int8_format: str | None = None
    backend: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "source": self.source,
            "precision": self.precision,
            "int8_format": self.int8_format,
            "backend": self.backend,
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
            int8_format=data.get("int8_format"),
            backend=data.get("backend"),
        )


def convert(
    model: str | Path,
    precision: str,
    *,
    output: str | Path | None = None,
    calib: str | Path | Dataset | None = None,
    calib_method: str | None = None,
    calib_samples: int | None = None,
    calib_repeats: int = 1,
    exclude: Sequence[str] = (),
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str | None = None,
    int8_format: str | None = None,
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
        calib_method: ``minmax``, ``entropy`` or ``percentile``; None (default): the method
            chosen by measurement for the INT8 format (:data:`DEFAULT_CALIB_METHODS`:
            percentile for ``symmetric``, minmax for ``u8s8``).
        calib_samples: calibrate on the first N samples (default: all; 32 for random).
        calib_repeats: K > 1 also calibrates K-1 more models on resampled subsets and reports
            how far their outputs spread (:class:`CalibrationSpread`).
        exclude: node names or op types kept in float (each must name something in the model).
        time_limit: seconds the FP16 rewrite may take (default 600, or the environment
            variable ``OPTIEVAL_CONVERT_TIME_LIMIT``).
        progress: called with a short message as each stage of the conversion starts.
        backend: the backend the artifact is for (``ort-cpu``, ``ort-cuda``, ``ort-trt``,
            ``tensorrt``); int8 then takes the best format for it (ort-cpu: ``u8s8`` for CNNs,
            ``dynamic`` for transformer encoders; the GPU backends: ``symmetric``). None: the
            portable ``symmetric`` format.
        int8_format: ``symmetric``, ``u8s8`` or ``dynamic``, overriding the choice by
            ``backend``; a format ``backend`` cannot run is an InputError naming both.
            ``dynamic`` needs no calibration data.

    Returns:
        A :class:`ConversionResult`.

    Raises:
        InputError: an unknown precision or option value; a missing or unreadable model; a
            model that already carries the requested precision (or int8 asked of fp16 and the
            reverse); INT8 without calibration data; calibration data that does not fit the
            model (missing input, dtype, shape, too few samples, NaN/Inf, empty directory,
            loader that raises); an ``exclude`` that names nothing; an artifact left with no
            compute in the requested precision.
        BackendFailed: the artifact built fails ``onnx.checker`` (full check) or does not load
            in an ONNX Runtime session (the message names the node), or the conversion passed
            its time limit (the message names the stage); nothing is written or cached.
    """
    started = time.perf_counter()
    request = ConversionRequest.make(
        model,
        precision,
        calib,
        calib_method,
        calib_samples,
        calib_repeats,
        exclude,
        int8_format=int8_format,
        backend=backend,
    )
    destination = _default_output(request.source, precision) if output is None else Path(output)
    if destination.resolve() == request.source.resolve():
        raise InputError(
            "the output would overwrite the source model",
            where=str(destination),
            hint="give another `output`",
        )
    with conversion_limits(time_limit, progress):
        built = cached_artifact(request)
    manifest = _publish(built.path, built.manifest, destination)
    spread = None
    notes = list(request.notes) + list(built.notes)
    if request.calib_repeats > 1:
        if request.int8_format == "dynamic":
            notes.append("`calib_repeats`: the dynamic INT8 format is not calibrated; ignored")
        elif precision == "int8":
            spread = calibration_spread(request, built.path)
        else:
            notes.append("`calib_repeats` applies to int8 only; ignored for fp16")
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
        int8_format=request.int8_format,
        backend=request.backend,
    )


def _default_output(source: Path, precision: str) -> Path:
    return source.with_name(f"{source.stem}.{precision}.onnx")


def _publish(artifact: Path, manifest: dict[str, Any], destination: Path) -> dict[str, Any]:
    """Write the cached artifact to ``destination`` with its manifest; return the manifest."""
    folder = destination.parent if str(destination.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("output folder does not exist", where=str(destination), hint="create it")
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=folder) as work:
        staged = Path(work) / destination.name
        resaved = artifact.with_name(artifact.name + ".data").is_file()
        if resaved:
            # The external data's file name is recorded inside the model: save under the new name.
            save_onnx(onnx.load(str(artifact)), staged, external=True)
        else:
            shutil.copyfile(artifact, staged)
        # The cache verified the artifact; a byte copy needs no second proof, a model saved
        # again under a new external-data name is proved where it lands.
        files = publish_onnx(
            staged,
            destination,
            verify=resaved,
            label=f"the {manifest.get('precision', '')} artifact {destination.name}",
            where=str(destination),
        )
    published = {k: v for k, v in manifest.items() if k != "schema_version"}
    published["files"] = files
    write_manifest(destination, published)
    return published
