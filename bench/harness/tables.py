"""Fixed-width tables, as the benchmarks print them: a header, a rule, and aligned rows.

A table is declared once by its columns (title, width, format spec of the values), so the
header and every row of it stay in step when a column changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column: its title, its width, the format spec of its values, and the alignment."""

    title: str
    width: int
    spec: str = ""  # e.g. ",.0f", ".1f"; "" for text and integers as they are
    align: str = ">"


class Table:
    """Columns separated by one space; rows may be indented (the header is not, but its first
    column is widened by the indent, so the columns line up)."""

    def __init__(self, *columns: Column, indent: str = "") -> None:
        self.columns = columns
        self.indent = indent

    def header(self) -> str:
        """The titles, aligned as the values below them."""
        first, *rest = self.columns
        cells = [f"{first.title:{first.align}{first.width + len(self.indent)}}"]
        cells += [f"{c.title:{c.align}{c.width}}" for c in rest]
        return " ".join(cells)

    def rule(self) -> str:
        """A line of dashes as long as the header."""
        return "-" * len(self.header())

    def row(self, *values: object) -> str:
        """One row; fewer values fill the first columns only; None leaves a cell blank."""
        cells = [
            " " * c.width if v is None else f"{v:{c.align}{c.width}{c.spec}}"
            for c, v in zip(self.columns, values, strict=False)
        ]
        return self.indent + " ".join(cells)
