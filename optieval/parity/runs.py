"""What one parity run is made of: the ``backend:precision`` cell it runs (:class:`RunCell`),
the inputs it runs on (a data set, golden inputs or seeded generated inputs), the batches it
feeds, the backend it opens, and the rough latency and localization of a failing candidate.

Both the classification compare (:mod:`optieval.parity.comparison`) and the detection compare
(:mod:`optieval.detection.compare`) are built on these; that is why they are public.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from optieval.core import ONNX_BACKENDS, PRECISIONS, Signature
from optieval.errors import InputError
from optieval.parity.golden import Golden, load_golden
from optieval.parity.localize import DEFAULT_MAX_NODES, Localization, localize_models
from optieval.parity.results import OutputParity, check_labels
from optieval.parity.sample_groups import SampleGroups, sample_count, subset_batches
from optieval.parity.tolerances import ToleranceSet

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_GENERATED_SAMPLES",
    "GatheredInputs",
    "RunCell",
    "fixed_batch",
    "gather_inputs",
    "localize_artifact",
    "manifest_warnings",
    "measure_latency_ms",
    "open_backend",
    "parse_cell",
    "split_batches",
]

DEFAULT_GENERATED_SAMPLES = 64
DEFAULT_BATCH = 16


@dataclass(frozen=True)
class RunCell:
    """A ``backend:precision`` pair that a parity run runs: the reference or a candidate."""

    backend: str
    precision: str

    @property
    def label(self) -> str:
        """``backend:precision``."""
        return f"{self.backend}:{self.precision}"

    @property
    def runs_onnx(self) -> bool:
        """True for backends that run ONNX artifacts (not the PyTorch source)."""
        return self.backend in ONNX_BACKENDS


def parse_cell(text: str, *, where: str = "candidates") -> RunCell:
    """Parse ``BACKEND:PRECISION`` (precision defaults to fp32 when omitted).

    ``where`` names the parameter the text came from (``candidates`` or ``reference``).
    Raises InputError for an unknown backend or precision.
    """
    from optieval.runtime import check_backend_name

    backend, _, precision = text.strip().partition(":")
    precision = precision or "fp32"
    check_backend_name(backend, where=where)
    if precision not in PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r} in {text!r}",
            where=where,
            hint=f"choose from {', '.join(PRECISIONS)}, e.g. ort-cpu:int8",
        )
    return RunCell(backend, precision)


def fixed_batch(signature: Signature) -> int | None:
    """The batch size every input of ``signature`` fixes (one static first dimension shared by
    all inputs), or None when the batch is dynamic or the inputs disagree."""
    dims = {s.shape[0] for s in signature.inputs if s.shape and isinstance(s.shape[0], int)}
    if len(dims) == 1:
        return int(next(iter(dims)))
    return None


def split_batches(inputs: Mapping[str, np.ndarray], batch: int) -> Iterator[dict[str, np.ndarray]]:
    """``inputs`` cut along axis 0 into feeds of ``batch`` samples (the last one may be
    shorter), each array contiguous."""
    n = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    for start in range(0, n, batch):
        yield {k: np.ascontiguousarray(v[start : start + batch]) for k, v in inputs.items()}


def open_backend(cell: RunCell, artifact: Path, *, spec: str | None, threads: int | None) -> Any:
    """Create the backend that runs ``cell`` on ``artifact`` (a context manager).

    ``threads`` sets the backend's intra-op threads (None: the backend's default); a torch cell
    also gets its precision and, when given, the model ``spec`` to rebuild the source from.
    """
    from optieval.runtime import create_backend

    options: dict[str, Any] = {}
    if threads is not None:
        options["threads"] = threads
    if not cell.runs_onnx:
        options["precision"] = cell.precision
        if spec is not None:
            options["spec"] = spec
    return create_backend(cell.backend, artifact, **options)


def manifest_warnings(model: Path) -> list[str]:
    """Warnings about the reference model itself, read from its export manifest (none when it
    has no readable manifest): an export whose parity with PyTorch failed."""
    from optieval.core import read_manifest

    try:
        manifest = read_manifest(model)
    except InputError:
        return []
    parity = (manifest or {}).get("parity")
    if isinstance(parity, dict) and parity.get("passed") is False:
        return [
            f"{model.name}'s export manifest records that parity with PyTorch FAILED at export; "
            "the ONNX reference itself may be wrong"
        ]
    return []


@dataclass(frozen=True)
class GatheredInputs:
    """The inputs of one compare, what they came from, and their labels.

    Attributes:
        inputs: input name -> array, samples along axis 0.
        labels: class indices per sample (None: no labels).
        source: ``golden:PATH``, ``data:PATH`` or ``generated:seed=N`` (recorded in reports).
        golden: the golden folder's contents when the inputs came from one.
        groups: for data whose dynamic dimensions vary across samples, the samples grouped by
            shape (``inputs`` is then empty; labels are in the data's sample order).
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    golden: Golden | None = None
    groups: SampleGroups | None = None

    @property
    def feeds(self) -> dict[str, np.ndarray] | SampleGroups:
        """What the runs take: the groups when there are some, else ``inputs``."""
        return self.groups if self.groups is not None else self.inputs

    @property
    def samples(self) -> int:
        """How many samples there are."""
        return sample_count(self.feeds)


def _generate(
    signature: Signature,
    samples: int,
    seed: int,
    given: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    from optieval.core import generate_feeds, resolve_shapes

    fixed = fixed_batch(signature)
    chunk = fixed or samples
    # The given shapes' dims beyond the batch; the batch is the chunk's.
    overrides = {name: (chunk, *shape[1:]) for name, shape in (given or {}).items()}
    shapes = resolve_shapes(signature, chunk, overrides)
    blocks = [generate_feeds(signature, shapes, seed=seed + i) for i in range(-(-samples // chunk))]
    # With a fixed batch the count is rounded up to whole batches.
    return {s.name: np.concatenate([b[s.name] for b in blocks], axis=0) for s in signature.inputs}


def gather_inputs(
    signature: Signature,
    *,
    model_sha256: str,
    data: str | os.PathLike[str] | None,
    labels_key: str | None,
    samples: int | None,
    golden: str | os.PathLike[str] | None,
    seed: int,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> GatheredInputs:
    """The inputs a compare runs: a golden folder's (checked against ``model_sha256``), a data
    set's (with labels under ``labels_key``), or ``samples`` seeded generated ones (default 64);
    at most ``samples`` of them; generated inputs take the dims beyond the batch from ``shapes``
    (inputs left out follow tied dimensions).

    Raises InputError naming the parameter at fault: ``samples`` below 1, ``golden`` with
    ``data``, ``labels_key`` without ``data``, golden inputs missing a model input.
    """
    if samples is not None and samples < 1:
        raise InputError(f"`samples` {samples} must be at least 1", where="samples")
    if shapes and (golden is not None or data is not None):
        raise InputError(
            "`shapes` sets the shapes of generated inputs; with `data` or `golden` every "
            "dimension comes from the inputs given",
            where="shapes",
            hint="drop `shapes`",
        )
    if golden is not None:
        if data is not None:
            raise InputError("`golden` brings its own inputs; drop `data`", where="golden")
        g = load_golden(golden, model_sha256=model_sha256)
        missing = [s.name for s in signature.inputs if s.name not in g.inputs]
        if missing:
            raise InputError(f"golden inputs lack {', '.join(missing)}", where=str(golden))
        if samples is not None and samples < g.samples:
            g = replace(
                g,
                inputs={k: v[:samples] for k, v in g.inputs.items()},
                outputs={k: v[:samples] for k, v in g.outputs.items()},
                labels=None if g.labels is None else g.labels[:samples],
            )
        return GatheredInputs(dict(g.inputs), g.labels, f"golden:{golden}", g)
    if data is not None:
        from optieval.core import load_dataset

        ds = load_dataset(
            str(data), signature, labels_key=labels_key, max_samples=samples, ragged=True
        )
        if ds.is_ragged:
            return _grouped_inputs(ds, labels_key, f"data:{data}")
        labels = None
        if labels_key is not None:
            labels = check_labels(ds.labels, ds.num_samples)
        return GatheredInputs(dict(ds.inputs), labels, f"data:{data}")
    if labels_key is not None:
        raise InputError("`labels` names a key in `data`; no `data` was given", where="labels")
    count = samples or DEFAULT_GENERATED_SAMPLES
    return GatheredInputs(_generate(signature, count, seed, shapes), None, f"generated:seed={seed}")


def _grouped_inputs(ds: Any, labels_key: str | None, source: str) -> GatheredInputs:
    """Samples of several shapes: their groups, and labels put back in the data's order."""
    groups = SampleGroups(
        tuple(dict(g.inputs) for g in ds.groups),
        tuple(np.asarray(g.positions) for g in ds.groups),
        ds.source,
    )
    labels = None
    if labels_key is not None:
        first = ds.groups[0].labels
        merged = np.empty((groups.samples, *first.shape[1:]), dtype=first.dtype)
        for group in ds.groups:
            merged[group.positions] = group.labels
        labels = check_labels(merged, groups.samples)
    return GatheredInputs({}, labels, source, groups=groups)


def measure_latency_ms(
    cell: RunCell,
    artifact: Path,
    feeds: Mapping[str, np.ndarray],
    threads: int | None,
    runs: int = 20,
) -> float:
    """Median latency of one batch (ms) after 3 warm-up runs: a rough price tag for
    ``auto_exclude``, not a benchmark."""
    with open_backend(cell, artifact, spec=None, threads=threads) as backend:
        for _ in range(3):
            backend.infer(feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            backend.infer(feeds, check=False)
            times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


def localize_artifact(
    model_proto: Any,
    artifact: Path,
    inputs: Mapping[str, np.ndarray] | SampleGroups,
    tolerances: ToleranceSet,
    batch: int,
    localize_samples: int,
    outputs: Sequence[OutputParity] = (),
) -> Localization:
    """Localize where ``artifact``'s error against ``model_proto`` is born, on the samples that
    differ most (each output's ``worst_samples``), topped up with the first samples to
    ``localize_samples``, run in batches of ``batch`` (grouped samples within their group)."""
    from optieval.core import load_onnx

    n = sample_count(inputs)
    chosen: list[int] = []
    for index in [i for o in outputs for i in o.worst_samples] + list(range(n)):
        if len(chosen) >= min(n, localize_samples):
            break
        if index not in chosen:
            chosen.append(index)
    batches = subset_batches(inputs, chosen, batch)
    return localize_models(
        model_proto,
        load_onnx(artifact),
        batches,
        tolerances=tolerances,
        max_nodes=DEFAULT_MAX_NODES,
    )
