"""Tables that fit the terminal without cutting a number.

rich shrinks a table that is wider than the terminal by wrapping cells at spaces and then cutting
them with an ellipsis (``[11.…``). :class:`FittedTable` picks, when it is printed, the first of
these layouts whose natural width fits:

1. one line per row (``0.412 [0.401, 0.425]``);
2. each interval on a second line under its point;
3. also the second column folded under the first (``ort-cpu:fp32 b1`` over ``x:1x4``);
4. also the other columns spread over as many tables as needed, each repeating the first.

Cells never get an ellipsis: anything still too wide folds onto the next line, whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table

Cell = str | tuple[str, str]
"""A plain cell, or ``(point, interval)``: the interval may go on a second line."""


@dataclass
class FittedTable:
    """A table laid out to fit the width it is printed at (module docstring).

    Attributes:
        title: the table's title.
        columns: ``(header, justify)`` per column; the first identifies the row.
        rows: one list of cells per row, in column order; a row may carry rich markup styles
            through ``styles`` (same index).
        styles: per row, an optional rich style for the whole row.
    """

    title: str
    columns: Sequence[tuple[str, str]]
    rows: list[list[Cell]] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)

    def add_row(self, *cells: Cell, style: str | None = None) -> None:
        """Append a row."""
        self.rows.append(list(cells))
        self.styles.append(style)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        every = range(len(self.columns))
        for two_lines, fold in ((False, False), (True, False), (True, True)):
            if fold and len(self.columns) < 3:
                continue
            table = self._table(every, two_lines=two_lines, fold=fold)
            if _natural_width(table) <= width:
                yield table
                return
        yield Group(*self._split(table, width))

    def _split(self, folded: Table, width: int) -> list[Table]:
        """Tables sharing the first (folded) column, each taking as many of the other columns,
        in order, as fit in ``width`` (at least one)."""
        widths = _column_widths(folded)  # [first+second folded, col 2, col 3, ...]
        fixed = widths[0] + 3 + 1  # the shared column, its padding and rules
        groups: list[list[int]] = [[]]
        used = fixed
        for index, need in zip(range(2, len(self.columns)), widths[1:], strict=True):
            if groups[-1] and used + need + 3 > width:
                groups.append([])
                used = fixed
            groups[-1].append(index)
            used += need + 3
        return [
            self._table([0, 1, *group], two_lines=True, fold=True, title=n == 0)
            for n, group in enumerate(groups)
        ]

    def _table(
        self, indexes: Sequence[int], *, two_lines: bool, fold: bool, title: bool = True
    ) -> Table:
        table = Table(title=self.title if title else None, title_justify="left")
        shown = [i for i in indexes if not (fold and i == 1)]
        for i in shown:
            header, justify = self.columns[i]
            if fold and i == 0 and len(self.columns) > 1:
                header = f"{header}\n{self.columns[1][0]}"
            table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row, style in zip(self.rows, self.styles, strict=False):
            cells = []
            for i in shown:
                text = _text(row[i], two_lines)
                if fold and i == 0 and len(row) > 1:
                    # One word a line (``x:1x3x224x224`` each), so none is folded in two.
                    second = "\n".join(_text(row[1], two_lines).split())
                    text = f"{text}\n{second}" if second else text
                cells.append(text)
            table.add_row(*cells, style=style)
        return table


def _text(cell: Cell, two_lines: bool) -> str:
    if isinstance(cell, tuple):
        point, interval = cell
        if not interval:
            return point
        return f"{point}\n{interval}" if two_lines else f"{point} {interval}"
    return cell


def _column_widths(table: Table) -> list[int]:
    """Each column's width with no cell wrapped (a header may wrap at spaces)."""
    from rich.text import Text

    widths = []
    for column in table.columns:
        lines = [Text.from_markup(str(c)).plain for c in column._cells]
        longest = max((cell_len(x) for cell in lines for x in cell.split("\n")), default=0)
        header_word = max((cell_len(w) for w in str(column.header).split()), default=0)
        widths.append(max(longest, header_word))
    return widths


def _natural_width(table: Table) -> int:
    """The width ``table`` needs with no cell wrapped: its columns, padding 1 each side, a
    rule between columns and at each edge."""
    widths = _column_widths(table)
    return sum(widths) + 3 * len(widths) + 1
