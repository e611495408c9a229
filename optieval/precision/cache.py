"""The precision artifact cache: every artifact is built once, under a content-hash key (source
files, precision, options, calibration fingerprint, tool versions), and verified by its files'
hashes on every later use (a corrupt entry is rebuilt). :func:`artifact_for` is what bench,
compare and gate ask for."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optieval.core import (
    ONNX_PRECISIONS,
    Dataset,
    cache_dir,
    cache_key,
    external_data_locations,
    load_onnx,
    manifest_path,
    publish_onnx,
    read_manifest,
    sha256_file,
    write_manifest,
)
from optieval.errors import InputError
from optieval.precision.formats import check_artifact_format
from optieval.precision.fp16 import build_fp16
from optieval.precision.graph_census import Census, census, node_names
from optieval.precision.int8 import SESSION_OPTIONS, build_int8
from optieval.precision.request import ConversionRequest

ARTIFACT_KIND = "precision-artifact"
"""The manifest ``kind`` of a precision artifact."""
# Bump when the way artifacts are built changes: old cache entries then stop matching.
_BUILD_VERSION = 3
# Above this a model must be written with external data (protobuf's 2 GB limit).
_EXTERNAL_THRESHOLD = 1_800_000_000


@dataclass(frozen=True)
class BuiltArtifact:
    """An artifact in the cache: its model file, its manifest, whether it was already there,
    and notes from building it."""

    path: Path
    manifest: dict[str, Any]
    cached: bool
    notes: tuple[str, ...] = ()


def artifact_for(
    model: str | Path,
    precision: str,
    *,
    calib: str | Path | Dataset | None = None,
    calib_method: str | None = None,
    calib_samples: int | None = None,
    exclude: Sequence[str] = (),
    backend: str | None = None,
    int8_format: str | None = None,
) -> Path:
    """Return the ONNX file that computes ``model`` in ``precision``, for ``backend``.

    * ``fp32``: the model itself (InputError when it has compute but none in fp32).
    * ``fp16`` / ``int8``: the model itself when its census already shows compute in that
      precision (bring your own: QAT, other toolkits); otherwise the cached artifact, built on
      first use with the same options as :func:`~optieval.precision.convert` (and verified by
      hash on later uses, rebuilt when corrupt).
    * ``int8``: in ``int8_format`` when given, else the best format for ``backend``
      (:func:`~optieval.precision.formats.best_int8_format`: ort-cpu u8s8 for CNNs, dynamic
      for transformer encoders; symmetric for the GPU backends and when ``backend`` is None),
      calibrated by ``calib_method`` (None: the format's default,
      :data:`~optieval.precision.DEFAULT_CALIB_METHODS`).

    Raises:
        InputError: as :func:`~optieval.precision.convert`; in particular a request whose
            artifact has no compute in ``precision`` (exit 2, never a silent fp32 run); a
            format ``backend`` cannot run (a u8s8 artifact for tensorrt), named with both.
    """
    path = Path(model)
    if precision not in ONNX_PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}",
            where="precision",
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
        if precision == "int8":
            check_artifact_format(found.int8_format, backend, where=str(path))
        return path
    request = ConversionRequest.make(
        path,
        precision,
        calib,
        calib_method,
        calib_samples,
        1,
        exclude,
        int8_format=int8_format,
        backend=backend,
    )
    built = cached_artifact(request)
    return built.path


def cached_artifact(request: ConversionRequest, data: Dataset | None = None) -> BuiltArtifact:
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
            "source": cache_key({"files": source_files}),
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
        return BuiltArtifact(artifact, manifest, True)
    if artifact.exists() or manifest_path(artifact).exists():
        notes.append(f"cache entry {key} failed its hash check and was rebuilt")
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    external = bool(external_data_locations(request.proto))
    try:
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as work:
            built_model, build_notes = _build(request, calib, Path(work), external)
            notes.extend(build_notes)
            # Verified (full onnx.checker, an ORT session) before it enters the cache.
            files = publish_onnx(
                built_model,
                artifact,
                verify=True,
                label=f"the {request.precision} artifact of {request.source.name}",
                where=str(request.source),
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-built stays in the cache
        raise
    found = census(onnx.load(str(artifact), load_external_data=False))
    try:
        _require_compute(found, request)
    except InputError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    manifest = {
        "kind": ARTIFACT_KIND,
        "precision": request.precision,
        "int8_format": request.int8_format,
        # What a deployment must set on its ONNX Runtime session (nothing, for optieval's
        # artifacts); optieval's backends apply it from here, so the bench measures it too.
        "session_options": {
            k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in SESSION_OPTIONS.items()
        },
        "files": files,
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
    return BuiltArtifact(artifact, {"schema_version": 1, **manifest}, False, tuple(notes))


# -- building -------------------------------------------------------------------------------------


def _named(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed nodes the names :func:`~optieval.precision.node_names` gives them."""
    for node, name in zip(proto.graph.node, node_names(proto), strict=True):
        node.name = name
    return proto


def _build(
    request: ConversionRequest, calib: Dataset | None, work: Path, external: bool
) -> tuple[Path, list[str]]:
    model = _named(onnx.load(str(request.source), load_external_data=True))
    external = external or model.ByteSize() > _EXTERNAL_THRESHOLD
    notes: list[str] = []
    if request.precision == "fp16":
        out = build_fp16(model, request.options(), work, external=external, source=request.source)
    else:
        out, notes = build_int8(
            model,
            calib,
            work,
            external=external,
            source=request.source,
            signature=request.signature,
            calib_method=request.calib_method,
            exclude=request.exclude,
            op_types=request.excluded_op_types(),
            int8_format=request.int8_format or "symmetric",
        )
    return out, notes


def _require_compute(found: Census, request: ConversionRequest) -> None:
    if not found.has_precision(request.precision):
        raise InputError(
            f"the {request.precision} artifact has no compute in {request.precision} "
            f"({found.describe()})",
            where="exclude" if request.exclude else str(request.source),
            hint=f"exclude fewer nodes; a run labelled {request.precision} would really be fp32",
        )


# -- source identity ------------------------------------------------------------------------------


def _source_files(source: Path, proto: onnx.ModelProto) -> dict[str, str]:
    files = {source.name: sha256_file(source)}
    for location in external_data_locations(proto):
        data = source.parent / location
        if not data.is_file():
            raise InputError(
                f"external data file {location!r} is missing",
                where=str(source),
                hint="keep the .data file beside the model",
            )
        files[location] = sha256_file(data)
    return files


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
