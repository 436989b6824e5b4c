"""Taking part in a giveaway: the Bot's flow, in the order docs/contract.md §3 prescribes.

input valid (schemas) → giveaway exists and is active → already registered? (return it) → captcha
completed globally? (else a challenge, keeping the pending registration) → subscribed? → insert.

When Telegram cannot be asked in time because the bot's budget is spent (or the bot is in a flood
wait), ``SUBSCRIPTION_OVERFLOW`` decides: ``defer`` enters the user pending verification (the
answer is a success with ``subscription_pending``; services/pending.py verifies it later),
``refuse`` answers 503 ``SUBSCRIPTION_CHECK_UNAVAILABLE`` and writes nothing.

Outgoing calls (Giveaway, Channel, Auth, Telegram) happen between transactions, never inside one.
The database work is the store's (``Store.standing``, ``Store.enter``, ``Store.enter_pending``):
one read and one write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from config import current_settings
from models import GiveawayState, Participant
from services import captcha
from services.audit import EventType, record_event
from services.clients.channel import get_channel
from services.clients.giveaway import Giveaway, get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import (
    GiveawayNotActive,
    NotSubscribed,
    ServiceError,
    SubscriptionCheckUnavailable,
    UpstreamUnavailable,
)
from services.numbering import NUMBER_EVERY, number_some_now
from services.pending import STATUS_PENDING, is_deferrable
from services.store import EntryAttempt, EntryRequest, ExistingEntry, store
from services.subscription import SubscriptionCheck, check_subscription, remembered_since
from services.transaction import read_only, write_transaction
from utils.captcha import Decision, Outcome, PendingRegistration
from utils.metrics import PENDING_VERIFICATIONS, REGISTRATIONS
from utils.request_context import current_caller, current_request_id
from utils.timeutil import utcnow


@dataclass(frozen=True)
class Entry:
    """A user's entry in a giveaway, and its status (models/participant.py)."""

    participant_id: int
    participated_at: datetime
    already_registered: bool
    status: str = "active"

    @property
    def subscription_pending(self) -> bool:
        """Entered while Telegram was busy: the subscription is still to be confirmed."""
        return self.status == STATUS_PENDING

    @classmethod
    def existing(cls, entry: ExistingEntry) -> Entry:
        return cls(entry.participant_id, entry.participated_at, True, status=entry.status)


@dataclass(frozen=True)
class CaptchaRequired:
    """The user must answer this challenge before they can take part."""

    challenge: Decision


RegistrationResult = Entry | CaptchaRequired
# A judged answer that did not complete the registration: wrong, repeated, or a new question.
CaptchaAnswerResult = Entry | Decision


def register_participant(
    *,
    giveaway_id: int,
    user_id: int,
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> RegistrationResult:
    """Enter the user in the giveaway, or issue the captcha they must pass first."""
    try:
        result = _register(giveaway_id, user_id, username, first_name, last_name)
    except ServiceError as error:
        REGISTRATIONS.labels(error.code.lower()).inc()
        raise
    match result:
        case CaptchaRequired():
            REGISTRATIONS.labels("captcha_required").inc()
        case Entry(already_registered=True):
            REGISTRATIONS.labels("already_registered").inc()
        case Entry(status="pending"):
            REGISTRATIONS.labels("entered_pending").inc()
        case Entry():
            REGISTRATIONS.labels("entered").inc()
    return result


def _register(
    giveaway_id: int,
    user_id: int,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
) -> RegistrationResult:
    giveaway = _active_giveaway(giveaway_id)
    pending = PendingRegistration(
        giveaway_id=giveaway_id, username=username, first_name=first_name, last_name=last_name
    )
    # One write settles the order as far as the database knows it: already in? captcha done?
    # a "subscribed" answer from Telegram recent enough to rely on? then the entry.
    written = _write_entry(giveaway, user_id, pending, _channel_id(giveaway.account_id), None)
    if isinstance(written, Entry):
        return written
    if not written.captcha_completed:
        challenge = captcha.request_challenge(user_id=user_id, pending=pending)
        if challenge.outcome is not Outcome.PASSED:
            return CaptchaRequired(challenge)
    return _enter(giveaway, user_id, pending)


def answer_captcha(*, user_id: int, giveaway_id: int, answer: int) -> CaptchaAnswerResult:
    """Judge the answer; a right one completes the pending registration in the same call.

    Idempotent under the Bot's retries: once the captcha is completed, a repeated call goes straight
    to the (idempotent) registration and returns the same entry.
    """
    standing = store().standing(user_id=user_id, giveaway_id=giveaway_id)
    if standing.entry is not None:
        return Entry.existing(standing.entry)
    profile = PendingRegistration(
        giveaway_id=giveaway_id,
        username=standing.username,
        first_name=standing.first_name,
        last_name=standing.last_name,
    )
    if not standing.captcha_completed:
        decision = captcha.submit_answer(
            user_id=user_id, answer=answer, pending=PendingRegistration(giveaway_id=giveaway_id)
        )
        if decision.outcome is not Outcome.PASSED:
            return decision
        profile = decision.state.pending or PendingRegistration(giveaway_id=giveaway_id)
    try:
        result = register_participant(
            giveaway_id=giveaway_id,
            user_id=user_id,
            username=profile.username,
            first_name=profile.first_name,
            last_name=profile.last_name,
        )
    except ServiceError as error:
        # The captcha is done whatever happens next; the caller needs to know.
        error.extra["captcha_completed"] = True
        raise
    return result.challenge if isinstance(result, CaptchaRequired) else result


def _channel_id(account_id: int) -> int | None:
    """The account's channel, or None when it cannot be known now (the Telegram check that
    follows, in its place in the order, reports why)."""
    try:
        return get_channel(account_id).channel_id
    except (ServiceError, UpstreamUnavailable):
        return None


def _active_giveaway(giveaway_id: int) -> Giveaway:
    giveaway = get_giveaway(giveaway_id)
    if not giveaway.is_active:
        raise GiveawayNotActive(details={"giveaway_id": giveaway_id, "status": giveaway.status})
    return giveaway


def _enter(giveaway: Giveaway, user_id: int, pending: PendingRegistration) -> Entry:
    try:
        check = check_subscription(account_id=giveaway.account_id, user_id=user_id, remember=False)
    except SubscriptionCheckUnavailable as error:
        if current_settings().subscription_overflow != "defer" or not is_deferrable(error):
            raise
        return _enter_pending(giveaway, user_id, pending)
    if not check.is_subscribed:
        channel = {
            "channel_username": check.channel.channel_username,
            "channel_title": check.channel.channel_title,
        }
        with write_transaction() as session:
            record_event(
                session,
                EventType.SUBSCRIPTION_REFUSED,
                giveaway_id=giveaway.id,
                user_id=user_id,
                facts={"status": check.status, **channel},
            )
        raise NotSubscribed(
            _not_subscribed_message(check.channel.channel_username, check.channel.channel_title),
            details=channel,
            extra={"channel_info": {"channel_id": check.channel.channel_id, **channel}},
        )
    written = _write_entry(giveaway, user_id, pending, check.channel.channel_id, check)
    if not isinstance(written, Entry):  # the captcha was completed just before: a deleted user
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_user"})
    return written


def _enter_pending(giveaway: Giveaway, user_id: int, pending: PendingRegistration) -> Entry:
    """Telegram is busy for the giveaway's bot: enter the user pending verification."""
    written = _write_entry(giveaway, user_id, pending, None, None, defer=True)
    if not isinstance(written, Entry):  # as in _enter
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_user"})
    if not written.already_registered:
        PENDING_VERIFICATIONS.labels("enqueued").inc()
    return written


def _write_entry(
    giveaway: Giveaway,
    user_id: int,
    pending: PendingRegistration,
    channel_id: int | None,
    check: SubscriptionCheck | None,
    *,
    defer: bool = False,
    retried: bool = False,
) -> Entry | EntryAttempt:
    """Enter the user if everything allows it; ``check`` is Telegram's fresh "subscribed" answer
    (remembered with the entry), else only a remembered one will do; with ``defer`` none is
    needed and the entry is pending verification.

    Returns the new entry, or the existing one when the user is already in (a parallel request
    may have won), or the attempt saying what was missing (captcha, subscription); raises
    GiveawayNotActive when a draw closed the giveaway's entries.
    """
    ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id)
    now = utcnow()
    request = EntryRequest(
        giveaway_id=giveaway.id,
        user_id=user_id,
        username=pending.username,
        first_name=pending.first_name,
        last_name=pending.last_name,
        now=now,
        channel_id=channel_id,
        fresh_status=check.status if check else None,
        fresh_verified_at=check.verified_at if check else None,
        remembered_since=remembered_since(now),
        actor=current_caller(),
        request_id=current_request_id(),
        account_id=giveaway.account_id,
    )
    attempt = store().enter_pending(request) if defer else store().enter(request)
    if attempt.existing is not None:
        return Entry.existing(attempt.existing)
    if attempt.participant_id is not None:
        if attempt.participant_id % NUMBER_EVERY == 0:
            number_some_now(giveaway.id)
        status = STATUS_PENDING if defer else "active"
        return Entry(attempt.participant_id, now, already_registered=False, status=status)
    if not (attempt.captcha_completed and (attempt.subscribed or defer)):
        return attempt
    # Everything allowed the entry yet nothing was inserted: the user got in meanwhile, or the
    # giveaway's entries are closed, or its state row vanished (never in production: rows are
    # not deleted; made again once rather than refusing the user).
    with read_only() as session:
        entered = session.execute(
            select(Participant.id, Participant.participated_at, Participant.status).where(
                Participant.giveaway_id == giveaway.id, Participant.user_id == user_id
            )
        ).one_or_none()
        state = session.get(GiveawayState, giveaway.id)
    if entered is not None:
        return Entry(entered.id, entered.participated_at, True, status=entered.status)
    if state is None and not retried:
        ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id, force=True)
        return _write_entry(
            giveaway, user_id, pending, channel_id, check, defer=defer, retried=True
        )
    raise GiveawayNotActive(
        details={
            "giveaway_id": giveaway.id,
            "reason": "entries_closed" if state is not None else "no_state",
        }
    )


def _not_subscribed_message(username: str | None, title: str | None) -> str:
    if username:
        return f"Please subscribe to {username} first, then try again."
    if title:
        return f"Please subscribe to the channel “{title}” first, then try again."
    return NotSubscribed.message
