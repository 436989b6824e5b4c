"""Client for the Giveaway service: ``GET /api/giveaways/{id}`` (contract §4), cached briefly."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from config import current_settings
from services.cache import cached, shared_cache
from services.clients.http import get_json
from services.errors import GiveawayMisconfigured, GiveawayNotFound, UpstreamUnavailable

PEER = "giveaway"


@dataclass(frozen=True)
class Giveaway:
    """The part of a giveaway this service relies on."""

    id: int
    account_id: int
    title: str | None
    status: str
    winner_count: int | None

    @property
    def is_active(self) -> bool:
        return self.status == "active"


def get_giveaway(giveaway_id: int) -> Giveaway:
    """The giveaway, from cache or the Giveaway service; raises when unknown or unreachable."""
    settings = current_settings()
    data = cached(
        shared_cache(),
        f"giveaway:{giveaway_id}",
        settings.giveaway_cache_seconds,
        lambda: asdict(_fetch(giveaway_id)),
    )
    return Giveaway(**data)


def forget_giveaway(giveaway_id: int) -> None:
    """Drop the cached copy (after we learn it changed)."""
    shared_cache().delete(f"giveaway:{giveaway_id}")


def _fetch(giveaway_id: int) -> Giveaway:
    settings = current_settings()
    if not settings.giveaway_url:
        raise UpstreamUnavailable(PEER, "not_configured")
    answer = get_json(
        peer=PEER,
        url=f"{settings.giveaway_url}/api/giveaways/{giveaway_id}",
        timeout=(settings.upstream_connect_timeout, settings.upstream_timeout),
    )
    if answer.status == 404:
        raise GiveawayNotFound()
    if answer.status == 400:
        raise GiveawayMisconfigured()
    giveaway = answer.body.get("giveaway")
    if answer.status != 200 or not isinstance(giveaway, dict):
        raise UpstreamUnavailable(PEER, f"unexpected_answer_{answer.status}")
    try:
        return Giveaway(
            id=int(giveaway.get("id", giveaway_id)),
            account_id=int(giveaway["account_id"]),
            title=_optional_text(giveaway.get("title")),
            status=str(giveaway["status"]),
            winner_count=_optional_int(giveaway.get("winner_count")),
        )
    except (KeyError, TypeError, ValueError):
        raise UpstreamUnavailable(PEER, "malformed_body") from None


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
