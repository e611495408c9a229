"""The one life cycle every backend follows: load, describe I/O, infer, close.

A concrete backend subclasses :class:`Backend` and overrides only the private steps
(``_load``, ``_infer``, ``_close``); the base class checks state and feeds, times the cold
start, and makes every backend a context manager.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from optieval.core import ONNX_PRECISIONS, Signature, TensorSpec
from optieval.errors import InputError, OptievalError

IO_MODES = ("device", "host")
"""Where a GPU backend's timed call keeps inputs and outputs: resident on the device, or copied
from and to the host in every call."""


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run on this machine and, if not, the concrete reason."""

    usable: bool
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of every backend (``ort-cpu``, ``ort-cuda``, ``torch-cpu``, ...).

    Subclasses set :attr:`name`, implement :meth:`availability`, ``_load``, ``_infer`` and
    optionally ``_close``. Use as a context manager::

        with OrtCpuBackend("model.onnx", threads=2) as backend:
            outputs = backend.infer({"x": array})
    """

    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ONNX_PRECISIONS

    def __init__(self) -> None:
        self._signature: Signature | None = None
        self.cold_start_ms: float | None = None
        self.options: dict[str, Any] = {}

    # -- what subclasses provide -------------------------------------------------------------
    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Say whether this backend can run here, and why not."""

    @abstractmethod
    def _load(self) -> Signature:
        """Load or build the model; return its I/O signature."""

    @abstractmethod
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference on checked feeds."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (optional)."""

    # -- the life cycle ------------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        """True between :meth:`load` and :meth:`close`."""
        return self._signature is not None

    def load(self) -> Backend:
        """Load the model (once); the time it takes is recorded as ``cold_start_ms``."""
        if self._signature is None:
            start = time.perf_counter_ns()
            self._signature = self._load()
            self.cold_start_ms = (time.perf_counter_ns() - start) / 1e6
        return self

    @property
    def signature(self) -> Signature:
        """The loaded model's inputs and outputs."""
        if self._signature is None:
            raise OptievalError(f"backend {self.name} is not loaded", hint="call load() first")
        return self._signature

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`InputError` naming the input when feeds do not fit the signature."""
        expected = {s.name: s for s in self.signature.inputs}
        missing = sorted(set(expected) - set(feeds))
        extra = sorted(set(feeds) - set(expected))
        if missing or extra:
            raise InputError(
                f"feeds do not match the model's inputs (missing {missing or 'none'}, "
                f"unexpected {extra or 'none'})",
                where=self.name,
                hint=f"the model expects {self.signature.describe()}",
            )
        for name, array in feeds.items():
            _check_one(expected[name], array, self.signature)

    def infer(
        self, feeds: Mapping[str, np.ndarray], *, check: bool = True
    ) -> dict[str, np.ndarray]:
        """Run one inference. ``check=False`` skips the feed check (for timed loops whose feeds
        were checked once)."""
        if check:
            self.check_feeds(feeds)
        return self._infer(feeds)

    def runner(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """Return a zero-argument callable that runs one inference on ``feeds`` (checked here,
        once) with as little Python around the backend's call as possible: the timed loop calls
        it, so its overhead is the harness's overhead. Backends override it to bind their
        native call directly."""
        self.check_feeds(feeds)
        bound = dict(feeds)
        return lambda: self._infer(bound)

    def close(self) -> None:
        """Release the model; the backend can be loaded again."""
        if self._signature is not None:
            self._close()
            self._signature = None

    def __enter__(self) -> Backend:
        return self.load()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_one(spec: TensorSpec, array: np.ndarray, signature: Signature) -> None:
    if str(array.dtype) != spec.dtype:
        raise InputError(
            f"input {spec.name!r} has dtype {array.dtype}, the model expects {spec.dtype}",
            where=spec.name,
            hint=f"the model expects {signature.describe()}",
        )
    if len(array.shape) != len(spec.shape) or any(
        isinstance(d, int) and d != a for d, a in zip(spec.shape, array.shape, strict=True)
    ):
        raise InputError(
            f"input {spec.name!r} has shape {'x'.join(map(str, array.shape))}, "
            f"the model expects {spec.shape_text()}",
            where=spec.name,
            hint=f"the model expects {signature.describe()}",
        )
