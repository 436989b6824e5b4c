"""Opaque pagination cursors: a position in a keyset, as a short URL-safe token.

The token is base64url of a small JSON array with a kind tag, so a cursor from one list cannot be
replayed on another by accident. It is not signed: it only positions a caller inside data the
caller may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# The largest position or id a cursor may hold: PostgreSQL's bigint.
MAX_POSITION = 2**63 - 1


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this list."""


def encode_cursor(kind: str, *position: Any) -> str:
    """A cursor for ``position`` in the list ``kind``."""
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str, kind: str, *shape: type) -> list[Any]:
    """The position a cursor of ``kind`` holds, one value of each type in ``shape``; integers
    must be positions or ids (0 .. 2**63-1). InvalidCursor otherwise."""
    if not token or len(token) > 512:
        raise InvalidCursor("empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor") from None
    if not isinstance(data, list) or len(data) != len(shape) + 1 or data[0] != kind:
        raise InvalidCursor("not a cursor of this list")
    values = data[1:]
    for value, expected in zip(values, shape, strict=True):
        if type(value) is not expected:
            raise InvalidCursor("malformed")
        if expected is int and not 0 <= value <= MAX_POSITION:
            raise InvalidCursor("out of range")
    return values
