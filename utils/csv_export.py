"""CSV rows that are safe to open in a spreadsheet (lines end with LF, as PostgreSQL's COPY writes
them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula, prefixed with ' so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_chunk(rows: Iterable[Sequence[object]], *, text_columns: Sequence[int]) -> str:
    """Rows as CSV text, neutralising the columns that hold text a user typed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if text_columns:
        columns = set(text_columns)
        rows = (
            [neutralise(cell) if index in columns else cell for index, cell in enumerate(row)]
            for row in rows
        )
    writer.writerows(rows)
    return buffer.getvalue()
