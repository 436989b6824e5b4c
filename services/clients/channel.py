"""Client for the Channel service: ``GET /api/accounts/{account_id}/channel``, cached briefly."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from config import current_settings
from services.cache import cached, shared_cache
from services.clients.http import Int64, get_json, read_body
from services.errors import AccountNotFound, SubscriptionCheckUnavailable, UpstreamUnavailable

PEER = "channel"


def _at_name(value: str | None) -> str | None:
    if not value:
        return None
    return value if value.startswith("@") else f"@{value}"


class Channel(BaseModel):
    """The channel a giveaway account posts in."""

    model_config = ConfigDict(frozen=True)

    channel_id: Int64  # a Telegram chat id: 64 bits, as the Bot API documents (stored as BIGINT)
    channel_username: Annotated[str | None, AfterValidator(_at_name)] = None
    channel_title: str | None = None


class _ChannelAnswer(BaseModel):
    """The Channel service's 200 answer: ``{success, channel: {channel_id, channel_username,
    channel_title, ...}}``."""

    channel: Channel


def get_channel(account_id: int) -> Channel:
    """The account's channel; raises AccountNotFound, or SubscriptionCheckUnavailable when the
    account has no channel configured (nobody can be verified then)."""
    data = cached(
        shared_cache(),
        # "v2": fewer fields than the previous release cached, which it could not read (rolling
        # deploys share Redis).
        f"channel:v2:{account_id}",
        current_settings().channel_cache_seconds,
        lambda: _fetch(account_id).model_dump(),
    )
    return Channel.model_validate(data)


def _fetch(account_id: int) -> Channel:
    settings = current_settings()
    if not settings.channel_url:
        raise UpstreamUnavailable(PEER, "not_configured")
    answer = get_json(
        peer=PEER,
        resource=account_id,
        url=f"{settings.channel_url}/api/accounts/{account_id}/channel",
        timeout=(settings.upstream_connect_timeout, settings.upstream_timeout),
    )
    if answer.status == 404:
        code = answer.body.get("code") or answer.body.get("error_code")
        if code == "CHANNEL_NOT_CONFIGURED":
            raise SubscriptionCheckUnavailable(
                "This giveaway's channel is not configured yet; we cannot check subscriptions.",
                details={"reason": "channel_not_configured", "account_id": account_id},
            )
        raise AccountNotFound(details={"account_id": account_id})
    if answer.status != 200:
        raise UpstreamUnavailable(PEER, f"unexpected_answer_{answer.status}")
    return read_body(_ChannelAnswer, answer, peer=PEER).channel
