"""The ``[outputs]`` section of a release config: each output's kind (docs/guides/parity.md).

::

    [outputs]
    sentence_embedding = "embedding"   # one output
    "*" = "regression"                 # every output not named

Kinds are those of :mod:`optieval.parity.kinds`; outputs not named get the inferred kind, and
the report records which kind each output had and why. Output names are checked against the
model when the gate runs (the config is read before the model is exported).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optieval.errors import InputError


def parse_outputs_section(
    table: Mapping[str, Any], *, detection: bool = False
) -> tuple[dict[str, str], list[str]]:
    """``[outputs]`` -> ``({output: kind}, problems)``; each problem names its key path.
    ``detection``: the config's task is detection, whose outputs are boxes, not kinds."""
    from optieval.parity import check_kind_name

    kinds: dict[str, str] = {}
    problems: list[str] = []
    if table and detection:
        problems.append('outputs: [task] kind = "detection" compares boxes; output kinds apply '
                        "to tensor outputs")  # fmt: skip
    for name, kind in table.items():
        path = f"outputs.{name}"
        if not isinstance(kind, str):
            problems.append(f'{path}: must be a kind such as "embedding", not {kind!r}')
            continue
        try:
            check_kind_name(kind, where=path)
        except InputError as exc:
            problems.append(f"{path}: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""))
            continue
        kinds[str(name)] = kind
    return kinds, problems


__all__ = ["parse_outputs_section"]
