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
from services import captcha, prepared
from services.audit import EventType, record_event
from services.clients.giveaway import Giveaway, get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import GiveawayNotActive, NotSubscribed, ServiceError
from services.numbering import NUMBER_EVERY, lock_key, number_pending
from services.prepared import Prepared
from services.sql import upsert_insert
from services.subscription import check_subscription, recent_subscription
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
    pending = PendingRegistration(
        giveaway_id=giveaway_id, username=username, first_name=first_name, last_name=last_name
    )
    recent = recent_subscription(account_id=giveaway.account_id, user_id=user_id)
    if recent is not None:
        # Telegram said "subscribed" moments ago: the write itself settles the rest of the
        # order (already in? captcha done? entries open?), in one round trip on PostgreSQL.
        entry = _write_entry(giveaway, user_id, pending, recent.verified_at)
        if entry is not None:
            return RegistrationResult(entry=entry)
    standing = _standing(user_id=user_id, giveaway_id=giveaway_id)
    if standing.entry is not None:
        return RegistrationResult(entry=standing.entry)
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


# The same query, prepared, for PostgreSQL's hot path (no compilation, no planning per call).
_STANDING_POSTGRES = Prepared(
    "participant_standing",
    """
SELECT u.captcha_completed_at, u.username, u.first_name, u.last_name, e.id, e.participated_at
FROM participant_users u
LEFT JOIN participant_entries e ON e.user_id = u.user_id AND e.giveaway_id = %(giveaway_id)s
WHERE u.user_id = %(user_id)s
""",
    {"giveaway_id": "bigint", "user_id": "bigint"},
)


def _standing(*, user_id: int, giveaway_id: int) -> _Standing:
    """The user's entry in this giveaway (if any) and whether their captcha is done: one query."""
    parameters = {"giveaway_id": giveaway_id, "user_id": user_id}
    with read_connection() as connection:
        if connection.dialect.name == "postgresql":
            row = prepared.execute(connection, _STANDING_POSTGRES, parameters).one_or_none()
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
    check = check_subscription(account_id=giveaway.account_id, user_id=user_id, accept_recent=True)
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
    entry = _write_entry(giveaway, user_id, pending, check.verified_at)
    if entry is None:  # the captcha was completed just before; only a vanished user row gets here
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_user"})
    return entry


def _write_entry(
    giveaway: Giveaway, user_id: int, pending: PendingRegistration, verified_at: datetime
) -> Entry | None:
    """The entry (new, or the user's existing one), or None when the user's captcha is not done."""
    ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id)
    written = _insert_entry(giveaway.id, user_id, pending, verified_at)
    if written is _NO_STATE:
        # The state row vanished under us (never in production: rows are not deleted); make it
        # again once rather than refusing the user.
        ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id, force=True)
        written = _insert_entry(giveaway.id, user_id, pending, verified_at)
    if written is _NO_STATE:
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_state"})
    if written is _NO_CAPTCHA:
        return None
    return written


# PostgreSQL: the whole registration write in one round trip (prepared: planning it cost more
# than running it). A multi-statement string runs as one transaction on the server: the shared
# advisory lock first (a draw closing the giveaway waits for it), then, on a fresh snapshot, the
# entry and its audit event, only if the user's captcha is done and entries are open; the answer
# also names the user's existing entry, if any.
_ENTER_LOCK = "SELECT pg_advisory_xact_lock_shared(%(lock_namespace)s, %(lock_key)s)"
_ENTER_POSTGRES = Prepared(
    "participant_enter",
    """
WITH captcha AS (
    SELECT 1 FROM participant_users
    WHERE user_id = %(user_id)s AND captcha_completed_at IS NOT NULL
), entry AS (
    INSERT INTO participant_entries
        (giveaway_id, user_id, username, first_name, last_name, participated_at,
         subscription_verified_at)
    SELECT %(giveaway_id)s, %(user_id)s, %(username)s, %(first_name)s, %(last_name)s, %(now)s,
           %(verified_at)s
    WHERE EXISTS (SELECT 1 FROM captcha)
      AND EXISTS (SELECT 1 FROM participant_giveaways
                  WHERE giveaway_id = %(giveaway_id)s AND closed_at IS NULL)
    ON CONFLICT (giveaway_id, user_id) DO NOTHING
    RETURNING id
), event AS (
    INSERT INTO participant_audit_events
        (occurred_at, event_type, giveaway_id, user_id, actor, request_id, facts)
    SELECT %(now)s, 'participation', %(giveaway_id)s, %(user_id)s, %(actor)s, %(request_id)s,
           jsonb_build_object('participant_id', entry.id)
    FROM entry
)
SELECT (SELECT id FROM entry), EXISTS (SELECT 1 FROM captcha), existing.id,
       existing.participated_at
FROM (VALUES (1)) AS one
LEFT JOIN participant_entries existing
       ON existing.giveaway_id = %(giveaway_id)s AND existing.user_id = %(user_id)s
""",
    {
        "giveaway_id": "bigint",
        "user_id": "bigint",
        "username": "text",
        "first_name": "text",
        "last_name": "text",
        "now": "timestamptz",
        "verified_at": "timestamptz",
        "actor": "text",
        "request_id": "text",
    },
)
_NO_STATE = object()  # the giveaway's state row is missing
_NO_CAPTCHA = object()  # the user has not completed the captcha


def _insert_entry(
    giveaway_id: int, user_id: int, pending: PendingRegistration, verified_at: datetime
) -> Entry | object:
    """Insert the entry and its audit event in one transaction, in parallel with every other
    registration (entries are numbered later, in batches: ``services.numbering``).

    Returns the new entry, or the existing one when the user is already in (a parallel request
    may have won); ``_NO_CAPTCHA`` when the user's captcha is not done, ``_NO_STATE`` when the
    giveaway's state row is missing; raises GiveawayNotActive when a draw closed its entries.
    """
    now = utcnow()
    with autocommit_connection() as connection:
        if connection is not None:
            written = prepared.execute(
                connection,
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
                first=_ENTER_LOCK,
            ).one()
        else:
            written = _insert_entry_in_transaction(giveaway_id, user_id, pending, verified_at, now)
    participant_id, captcha_completed, existing_id, existing_at = written
    if existing_id is not None:
        return Entry(
            participant_id=existing_id, participated_at=existing_at, already_registered=True
        )
    if participant_id is not None:
        if participant_id % NUMBER_EVERY == 0:
            number_pending(giveaway_id, wait=False, limit=10_000)
        return Entry(participant_id=participant_id, participated_at=now, already_registered=False)
    if not captcha_completed:
        return _NO_CAPTCHA
    return _why_not_entered(giveaway_id, user_id)


def _insert_entry_in_transaction(
    giveaway_id: int,
    user_id: int,
    pending: PendingRegistration,
    verified_at: datetime,
    now: datetime,
) -> tuple[int | None, bool, int | None, datetime | None]:
    """The same write as ``_ENTER_POSTGRES``, statement by statement (SQLite, where BEGIN
    IMMEDIATE already keeps a closing draw out of this transaction), with the same answer: the
    new entry's id, whether the captcha is done, the existing entry's id and time."""
    with write_transaction() as session:
        existing = session.execute(
            select(_ENTRIES.c.id, _ENTRIES.c.participated_at).where(
                _ENTRIES.c.giveaway_id == giveaway_id, _ENTRIES.c.user_id == user_id
            )
        ).one_or_none()
        if existing is not None:
            return None, True, existing.id, existing.participated_at
        completed = session.scalar(
            select(_USERS.c.captcha_completed_at).where(_USERS.c.user_id == user_id)
        )
        if completed is None:
            return None, False, None, None
        open_ = session.scalar(
            select(GiveawayState.giveaway_id).where(
                GiveawayState.giveaway_id == giveaway_id, GiveawayState.closed_at.is_(None)
            )
        )
        if open_ is None:
            return None, True, None, None
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
        return participant_id, True, None, None


def _why_not_entered(giveaway_id: int, user_id: int) -> Entry | object:
    """After a write that inserted nothing although the captcha is done: the user got in
    meanwhile, or entries are closed, or the giveaway's state row is missing (``_NO_STATE``)."""
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
        return _NO_STATE
    raise GiveawayNotActive(details={"giveaway_id": giveaway_id, "reason": "entries_closed"})


def _not_subscribed_message(username: str | None, title: str | None) -> str:
    if username:
        return f"Please subscribe to {username} first, then try again."
    if title:
        return f"Please subscribe to the channel “{title}” first, then try again."
    return NotSubscribed.message
