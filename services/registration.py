"""Taking part in a giveaway: the Bot's flow, in the order contract §3 prescribes.

input valid (schemas) → giveaway exists and is active → already registered? (return it) → captcha
completed globally? (else a challenge, keeping the pending registration) → subscribed? → insert.

Outgoing calls (Giveaway, Channel, Auth, Telegram) happen between transactions, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from models import GiveawayState, Participant, ParticipantUser
from services import captcha
from services.audit import EventType, record_event
from services.clients.giveaway import Giveaway, get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import GiveawayNotActive, NotSubscribed, ServiceError
from services.numbering import NUMBER_EVERY, lock_key, number_pending
from services.sql import upsert_insert
from services.subscription import check_subscription
from services.transaction import (
    autocommit_connection,
    read_connection,
    read_only,
    write_transaction,
)
from utils.captcha import Decision, Outcome, PendingRegistration
from utils.metrics import REGISTRATIONS
from utils.request_context import current_caller, current_request_id
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


_USERS = ParticipantUser.__table__
_ENTRIES = Participant.__table__
# Built once: the hot path only binds values.
_STANDING = (
    select(
        _USERS.c.captcha_completed_at,
        _USERS.c.username,
        _USERS.c.first_name,
        _USERS.c.last_name,
        _ENTRIES.c.id,
        _ENTRIES.c.participated_at,
    )
    .select_from(
        _USERS.outerjoin(
            _ENTRIES,
            and_(
                _ENTRIES.c.user_id == _USERS.c.user_id,
                _ENTRIES.c.giveaway_id == bindparam("giveaway_id"),
            ),
        )
    )
    .where(_USERS.c.user_id == bindparam("user_id"))
)


# The same query as plain SQL for PostgreSQL's hot path (no statement compilation per call).
_STANDING_POSTGRES = """
SELECT u.captcha_completed_at, u.username, u.first_name, u.last_name, e.id, e.participated_at
FROM participant_users u
LEFT JOIN participant_entries e ON e.user_id = u.user_id AND e.giveaway_id = %(giveaway_id)s
WHERE u.user_id = %(user_id)s
"""


def _standing(*, user_id: int, giveaway_id: int) -> _Standing:
    """The user's entry in this giveaway (if any) and whether their captcha is done: one query."""
    parameters = {"giveaway_id": giveaway_id, "user_id": user_id}
    with read_connection() as connection:
        if connection.dialect.name == "postgresql":
            row = connection.exec_driver_sql(_STANDING_POSTGRES, parameters).one_or_none()
        else:
            row = connection.execute(_STANDING, parameters).one_or_none()
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


# PostgreSQL: the whole registration write in one round trip. A multi-statement string runs as
# one transaction on the server: the shared advisory lock first (a draw closing the giveaway waits
# for it), then, on a fresh snapshot, the entry and its audit event, only if entries are open.
_ENTER_POSTGRES = """
SELECT pg_advisory_xact_lock_shared(%(lock_namespace)s, %(lock_key)s);
WITH entry AS (
    INSERT INTO participant_entries
        (giveaway_id, user_id, username, first_name, last_name, participated_at,
         subscription_verified_at)
    SELECT %(giveaway_id)s, %(user_id)s, %(username)s, %(first_name)s, %(last_name)s, %(now)s,
           %(verified_at)s
    WHERE EXISTS (SELECT 1 FROM participant_giveaways
                  WHERE giveaway_id = %(giveaway_id)s AND closed_at IS NULL)
    ON CONFLICT (giveaway_id, user_id) DO NOTHING
    RETURNING id
)
INSERT INTO participant_audit_events
    (occurred_at, event_type, giveaway_id, user_id, actor, request_id, facts)
SELECT %(now)s, 'participation', %(giveaway_id)s, %(user_id)s, %(actor)s, %(request_id)s,
       jsonb_build_object('participant_id', entry.id)
FROM entry
RETURNING (facts ->> 'participant_id')::bigint
"""


def _insert_entry(
    giveaway_id: int, user_id: int, pending: PendingRegistration, verified_at: datetime
) -> Entry | None:
    """Insert the entry and its audit event in one transaction, in parallel with every other
    registration (entries are numbered later, in batches: ``services.numbering``).

    Returns the existing entry when the user is already in (a parallel request won), and None when
    the giveaway's state row is missing; raises GiveawayNotActive when a draw closed its entries.
    """
    now = utcnow()
    with autocommit_connection() as connection:
        if connection is not None:
            participant_id = connection.exec_driver_sql(
                _ENTER_POSTGRES,
                {
                    **lock_key(giveaway_id),
                    "giveaway_id": giveaway_id,
                    "user_id": user_id,
                    "username": pending.username,
                    "first_name": pending.first_name,
                    "last_name": pending.last_name,
                    "now": now,
                    "verified_at": verified_at,
                    "actor": current_caller(),
                    "request_id": current_request_id(),
                },
            ).scalar()
        else:
            participant_id = _insert_entry_in_transaction(
                giveaway_id, user_id, pending, verified_at, now
            )
    if participant_id is None:
        return _why_not_entered(giveaway_id, user_id)
    if participant_id % NUMBER_EVERY == 0:
        number_pending(giveaway_id, wait=False, limit=10_000)
    return Entry(participant_id=participant_id, participated_at=now, already_registered=False)


def _insert_entry_in_transaction(
    giveaway_id: int,
    user_id: int,
    pending: PendingRegistration,
    verified_at: datetime,
    now: datetime,
) -> int | None:
    """The same write as ``_ENTER_POSTGRES``, statement by statement (SQLite, where BEGIN
    IMMEDIATE already keeps a closing draw out of this transaction)."""
    with write_transaction() as session:
        open_ = session.scalar(
            select(GiveawayState.giveaway_id).where(
                GiveawayState.giveaway_id == giveaway_id, GiveawayState.closed_at.is_(None)
            )
        )
        if open_ is None:
            return None
        participant_id = session.execute(
            upsert_insert(session, _ENTRIES)
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
            .returning(_ENTRIES.c.id)
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
        return participant_id


def _why_not_entered(giveaway_id: int, user_id: int) -> Entry | None:
    """After a write that inserted nothing: the user was already in, or entries are closed, or
    the giveaway's state row is missing (None)."""
    with read_only() as session:
        row = session.execute(
            select(Participant.id, Participant.participated_at).where(
                Participant.giveaway_id == giveaway_id, Participant.user_id == user_id
            )
        ).one_or_none()
        state = session.get(GiveawayState, giveaway_id)
    if row is not None:
        return Entry(
            participant_id=row.id, participated_at=row.participated_at, already_registered=True
        )
    if state is None:
        return None
    raise GiveawayNotActive(details={"giveaway_id": giveaway_id, "reason": "entries_closed"})


def _not_subscribed_message(username: str | None, title: str | None) -> str:
    if username:
        return f"Please subscribe to {username} first, then try again."
    if title:
        return f"Please subscribe to the channel “{title}” first, then try again."
    return NotSubscribed.message
