"""CSV rows that are safe to open in a spreadsheet, written as PostgreSQL writes the export.

Lines end with LF. Text a user typed is always quoted (quotes doubled) and neutralised, so a
comma, quote, carriage return or line feed inside a name can never split a row or run as a
formula; every other cell (numbers, timestamps, fixed words) is written bare, and NULL is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula, prefixed with ' so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_chunk(rows: Iterable[Sequence[object]], *, text_columns: Sequence[int]) -> str:
    """Rows as CSV lines: ``text_columns`` quoted and neutralised, the other cells bare (they
    must hold no comma, quote or line break)."""
    columns = set(text_columns)
    return "".join(
        ",".join(
            _quoted(cell) if index in columns else _bare(cell) for index, cell in enumerate(row)
        )
        + "\n"
        for row in rows
    )


def _quoted(cell: object) -> str:
    if cell is None:
        return ""
    return '"' + str(neutralise(cell)).replace('"', '""') + '"'


def _bare(cell: object) -> str:
    return "" if cell is None else str(cell)
