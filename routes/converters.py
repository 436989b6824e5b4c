"""Path parameters: a malformed id is a 400 VALIDATION_ERROR naming the parameter, not a 404.

``<id64:name>`` accepts any segment while routing and converts it; a segment that is not a
positive 64-bit integer becomes an ``InvalidId`` that ``reject_invalid_ids`` turns into a
validation error naming the parameter (a converter cannot know its parameter's name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.routing import BaseConverter

from schemas.common import MAX_ID
from services.errors import ValidationFailed

ID_PROBLEM = "must be a positive 64-bit integer"


@dataclass(frozen=True)
class InvalidId:
    """A path segment that should have been an id."""

    raw: str


class TelegramIdConverter(BaseConverter):
    """``<id64:name>``: a positive 64-bit integer."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> int | InvalidId:
        if value.isascii() and value.isdigit() and len(value) <= 19 and 1 <= int(value) <= MAX_ID:
            return int(value)
        return InvalidId(value)

    def to_url(self, value: object) -> str:
        return str(value)


class DigitsIdConverter(TelegramIdConverter):
    """``<digits:name>``: like ``id64`` but only matches digits, for a route whose single segment
    would otherwise shadow static siblings (``GET /api/participants/register`` stays a 405)."""

    regex = r"\d+"


def reject_invalid_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """URL value preprocessor: one validation error listing every malformed id in the path."""
    if not values:
        return
    bad = {name: ID_PROBLEM for name, value in values.items() if isinstance(value, InvalidId)}
    if bad:
        raise ValidationFailed(f"Invalid input: check {', '.join(sorted(bad))}.", details=bad)


def document_id_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI spec processor: path ids are integers in [1, 2^63-1], not strings."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name", "").endswith("_id"):
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                    parameter["required"] = True
    return spec
