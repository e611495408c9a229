"""A stand-in for the ``tensorrt`` module with the documented API names (docs/facts.md), recording
the calls optieval makes. It lets the CPU tests check the build sequence (strongly typed
network, TF32 cleared, profile, timing cache, read-back) without TensorRT; it computes
nothing. The real path runs under the ``tensorrt`` marker."""

from __future__ import annotations

import json
import types
from typing import Any


class _Enum:
    def __init__(self, **members: int) -> None:
        for name, value in members.items():
            setattr(self, name, _Member(name, value))


class _Member:
    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return self.name


def make_fake(
    *,
    version: str = "10.13.0",
    parse_errors: list[dict[str, Any]] | None = None,
    layer_format: str = "Row major linear FP32 format",
    build_fails: bool = False,
    inspector_schema: str | None = None,
    deserialize_fails: bool = False,
    reject_timing_cache: bool = False,
    no_timing_cache: bool = False,
) -> Any:
    """Return a fake ``tensorrt`` module; ``fake.calls`` lists what was called.

    Personalities: ``inspector_schema`` ``"10"`` writes each tensor's ``Format/Datatype``
    (``layer_format``), ``"11"`` splits it into ``Format`` and ``Datatype`` as TensorRT 11
    does; by default the one of ``version``'s major. ``deserialize_fails``: the runtime returns
    None. ``reject_timing_cache``: ``set_timing_cache`` returns False for a non-empty cache.
    ``no_timing_cache``: ``get_timing_cache`` returns None."""
    schema = inspector_schema or ("11" if version.split(".")[0] == "11" else "10")
    trt: Any = types.ModuleType("tensorrt")
    trt.__version__ = version
    calls: list[tuple[Any, ...]] = []
    trt.calls = calls

    class ILogger:
        Severity = _Enum(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self) -> None:
            pass

    class Logger(ILogger):
        ERROR = ILogger.Severity.ERROR

        def __init__(self, severity: Any = None) -> None:
            pass

    trt.ILogger = ILogger
    trt.Logger = Logger
    trt.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=5)
    trt.BuilderFlag = _Enum(TF32=7, VERSION_COMPATIBLE=11)
    trt.ProfilingVerbosity = _Enum(LAYER_NAMES_ONLY=0, DETAILED=2)
    trt.HardwareCompatibilityLevel = _Enum(NONE=0, AMPERE_PLUS=1)
    trt.LayerInformationFormat = _Enum(ONELINE=0, JSON=1)
    trt.TensorIOMode = _Enum(NONE=0, INPUT=1, OUTPUT=2)
    trt.DataType = _Enum(FLOAT=0, HALF=1)

    class Network:
        pass

    class Profile:
        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            calls.append(("profile.set_shape", name, tuple(lo), tuple(opt), tuple(hi)))

    def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
        calls.append(("init_libnvinfer_plugins", namespace))
        return True

    trt.init_libnvinfer_plugins = init_libnvinfer_plugins

    class TimingCache:
        def __init__(self, data: bytes = b"") -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"timing-cache"

    class Config:
        def __init__(self) -> None:
            self.profiling_verbosity = None
            self.flags = {"TF32"}  # on by default, as in TensorRT
            self.hardware_compatibility_level = None

        def clear_flag(self, flag: Any) -> None:
            calls.append(("config.clear_flag", flag.name))
            self.flags.discard(flag.name)

        def set_flag(self, flag: Any) -> None:
            calls.append(("config.set_flag", flag.name))
            self.flags.add(flag.name)

        def add_optimization_profile(self, profile: Any) -> int:
            calls.append(("config.add_optimization_profile",))
            return 0

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("config.create_timing_cache", data))
            return TimingCache(data)

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            calls.append(("config.set_timing_cache", ignore_mismatch))
            return not (reject_timing_cache and cache.data)

        def get_timing_cache(self) -> TimingCache | None:
            return None if no_timing_cache else TimingCache()

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> Network:
            calls.append(("builder.create_network", flags))
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Any, config: Config) -> bytes | None:
            calls.append(
                ("builder.build_serialized_network", config.profiling_verbosity, set(config.flags))
            )
            if build_fails:
                self.logger.log(ILogger.Severity.ERROR, "out of tactics for node fc1")
                return None
            return b"PLAN:" + json.dumps(sorted(config.flags)).encode()

    class ParserError:
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

        def desc(self) -> str:
            return str(self.data["desc"])

        def node(self) -> int:
            return int(self.data.get("node", -1))

        def node_name(self) -> str:
            return str(self.data.get("node_name", ""))

        def node_operator(self) -> str:
            return str(self.data.get("node_operator", ""))

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            self.num_errors = len(parse_errors or [])

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parser.parse_from_file", path))
            return not parse_errors

        def get_error(self, i: int) -> ParserError:
            return ParserError((parse_errors or [])[i])

    class Context:
        def set_input_shape(self, name: str, shape: Any) -> bool:
            calls.append(("context.set_input_shape", name, tuple(shape)))
            return True

    class Inspector:
        execution_context = None

        def get_engine_information(self, fmt: Any) -> str:
            calls.append(("inspector.get_engine_information", fmt.name))
            tensor: dict[str, str] = {"Name": "t"}
            if schema == "10":
                tensor["Format/Datatype"] = layer_format
            else:
                lowered = layer_format.lower()
                tensor["Format"] = "Row major linear"
                tensor["Datatype"] = (
                    layer_format  # "N/A due to dynamic shapes" stays unreadable
                    if lowered.startswith("n/a")
                    else "Int8"
                    if "int8" in lowered
                    else "Half"
                    if "fp16" in lowered or "half" in lowered
                    else "Float"
                )
            layer = {"Name": "fc1", "LayerType": "CaskGemm", "Inputs": [tensor], "Outputs": []}
            return json.dumps({"Layers": [layer]})

    class Engine:
        num_io_tensors = 2
        _io = (
            ("x", (-1, 4), trt.TensorIOMode.INPUT),
            ("logits", (-1, 3), trt.TensorIOMode.OUTPUT),
        )

        def get_tensor_name(self, i: int) -> str:
            return self._io[i][0]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return dict((n, s) for n, s, _ in self._io)[name]

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.FLOAT

        def get_tensor_mode(self, name: str) -> Any:
            return dict((n, m) for n, _, m in self._io)[name]

        def create_execution_context(self) -> Context:
            return Context()

        def create_engine_inspector(self) -> Inspector:
            return Inspector()

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan: bytes) -> Engine | None:
            calls.append(("runtime.deserialize_cuda_engine", self.engine_host_code_allowed))
            return None if deserialize_fails else Engine()

    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    trt.Runtime = Runtime
    return trt
