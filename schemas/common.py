"""Types and shapes shared by every resource: ids, names, the error envelope."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic.fields import FieldInfo

from utils.timeutil import as_utc, isoformat

MAX_ID = 2**63 - 1


def _reject_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


def _refusing(characters: str, what: str) -> AfterValidator:
    """A validator refusing text with any of ``characters`` (a regex class body), naming the
    first one found."""
    found_in = re.compile(f"[{characters}]").search

    def check(value: str | None) -> str | None:
        found = value is not None and found_in(value)
        if found:
            raise ValueError(f"must not contain {what} (found U+{ord(found.group()):04X})")
        return value

    return AfterValidator(check)


def _documented_without(characters: str) -> FieldInfo:
    """The same rule in the OpenAPI document, as a pattern (clients and the fuzzer read it)."""
    return Field(json_schema_extra={"pattern": f"^[^{characters}]*$"})


# Control characters (C0, DEL and C1), as the body of a regex class; then the same but for tab,
# line feed and carriage return.
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
_CONTROL_BUT_LINES = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"


def _utc_instant(value: object) -> object:
    """ISO 8601 text (or a datetime) only: a bare number is not read as a Unix time."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time, such as 2026-11-26T10:15:00Z")
    return value


def _as_utc_in_range(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# Field first: its bounds then appear in the OpenAPI document as minimum/maximum.
TelegramId = Annotated[
    int,
    Field(ge=1, le=MAX_ID, description="A positive 64-bit integer id."),
    BeforeValidator(_reject_bool),
]
# An incoming instant: ISO 8601 text; without an offset it is read as UTC.
UTCInstant = Annotated[
    datetime,
    Field(description="ISO 8601; without an offset it is read as UTC."),
    BeforeValidator(_utc_instant),
    AfterValidator(_as_utc_in_range),
]
# ISO 8601 with an explicit "+00:00" offset (docs/contract.md §1), which every ISO parser reads.
Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str, when_used="json")]
# Free text a caller sends: a character that makes no sense in it is refused with a 400 naming
# the field, never stored, the same on SQLite and PostgreSQL (which cannot store NUL at all).
# An opaque string (an idempotency key, a session id, a cursor): no control character at all.
OpaqueText = Annotated[
    str, _documented_without(_CONTROL), _refusing(_CONTROL, "control characters")
]
# Prose a person wrote (a reroll's reason): line breaks and tabs, but no other control character.
Prose = Annotated[
    str,
    _documented_without(_CONTROL_BUT_LINES),
    _refusing(_CONTROL_BUT_LINES, "control characters other than tabs and line breaks"),
]
# A name as Telegram sends it is kept as the user typed it, odd characters and all; only NUL is
# refused, which PostgreSQL cannot store and Telegram never sends (so only a forged request has it).
Name = Annotated[
    str | None,
    Field(default=None, max_length=256),
    _refusing("\\u0000", "NUL characters"),
]


class InputModel(BaseModel):
    """Request bodies: unknown fields are ignored, strings are kept as sent."""

    model_config = ConfigDict(extra="ignore")


def _every_field_required(schema: dict[str, Any]) -> None:
    schema["required"] = list(schema.get("properties", {}))


class OutputModel(BaseModel):
    """Response bodies: every field is always sent (null when empty), so the document says so."""

    model_config = ConfigDict(json_schema_extra=_every_field_required)


def _envelope_required(schema: dict[str, Any]) -> None:
    schema["required"] = ["success", "error", "error_code"]


class ErrorOut(BaseModel):
    """The contract's error envelope."""

    model_config = ConfigDict(json_schema_extra=_envelope_required)

    success: Literal[False] = False
    error: str = Field(description="A sentence a person can read.")
    error_code: str = Field(description="UPPER_SNAKE code callers can branch on.")
    details: dict[str, Any] | None = None
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before retrying (429 and 503)."
    )


ERROR_SCHEMA = ErrorOut.model_json_schema()


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation can answer, all in the envelope."""
    descriptions = {
        400: "Invalid input (VALIDATION_ERROR, one entry per bad field in details).",
        401: "Missing or invalid service token.",
        403: "Refused (scope, or the user is not subscribed).",
        404: "Unknown id.",
        409: "Conflicts with the current state.",
        410: "Expired.",
        413: "The request body is too large.",
        415: "The request body was not sent as JSON (Content-Type: application/json).",
        429: "Locked out or rate-limited; see retry_after.",
        503: "A dependency is unavailable; retry later (see retry_after).",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}},
        }
        for status in statuses
    }


def also_answers(status: int, schema_name: str, description: str) -> dict[int, dict[str, Any]]:
    """An extra success status answered with the same documented body as the main one."""
    return {
        status: {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
            },
        }
    }


# Models documented by reference for responses that bypass @output (streamed bodies, extra
# statuses); their JSON schemas are added to the document's components when it is built.
_DOCUMENTED: dict[str, type[BaseModel]] = {}


def documented(model: type[BaseModel]) -> dict[str, str]:
    """A ``$ref`` to ``model``'s schema, which ``add_documented_schemas`` puts in the document."""
    _DOCUMENTED[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def add_documented_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI spec processor: the schemas ``documented`` referred to (and what they nest)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _DOCUMENTED.items():
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        for nested_name, nested in schema.pop("$defs", {}).items():
            schemas.setdefault(nested_name, nested)
        schemas.setdefault(name, schema)
    return spec
