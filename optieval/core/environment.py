"""The environment fingerprint: what machine and which libraries a number came from.

Collected without importing torch or TensorRT (package metadata gives their versions); GPU
facts come from NVML when ``nvidia-ml-py`` is installed, else from ``nvidia-smi``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from optieval.version import __version__

# CPU flags that decide how fast int8 and fp16 run on the CPU.
_INTERESTING_FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)

_PACKAGES = {
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime"),
    "onnxscript": ("onnxscript",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "numpy": ("numpy",),
}


def package_version(*names: str) -> str | None:
    """Return the installed version of the first distribution in ``names``, or None."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "flags": []}
    path = Path("/proc/cpuinfo")
    if path.is_file():
        text = path.read_text(errors="replace")
        flags: set[str] = set()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and info["model"] in (
                "",
                platform.machine(),
                platform.processor(),
            ):
                info["model"] = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
        info["flags"] = [f for f in _INTERESTING_FLAGS if f in flags]
    info["logical_cores"] = os.cpu_count()
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["usable_cores"] = os.cpu_count()
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    info["governor"] = governor.read_text().strip() if governor.is_file() else None
    return info


def _gpus() -> list[dict[str, Any]]:
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
    except Exception:
        return _gpus_from_smi()
    gpus = []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                {
                    "index": index,
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "driver": _text(driver),
                    "cuda_driver": f"{cuda // 1000}.{(cuda % 1000) // 10}",
                    "memory_mb": pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20,
                    "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                    "throttle_reasons": int(pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle)),
                    "other_processes": len(pynvml.nvmlDeviceGetComputeRunningProcesses(handle)),
                }
            )
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


def _gpus_from_smi() -> list[dict[str, Any]]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [
                smi,
                "--query-gpu=index,name,driver_version,memory.total,clocks.sm",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            gpus.append(
                {
                    "index": int(parts[0]),
                    "name": parts[1],
                    "driver": parts[2],
                    "memory_mb": _int_or_none(parts[3]),
                    "sm_clock_mhz": _int_or_none(parts[4]),
                }
            )
    return gpus


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def fingerprint(*, include_providers: bool = True) -> dict[str, Any]:
    """Return the environment fingerprint as plain data.

    Args:
        include_providers: import onnxruntime to list its execution providers (default True).
    """
    cpu = _cpuinfo()
    env: dict[str, Any] = {
        "optieval": __version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu": cpu,
        "versions": {key: package_version(*names) for key, names in _PACKAGES.items()},
        "gpus": _gpus(),
    }
    try:
        env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        env["load_average"] = None
    if include_providers:
        try:
            import onnxruntime

            env["ort_providers"] = list(onnxruntime.get_available_providers())
        except ImportError:
            env["ort_providers"] = []
    return env


def validity_warnings(env: dict[str, Any]) -> list[str]:
    """Conditions that make timings doubtful: a busy machine, a power-saving governor, a
    throttled or shared GPU."""
    warnings = []
    cpu = env.get("cpu", {})
    cores = cpu.get("usable_cores") or cpu.get("logical_cores") or 1
    load = env.get("load_average")
    if load and load[0] > 0.75 * cores:
        warnings.append(
            f"load average {load[0]:.2f} on {cores} cores: other work shares the CPU, "
            "latencies may be inflated"
        )
    if cpu.get("governor") not in (None, "performance"):
        warnings.append(f"CPU frequency governor is {cpu['governor']!r}, not 'performance'")
    for gpu in env.get("gpus", []):
        reasons = gpu.get("throttle_reasons")
        # 0x1 is GPU idle, which is not throttling.
        if reasons and reasons & ~0x1:
            warnings.append(f"GPU {gpu['index']} reports clock throttling (reasons {reasons:#x})")
        if gpu.get("other_processes"):
            warnings.append(f"GPU {gpu['index']} runs {gpu['other_processes']} other process(es)")
    return warnings
