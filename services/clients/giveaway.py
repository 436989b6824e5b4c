"""Client for the Giveaway service: ``GET /api/giveaways/{id}``, cached briefly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from config import current_settings
from services.cache import cached, shared_cache
from services.clients.http import Int64, get_json, read_body
from services.errors import GiveawayMisconfigured, GiveawayNotFound, UpstreamUnavailable

PEER = "giveaway"


class Giveaway(BaseModel):
    """The part of a giveaway this service relies on."""

    model_config = ConfigDict(frozen=True)

    id: Int64
    account_id: Int64
    status: str

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class _GiveawayAnswer(BaseModel):
    """The Giveaway service's 200 answer: ``{success, giveaway: {id, account_id, status, ...}}``."""

    giveaway: Giveaway


def get_giveaway(giveaway_id: int) -> Giveaway:
    """The giveaway, from cache or the Giveaway service; raises when unknown or unreachable."""
    data = cached(
        shared_cache(),
        # "v2": fewer fields than the previous release cached, which it could not read (rolling
        # deploys share Redis).
        f"giveaway:v2:{giveaway_id}",
        current_settings().giveaway_cache_seconds,
        lambda: _fetch(giveaway_id).model_dump(),
    )
    return Giveaway.model_validate(data)


def _fetch(giveaway_id: int) -> Giveaway:
    settings = current_settings()
    if not settings.giveaway_url:
        raise UpstreamUnavailable(PEER, "not_configured")
    answer = get_json(
        peer=PEER,
        resource=giveaway_id,
        url=f"{settings.giveaway_url}/api/giveaways/{giveaway_id}",
        timeout=(settings.upstream_connect_timeout, settings.upstream_timeout),
    )
    if answer.status == 404:
        raise GiveawayNotFound()
    if answer.status == 400:
        raise GiveawayMisconfigured()
    if answer.status != 200:
        raise UpstreamUnavailable(PEER, f"unexpected_answer_{answer.status}")
    return read_body(_GiveawayAnswer, answer, peer=PEER).giveaway
