"""Is a user subscribed to a giveaway account's channel? Asked of Telegram, never assumed.

Subscribed means ``creator``, ``administrator``, ``member``, or ``restricted`` with
``is_member: true``. Anything that prevents a clear answer (Telegram 429/5xx/timeout, a bot that is
not admin, an unknown chat, a sibling service down) is ``SubscriptionCheckUnavailable``: retryable,
and never read as subscribed.

Telegram's "subscribed" answers are remembered in ``participant_memberships``, and a registration
may rely on one given within ``SUBSCRIPTION_CACHE_SECONDS`` (a returning user, or one the Bot just
checked with verify-subscription): it saves a Telegram call, and Telegram's per-bot rate limits,
in a burst. The registration reads it in its own write (``Store.enter``). Only
"subscribed" is remembered, so a user told to join who joins and taps again is asked afresh; a
fresh "not subscribed" forgets it at once; verify-subscription and the draw always ask Telegram
(a retried draw relies only on answers its earlier attempt got after the close: services/draws.py).

Every question to Telegram is paced by the bot's budget (``TELEGRAM_CALLS_PER_SECOND``). A
question that finds no slot in time is "cannot verify" (``over_budget``); what a registration
does then is ``SUBSCRIPTION_OVERFLOW``'s (services/registration.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from config import current_settings
from models import Membership
from services.clients.auth import forget_bot_credentials, get_bot_credentials
from services.clients.channel import Channel, get_channel
from services.clients.telegram import InvalidBotToken, get_chat_member
from services.errors import SubscriptionCheckUnavailable, UpstreamUnavailable
from services.store import store
from services.transaction import write_transaction
from utils.metrics import SUBSCRIPTION_CHECKS
from utils.timeutil import utcnow


@dataclass(frozen=True)
class SubscriptionCheck:
    """Telegram's verdict on one user in one channel."""

    is_subscribed: bool
    status: str
    channel: Channel
    verified_at: datetime


def check_subscription(
    *,
    account_id: int,
    user_id: int,
    remember: bool = True,
    budget_wait: float | None = None,
    spare_wait: float | None = None,
) -> SubscriptionCheck:
    """Ask Telegram (with the account's bot) whether the user is in the account's channel.

    A "subscribed" answer is remembered unless ``remember`` is false (the registration writes it
    with the entry; the draw has no use for it); a "not subscribed" one always forgets what was
    remembered. The question waits at most ``budget_wait`` seconds for a slot of the bot's
    budget (``TELEGRAM_BUDGET_WAIT_SECONDS`` when None); without one it is "cannot verify", with
    the seconds until the bot's next slot as ``retry_after``. ``spare_wait`` is for work that
    can wait (the pending verifier): only a slot nobody reserved, waited for that long at most.
    """
    try:
        channel = get_channel(account_id)
        credentials = get_bot_credentials(account_id)
        try:
            membership = get_chat_member(
                token=credentials.token,
                chat_id=channel.channel_id,
                user_id=user_id,
                budget_wait=budget_wait,
                spare_wait=spare_wait,
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
    if not check.is_subscribed or remember:
        with write_transaction() as session:
            if check.is_subscribed:
                remember_answer(
                    session,
                    channel_id=channel.channel_id,
                    user_id=user_id,
                    status=check.status,
                    verified_at=check.verified_at,
                )
            else:
                forget(session, channel_id=channel.channel_id, user_id=user_id)
    return check


def remembered_since(now: datetime) -> datetime:
    """The oldest "subscribed" answer a registration at ``now`` may rely on."""
    return now - timedelta(seconds=current_settings().subscription_cache_seconds)


def forget(session, *, channel_id: int, user_id: int) -> None:
    """Drop the remembered answer for this user and channel (in the caller's transaction)."""
    session.execute(
        delete(Membership).where(Membership.channel_id == channel_id, Membership.user_id == user_id)
    )


def forget_expired() -> int:
    """Delete the answers no registration may rely on any more; returns how many."""
    with write_transaction() as session:
        result = session.execute(
            delete(Membership).where(Membership.verified_at <= remembered_since(utcnow()))
        )
    return result.rowcount or 0


def remember_answer(
    session, *, channel_id: int, user_id: int, status: str, verified_at: datetime
) -> None:
    """Keep Telegram's "subscribed" answer for this user and channel (in the caller's
    transaction), replacing an older one."""
    statement = (
        store()
        .insert(Membership)
        .values(channel_id=channel_id, user_id=user_id, status=status, verified_at=verified_at)
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["channel_id", "user_id"],
            set_={
                "status": statement.excluded.status,
                "verified_at": statement.excluded.verified_at,
            },
        )
    )
