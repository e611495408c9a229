"""Optimization-profile shapes (min/opt/max per input) for the TensorRT paths.

Pure functions, no TensorRT or onnxruntime import: the native ``tensorrt`` backend, the
``ort-trt`` provider options and ``optieval build --profile`` all compute their shapes here, and
the CPU tests check them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optieval.core import Signature, TensorSpec, parse_dims
from optieval.errors import InputError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ProfileShape:
    """The min/opt/max shapes of one input in an optimization profile."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    def contains(self, shape: Sequence[int]) -> bool:
        """True when ``shape`` has the profile's rank and lies within min..max in every dim."""
        return len(shape) == len(self.min) and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=False)
        )

    def range_text(self) -> str:
        """``1x4 .. 32x4 (opt 8x4)``."""
        return f"{_fmt(self.min)} .. {_fmt(self.max)} (opt {_fmt(self.opt)})"

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for manifests."""
        return {
            "name": self.name,
            "min": list(self.min),
            "opt": list(self.opt),
            "max": list(self.max),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileShape:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["name"]), tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def parse_shape(text: str, *, where: str) -> Shape:
    """Parse ``1x3x224x224`` into a tuple of positive ints (InputError naming ``where``); the
    one parser of shapes is :func:`optieval.core.parse_dims`."""
    return parse_dims(text, where=where)


def parse_profile_option(text: str, *, where: str = "profiles") -> ProfileShape:
    """Parse ``NAME:MIN:OPT:MAX`` (each a shape like ``1x4``) into a :class:`ProfileShape`,
    checking rank agreement and min <= opt <= max."""
    parts = text.split(":")
    if len(parts) != 4 or not parts[0]:
        raise InputError(
            f"{text!r} is not NAME:MIN:OPT:MAX", where=where, hint="e.g. `profiles` x:1x4:8x4:32x4"
        )
    name = parts[0]
    shapes = [parse_shape(p, where=f"{where} {name}") for p in parts[1:]]
    return _ordered(ProfileShape(name, shapes[0], shapes[1], shapes[2]), where=where)


def _ordered(profile: ProfileShape, *, where: str) -> ProfileShape:
    if not len(profile.min) == len(profile.opt) == len(profile.max):
        raise InputError(
            f"profile of {profile.name!r} mixes ranks ({profile.range_text()})", where=where
        )
    if not all(a <= b <= c for a, b, c in zip(profile.min, profile.opt, profile.max, strict=True)):
        raise InputError(
            f"profile of {profile.name!r} is not min <= opt <= max ({profile.range_text()})",
            where=where,
        )
    return profile


def _fits_spec(spec: TensorSpec, shape: Sequence[int]) -> bool:
    return len(shape) == len(spec.shape) and all(
        not isinstance(d, int) or d == s for d, s in zip(spec.shape, shape, strict=False)
    )


def compute_profiles(
    signature: Signature,
    *,
    shapes: Mapping[str, Iterable[Sequence[int]]] | None = None,
    explicit: Iterable[ProfileShape] = (),
) -> list[ProfileShape]:
    """Compute one optimization profile (min/opt/max per input) for ``signature``.

    Args:
        signature: the model's inputs (dims may be symbolic).
        shapes: for each input, the shapes that will be run (e.g. one per requested batch size,
            or a single shape);
            min and max are their element-wise minimum and maximum, opt is the largest requested
            shape (the throughput target). Inputs with only fixed dims need none.
        explicit: profiles given by the user (``--profile``); they win over ``shapes``.

    Returns:
        One :class:`ProfileShape` per model input, in signature order.

    Raises:
        InputError: naming every input that is unknown, has a dynamic dim but no shape, or whose
            shape disagrees with the model's fixed dims or rank (all collected, raised once).
    """
    given = {p.name: p for p in explicit}
    requested = {k: _shape_list(v) for k, v in (shapes or {}).items()}
    known = {s.name for s in signature.inputs}
    problems = [f"no input {n!r}" for n in sorted((set(given) | set(requested)) - known)]
    result: list[ProfileShape] = []
    for spec in signature.inputs:
        if spec.name in given:
            profile = given[spec.name]
            bad = [s for s in (profile.min, profile.opt, profile.max) if not _fits_spec(spec, s)]
            if bad:
                problems.append(
                    f"{spec.name!r} profile {profile.range_text()} does not fit "
                    f"{spec.dtype}[{spec.shape_text()}]"
                )
                continue
            result.append(profile)
            continue
        candidates = requested.get(spec.name, [])
        if not candidates:
            if spec.is_dynamic:
                problems.append(
                    f"{spec.name!r} has dynamic dims [{spec.shape_text()}] and no shape"
                )
                continue
            fixed = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
            result.append(ProfileShape(spec.name, fixed, fixed, fixed))
            continue
        misfits = [s for s in candidates if not _fits_spec(spec, s)]
        if misfits:
            problems.append(
                f"{spec.name!r} shape {_fmt(misfits[0])} does not fit "
                f"{spec.dtype}[{spec.shape_text()}]"
            )
            continue
        low = tuple(min(dims) for dims in zip(*candidates, strict=True))
        high = tuple(max(dims) for dims in zip(*candidates, strict=True))
        opt = max(candidates, key=lambda s: (_volume(s), s))
        result.append(ProfileShape(spec.name, low, opt, high))
    if problems:
        raise InputError(
            "cannot build an optimization profile: " + "; ".join(problems),
            where="profiles",
            hint=f"the model expects {signature.describe()}; give `shapes` or "
            "`profiles` NAME:MIN:OPT:MAX for each dynamic input",
        )
    return result


def _shape_list(value: Iterable[Any]) -> list[Shape]:
    """One shape (``(8, 4)``) or several (``[(1, 4), (8, 4)]``) as a list of shapes."""
    items = list(value)
    if items and all(isinstance(d, int) for d in items):
        return [tuple(items)]
    return [tuple(int(d) for d in s) for s in items]


def _volume(shape: Sequence[int]) -> int:
    volume = 1
    for d in shape:
        volume *= d
    return volume


def check_in_profiles(
    feeds_shapes: Mapping[str, Sequence[int]], profiles: Iterable[ProfileShape], *, where: str
) -> None:
    """Raise InputError naming each input whose shape lies outside its profile's range."""
    problems = [
        f"input {p.name!r} shape {_fmt(tuple(feeds_shapes[p.name]))} is outside the engine's "
        f"profile {p.range_text()}"
        for p in profiles
        if p.name in feeds_shapes and not p.contains(tuple(feeds_shapes[p.name]))
    ]
    if problems:
        raise InputError(
            "; ".join(problems),
            where=where,
            hint="rebuild the engine with `profiles` that cover this shape",
        )


def ort_trt_shape_options(profiles: Iterable[ProfileShape]) -> dict[str, str]:
    """ORT TensorRT-EP options ``trt_profile_min/opt/max_shapes`` (``x:1x4,y:1x3``)."""
    profiles = list(profiles)
    if not profiles:
        return {}
    return {
        f"trt_profile_{kind}_shapes": ",".join(
            f"{p.name}:{_fmt(getattr(p, kind))}" for p in profiles
        )
        for kind in ("min", "opt", "max")
    }
