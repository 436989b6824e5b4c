"""CSV rows that are safe to open in a spreadsheet.

Lines end with LF (as the rows PostgreSQL writes for the export do), and every text cell is
quoted, so a carriage return or line feed inside a name can never split a row.
"""

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
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    if text_columns:
        columns = set(text_columns)
        rows = (
            [neutralise(cell) if index in columns else cell for index, cell in enumerate(row)]
            for row in rows
        )
    writer.writerows(rows)
    return buffer.getvalue()
