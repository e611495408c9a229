"""``optieval inspect``: what an ONNX file is (I/O, opset, size, precision census) and where it
came from (its manifest's provenance). The CLI renders it (optieval.cli.render.precision)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optieval.core import (
    Signature,
    external_data_locations,
    load_onnx,
    read_manifest,
    signature_from_onnx,
)
from optieval.errors import InputError
from optieval.precision.graph_census import Census, census

__all__ = ["ModelInfo", "inspect_model"]

INFO_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelInfo:
    """An ONNX file described.

    Attributes:
        path: the file.
        size_bytes: the file plus its external data files.
        external_data: names of external data files.
        ir_version, opset, producer: from the model proto (opset: domain -> version, for the
            domains the graph uses).
        signature: inputs and outputs.
        census: compute nodes by precision, Q/DQ pairs.
        manifest_kind: ``kind`` from the manifest beside the file (None without one).
        provenance: what the manifest says about the file's origin (precision, source, options,
            calibration, provenance); None without a manifest.
    """

    path: str
    size_bytes: int
    external_data: tuple[str, ...]
    ir_version: int
    opset: dict[str, int]
    producer: str
    signature: Signature
    census: Census
    manifest_kind: str | None
    provenance: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form with ``schema_version``."""
        return {
            "schema_version": INFO_SCHEMA_VERSION,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "external_data": list(self.external_data),
            "ir_version": self.ir_version,
            "opset": dict(self.opset),
            "producer": self.producer,
            "signature": self.signature.to_json(),
            "census": self.census.to_json(),
            "manifest_kind": self.manifest_kind,
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of :meth:`to_json`; InputError for an unknown schema version."""
        if data.get("schema_version") != INFO_SCHEMA_VERSION:
            raise InputError(
                f"inspect schema_version {data.get('schema_version')!r} is not "
                f"{INFO_SCHEMA_VERSION}",
                hint="re-run `optieval inspect` with this optieval version",
            )
        return cls(
            path=str(data["path"]),
            size_bytes=int(data["size_bytes"]),
            external_data=tuple(data["external_data"]),
            ir_version=int(data["ir_version"]),
            opset={str(k): int(v) for k, v in data["opset"].items()},
            producer=str(data["producer"]),
            signature=Signature.from_json(data["signature"]),
            census=Census.from_json(data["census"]),
            manifest_kind=data.get("manifest_kind"),
            provenance=data.get("provenance"),
        )


def inspect_model(model: str | os.PathLike[str]) -> ModelInfo:
    """Describe an ONNX file: I/O, opset, size, census and its manifest's provenance.

    Raises:
        InputError: a missing or unreadable file, or a malformed manifest beside it.
    """
    path = Path(model)
    proto = load_onnx(path, load_external_data=False)
    external = tuple(external_data_locations(proto))
    size = path.stat().st_size + sum(
        (path.parent / name).stat().st_size for name in external if (path.parent / name).is_file()
    )
    # Quantizers declare many domains they never use: list the ones the graph uses.
    used = {"ai.onnx"} | {n.domain or "ai.onnx" for n in proto.graph.node}
    manifest = read_manifest(path)
    provenance = None
    if manifest is not None:
        keys = (
            "precision",
            "source",
            "options",
            "calibration",
            "provenance",
            "exporter",
            "warnings",
            "parity",
            "versions",
        )
        provenance = {k: manifest[k] for k in keys if k in manifest}
    return ModelInfo(
        path=str(path),
        size_bytes=size,
        external_data=external,
        ir_version=int(proto.ir_version),
        opset={
            imp.domain or "ai.onnx": int(imp.version)
            for imp in proto.opset_import
            if (imp.domain or "ai.onnx") in used
        },
        producer=" ".join(p for p in (proto.producer_name, proto.producer_version) if p),
        signature=signature_from_onnx(proto),
        census=census(proto),
        manifest_kind=None if manifest is None else str(manifest.get("kind", "")) or None,
        provenance=provenance,
    )
