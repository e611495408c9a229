"""Rich renderings of precision artifacts: ``optieval inspect`` (an ONNX file described) and
``optieval convert`` (the artifact made, its census and calibration spread)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table

from optieval.core import PRECISIONS
from optieval.precision import Census, ConversionResult, ModelInfo


def _megabytes(size: int) -> str:
    """``13.5 MiB``: optieval's one style for sizes."""
    from optieval.core import format_size

    return format_size(size)


def census_table(found: Census, title: str = "precision census") -> RenderableType:
    """Compute nodes per op type and precision, and the Q/DQ pair count."""
    columns = [p for p in (*PRECISIONS, "other") if p in found.compute]
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
    if found.int8_format:
        kernels = ", ".join(f"{k} {n}" for k, n in found.int8_kernels.items())
        table.caption += f"; int8 format: {found.int8_format}; int8 kernels: {kernels}"
    return table


def info_renderables(info: ModelInfo) -> list[RenderableType]:
    """The rich renderables `optieval inspect` prints."""
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
    head = Table(show_header=False, title=f"{result.precision} artifact", title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    head.add_row("source", escape(result.source))
    head.add_row("artifact", escape(result.output + ("  (from cache)" if result.cached else "")))
    head.add_row("census", escape(result.census.describe()))
    if result.int8_format:
        target = f" for {result.backend}" if result.backend else " (portable)"
        head.add_row("int8 format", escape(result.int8_format + target))
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
