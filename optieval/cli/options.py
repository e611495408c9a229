"""Option handling shared by the commands: repeated and comma-separated lists, ``--json FILE``
(checked before any work, with a fallback file if writing still fails) and the cell executor of
``--executor``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from optieval.cli.console import always_shown, err_console
from optieval.errors import InputError


def split_list(values: list[str] | None, option: str) -> list[str]:
    """Split repeated and comma-separated option values (``--batch 1,8 --batch 32``)."""
    items: list[str] = []
    for value in values or []:
        items.extend(v.strip() for v in value.split(",") if v.strip())
    return items


def parse_int_list(values: list[str] | None, option: str) -> list[int]:
    """Parse ``--batch 1,8,32`` into ints > 0, InputError naming the option otherwise."""
    result = []
    for item in split_list(values, option):
        try:
            number = int(item)
        except ValueError:
            raise InputError(f"{item!r} is not an integer", where=option) from None
        if number < 1:
            raise InputError(f"{number} must be at least 1", where=option)
        result.append(number)
    return result


STDOUT = Path("-")


def check_outputs(
    *,
    json_file: Path | None = None,
    files: dict[str, Path | None] | None = None,
    folders: dict[str, Path | None] | None = None,
) -> None:
    """Check, before any work, that every output can be written: ``--json FILE`` and the
    ``files`` (by flag) can be created in their folder, the ``folders`` (by flag) exist or can
    be created and are writable. InputError (exit 2) naming the flag otherwise. ``--json -``
    sends the human output to stderr so stdout holds only the JSON."""
    if json_file == STDOUT:
        from optieval.cli.console import human_output_to_stderr

        human_output_to_stderr()
    elif json_file is not None:
        _check_file(json_file, "--json")
    for flag, path in (files or {}).items():
        if path is not None:
            _check_file(path, flag)
    for flag, path in (folders or {}).items():
        if path is not None:
            _check_folder(path, flag)


def _check_file(path: Path, flag: str) -> None:
    path = path.expanduser()
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file", where=flag)
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != parent and existing.is_dir():
        raise InputError(f"folder {parent} does not exist", where=flag, hint="create it first")
    _check_folder(parent, flag, of=path)


def _check_folder(folder: Path, flag: str, of: Path | None = None) -> None:
    import os
    import tempfile

    shown = of if of is not None else folder
    existing = folder.expanduser()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"output path not writable: {existing} is not a folder", where=flag,
            hint="choose a writable path",
        )  # fmt: skip
    try:  # os.access says yes to root and on read-only mounts: try it
        fd, name = tempfile.mkstemp(prefix=".optieval-probe-", dir=existing)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise InputError(
            f"output path not writable: {shown} ({exc.strerror or exc})", where=flag,
            hint="choose a writable path",
        ) from None  # fmt: skip


def write_json_output(path: Path | None, payload: dict[str, Any]) -> None:
    """Write a result's JSON to ``--json FILE`` atomically, or to stdout for ``--json -``
    (no-op without the option)."""
    if path == STDOUT:
        import json
        import sys

        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()
    elif path is not None:
        import json

        write_output_file(path, json.dumps(payload, indent=2) + "\n", "--json")


_FALLBACKS: list[Path] = []


def write_output_file(path: Path, text: str, flag: str) -> None:
    """Write ``text`` to the output ``path`` atomically and say so. When that fails at the end
    of a run (the folder went away, the disk filled up), the results go to a fallback file in
    the temporary folder whose path is printed, and the command exits 2
    (:func:`fallback_exit_code`) instead of losing them."""
    from optieval.core import write_text_atomic

    try:
        write_text_atomic(path, text)
    except (OSError, InputError) as exc:  # InputError: core's "folder does not exist", ...
        fallback = _write_fallback(path, text)
        reason = exc.message if isinstance(exc, InputError) else (exc.strerror or str(exc))
        where = f"the results are in {fallback}" if fallback else "the results are lost"
        with always_shown():
            err_console.print(f"[bold red]error:[/] {flag} {escape(str(path))}: cannot write "
                              f"it ({escape(reason)}); {escape(where)}", highlight=False,
                              soft_wrap=True)  # fmt: skip
        _FALLBACKS.append(fallback or path)
        return
    err_console.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


def _write_fallback(path: Path, text: str) -> Path | None:
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=f"optieval-{path.stem}-", suffix=path.suffix or ".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        return None
    return Path(name)


def fallback_exit_code() -> int:
    """2 when an output went to a fallback file during this command (then forgotten), else 0."""
    code = 2 if _FALLBACKS else 0
    _FALLBACKS.clear()
    return code


def cell_executor(name: str, ray_address: str | None) -> Any:
    """A context manager giving the cell executor for ``--executor`` (None for local: the
    command's own path) and closing it after."""
    from optieval.execution import create_executor

    executor = create_executor(name, ray_address=ray_address)
    if executor.name == "local":
        return contextlib.nullcontext(None)
    return executor


# The executor options of `bench` and `gate`, declared once.
ExecutorOption = Annotated[
    str, typer.Option(help="Where cells run: local (subprocesses here) or ray (a cluster).")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster address with --executor ray (default: RAY_ADDRESS)."),
]

# `--shape` of `bench` and `compare`, declared once: per input, shapes paired by position.
ShapeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--shape",
        help="NAME:D0xD1x...[,D0xD1x...] full shapes (batch first); the i-th shape of each "
        "input run together, and inputs left out follow tied dimensions; repeatable.",
    ),
]


def parse_shape_sweep(values: list[str] | None) -> dict[str, list[tuple[int, ...]]]:
    """``--shape ids:1x16,1x64 --shape mask:1x16,1x64`` -> ``{"ids": [...], "mask": [...]}``;
    an input named twice gets both lists, in order."""
    from optieval.core import parse_shape_option

    shapes: dict[str, list[tuple[int, ...]]] = {}
    for item in values or []:
        name, parsed = parse_shape_option(item)
        shapes.setdefault(name, []).extend(parsed)
    return shapes


def one_shape_set(values: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    """``--shape`` of a command that runs one shape set (``compare``): one shape per input;
    None when not given. InputError (exit 2) for a list."""
    shapes = parse_shape_sweep(values)
    several = [name for name, listed in shapes.items() if len(listed) > 1]
    if several:
        raise InputError(
            f"one shape per input here ({', '.join(several)} has several)",
            where="--shape",
            hint="sweep shapes with `optieval bench`",
        )
    return {name: listed[0] for name, listed in shapes.items()} or None
