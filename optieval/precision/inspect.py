"""``optieval inspect``: what an ONNX file is (I/O, opset, size, precision census) and where it
came from (its manifest's provenance); plus the rich renderings of inspect and convert."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optieval.core import Signature, load_onnx, read_manifest, signature_from_onnx
from optieval.errors import InputError
from optieval.precision.graph_census import Census, census

if TYPE_CHECKING:
    from rich.console import RenderableType

    from optieval.precision.artifacts import ConversionResult

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
    from optieval.precision.artifacts import _external_locations

    path = Path(model)
    proto = load_onnx(path, load_external_data=False)
    external = tuple(_external_locations(proto))
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


# -- rendering (used by the CLI) ------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10_000 else f"{size} B"


def census_table(found: Census, title: str = "precision census") -> RenderableType:
    """Compute nodes per op type and precision, and the Q/DQ pair count."""
    from rich.markup import escape
    from rich.table import Table

    columns = [p for p in ("fp32", "fp16", "bf16", "int8", "other") if p in found.compute]
    table = Table(title=title, title_justify="left")
    table.add_column("op")
    for p in columns:
        table.add_column(p, justify="right")
    for op, counts in found.by_op.items():
        table.add_row(escape(op), *(str(counts.get(p, 0)) for p in columns))
    table.add_row("[b]all[/b]", *(f"[b]{found.compute.get(p, 0)}[/b]" for p in columns))
    table.caption = (
        f"{found.qdq_pairs} Q/DQ pairs; dominant precision: {found.dominant_precision or 'none'}"
    )
    return table


def info_renderables(info: ModelInfo) -> list[RenderableType]:
    """The rich renderables `optieval inspect` prints."""
    from rich.markup import escape
    from rich.table import Table

    head = Table(show_header=False, title=escape(info.path), title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    external = f" (external data: {', '.join(info.external_data)})" if info.external_data else ""
    head.add_row("size", escape(_megabytes(info.size_bytes) + external))
    opsets = ", ".join(f"{d} {v}" for d, v in info.opset.items())
    head.add_row("ir / opset", escape(f"{info.ir_version} / {opsets}"))
    if info.producer:
        head.add_row("producer", escape(info.producer))
    for spec in info.signature.inputs:
        head.add_row("input", escape(f"{spec.name}: {spec.dtype}[{spec.shape_text()}]"))
    for spec in info.signature.outputs:
        head.add_row("output", escape(f"{spec.name}: {spec.dtype}[{spec.shape_text()}]"))
    prov = info.provenance or {}
    if info.manifest_kind is None:
        head.add_row("manifest", "none beside the file")
    else:
        head.add_row("manifest", escape(info.manifest_kind))
    if "precision" in prov:
        head.add_row("precision", escape(str(prov["precision"])))
    source = prov.get("source")
    if isinstance(source, dict):
        head.add_row(
            "source", escape(f"{source.get('path')} (sha256 {str(source.get('sha256'))[:16]}…)")
        )
    calibration = prov.get("calibration")
    if isinstance(calibration, dict):
        head.add_row(
            "calibration",
            escape(
                f"{calibration.get('samples')} samples from {calibration.get('source')}, "
                f"{calibration.get('method')}"
            ),
        )
    provenance = prov.get("provenance")
    if isinstance(provenance, dict):
        for key in ("tool", "created", "spec", "checkpoint"):
            if provenance.get(key) is not None:
                head.add_row(key, escape(str(provenance[key])))
        versions = provenance.get("versions")
        if isinstance(versions, dict):
            head.add_row("versions", escape(", ".join(f"{k} {v}" for k, v in versions.items())))
    if isinstance(prov.get("versions"), dict):  # export manifests keep versions at the top
        versions_text = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
        head.add_row("versions", escape(versions_text))
    parity = prov.get("parity")
    if isinstance(parity, dict) and "passed" in parity:
        head.add_row("export parity", "passed" if parity["passed"] else "[red]FAILED[/]")
    for warning in prov.get("warnings", []) or []:
        head.add_row("[yellow]warning[/]", escape(str(warning)))
    return [head, census_table(info.census)]


def conversion_renderables(result: ConversionResult) -> list[RenderableType]:
    """The rich renderables `optieval convert` prints."""
    from rich.markup import escape
    from rich.table import Table

    head = Table(show_header=False, title=f"{result.precision} artifact", title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    head.add_row("source", escape(result.source))
    head.add_row("artifact", escape(result.output + ("  (from cache)" if result.cached else "")))
    head.add_row("census", escape(result.census.describe()))
    if result.calibration:
        c = result.calibration
        head.add_row(
            "calibration", escape(f"{c['samples']} samples from {c['source']}, {c['method']}")
        )
    if result.precision == "fp16":
        excluded = result.options.get("node_block_list") or []
        kept = "op types: default block list" + (
            f"; nodes: {', '.join(excluded)}" if excluded else ""
        )
        head.add_row("kept in fp32", escape(kept))
    elif result.options.get("exclude"):
        head.add_row("kept in float", escape(", ".join(result.options["exclude"])))
    head.add_row("time", f"{result.seconds:.2f} s")
    out: list[RenderableType] = [head, census_table(result.census)]
    if result.spread is not None:
        spread = Table(
            title=f"calibration spread: {result.spread.repeats} subsets of "
            f"{result.spread.samples_per_subset} samples, evaluated on "
            f"{result.spread.eval_samples}",
            title_justify="left",
        )
        spread.add_column("output")
        spread.add_column("max abs vs fp32 (per subset)")
        spread.add_column("min cosine vs fp32", justify="right")
        spread.add_column("max abs between subsets", justify="right")
        spread.add_column("min cosine between", justify="right")
        for o in result.spread.outputs:
            spread.add_row(
                escape(o.name),
                ", ".join(f"{v:.3g}" for v in o.max_abs_vs_fp32),
                f"{min(o.cosine_vs_fp32):.6f}",
                f"{o.max_abs_between:.3g}",
                f"{o.cosine_between:.6f}",
            )
        out.append(spread)
    return out
