"""Streamed responses: a JSON object whose one long list is written chunk by chunk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context


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

    return Response(stream_with_context(generate()), mimetype="application/json")


def stream_text(chunks: Iterator[str], *, mimetype: str, filename: str) -> Response:
    """A streamed download."""
    return Response(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
