"""UTC time helpers: every timestamp the service stores or returns is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Read a naive datetime as UTC; convert an aware one to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 with an explicit ``+00:00`` offset, or None."""
    return None if value is None else as_utc(value).isoformat()


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from now until moment, rounded up, never below 1."""
    remaining = (moment - now).total_seconds()
    return max(1, int(remaining) + (0 if remaining == int(remaining) else 1))
