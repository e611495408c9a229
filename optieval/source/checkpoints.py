"""Checkpoints: a state dict read without unpickling code (``torch.load(weights_only=True)``,
``.safetensors`` through the safetensors package) and loaded strictly into a module, every
mismatching key listed."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optieval.errors import InputError
from optieval.source.text import describe_exception

__all__ = ["apply_checkpoint", "load_checkpoint"]

_MAX_LISTED = 8


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a state dict: safetensors for ``.safetensors``, ``torch.load(weights_only=True)``
    otherwise. A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped.

    Raises:
        InputError: the file is missing or unreadable, holds pickled code (refused, with the
            reason), or is not a mapping of names to tensors.
    """
    import torch

    where = str(path)
    if not path.is_file():
        raise InputError("checkpoint not found", where=where, hint="check the `checkpoint` path")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise InputError(
                "reading .safetensors needs the safetensors package",
                where=where,
                hint="pip install safetensors",
            ) from None
        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as exc:
            raise InputError(
                f"not a readable safetensors file ({describe_exception(exc)})", where=where
            ) from exc
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            found = re.search(
                r"(Unsupported global: GLOBAL [\w.]+|Unsupported operand \d+)", str(exc)
            )
            detail = f" ({found.group(1)})" if found else ""
            raise InputError(
                f"checkpoint holds pickled Python objects{detail}; optieval refuses it because "
                "unpickling can run arbitrary code (it loads with torch.load(weights_only=True))",
                where=where,
                hint="save model.state_dict() instead of the model, or convert it to safetensors",
            ) from exc
        except Exception as exc:
            raise InputError(
                f"not a readable PyTorch checkpoint ({describe_exception(exc)})", where=where
            ) from exc
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = state.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                state = inner
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InputError(
            "checkpoint is not a state dict (names to tensors)",
            where=where,
            hint="save it with torch.save(model.state_dict(), path)",
        )
    return dict(state)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (
        f", ... and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    )


def apply_checkpoint(module: Any, state: Mapping[str, Any], where: str) -> None:
    """Load ``state`` into ``module`` strictly; InputError listing every missing, unexpected and
    wrongly shaped key otherwise (with a hint when a prefix such as ``module.`` explains them)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing ({len(missing)}): {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected ({len(unexpected)}): {_listed(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch ({len(shapes)}): {_listed(shapes)}")
        hint = "is this checkpoint for this model?"
        if unexpected and missing:
            prefix = unexpected[0].split(".", 1)[0] + "."
            if all(k.startswith(prefix) and k[len(prefix) :] in expected for k in unexpected):
                hint = f"the checkpoint's keys carry a {prefix!r} prefix; strip it when saving"
        raise InputError(
            "checkpoint keys do not match the model: " + "; ".join(parts), where=where, hint=hint
        )
    module.load_state_dict(state, strict=True)
