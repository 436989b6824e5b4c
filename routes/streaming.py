"""Streamed responses: a JSON object whose one long list is written chunk by chunk."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context

# What the kernel may hold unsent for one streamed answer. Left to itself it grows to megabytes,
# so a client that never reads would still make the service read and render that much of the
# giveaway; with this cap (Linux doubles it) a stalled reader costs a few small chunks, and a
# reader on the same private network is not slowed (128 KB in flight per round trip: 1 ms moves
# over 100 MB a second; a 50 ms round trip across the internet still moves 2.5 MB a second).
SEND_BUFFER_BYTES = 64 * 1024


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

    _cap_send_buffer()
    return Response(stream_with_context(generate()), mimetype="application/json")


def stream_text(
    chunks: Iterator[str], *, mimetype: str, filename: str, inline: bool = False
) -> Response:
    """A streamed download (or, ``inline``, a streamed text to show)."""
    _cap_send_buffer()
    disposition = "inline" if inline else "attachment"
    return Response(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
    )


def _cap_send_buffer() -> None:
    """Cap the send buffer of this request's socket (gunicorn exposes it in the environ)."""
    connection = request.environ.get("gunicorn.socket")
    if isinstance(connection, socket.socket):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
