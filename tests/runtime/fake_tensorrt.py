"""A strict stand-in for the ``tensorrt`` Python module, in two personalities: TensorRT 10.x
(10.13) and 11.x (11.1). It lets the CPU tests run optieval's build and run paths without
TensorRT and refuses what TensorRT refuses.

Every behaviour is written from a source, named beside it:
- [H10] / [H11]: NVIDIA/TensorRT ``include/NvInfer*.h`` at the 10.13.3 (94e2b9ef) and 11.1
  (82d1dca8) OSS releases: enum values, what each call returns and when it fails.
- [PY]: the Python bindings, ``python/src/infer/pyCore.cpp`` (11.1): ``execute_async_v3`` takes
  the stream as an int, ``set_tensor_address`` returns bool, a Python output allocator's
  exception is printed and becomes a null pointer, ``reallocate_output_async`` falls back to
  ``reallocate_output`` when not overridden.
- [POLY]: Polygraphy ``tools/Polygraphy/polygraphy/backend/trt/runner.py`` (checks the results
  of ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``).
- [TRTEXEC]: ``samples/common/sampleInference.cpp``: run the enqueue once before capturing a CUDA
  graph ("Avoid capturing initialization calls"); under capture ``enqueueV3`` may return false.
- [MIG]: the TensorRT 10.x to 11.x migration notes (docs/facts.md): 11.0 removed the weak-typing
  precision flags; STRONGLY_TYPED is deprecated and ignored; the inspector JSON splits
  ``Format/Datatype`` into ``Format`` and ``Datatype``.

The engine "computes" by running the parsed ONNX file with onnxruntime on the CPU, reading its
inputs from and writing its outputs to the addresses it was given (tests/runtime/fake_cuda.py),
so a wrong or stale address gives wrong numbers or a failed enqueue, as on a GPU.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .fake_cuda import ALIGNMENT, MEMORY, STREAMS

VERSION_10 = "10.13.0"
VERSION_11 = "11.1.0"
PERSONALITIES = [VERSION_10, VERSION_11]


class _Member:
    """A pybind11 enum member: ``.name``, ``int()``, compared by value within its enum."""

    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    __index__ = __int__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Member) and other.enum == self.enum and other.value == self.value

    def __hash__(self) -> int:
        return hash((self.enum, self.value))

    def __repr__(self) -> str:
        return f"<{self.enum}.{self.name}: {self.value}>"


def _enum(name: str, **members: int) -> Any:
    enum = types.SimpleNamespace()
    for key, value in members.items():
        setattr(enum, key, _Member(name, key, value))
    return enum


def _enums(major: int) -> dict[str, Any]:
    """The enums optieval touches, with the values of [H10] / [H11]."""
    data_type = dict(  # NvInferRuntimeBase.h, enum class DataType: same in 10.13 and 11.1
        FLOAT=0, HALF=1, INT8=2, INT32=3, BOOL=4, UINT8=5, FP8=6, BF16=7, INT64=8, INT4=9, FP4=10
    )
    if major >= 11:
        # NvInfer.h 11.1: kSTRONGLY_TYPED = 0 (deprecated, ignored); kEXPLICIT_BATCH gone [MIG]
        network_flags = dict(STRONGLY_TYPED=0, PREFER_JIT_PYTHON_PLUGINS=1)
        # NvInfer.h 11.1, enum class BuilderFlag: FP16/INT8/BF16/FP8 and the precision
        # constraints removed [MIG], later values renumbered
        builder_flags = dict(
            DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6, SPARSE_WEIGHTS=7,
            VERSION_COMPATIBLE=12, EXCLUDE_LEAN_RUNTIME=13, ERROR_ON_TIMING_CACHE_MISS=15,
        )  # fmt: skip
    else:
        # NvInfer.h 10.13: kEXPLICIT_BATCH = 0 (deprecated), kSTRONGLY_TYPED = 1
        network_flags = dict(EXPLICIT_BATCH=0, STRONGLY_TYPED=1, PREFER_JIT_PYTHON_PLUGINS=2)
        builder_flags = dict(
            FP16=0, INT8=1, DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6,
            SPARSE_WEIGHTS=7, SAFETY_SCOPE=8, OBEY_PRECISION_CONSTRAINTS=9,
            PREFER_PRECISION_CONSTRAINTS=10, DIRECT_IO=11, REJECT_EMPTY_ALGORITHMS=12,
            VERSION_COMPATIBLE=13, EXCLUDE_LEAN_RUNTIME=14, FP8=15, BF16=17,
        )  # fmt: skip
    return {
        "DataType": _enum("DataType", **data_type),
        "NetworkDefinitionCreationFlag": _enum("NetworkDefinitionCreationFlag", **network_flags),
        "BuilderFlag": _enum("BuilderFlag", **builder_flags),
        # NvInfer.h: enum class ProfilingVerbosity / LayerInformationFormat /
        # HardwareCompatibilityLevel; NvInferRuntime.h: enum class TensorIOMode
        "ProfilingVerbosity": _enum("ProfilingVerbosity", LAYER_NAMES_ONLY=0, NONE=1, DETAILED=2),
        "LayerInformationFormat": _enum("LayerInformationFormat", ONELINE=0, JSON=1),
        "HardwareCompatibilityLevel": _enum(
            "HardwareCompatibilityLevel", NONE=0, AMPERE_PLUS=1, SAME_COMPUTE_CAPABILITY=2
        ),
        "TensorIOMode": _enum("TensorIOMode", NONE=0, INPUT=1, OUTPUT=2),
    }


# ONNX element types to DataType names (the parser keeps I/O types in a strongly typed network).
_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 16: "BF16", 3: "INT8", 2: "UINT8", 6: "INT32", 7: "INT64"}
_TRT_TO_NUMPY = {"FLOAT": "float32", "HALF": "float16", "BF16": "float32", "INT8": "int8",
                 "UINT8": "uint8", "INT32": "int32", "INT64": "int64", "BOOL": "bool"}  # fmt: skip
_LAYER_TYPES = {"Gemm": "CaskGemm", "MatMul": "CaskGemm", "Conv": "CaskConvolution", "Cast": "Cast"}


def _onnx_io(path: str) -> list[tuple[str, tuple[Any, ...], str, bool]]:
    """(name, dims with symbols as strings, DataType name, is_input) of an ONNX file."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    io = []
    for values, is_input in ((graph.input, True), (graph.output, False)):
        for v in values:
            if v.name in initializers:
                continue
            t = v.type.tensor_type
            dims = tuple(d.dim_param or d.dim_value or "?" for d in t.shape.dim)
            io.append((v.name, dims, _ONNX_TO_TRT[t.elem_type], is_input))
    return io


def make_fake(
    *,
    version: str = VERSION_10,
    parse_errors: list[dict[str, Any]] | None = None,
    layer_format: str = "Row major linear FP32 format",
    layer_formats: dict[str, str] | None = None,
    build_fails: bool = False,
    inspector_schema: str | None = None,
    deserialize_fails: bool = False,
    reject_timing_cache: bool = False,
    no_timing_cache: bool = False,
    refuse_shapes: bool = False,
    capture_fails: bool = False,
) -> Any:
    """Return a fake ``tensorrt`` module; ``fake.calls`` lists what was called.

    ``version``'s major picks the personality (enums, inspector schema); ``inspector_schema``
    (``"10"`` / ``"11"``) overrides the schema alone. ``layer_format`` is every compute layer's
    inspector format, ``layer_formats`` per ONNX node name. Failure switches: ``build_fails``,
    ``deserialize_fails`` (the runtime returns None), ``reject_timing_cache``
    (``set_timing_cache`` returns False for a non-empty cache), ``no_timing_cache``
    (``get_timing_cache`` returns None), ``refuse_shapes`` (``set_input_shape`` returns False),
    ``capture_fails`` (``execute_async_v3`` returns False under CUDA-graph capture)."""
    major = int(version.split(".")[0])
    schema = inspector_schema or ("11" if major >= 11 else "10")
    trt: Any = types.ModuleType("tensorrt")
    trt.__version__ = version
    calls: list[tuple[Any, ...]] = []
    trt.calls = calls
    for name, enum in _enums(major).items():
        setattr(trt, name, enum)

    class ILogger:
        # NvInferRuntimeBase.h, ILogger::Severity
        Severity = _enum("Severity", INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self) -> None:
            pass

    class Logger(ILogger):
        ERROR = ILogger.Severity.ERROR

        def __init__(self, severity: Any = None) -> None:
            pass

        def log(self, severity: Any, msg: str) -> None:
            pass

    trt.ILogger = ILogger
    trt.Logger = Logger

    def _error(logger: Any, msg: str) -> None:
        calls.append(("log.error", msg))
        logger.log(ILogger.Severity.ERROR, msg)

    def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
        calls.append(("init_libnvinfer_plugins", namespace))
        return True

    trt.init_libnvinfer_plugins = init_libnvinfer_plugins

    class IOutputAllocator:
        """[H11] IOutputAllocator; [PY] PyOutputAllocator."""

        def __init__(self) -> None:
            pass

    trt.IOutputAllocator = IOutputAllocator

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.onnx_path: str | None = None

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            calls.append(("profile.set_shape", name, tuple(lo), tuple(opt), tuple(hi)))
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class TimingCache:
        def __init__(self, data: bytes = b"") -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"timing-cache"

    class Config:
        def __init__(self) -> None:
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY  # [H11] default
            self.flags = {"TF32"}  # TF32 is on by default (docs/facts.md)
            self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE
            self.profiles: list[Profile] = []

        def clear_flag(self, flag: Any) -> None:
            assert flag.enum == "BuilderFlag", flag
            calls.append(("config.clear_flag", flag.name))
            self.flags.discard(flag.name)

        def set_flag(self, flag: Any) -> None:
            assert flag.enum == "BuilderFlag", flag
            calls.append(("config.set_flag", flag.name))
            self.flags.add(flag.name)

        def add_optimization_profile(self, profile: Profile) -> int:
            calls.append(("config.add_optimization_profile",))
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("config.create_timing_cache", data))
            return TimingCache(data)

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            # [H11] IBuilderConfig::setTimingCache: false when the cache does not match the
            # device/version and ignoreMismatch is false
            calls.append(("config.set_timing_cache", ignore_mismatch))
            return not (reject_timing_cache and cache.data)

        def get_timing_cache(self) -> TimingCache | None:
            # [H11] IBuilderConfig::getTimingCache may return nullptr (None in Python)
            return None if no_timing_cache else TimingCache()

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> Network:
            calls.append(("builder.create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            calls.append(
                ("builder.build_serialized_network", config.profiling_verbosity, set(config.flags))
            )
            if build_fails:
                _error(self.logger, "out of tactics for node fc1")
                return None  # [H11] buildSerializedNetwork returns nullptr on failure
            plan = {
                "onnx": network.onnx_path,
                "flags": sorted(config.flags),
                "verbosity": int(config.profiling_verbosity),
                "profiles": {
                    k: [list(s) for s in v] for p in config.profiles for k, v in p.shapes.items()
                },
            }
            return b"PLAN:" + json.dumps(plan).encode()

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
        def __init__(self, network: Network, logger: Any) -> None:
            self.network = network
            self.num_errors = len(parse_errors or [])

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parser.parse_from_file", path))
            self.network.onnx_path = path
            return not parse_errors

        def get_error(self, i: int) -> ParserError:
            return ParserError((parse_errors or [])[i])

    class Engine:
        def __init__(self, plan: dict[str, Any], logger: Any) -> None:
            self.plan = plan
            self.logger = logger
            self.io = _onnx_io(plan["onnx"]) if plan.get("onnx") else []
            self.num_io_tensors = len(self.io)

        def _spec(self, name: str) -> tuple[str, tuple[Any, ...], str, bool]:
            return next(t for t in self.io if t[0] == name)

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(d if isinstance(d, int) else -1 for d in self._spec(name)[1])

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(trt.DataType, self._spec(name)[2])

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if self._spec(name)[3] else trt.TensorIOMode.OUTPUT

        def create_execution_context(self) -> Context:
            return Context(self)

        def create_engine_inspector(self) -> Inspector:
            return Inspector(self)

    class Context:
        """IExecutionContext ([H11] setInputShape / setTensorAddress / enqueueV3)."""

        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.allocators: dict[str, Any] = {}
            self.executed_since_shape_change = False
            self.session: Any = None

        def set_input_shape(self, name: str, shape: Any) -> bool:
            # [H11] false if the name is not an input or another error occurred: each dim
            # must agree with the network's unless that is -1; outside the profile fails
            shape = tuple(int(d) for d in shape)
            calls.append(("context.set_input_shape", name, shape))
            spec = self.engine._spec(name) if name in [t[0] for t in self.engine.io] else None
            network = self.engine.get_tensor_shape(name) if spec else ()
            profile = self.engine.plan.get("profiles", {}).get(name)
            ok = (
                not refuse_shapes
                and spec is not None
                and spec[3]
                and len(shape) == len(network)
                and all(n in (-1, s) for n, s in zip(network, shape, strict=True))
                and (
                    profile is None
                    or all(
                        lo <= s <= hi
                        for lo, s, hi in zip(profile[0], shape, profile[2], strict=True)
                    )
                )
            )
            if not ok:
                _error(self.engine.logger, f"setInputShape: {name} {shape} not allowed")
                return False
            self.shapes[name] = shape
            self.executed_since_shape_change = False
            return True

        def _symbols(self) -> dict[str, int]:
            bound: dict[str, int] = {}
            for name, dims, _, is_input in self.engine.io:
                if is_input and name in self.shapes:
                    for d, s in zip(dims, self.shapes[name], strict=True):
                        if isinstance(d, str):
                            bound[d] = s
            return bound

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            # [H11] getTensorShape: -1 where unknown (data-dependent outputs, unset inputs)
            _, dims, _, is_input = self.engine._spec(name)
            if is_input:
                return self.shapes.get(name, self.engine.get_tensor_shape(name))
            bound = self._symbols()
            return tuple(
                d if isinstance(d, int) else bound.get(d, -1) if d != "?" else -1 for d in dims
            )

        def set_tensor_address(self, name: str, memory: int) -> bool:
            # [PY] returns bool; [H11] at least 256-byte alignment
            calls.append(("context.set_tensor_address", name))
            if int(memory) % ALIGNMENT:
                _error(self.engine.logger, f"setTensorAddress: {name} misaligned")
                return False
            self.addresses[name] = int(memory)
            return True

        def set_output_allocator(self, name: str, allocator: Any) -> bool:
            calls.append(("context.set_output_allocator", name))
            self.allocators[name] = allocator
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            """[PY] the stream as an int; [H11] enqueueV3 returns false on failure."""
            calls.append(("context.execute_async_v3", stream_handle))
            stream = STREAMS.get(int(stream_handle))
            if stream is not None and stream.recording is not None:
                # [TRTEXEC] the enqueue may fail under capture; run once before capturing
                if capture_fails or not self.executed_since_shape_change or self.allocators:
                    _error(self.engine.logger, "enqueueV3: operation not permitted in capture")
                    return False
                launch = self._launch(int(stream_handle))
                stream.recording.append(launch)  # the addresses are baked in now
                return True
            ok = self._launch(int(stream_handle))()
            self.executed_since_shape_change = self.executed_since_shape_change or ok
            return ok

        def _launch(self, stream_handle: int) -> Callable[[], bool]:
            addresses = dict(self.addresses)
            shapes = dict(self.shapes)
            return lambda: self._run(addresses, shapes, stream_handle)

        def _run(
            self, addresses: dict[str, int], shapes: dict[str, tuple[int, ...]], stream: int
        ) -> bool:
            log = self.engine.logger
            feeds = {}
            for name, _, dtype, is_input in self.engine.io:
                if not is_input:
                    continue
                if name not in shapes or name not in addresses:
                    _error(log, f"enqueueV3: input {name} has no shape or address")
                    return False
                nbytes = int(np.prod(shapes[name])) * np.dtype(_TRT_TO_NUMPY[dtype]).itemsize
                buffer = MEMORY.resolve(addresses[name], nbytes)
                if buffer is None:
                    _error(log, f"enqueueV3: illegal address for {name}")
                    return False
                feeds[name] = buffer.bytes[:nbytes].view(_TRT_TO_NUMPY[dtype]).reshape(shapes[name])
            results = self._compute(feeds)
            for name, _, dtype, is_input in self.engine.io:
                if is_input:
                    continue
                value = np.ascontiguousarray(results[name], dtype=_TRT_TO_NUMPY[dtype])
                address = addresses.get(name)
                allocator = self.allocators.get(name)
                if allocator is not None:
                    address = self._reallocate(allocator, name, address or 0, value, stream)
                    if address is None:
                        return False
                buffer = MEMORY.resolve(address or 0, value.nbytes)
                if buffer is None:
                    _error(log, f"enqueueV3: illegal address for output {name}")
                    return False
                buffer.bytes[: value.nbytes] = value.view(np.uint8).reshape(-1)
                if allocator is not None:
                    allocator.notify_shape(name, value.shape)  # [H11] before enqueueV3 returns
            return True

        def _reallocate(
            self, allocator: Any, name: str, current: int, value: np.ndarray, stream: int
        ) -> int | None:
            size = max(1, value.nbytes)  # [H11] "Always positive, even for an empty tensor"
            try:
                if hasattr(allocator, "reallocate_output_async"):
                    pointer = allocator.reallocate_output_async(
                        name, current, size, ALIGNMENT, stream
                    )
                else:  # [PY] falls back to the deprecated reallocate_output
                    pointer = allocator.reallocate_output(name, current, size, ALIGNMENT)
            except Exception as exc:  # [PY] printed to stderr, becomes nullptr
                _error(self.engine.logger, f"Exception caught in reallocateOutputAsync(): {exc}")
                return None
            if not pointer:
                _error(self.engine.logger, f"enqueueV3: no memory for output {name}")
                return None
            return int(pointer)

        def _compute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            import onnxruntime

            if self.session is None:
                self.session = onnxruntime.InferenceSession(
                    self.engine.plan["onnx"], providers=["CPUExecutionProvider"]
                )
            names = [o.name for o in self.session.get_outputs()]
            return dict(zip(names, self.session.run(names, feeds), strict=True))

    class Inspector:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.execution_context: Any = None

        def get_engine_information(self, fmt: Any) -> str:
            calls.append(("inspector.get_engine_information", fmt.name))
            layers = []
            nodes = _onnx_nodes(self.engine.plan.get("onnx")) or [("fc1", "Gemm")]
            for node_name, op in nodes:
                text = (layer_formats or {}).get(node_name, layer_format)
                layers.append(
                    {
                        "Name": node_name,
                        "LayerType": _LAYER_TYPES.get(op, "PointWiseV2"),
                        "Inputs": [_tensor(text)],
                        "Outputs": [],
                    }
                )
            return json.dumps({"Layers": layers})

    def _tensor(text: str) -> dict[str, str]:
        tensor: dict[str, str] = {"Name": "t"}
        if schema == "10":
            tensor["Format/Datatype"] = text
            return tensor
        lowered = text.lower()
        tensor["Format"] = "Row major linear"  # [MIG] split keys in 11
        tensor["Datatype"] = (
            text  # "N/A due to dynamic shapes" stays unreadable
            if lowered.startswith("n/a")
            else "Int8"
            if "int8" in lowered
            else "Half"
            if "fp16" in lowered or "half" in lowered
            else "Float"
        )
        return tensor

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan: bytes) -> Engine | None:
            # [H11] deserializeCudaEngine returns nullptr (None) on failure
            calls.append(("runtime.deserialize_cuda_engine", self.engine_host_code_allowed))
            raw = bytes(plan)
            if deserialize_fails or not raw.startswith(b"PLAN:"):
                _error(self.logger, "Serialization assertion failed: magic tag mismatch")
                return None
            return Engine(json.loads(raw[5:]), self.logger)

    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    trt.Runtime = Runtime
    return trt


def _onnx_nodes(path: str | None) -> list[tuple[str, str]]:
    if not path:
        return []
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return [(n.name or f"{n.op_type}_{i}", n.op_type) for i, n in enumerate(graph.node)]
