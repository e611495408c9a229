"""Results as rows, for notebooks: an HTML table (``_repr_html_``, what Jupyter shows for a
result) and a pandas DataFrame (``to_dataframe()``; pandas is optional, asked for only then).

Each result (bench, compare, gate) lists its rows as plain dicts, one per cell, output or
check; these helpers turn such rows into the two forms."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from optieval.errors import InputError

__all__ = ["records_frame", "records_html"]


def records_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """A ``pandas.DataFrame`` of ``records`` (columns in first-seen order).

    Raises:
        InputError: pandas is not installed (it is optional), saying how to get it.
    """
    try:
        import pandas as pd
    except ImportError:
        raise InputError("to_dataframe() needs pandas, which is not installed",
                         hint="pip install pandas") from None  # fmt: skip
    return pd.DataFrame.from_records(list(records), columns=_columns(records) or None)


def records_html(title: str, records: Sequence[Mapping[str, Any]], *, note: str = "") -> str:
    """A small self-contained HTML table of ``records`` with ``title`` above it (escaped)."""
    columns = _columns(records)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in records
    )
    caption = f"<b>{html.escape(title)}</b>"
    if note:
        caption += f"<br><small>{html.escape(note)}</small>"
    return (f'<div class="optieval">{caption}<table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")  # fmt: skip


def _columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)
