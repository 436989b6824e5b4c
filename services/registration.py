"""Taking part in a giveaway: the Bot's flow, in the order contract §3 prescribes.

input valid (schemas) → giveaway exists and is active → already registered? (return it) → captcha
completed globally? (else a challenge, keeping the pending registration) → subscribed? → insert.

Outgoing calls (Giveaway, Channel, Auth, Telegram) happen between transactions, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from models import GiveawayState, Participant, ParticipantUser
from services import captcha
from services.audit import EventType, record_event
from services.clients.giveaway import Giveaway, get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import GiveawayNotActive, NotSubscribed, ServiceError
from services.numbering import NUMBER_EVERY, hold_entries_open, number_pending
from services.sql import upsert_insert
from services.subscription import check_subscription
from services.transaction import read_only, write_transaction
from utils.captcha import Decision, Outcome, PendingRegistration
from utils.metrics import REGISTRATIONS
from utils.timeutil import utcnow


@dataclass(frozen=True)
class Entry:
    """A user's entry in a giveaway."""

    participant_id: int
    participated_at: datetime
    already_registered: bool


@dataclass(frozen=True)
class RegistrationResult:
    """Either an entry, or the captcha challenge the user must answer first."""

    entry: Entry | None = None
    challenge: Decision | None = None


@dataclass(frozen=True)
class CaptchaAnswerResult:
    """A judged answer, and the entry when it completed the registration."""

    decision: Decision | None
    entry: Entry | None = None


@dataclass(frozen=True)
class _Standing:
    entry: Entry | None
    captcha_completed: bool
    profile: PendingRegistration | None = None  # the names kept when the captcha was passed


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
    if result.challenge is not None:
        REGISTRATIONS.labels("captcha_required").inc()
    else:
        REGISTRATIONS.labels(
            "already_registered" if result.entry.already_registered else "entered"
        ).inc()
    return result


def _register(
    giveaway_id: int,
    user_id: int,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
) -> RegistrationResult:
    giveaway = _active_giveaway(giveaway_id)
    standing = _standing(user_id=user_id, giveaway_id=giveaway_id)
    if standing.entry is not None:
        return RegistrationResult(entry=standing.entry)
    pending = PendingRegistration(
        giveaway_id=giveaway_id, username=username, first_name=first_name, last_name=last_name
    )
    if not standing.captcha_completed:
        challenge = captcha.request_challenge(user_id=user_id, pending=pending)
        if challenge.outcome is not Outcome.PASSED:
            return RegistrationResult(challenge=challenge)
    return RegistrationResult(entry=_enter(giveaway, user_id, pending))


def answer_captcha(*, user_id: int, giveaway_id: int, answer: int) -> CaptchaAnswerResult:
    """Judge the answer; a right one completes the pending registration in the same call.

    Idempotent under the Bot's retries: once the captcha is completed, a repeated call goes straight
    to the (idempotent) registration and returns the same entry.
    """
    standing = _standing(user_id=user_id, giveaway_id=giveaway_id)
    if standing.entry is not None:
        return CaptchaAnswerResult(decision=None, entry=standing.entry)
    decision = None
    profile = standing.profile
    if not standing.captcha_completed:
        decision = captcha.submit_answer(
            user_id=user_id, answer=answer, pending=PendingRegistration(giveaway_id=giveaway_id)
        )
        if decision.outcome is not Outcome.PASSED:
            return CaptchaAnswerResult(decision=decision)
        profile = decision.state.pending
    try:
        result = register_participant(
            giveaway_id=giveaway_id,
            user_id=user_id,
            username=profile.username if profile else None,
            first_name=profile.first_name if profile else None,
            last_name=profile.last_name if profile else None,
        )
    except ServiceError as error:
        # The captcha is done whatever happens next; the caller needs to know.
        error.extra["captcha_completed"] = True
        raise
    return CaptchaAnswerResult(decision=decision, entry=result.entry)


def _active_giveaway(giveaway_id: int) -> Giveaway:
    giveaway = get_giveaway(giveaway_id)
    if not giveaway.is_active:
        raise GiveawayNotActive(details={"giveaway_id": giveaway_id, "status": giveaway.status})
    return giveaway


def _standing(*, user_id: int, giveaway_id: int) -> _Standing:
    """The user's entry in this giveaway (if any) and whether their captcha is done: one query."""
    with read_only() as session:
        row = session.execute(
            select(
                ParticipantUser.captcha_completed_at,
                ParticipantUser.username,
                ParticipantUser.first_name,
                ParticipantUser.last_name,
                Participant.id,
                Participant.participated_at,
            )
            .select_from(ParticipantUser)
            .outerjoin(
                Participant,
                and_(
                    Participant.user_id == ParticipantUser.user_id,
                    Participant.giveaway_id == giveaway_id,
                ),
            )
            .where(ParticipantUser.user_id == user_id)
        ).one_or_none()
    if row is None:
        return _Standing(entry=None, captcha_completed=False)
    entry = None
    if row.id is not None:
        entry = Entry(
            participant_id=row.id, participated_at=row.participated_at, already_registered=True
        )
    profile = PendingRegistration(
        giveaway_id=giveaway_id,
        username=row.username,
        first_name=row.first_name,
        last_name=row.last_name,
    )
    return _Standing(
        entry=entry, captcha_completed=row.captcha_completed_at is not None, profile=profile
    )


def _enter(giveaway: Giveaway, user_id: int, pending: PendingRegistration) -> Entry:
    check = check_subscription(account_id=giveaway.account_id, user_id=user_id)
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
    ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id)
    entry = _insert_entry(giveaway.id, user_id, pending, check.verified_at)
    if entry is None:
        # The state row vanished under us (never in production: rows are not deleted); make it
        # again once rather than refusing the user.
        ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id, force=True)
        entry = _insert_entry(giveaway.id, user_id, pending, check.verified_at)
    if entry is None:
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_state"})
    return entry


def _insert_entry(
    giveaway_id: int, user_id: int, pending: PendingRegistration, verified_at: datetime
) -> Entry | None:
    """Insert the entry and its audit event in one transaction, in parallel with every other
    registration (entries are numbered later, in batches: ``services.numbering``).

    Returns the existing entry when the user is already in (a parallel request won), and None when
    the giveaway's state row is missing; raises GiveawayNotActive when a draw closed its entries.
    """
    now = utcnow()
    with write_transaction() as session:
        hold_entries_open(session, giveaway_id)
        state = session.execute(
            select(GiveawayState.closed_at).where(GiveawayState.giveaway_id == giveaway_id)
        ).first()
        if state is None:
            return None
        if state.closed_at is not None:
            raise GiveawayNotActive(
                details={"giveaway_id": giveaway_id, "reason": "entries_closed"}
            )
        participant_id = session.execute(
            upsert_insert(session, Participant.__table__)
            .values(
                giveaway_id=giveaway_id,
                user_id=user_id,
                username=pending.username,
                first_name=pending.first_name,
                last_name=pending.last_name,
                participated_at=now,
                subscription_verified_at=verified_at,
            )
            .on_conflict_do_nothing(index_elements=["giveaway_id", "user_id"])
            .returning(Participant.__table__.c.id)
        ).scalar_one_or_none()
        if participant_id is not None:
            record_event(
                session,
                EventType.PARTICIPATION,
                giveaway_id=giveaway_id,
                user_id=user_id,
                facts={"participant_id": participant_id},
                occurred_at=now,
            )
    if participant_id is None:
        return _existing_entry(giveaway_id, user_id)
    if participant_id % NUMBER_EVERY == 0:
        number_pending(giveaway_id, wait=False, limit=10_000)
    return Entry(participant_id=participant_id, participated_at=now, already_registered=False)


def _existing_entry(giveaway_id: int, user_id: int) -> Entry:
    with read_only() as session:
        row = session.execute(
            select(Participant.id, Participant.participated_at).where(
                Participant.giveaway_id == giveaway_id, Participant.user_id == user_id
            )
        ).one()
    return Entry(
        participant_id=row.id, participated_at=row.participated_at, already_registered=True
    )


def _not_subscribed_message(username: str | None, title: str | None) -> str:
    if username:
        return f"Please subscribe to {username} first, then try again."
    if title:
        return f"Please subscribe to the channel “{title}” first, then try again."
    return NotSubscribed.message
