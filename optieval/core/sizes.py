"""One style for sizes, wherever optieval prints one (export, inspect, the gate's reports):
binary units and three significant digits: ``476 B``, ``227 KiB``, ``13.5 MiB``, ``1.02 GiB``.
Budgets in a release config are in MiB (``artifact_mb_max``), so :func:`format_mib` prints
those the same way."""

from __future__ import annotations

__all__ = ["format_mib", "format_size"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(nbytes: float) -> str:
    """``nbytes`` in binary units with three significant digits (``13.5 MiB``; bytes whole)."""
    size = float(nbytes)
    if size != size:  # NaN
        return "n/a"
    sign = "-" if size < 0 else ""
    size = abs(size)
    unit = 0
    while size >= 1023.5 and unit < len(_UNITS) - 1:  # 1023.5 B would print as "1.02e+03 B"
        size /= 1024.0
        unit += 1
    if unit == 0:
        return f"{sign}{size:.0f} B"
    text = f"{size:.3g}" if size < 999.5 else f"{size:.0f}"
    return f"{sign}{text} {_UNITS[unit]}"


def format_mib(mib: float) -> str:
    """A size given in MiB (a budget, ``memory.peak_rss_mb``) printed as :func:`format_size`."""
    return format_size(float(mib) * 2**20)
