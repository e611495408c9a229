"""Engines and their manifests: the cache key of a built engine, the manifest written beside a
``.plan`` (``model.plan.json``), and the check that refuses an engine built for another
TensorRT version or GPU."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from optieval.core import Signature
from optieval.errors import BackendUnavailable, InputError
from optieval.runtime.profiles import ProfileShape
from optieval.runtime.tensorrt.library import parse_version
from optieval.runtime.tensorrt.readback import PrecisionReadback

__all__ = [
    "ENGINE_MANIFEST_KIND",
    "PLAN_SUFFIXES",
    "check_engine_manifest",
    "engine_cache_key",
    "engine_manifest",
]

PLAN_SUFFIXES = (".plan", ".engine")
ENGINE_MANIFEST_KIND = "tensorrt-engine"


def engine_cache_key(
    *,
    artifact_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    options: Mapping[str, Any],
) -> str:
    """The engine cache key: artifact content hash, TensorRT version, GPU, compute capability
    and every build option that changes the engine (precision, profiles, compatibility)."""
    from optieval.core import cache_key

    return cache_key(
        {
            "kind": ENGINE_MANIFEST_KIND,
            "artifact_sha256": artifact_sha256,
            "tensorrt": trt_version,
            "gpu": gpu_name,
            "compute_capability": compute_capability,
            "options": dict(options),
        }
    )


def check_engine_manifest(
    manifest: Mapping[str, Any],
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    where: str,
) -> list[str]:
    """Refuse an engine built for another TensorRT version or GPU.

    Returns warnings (e.g. same compute capability, different GPU model). Raises InputError when
    the manifest is not an engine manifest, BackendUnavailable (exit 3) when the engine cannot
    run here: other TensorRT version (unless built version-compatible, and then only a newer
    runtime), other compute capability (unless built hardware-compatible and both are Ampere
    or newer).
    """
    if manifest.get("kind") != ENGINE_MANIFEST_KIND:
        raise InputError(
            "not a TensorRT engine manifest", where=where, hint="build with `optieval build`"
        )
    built = manifest.get("tensorrt") or {}
    gpu = manifest.get("gpu") or {}
    compat = manifest.get("compatibility") or {}
    warnings: list[str] = []
    built_version = str(built.get("version", "?"))
    if built_version != trt_version:
        same_major = parse_version(built_version)[:1] == parse_version(trt_version)[:1]
        newer = parse_version(trt_version) >= parse_version(built_version)
        if not (compat.get("version_compatible") and same_major and newer):
            raise BackendUnavailable(
                f"engine was built with TensorRT {built_version}, this machine has {trt_version}",
                where=where,
                hint="rebuild it here with `optieval build`, or build it version-compatible",
            )
        warnings.append(f"version-compatible engine from TensorRT {built_version}")
    built_cc = str(gpu.get("compute_capability", "?"))
    if built_cc != compute_capability:
        hardware = compat.get("hardware_compatible")
        both_ampere_plus = parse_version(built_cc)[:1] >= (8,) and parse_version(
            compute_capability
        )[:1] >= (8,)
        if not (hardware and both_ampere_plus):
            raise BackendUnavailable(
                f"engine was built for {gpu.get('name', '?')} (compute capability {built_cc}), "
                f"this GPU is {gpu_name} ({compute_capability})",
                where=where,
                hint="rebuild it on this GPU, or build it hardware-compatible (Ampere+)",
            )
        warnings.append(f"hardware-compatible engine from compute capability {built_cc}")
    elif gpu.get("name") and gpu.get("name") != gpu_name:
        warnings.append(f"engine was built on {gpu['name']}, running on {gpu_name}")
    return warnings


def engine_manifest(
    *,
    source: Mapping[str, Any],
    engine_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: str,
    readback: PrecisionReadback,
    profiles: Sequence[ProfileShape],
    signature: Signature,
    build_seconds: float,
    version_compatible: bool = False,
    hardware_compatible: bool = False,
    build_notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest written beside an engine (``model.plan.json``); ``build_notes``: what the
    build had to work around (a rejected timing cache)."""
    return {
        "kind": ENGINE_MANIFEST_KIND,
        "engine_sha256": engine_sha256,
        "source": dict(source),
        "tensorrt": {"version": trt_version},
        "gpu": {"name": gpu_name, "compute_capability": compute_capability},
        "precision": {"requested": precision, "read_back": readback.to_json()},
        "profiles": [p.to_json() for p in profiles],
        "io": signature.to_json(),
        "compatibility": {
            "version_compatible": version_compatible,
            "hardware_compatible": hardware_compatible,
        },
        "build_seconds": round(build_seconds, 3),
        "build_notes": list(build_notes),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
