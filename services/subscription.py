"""Is a user subscribed to a giveaway account's channel? Asked of Telegram, never assumed.

Subscribed means ``creator``, ``administrator``, ``member``, or ``restricted`` with
``is_member: true``. Anything that prevents a clear answer (Telegram 429/5xx/timeout, a bot that is
not admin, an unknown chat, a sibling service down) is ``SubscriptionCheckUnavailable``: retryable,
and never read as subscribed.

A registration may rely on a "subscribed" answer Telegram gave within
``SUBSCRIPTION_CACHE_SECONDS`` (a returning user, or one the Bot just checked with
verify-subscription): it saves a Telegram call, and Telegram's per-bot rate limits, in a burst.
Only "subscribed" is remembered, so a user told to join who joins and taps again is asked about
afresh; a fresh "not subscribed" forgets it at once; and the draw always asks Telegram again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from config import current_settings
from services.cache import shared_cache
from services.clients.auth import forget_bot_credentials, get_bot_credentials
from services.clients.channel import Channel, get_channel
from services.clients.telegram import InvalidBotToken, get_chat_member
from services.errors import ServiceError, SubscriptionCheckUnavailable, UpstreamUnavailable
from utils.metrics import CACHE_LOOKUPS, SUBSCRIPTION_CHECKS
from utils.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class SubscriptionCheck:
    """Telegram's verdict on one user in one channel."""

    is_subscribed: bool
    status: str
    channel: Channel
    verified_at: datetime


def check_subscription(
    *, account_id: int, user_id: int, accept_recent: bool = False
) -> SubscriptionCheck:
    """Ask Telegram (with the account's bot) whether the user is in the account's channel.

    ``accept_recent``: a "subscribed" answer given within ``SUBSCRIPTION_CACHE_SECONDS`` will do
    (its ``verified_at`` is when Telegram gave it). Without it, Telegram is always asked.
    """
    if accept_recent:
        recent = recent_subscription(account_id=account_id, user_id=user_id)
        if recent is not None:
            return recent
    try:
        channel = get_channel(account_id)
        credentials = get_bot_credentials(account_id)
        try:
            membership = get_chat_member(
                token=credentials.token, chat_id=channel.channel_id, user_id=user_id
            )
        except InvalidBotToken:
            forget_bot_credentials(account_id)
            raise
    except UpstreamUnavailable as error:
        SUBSCRIPTION_CHECKS.labels("unavailable").inc()
        raise SubscriptionCheckUnavailable(
            details={"peer": error.peer, "reason": error.reason},
            retry_after=error.retry_after,
        ) from None
    SUBSCRIPTION_CHECKS.labels("subscribed" if membership.is_member else "not_subscribed").inc()
    check = SubscriptionCheck(
        is_subscribed=membership.is_member,
        status=membership.status,
        channel=channel,
        verified_at=utcnow(),
    )
    key = _key(channel, user_id)
    if check.is_subscribed:
        ttl = current_settings().subscription_cache_seconds
        shared_cache().set(
            key, {"status": check.status, "verified_at": check.verified_at.isoformat()}, ttl
        )
    else:
        shared_cache().delete(key)
    return check


def recent_subscription(*, account_id: int, user_id: int) -> SubscriptionCheck | None:
    """The "subscribed" answer Telegram gave within ``SUBSCRIPTION_CACHE_SECONDS``, if any.

    Never raises: whatever stands in the way (a sibling down, an unknown account) is found and
    reported by the full check, in its place in the registration order.
    """
    if current_settings().subscription_cache_seconds <= 0:
        return None
    try:
        channel = get_channel(account_id)
    except (ServiceError, UpstreamUnavailable):
        return None
    remembered = shared_cache().get(_key(channel, user_id))
    if remembered is None:
        CACHE_LOOKUPS.labels("member", "miss").inc()
        return None
    CACHE_LOOKUPS.labels("member", "hit").inc()
    return SubscriptionCheck(
        is_subscribed=True,
        status=remembered["status"],
        channel=channel,
        verified_at=as_utc(datetime.fromisoformat(remembered["verified_at"])),
    )


def _key(channel: Channel, user_id: int) -> str:
    return f"member:{channel.channel_id}:{user_id}"
