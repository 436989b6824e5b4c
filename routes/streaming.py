"""Streamed responses: a JSON object whose one long list is written chunk by chunk."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context

# What the kernel may hold unsent for one streamed answer. Left to itself it grows to megabytes,
# so a client that never reads would still make the service read and render that much of the
# giveaway. A stream starts with a small buffer (Linux doubles the figure: 32 KB) and opens it
# up as the client shows it reads, like TCP's slow start: each time four buffers' worth more has
# gone out, the buffer doubles, up to OPEN_SEND_BUFFER_BYTES (256 KB in flight per round trip: a
# 50 ms round trip across the internet moves 5 MB a second). A reader that stalls with a small
# receive window never gets past the first buffer and costs a few small chunks (one with a large
# window costs what its window takes in, as with any buffer here); RELIABILITY.md 3a has what
# each size cost beside a hundred of them.
FIRST_SEND_BUFFER_BYTES = 16 * 1024
OPEN_SEND_BUFFER_BYTES = 128 * 1024
SENT_BEFORE_DOUBLING = 4  # buffers' worth sent before the buffer doubles


def stream_json(head: dict[str, Any], list_key: str, chunks: Iterator[str]) -> Response:
    """``{**head, list_key: [...]}`` with the list streamed; memory stays flat whatever its size.

    ``chunks`` are JSON values already joined by commas (without the brackets).
    """

    def generate() -> Iterator[str]:
        opening = json.dumps(head, ensure_ascii=False)[:-1]
        yield f'{opening}{", " if head else ""}"{list_key}": ['
        first = True
        for chunk in chunks:
            if not chunk:
                continue
            yield chunk if first else "," + chunk
            first = False
        yield "]}"

    body = _opening_up(generate(), _small_send_buffer())
    return Response(stream_with_context(body), mimetype="application/json")


def stream_text(
    chunks: Iterator[str], *, mimetype: str, filename: str, inline: bool = False
) -> Response:
    """A streamed download (or, ``inline``, a streamed text to show)."""
    body = _opening_up(chunks, _small_send_buffer())
    disposition = "inline" if inline else "attachment"
    return Response(
        stream_with_context(body),
        mimetype=mimetype,
        headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
    )


def _small_send_buffer() -> socket.socket | None:
    """This request's socket (gunicorn exposes it in the environ), its send buffer made small."""
    connection = request.environ.get("gunicorn.socket")
    if not isinstance(connection, socket.socket):
        return None
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FIRST_SEND_BUFFER_BYTES)
    return connection


def _opening_up(chunks: Iterator[str], connection: socket.socket | None) -> Iterator[str]:
    """``chunks``, doubling the socket's send buffer each time ``SENT_BEFORE_DOUBLING`` buffers'
    worth more has been handed to it (the server hands the next chunk only once the kernel took
    the last), up to ``OPEN_SEND_BUFFER_BYTES``."""
    size, sent = FIRST_SEND_BUFFER_BYTES, 0
    for chunk in chunks:
        yield chunk
        if connection is None or size >= OPEN_SEND_BUFFER_BYTES:
            continue
        sent += len(chunk)
        if sent >= SENT_BEFORE_DOUBLING * size:
            size, sent = 2 * size, 0
            with contextlib.suppress(OSError):  # the client may be gone: the next write says so
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
