"""Properties (hypothesis) of pagination cursors: what is encoded decodes to the same position;
a cursor of another list, of another shape, with a value of another type or an integer outside
0 .. 2**63-1 never decodes; no text makes the decoder raise anything but InvalidCursor."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from tests.utils.strategies import bounded, json_values
from utils.cursors import MAX_POSITION, InvalidCursor, decode_cursor, encode_cursor

kinds = st.text(max_size=12)
# What the service's cursors hold: ids and positions (integers) and moments (text).
declared_types = st.sampled_from([int, str])
in_range = st.integers(min_value=0, max_value=MAX_POSITION)
positions = st.lists(st.one_of(in_range, st.text(max_size=20)), max_size=4)
shapes = st.lists(declared_types, max_size=4)
outside = st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_POSITION + 1))


def shape_of(values: list) -> tuple[type, ...]:
    return tuple(type(value) for value in values)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@bounded(150)
@given(kind=kinds, values=positions)
@example(kind="entries", values=[0])
@example(kind="history", values=["2026-11-26T12:00:00+00:00", MAX_POSITION])
def test_a_cursor_decodes_to_what_was_encoded(kind, values):
    token = encode_cursor(kind, *values)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token)  # URL-safe, no padding
    assume(len(token) <= 512)
    decoded = decode_cursor(token, kind, *shape_of(values))
    assert decoded == values
    assert shape_of(decoded) == shape_of(values)


@bounded(100)
@given(kind=kinds, other=kinds, values=positions, shape=shapes)
def test_a_cursor_never_decodes_as_another_kind_or_shape(kind, other, values, shape):
    token = encode_cursor(kind, *values)
    assume(len(token) <= 512 and (other, tuple(shape)) != (kind, shape_of(values)))
    with pytest.raises(InvalidCursor):
        decode_cursor(token, other, *shape)


@bounded(150)
@given(kind=kinds, before=positions, declared=declared_types, wrong=json_values, after=positions)
@example(kind="entries", before=[], declared=int, wrong=True, after=[])
@example(kind="entries", before=[], declared=int, wrong=7.0, after=[])
@example(kind="entries", before=[], declared=int, wrong="7", after=[])
@example(kind="history", before=[], declared=str, wrong=7, after=[7])
def test_a_value_of_another_type_never_decodes(kind, before, declared, wrong, after):
    assume(type(wrong) is not declared)
    token = encode_cursor(kind, *before, wrong, *after)
    assume(len(token) <= 512)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, kind, *shape_of(before), declared, *shape_of(after))


@bounded(100)
@given(kind=kinds, before=positions, value=outside, after=positions)
@example(kind="entries", before=[], value=-1, after=[])
@example(kind="entries", before=[], value=MAX_POSITION + 1, after=[])
def test_an_integer_outside_the_bigint_range_never_decodes(kind, before, value, after):
    token = encode_cursor(kind, *before, value, *after)
    assume(len(token) <= 512)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, kind, *shape_of(before), int, *shape_of(after))


KINDS = ["entries", "history", "audit"]


@bounded(200)
@given(
    token=st.one_of(
        st.text(max_size=600),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
            max_size=80,
        ),
        st.binary(max_size=300).map(_b64),
        json_values.map(lambda value: _b64(json.dumps(value).encode())),
    ),
    kind=st.sampled_from(KINDS),
    shape=shapes,
)
def test_decoding_any_text_raises_nothing_but_invalid_cursor(token, kind, shape):
    try:
        values = decode_cursor(token, kind, *shape)
    except InvalidCursor:
        return
    assert shape_of(values) == tuple(shape)


@st.composite
def forged_cursors(draw):
    """A well-formed cursor of a known list whose values aim at the declared shape: integers
    in and out of range, booleans and floats where an int is declared, anything where text is."""
    kind, shape = draw(st.sampled_from(KINDS)), draw(shapes)
    near_int = st.one_of(in_range, outside, st.booleans(), st.floats(allow_nan=False))
    values = [
        draw(near_int if declared is int else st.one_of(st.text(max_size=8), json_values))
        for declared in shape
    ]
    return _b64(json.dumps([kind, *values]).encode()), kind, shape


@bounded(200)
@given(forged=forged_cursors())
def test_a_decoded_cursor_always_has_the_declared_types_and_range(forged):
    token, kind, shape = forged
    try:
        values = decode_cursor(token, kind, *shape)
    except InvalidCursor:
        event("refused")
        return
    event("decoded")
    assert shape_of(values) == tuple(shape)
    assert all(0 <= value <= MAX_POSITION for value in values if type(value) is int)
