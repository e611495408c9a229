"""Model specs: turning ``SPEC`` (and ``checkpoint``) into a PyTorch module in eval mode.

Specs::

    package.module:factory      import the module (base_dir first on sys.path), call factory()
    path/to/file.py:factory     load the file (relative to base_dir), call factory()
    model.pt / model.ts         a TorchScript archive (torch.jit.load)
    model.pt2                   a saved ExportedProgram (torch.export.load)

``factory`` may be a dotted attribute (``Net.build``), a class, or a module instance. It returns
an ``nn.Module``, or a ``(module, example_inputs)`` pair where the examples are a tensor, a
tuple/list of tensors (positional) or a dict of tensors (by name).

Checkpoints are loaded with ``torch.load(weights_only=True)`` (``.safetensors`` through the
safetensors package): optieval never unpickles code from a checkpoint.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optieval.core import sha256_file
from optieval.errors import InputError
from optieval.source.checkpoints import apply_checkpoint, load_checkpoint
from optieval.source.text import describe_exception

__all__ = [
    "LoadedModel",
    "flatten_outputs",
    "load_model",
    "load_model_from_manifest",
]

SPEC_FORMATS = (
    "package.module:factory, path/to/file.py:factory, model.pt/.ts (TorchScript) or model.pt2"
)
_TORCHSCRIPT_SUFFIXES = (".pt", ".ts")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A PyTorch model resolved from a spec, in eval mode.

    Attributes:
        module: the ``nn.Module`` (or ScriptModule, or an ExportedProgram's module) to run.
        spec: the spec string as given.
        kind: ``module-factory``, ``file-factory``, ``torchscript`` or ``exported-program``.
        base_dir: the folder the spec was resolved from (absolute).
        checkpoint: the checkpoint loaded into the module (absolute), if any.
        checkpoint_sha256: its hash.
        spec_file_sha256: hash of the spec's file (``.py``, ``.pt``, ``.pt2``), if any.
        example_inputs: ``{name: tensor}`` from the factory (or the ExportedProgram), or None.
        forward_params: names of ``forward``'s parameters in order (None when unknown or
            ``*args``); examples named after them are passed by name.
        exported_program: the ``torch.export.ExportedProgram`` for ``.pt2`` specs.
        warnings: what was changed or assumed (e.g. switched to eval mode).
    """

    module: Any
    spec: str
    kind: str
    base_dir: Path
    checkpoint: Path | None = None
    checkpoint_sha256: str | None = None
    spec_file_sha256: str | None = None
    example_inputs: dict[str, Any] | None = None
    forward_params: tuple[str, ...] | None = None
    exported_program: Any = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_torchscript(self) -> bool:
        """True for TorchScript modules (only the TorchScript exporter reads them)."""
        return self.kind == "torchscript"

    def call_by_name(self, names: list[str] | tuple[str, ...]) -> bool:
        """Whether inputs called ``names`` are passed to forward as keywords (else in order)."""
        if self.kind == "exported-program":  # its module takes positional inputs only
            return False
        return self.forward_params is not None and all(n in self.forward_params for n in names)

    def order_inputs(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``feeds`` in forward's parameter order (unknown names keep their order)."""
        if self.forward_params is None:
            return dict(feeds)
        rank = {n: i for i, n in enumerate(self.forward_params)}
        return dict(sorted(feeds.items(), key=lambda kv: rank.get(kv[0], len(rank))))

    def call(self, feeds: Mapping[str, Any]) -> Any:
        """Run forward on ``{name: tensor}`` (no grad); return forward's raw output."""
        import torch

        ordered = self.order_inputs(feeds)
        with torch.no_grad():
            if self.call_by_name(list(ordered)):
                return self.module(**ordered)
            return self.module(*ordered.values())

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Run forward on ``{name: array or tensor}``; return ``{output name: tensor}`` with
        the names the ONNX export gives them (see :func:`flatten_outputs`)."""
        import numpy as np
        import torch

        tensors = {
            k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for k, v in feeds.items()
        }
        return dict(flatten_outputs(self.call(tensors)))


def flatten_outputs(output: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Flatten forward's output into ``[(name, tensor)]`` in the exporters' order.

    A tensor is ``output``; dict entries are named by key and sequence items by index, joined
    with dots (``logits``, ``hidden_states.0``, ``output.1``); named tuples use field names.
    Non-tensor leaves (None, numbers) are skipped, as the exporters drop them.
    """
    import torch

    if isinstance(output, torch.Tensor):
        return [(prefix or "output", output)]
    items: list[tuple[str, Any]] = []
    if isinstance(output, Mapping):
        for key, value in output.items():
            items.extend(flatten_outputs(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(output, (tuple, list)):
        fields = getattr(output, "_fields", None)
        for i, value in enumerate(output):
            part = fields[i] if fields else str(i)
            items.extend(
                flatten_outputs(
                    value, f"{prefix}.{part}" if prefix else (part if fields else f"output.{part}")
                )
            )
    return items


# --- spec resolution -----------------------------------------------------------------------


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _import_module(name: str, spec: str, base_dir: Path) -> Any:
    with _on_sys_path(base_dir):
        try:
            return importlib.import_module(name)
        except BaseException as exc:  # an import can raise anything, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            hint = (
                f"is it installed, or inside {base_dir}? (the base folder goes first on sys.path)"
            )
            raise InputError(
                f"cannot import {name} ({describe_exception(exc)})", where=spec, hint=hint
            ) from exc


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise InputError(
            f"file {path} not found",
            where=spec,
            hint="check the path (relative "
            "paths start at the base folder, the current one by default)",
        )
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"optieval_user_{stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError("cannot load this file as Python", where=spec)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    with _on_sys_path(path.parent):
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise InputError(
                f"cannot import {path.name} ({describe_exception(exc)})",
                where=spec,
                hint="fix the error in that file",
            ) from exc
    return module


def _get_attr(module: Any, attr: str, spec: str, label: str) -> Any:
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            home = getattr(module, "__name__", None)
            defined = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == home
            ]
            defined.sort(key=lambda n: (n[0].isupper(), n))
            close = difflib.get_close_matches(attr, defined, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            hint += f"factories there: {', '.join(defined[:12]) or 'none'}"
            raise InputError(f"factory {attr!r} not found in {label}", where=spec, hint=hint)
        obj = getattr(obj, part)
    return obj


def _forward_params(module: Any) -> tuple[str, ...] | None:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        try:
            schema: Any = module.forward.schema  # type: ignore[attr-defined]
            return tuple(a.name for a in schema.arguments[1:])
        except Exception:
            return None
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):
        return None
    names = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None
        names.append(p.name)
    return tuple(names)


def _examples(value: Any, params: tuple[str, ...] | None, spec: str) -> dict[str, Any]:
    import torch

    if isinstance(value, torch.Tensor):
        value = (value,)
    if isinstance(value, Mapping):
        named = {str(k): v for k, v in value.items()}
    elif isinstance(value, (tuple, list)):
        if params is not None and len(value) > len(params):
            raise InputError(
                f"the factory gave {len(value)} example inputs but forward takes "
                f"{len(params)} ({', '.join(params)})",
                where=spec,
            )
        names = (
            list(params[: len(value)])
            if params is not None
            else [f"input_{i}" for i in range(len(value))]
        )
        named = dict(zip(names, value, strict=True))
    else:
        raise InputError(
            f"example inputs are a {type(value).__name__}, not a tensor, tuple or dict of tensors",
            where=spec,
        )
    bad = [k for k, v in named.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(
            f"example inputs {', '.join(bad)} are not tensors",
            where=spec,
            hint="factories return (module, tensors); other arguments need defaults",
        )
    return named


def _call_factory(factory: Any, attr: str, spec: str) -> tuple[Any, dict[str, Any] | None]:
    import torch

    if isinstance(factory, torch.nn.Module):
        return factory, None
    if not callable(factory):
        raise InputError(
            f"{attr} is a {type(factory).__name__}, not a callable returning an nn.Module",
            where=spec,
        )
    try:
        value = factory()
    except Exception as exc:
        raise InputError(
            f"factory {attr}() raised {describe_exception(exc)}",
            where=spec,
            hint="the factory is called with no arguments",
        ) from exc
    examples = None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.nn.Module):
        value, examples = value
    if not isinstance(value, torch.nn.Module):
        raise InputError(
            f"factory {attr}() returned a {type(value).__name__}, not an nn.Module "
            "or an (nn.Module, example_inputs) pair",
            where=spec,
        )
    return value, examples


def _load_torchscript(path: Path, spec: str) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise InputError(
            f"not a TorchScript archive ({describe_exception(exc)})",
            where=spec,
            hint="a state dict goes with `checkpoint` beside a factory spec "
            "(package.module:factory)",
        ) from exc


def _load_exported_program(path: Path, spec: str) -> Any:
    import torch

    try:
        return torch.export.load(str(path))
    except Exception as exc:
        raise InputError(
            f"not a saved ExportedProgram ({describe_exception(exc)})",
            where=spec,
            hint="save one with torch.export.save(torch.export.export(...), path)",
        ) from exc


def _split_spec(spec: str) -> tuple[str, str, str]:
    """Return (kind, target, attr)."""
    text = spec.strip()
    lower = text.lower()
    if lower.endswith(".pt2"):
        return "exported-program", text, ""
    if lower.endswith(_TORCHSCRIPT_SUFFIXES):
        return "torchscript", text, ""
    if lower.endswith((".pth", ".safetensors", ".bin", ".ckpt")):
        raise InputError(
            "a weights file is not a model spec",
            where=spec,
            hint="pass a factory as SPEC (package.module:factory or file.py:factory) "
            "and this file as `checkpoint`",
        )
    if ":" in text:
        target, attr = text.rsplit(":", 1)
        if target and re.fullmatch(r"[\w.]+", attr) and attr[0] != ".":
            if target.lower().endswith(".py"):
                return "file-factory", target, attr
            if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", target):
                return "module-factory", target, attr
    raise InputError(
        "cannot tell what kind of model spec this is", where=spec, hint=f"use {SPEC_FORMATS}"
    )


def _resolve_path(text: str, base_dir: Path) -> Path:
    p = Path(text).expanduser()
    return (p if p.is_absolute() else base_dir / p).resolve()


def load_model(
    spec: str, *, base_dir: Path | None = None, checkpoint: Path | None = None
) -> LoadedModel:
    """Resolve ``spec`` into a PyTorch model in eval mode.

    Args:
        spec: ``package.module:factory``, ``path/to/file.py:factory``, a TorchScript file
            (``.pt``/``.ts``) or a saved ExportedProgram (``.pt2``).
        base_dir: folder that relative paths start at and that goes first on ``sys.path``
            while importing (default: the current folder).
        checkpoint: a state dict to load into the module (``.pt``/``.pth``/``.bin`` through
            ``torch.load(weights_only=True)``; ``.safetensors`` through safetensors); a
            relative path is looked up in the current folder, then in ``base_dir``.

    Returns:
        A :class:`LoadedModel`; a module left in training mode is switched to eval, with a
        warning (``warnings.warn`` and ``LoadedModel.warnings``).

    Raises:
        InputError: the spec cannot be imported or read, the factory is missing, fails or
            returns no module, or the checkpoint is refused or does not fit.
    """

    base = (base_dir or Path.cwd()).expanduser().resolve()
    kind, target, attr = _split_spec(spec)
    notes: list[str] = []
    examples: dict[str, Any] | None = None
    program: Any = None
    raw_examples: Any = None
    spec_hash: str | None = None
    if kind == "module-factory":
        module, raw_examples = _call_factory(
            _get_attr(_import_module(target, spec, base), attr, spec, target), attr, spec
        )
    elif kind == "file-factory":
        path = _resolve_path(target, base)
        pymod = _import_file(path, spec)
        spec_hash = sha256_file(path)
        module, raw_examples = _call_factory(_get_attr(pymod, attr, spec, path.name), attr, spec)
    else:
        path = _resolve_path(target, base)
        if not path.is_file():
            raise InputError(f"model file {path} not found", where=spec, hint="check the path")
        spec_hash = sha256_file(path)
        raw_examples = None
        if kind == "torchscript":
            module = _load_torchscript(path, spec)
        else:
            program = _load_exported_program(path, spec)
            module = program.module()
            stored = getattr(program, "example_inputs", None)
            if stored is not None:
                args, kwargs = stored
                raw_examples = dict(kwargs) if kwargs and not args else tuple(args)
    params = _forward_params(module)
    if raw_examples is not None:
        examples = _examples(raw_examples, params, spec)

    ckpt_path: Path | None = None
    ckpt_hash: str | None = None
    if checkpoint is not None:
        # A command-line path: relative to the current folder, else to the base folder.
        ckpt_path = Path(checkpoint).expanduser().resolve()
        if not ckpt_path.is_file() and not Path(checkpoint).is_absolute():
            ckpt_path = _resolve_path(str(checkpoint), base)
        if program is not None:
            raise InputError(
                "a .pt2 ExportedProgram carries its weights; `checkpoint` does not apply",
                where=str(checkpoint),
            )
        state = load_checkpoint(ckpt_path)
        apply_checkpoint(module, state, str(checkpoint))
        ckpt_hash = sha256_file(ckpt_path)

    if program is None and any(m.training for m in module.modules()):
        module.eval()
        message = (
            "the model was in training mode; switched to eval mode (dropout off, "
            "batch norm on running statistics)"
        )
        notes.append(message)
        warnings.warn(message, UserWarning, stacklevel=2)

    return LoadedModel(
        module=module,
        spec=spec,
        kind=kind,
        base_dir=base,
        checkpoint=ckpt_path,
        checkpoint_sha256=ckpt_hash,
        spec_file_sha256=spec_hash,
        example_inputs=examples,
        forward_params=params,
        exported_program=program,
        warnings=tuple(notes),
    )


def load_model_from_manifest(manifest: Mapping[str, Any], manifest_dir: Path) -> LoadedModel:
    """Rebuild the PyTorch model an ONNX file was exported from, using its manifest.

    Args:
        manifest: the manifest (``read_manifest(model)``) holding ``provenance``.
        manifest_dir: the folder holding the manifest; used as the base folder when the
            recorded one no longer exists, and to find a checkpoint moved beside the model.

    Returns:
        A :class:`LoadedModel` (see :func:`load_model`); its ``run(feeds)`` returns outputs
        under the ONNX output names.

    Raises:
        InputError: the manifest has no provenance, or the checkpoint is missing or its
            sha256 differs from the one recorded at export.
    """
    prov = manifest.get("provenance") if isinstance(manifest, Mapping) else None
    if not isinstance(prov, Mapping) or not prov.get("spec"):
        raise InputError(
            "manifest has no provenance.spec to rebuild the PyTorch model from",
            where=str(manifest_dir),
            hint="re-export it with `optieval export`",
        )
    base = Path(str(prov.get("base_dir") or manifest_dir))
    if not base.is_dir():
        base = manifest_dir
    checkpoint: Path | None = None
    if prov.get("checkpoint"):
        recorded = Path(str(prov["checkpoint"]))
        candidates = [
            recorded if recorded.is_absolute() else base / recorded,
            manifest_dir / recorded.name,
        ]
        checkpoint = next((c for c in candidates if c.is_file()), None)
        if checkpoint is None:
            raise InputError(
                "checkpoint recorded at export is missing",
                where=str(recorded),
                hint="put it back, or re-export the model",
            )
        expected = prov.get("checkpoint_sha256")
        if expected and sha256_file(checkpoint) != expected:
            raise InputError(
                "checkpoint changed since export (sha256 differs)",
                where=str(checkpoint),
                hint="re-export the model",
            )
    loaded = load_model(str(prov["spec"]), base_dir=base, checkpoint=checkpoint)
    expected_spec = prov.get("spec_file_sha256")
    if expected_spec and loaded.spec_file_sha256 and expected_spec != loaded.spec_file_sha256:
        message = f"{loaded.spec} changed since export; the PyTorch reference may differ"
        warnings.warn(message, UserWarning, stacklevel=2)
        loaded = LoadedModel(**{**loaded.__dict__, "warnings": (*loaded.warnings, message)})
    return loaded
