"""Properties (hypothesis) of CSV export: formula neutralising, and chunks that read back."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from tests.utils.strategies import bounded
from utils.csv_export import csv_chunk, neutralise

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


@bounded(200)
@given(
    text=st.one_of(
        st.text(max_size=20),
        st.tuples(st.sampled_from(FORMULA_STARTS), st.text(max_size=10)).map("".join),
    )
)
def test_neutralised_text_never_starts_a_formula_and_only_formulas_change(text):
    result = neutralise(text)
    assert not result.startswith(FORMULA_STARTS)
    if text.startswith(FORMULA_STARTS):
        assert result == "'" + text
    else:
        assert result == text


@bounded(100)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False)))
def test_values_that_are_not_text_are_left_alone(value):
    assert neutralise(value) is value


@bounded(100)
@given(
    rows=st.lists(
        st.tuples(st.integers(), st.one_of(st.none(), st.text(max_size=12)), st.text(max_size=12)),
        max_size=6,
    )
)
def test_a_csv_chunk_reads_back_with_only_its_text_columns_neutralised(rows):
    text = csv_chunk(rows, text_columns=[1, 2])
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert len(read) == len(rows)
    for (number, typed, other), (number_cell, typed_cell, other_cell) in zip(
        rows, read, strict=True
    ):
        assert number_cell == str(number)
        assert typed_cell == ("" if typed is None else neutralise(typed))
        assert not typed_cell.startswith(FORMULA_STARTS)
        assert other_cell == neutralise(other)
