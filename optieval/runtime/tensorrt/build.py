"""Building engines: parse an ONNX artifact strongly typed, set the optimization profile and
the timing cache, build, and read the layer precisions back (:func:`build_engine`);
``optieval build`` writes a deployable ``model.plan`` with its manifest (:func:`build_plan`).

Precision comes from the ONNX artifact (FP16 casts, INT8 Q/DQ), never from builder flags, which
TensorRT 11.0 removed; TF32 is cleared for fp32 artifacts so the fp32 reference is fp32.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import Signature
from optieval.errors import BackendFailed, InputError
from optieval.runtime.profiles import ProfileShape, compute_profiles
from optieval.runtime.tensorrt.library import (
    TrtLogger,
    check_device_id,
    device_cache_key,
    engine_signature,
    import_trt,
    init_plugins,
    select_device,
    trt_versions,
)
from optieval.runtime.tensorrt.manifest import PLAN_SUFFIXES, engine_manifest
from optieval.runtime.tensorrt.readback import (
    PrecisionReadback,
    check_readback,
    read_back_precision,
)

__all__ = [
    "BuiltEngine",
    "PlanBuildResult",
    "build_engine",
    "build_plan",
    "parser_error_message",
    "timing_cache_path",
]


def parser_error_message(errors: Sequence[Mapping[str, Any]], *, model: str) -> InputError:
    """One InputError listing every ONNX parser error with its node (name, operator, index)."""
    lines = []
    for err in errors:
        node = err.get("node_name") or (
            f"#{err['node']}" if err.get("node", -1) not in (None, -1) else None
        )
        op = err.get("node_operator")
        at = f"node {node}" + (f" ({op})" if op else "") if node else "graph"
        lines.append(f"{at}: {err.get('desc', '?')}")
    return InputError(
        f"TensorRT cannot parse the model ({len(errors)} error(s)): " + "; ".join(lines),
        where=model,
        hint="check the ops against TensorRT's ONNX operator support, or simplify the graph",
    )


@dataclass(frozen=True)
class BuiltEngine:
    """A serialized engine and what was learnt building it."""

    plan: bytes
    readback: PrecisionReadback
    profiles: tuple[ProfileShape, ...]
    signature: Signature
    build_seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)  # build notes


def build_engine(
    onnx_path: str | os.PathLike[str],
    *,
    precision: str,
    shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    profiles: Iterable[ProfileShape] = (),
    timing_cache: str | os.PathLike[str] | None = None,
    version_compatible: bool = False,
    hardware_compatible: bool = False,
    device_id: int = 0,
) -> BuiltEngine:
    """Parse an ONNX artifact strongly typed and build a serialized engine.

    Args:
        onnx_path: the ONNX artifact (external data beside it is found by the parser).
        precision: the artifact's precision (its census), used for TF32 and the read-back.
        shapes / profiles: see :func:`optieval.runtime.profiles.compute_profiles`.
        timing_cache: file to read and update (None: no timing cache).
        version_compatible / hardware_compatible: build a portable engine.
        device_id: the CUDA device to build on (made current; TensorRT builds for it).

    Raises: InputError (parser errors listed with their nodes; profile problems),
    BackendUnavailable (no TensorRT/CUDA), BackendFailed (the build failed, or the read-back
    precision is not the requested one).
    """
    from optieval.core import load_onnx, signature_from_onnx

    trt = import_trt()
    select_device(device_id)
    onnx_path = Path(onnx_path)
    onnx_signature = signature_from_onnx(load_onnx(onnx_path, load_external_data=False))
    profile_list = compute_profiles(onnx_signature, shapes=shapes, explicit=profiles)
    log = TrtLogger(trt)
    start = time.perf_counter()
    builder = trt.Builder(log.logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            errors.append(
                {
                    "desc": err.desc(),
                    "node": err.node(),
                    "node_name": _call_or_none(err, "node_name"),
                    "node_operator": _call_or_none(err, "node_operator"),
                }
            )
        raise parser_error_message(errors, model=str(onnx_path))
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; the fp32 reference stays fp32
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    profile = builder.create_optimization_profile()
    for p in profile_list:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache is not None else None
    version = str(getattr(trt, "__version__", "?"))
    notes = _set_timing_cache(trt, config, cache_path, version)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendFailed(
            f"TensorRT could not build the engine ({log.tail() or 'no message'})",
            where=str(onnx_path),
        )
    if cache_path is not None:
        from optieval.core import write_bytes_atomic

        updated = config.get_timing_cache()
        if updated is None:
            notes.append(f"TensorRT {version} returned no timing cache; {cache_path} not updated")
        else:
            write_bytes_atomic(cache_path, bytes(memoryview(updated.serialize())))
    plan_bytes = bytes(memoryview(plan))
    seconds = time.perf_counter() - start
    init_plugins(trt, log.logger)
    runtime = trt.Runtime(log.logger)
    if version_compatible:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(plan_bytes)
    if engine is None:
        raise BackendFailed(
            f"TensorRT {version} built an engine it could not deserialize "
            f"({log.tail() or 'no message'})",
            where=str(onnx_path),
        )
    readback = read_back_precision(trt, engine, profile_list)
    check_readback(precision, readback, where=str(onnx_path), trt_version=version)
    return BuiltEngine(
        plan_bytes,
        readback,
        tuple(profile_list),
        engine_signature(trt, engine),
        seconds,
        tuple(notes),
    )


def _set_timing_cache(trt: Any, config: Any, path: Path | None, version: str) -> list[str]:
    """Give the builder the timing cache read from ``path`` (an empty one when absent). A cache
    TensorRT rejects (``set_timing_cache`` returns False: another version or GPU wrote it) is
    dropped for a fresh one, which replaces the file after the build; returns the build notes
    saying so."""
    notes: list[str] = []
    data = path.read_bytes() if path is not None and path.is_file() else b""
    if config.set_timing_cache(config.create_timing_cache(data), False):
        return notes
    if data:
        notes.append(
            f"TensorRT {version} rejected the timing cache {path}; built without it "
            "(a fresh cache replaces it)"
        )
        if config.set_timing_cache(config.create_timing_cache(b""), False):
            return notes
    notes.append(f"TensorRT {version} rejected an empty timing cache; built without one")
    return notes


def _call_or_none(obj: Any, method: str) -> Any:
    fn = getattr(obj, method, None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None


@dataclass(frozen=True)
class PlanBuildResult:
    """What ``optieval build`` wrote."""

    plan: str
    manifest: str
    manifest_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "schema_version": 1,
            "plan": self.plan,
            "manifest": self.manifest,
            **{k: self.manifest_data[k] for k in ("precision", "tensorrt", "gpu")},
        }


def build_plan(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    precision: str,
    shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    profiles: Iterable[ProfileShape] = (),
    version_compatible: bool = False,
    hardware_compatible: bool = False,
    device_id: int = 0,
) -> PlanBuildResult:
    """Build a deployable engine from an ONNX artifact: ``output`` (``model.plan``) and its
    manifest ``output + ".json"`` (TensorRT version, GPU and compute capability, profile shapes,
    precision read back, the source's hash, build time), both written atomically. The GPU
    recorded is ``device_id``'s, the device the engine is built on.

    Raises InputError (bad file, precision that the artifact's census does not carry, parser
    errors, profiles), BackendUnavailable (exit 3: no TensorRT or GPU here) and BackendFailed
    (exit 3: build failed or the engine's precision is not the requested one).
    """
    from optieval.core import sha256_file, write_bytes_atomic, write_manifest
    from optieval.precision import check_precision_name, require_precision

    check_precision_name(precision)
    check_device_id(device_id)
    model = Path(model)
    require_precision(model, precision, where=str(model))
    out = Path(output)
    if out.suffix not in PLAN_SUFFIXES:
        raise InputError(f"output must end in {' or '.join(PLAN_SUFFIXES)}", where=str(out))
    _trt, version, gpu_name, cc = trt_versions(device_id)
    source_hash = sha256_file(model)
    built = build_engine(
        model,
        precision=precision,
        shapes=shapes,
        profiles=profiles,
        timing_cache=timing_cache_path(version, cc, gpu_name),
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
        device_id=device_id,
    )
    write_bytes_atomic(out, built.plan)
    from optieval.core import sha256_bytes

    manifest = engine_manifest(
        source={"path": str(model), "sha256": source_hash},
        engine_sha256=sha256_bytes(built.plan),
        trt_version=version,
        gpu_name=gpu_name,
        compute_capability=cc,
        precision=precision,
        readback=built.readback,
        profiles=built.profiles,
        signature=built.signature,
        build_seconds=built.build_seconds,
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
        build_notes=built.warnings,
    )
    path = write_manifest(out, manifest)
    return PlanBuildResult(str(out), str(path), manifest)


def timing_cache_path(version: str, cc: str, gpu_name: str) -> Path:
    """The timing cache shared by builds for one TensorRT version, compute capability and GPU
    model (tactic timings differ between GPUs of one compute capability)."""
    from optieval.core import cache_dir

    key = device_cache_key(trt_version=version, compute_capability=cc, gpu_name=gpu_name)
    return cache_dir("tensorrt-timing", key) / "timing.cache"
