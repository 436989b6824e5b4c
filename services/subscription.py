"""Is a user subscribed to a giveaway account's channel? Asked of Telegram, never assumed.

Subscribed means ``creator``, ``administrator``, ``member``, or ``restricted`` with
``is_member: true``. Anything that prevents a clear answer (Telegram 429/5xx/timeout, a bot that is
not admin, an unknown chat, a sibling service down) is ``SubscriptionCheckUnavailable``: retryable,
and never read as subscribed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.clients.auth import forget_bot_credentials, get_bot_credentials
from services.clients.channel import Channel, get_channel
from services.clients.telegram import InvalidBotToken, get_chat_member
from services.errors import SubscriptionCheckUnavailable, UpstreamUnavailable
from utils.metrics import SUBSCRIPTION_CHECKS
from utils.timeutil import utcnow


@dataclass(frozen=True)
class SubscriptionCheck:
    """Telegram's verdict on one user in one channel."""

    is_subscribed: bool
    status: str
    channel: Channel
    verified_at: datetime


def check_subscription(*, account_id: int, user_id: int) -> SubscriptionCheck:
    """Ask Telegram (with the account's bot) whether the user is in the account's channel."""
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
    return SubscriptionCheck(
        is_subscribed=membership.is_member,
        status=membership.status,
        channel=channel,
        verified_at=utcnow(),
    )
