"""What an export writes down: :class:`ExportResult` (the manifest ``NAME.json``), the
provenance that rebuilds the PyTorch reference, the tool versions, and
:class:`ExportCheckFailed`."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import Signature
from optieval.errors import CheckFailed, InputError
from optieval.export.exporters import ExporterInfo
from optieval.export.inputs import DimInfo, InputSpec
from optieval.export.verify import ParityReport
from optieval.source import LoadedModel

EXPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and proved.

    Attributes:
        model_path: the ONNX file.
        manifest_path: its manifest (``model_path`` + ``.json``).
        files: ``{file name relative to the model's folder: sha256}`` (model, external data).
        signature: inputs and outputs (symbolic dims for dynamic ones).
        opset: the default-domain opset of the file.
        exporter: which exporter produced it (and why, for ``auto`` or TorchScript sources).
        external_data: whether the weights live in a separate ``.data`` file.
        versions: torch, onnx, onnxruntime, onnxscript and optieval versions.
        provenance: what is needed to rebuild the PyTorch reference (spec, base folder,
            checkpoint and hashes, example input specs, dynamic dims, seed).
        parity: ONNX Runtime CPU against PyTorch.
        warnings: what was changed or assumed on the way.
        timings: seconds spent exporting, checking and comparing.
    """

    model_path: Path
    manifest_path: Path
    files: dict[str, str]
    signature: Signature
    opset: int
    exporter: ExporterInfo
    external_data: bool
    versions: dict[str, str]
    provenance: dict[str, Any]
    parity: ParityReport
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when parity passed."""
        return self.parity.passed

    def manifest(self) -> dict[str, Any]:
        """The manifest content (without ``schema_version``, added on write)."""
        return {
            "kind": "onnx-model",
            "files": dict(self.files),
            "io": self.signature.to_json(),
            "opset": self.opset,
            "exporter": self.exporter.to_json(),
            "external_data": self.external_data,
            "versions": dict(self.versions),
            "provenance": self.provenance,
            "parity": self.parity.to_json(),
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
        }

    def to_json(self) -> dict[str, Any]:
        """The manifest content plus ``schema_version`` and the paths (what ``--json FILE``
        writes)."""
        return {
            "schema_version": EXPORT_SCHEMA_VERSION,
            "model": str(self.model_path),
            "manifest": str(self.manifest_path),
            **self.manifest(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportResult:
        """Inverse of :meth:`to_json`; InputError for another schema version."""
        version = data.get("schema_version")
        if version != EXPORT_SCHEMA_VERSION:
            raise InputError(
                f"export result schema_version {version!r} is not {EXPORT_SCHEMA_VERSION}",
                hint="re-run `optieval export` with this optieval version",
            )
        return cls(
            model_path=Path(data["model"]),
            manifest_path=Path(data["manifest"]),
            files=dict(data["files"]),
            signature=Signature.from_json(data["io"]),
            opset=int(data["opset"]),
            exporter=ExporterInfo.from_json(data["exporter"]),
            external_data=bool(data.get("external_data", False)),
            versions=dict(data.get("versions", {})),
            provenance=dict(data["provenance"]),
            parity=ParityReport.from_json(data["parity"]),
            warnings=tuple(data.get("warnings", ())),
            timings=dict(data.get("timings", {})),
        )


class ExportCheckFailed(CheckFailed):
    """The export was written but failed its checks (parity, or onnx.checker): exit 1.

    ``result`` holds the :class:`ExportResult`, so callers can still render it.
    """

    def __init__(
        self,
        message: str,
        *,
        result: ExportResult,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.result = result


def tool_versions() -> dict[str, str]:
    """torch, onnx, onnxruntime, onnxscript (when installed) and optieval versions."""
    import onnx
    import onnxruntime
    import torch

    from optieval.version import __version__

    found = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "optieval": __version__,
    }
    with contextlib.suppress(ImportError):
        import onnxscript

        found["onnxscript"] = onnxscript.__version__
    return found


def export_provenance(
    spec: str,
    loaded: LoadedModel,
    specs: Sequence[InputSpec],
    dims: Mapping[str, Mapping[int, DimInfo]],
    seed: int,
) -> dict[str, Any]:
    """What rebuilds the PyTorch reference of an export (manifest ``provenance``): the spec,
    base folder, checkpoint and hashes, example input specs, dynamic dims and seed."""
    return {
        "spec": spec,
        "kind": loaded.kind,
        "base_dir": str(loaded.base_dir),
        "spec_file_sha256": loaded.spec_file_sha256,
        "checkpoint": str(loaded.checkpoint) if loaded.checkpoint else None,
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "inputs": [s.to_json() for s in specs],
        "dynamic": [
            {
                "input": n,
                "axis": a,
                "label": i.label,
                "min": i.min,
                "max": i.max,
                "size": i.size,
            }
            for n, axes in dims.items()
            for a, i in axes.items()
        ],
        "seed": seed,
    }
