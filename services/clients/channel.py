"""Client for the Channel service: ``GET /api/accounts/{account_id}/channel``, cached briefly."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from config import current_settings
from services.cache import cached, shared_cache
from services.clients.http import get_json
from services.errors import AccountNotFound, SubscriptionCheckUnavailable, UpstreamUnavailable

PEER = "channel"


@dataclass(frozen=True)
class Channel:
    """The channel a giveaway account posts in."""

    channel_id: int
    channel_username: str | None
    channel_title: str | None
    is_verified: bool


def get_channel(account_id: int) -> Channel:
    """The account's channel; raises AccountNotFound, or SubscriptionCheckUnavailable when the
    account has no channel configured (nobody can be verified then)."""
    settings = current_settings()
    data = cached(
        shared_cache(),
        f"channel:{account_id}",
        settings.channel_cache_seconds,
        lambda: asdict(_fetch(account_id)),
    )
    return Channel(**data)


def _fetch(account_id: int) -> Channel:
    settings = current_settings()
    if not settings.channel_url:
        raise UpstreamUnavailable(PEER, "not_configured")
    answer = get_json(
        peer=PEER,
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
    channel = answer.body.get("channel")
    if answer.status != 200 or not isinstance(channel, dict):
        raise UpstreamUnavailable(PEER, f"unexpected_answer_{answer.status}")
    try:
        return Channel(
            channel_id=_chat_id(channel["channel_id"]),
            channel_username=_username(channel.get("channel_username")),
            channel_title=None
            if channel.get("channel_title") is None
            else str(channel["channel_title"]),
            is_verified=bool(channel.get("is_verified", False)),
        )
    except (KeyError, TypeError, ValueError):
        raise UpstreamUnavailable(PEER, "malformed_body") from None


def _chat_id(value: object) -> int:
    """A Telegram chat id: a 64-bit integer (as the Bot API documents; stored as BIGINT)."""
    chat_id = int(value)  # type: ignore[call-overload]
    if not -(2**63) <= chat_id < 2**63:
        raise ValueError("chat id out of range")
    return chat_id


def _username(value: object) -> str | None:
    if not value:
        return None
    text = str(value)
    return text if text.startswith("@") else f"@{text}"
