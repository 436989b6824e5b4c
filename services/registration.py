"""Taking part in a giveaway: the Bot's flow, in the order contract §3 prescribes.

input valid (schemas) → giveaway exists and is active → already registered? (return it) → captcha
completed globally? (else a challenge, keeping the pending registration) → subscribed? → insert.

Outgoing calls (Giveaway, Channel, Auth, Telegram) happen between transactions, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from models import GiveawayState, Membership, Participant, ParticipantUser
from services import captcha, prepared
from services.audit import EventType, record_event
from services.clients.channel import get_channel
from services.clients.giveaway import Giveaway, get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import GiveawayNotActive, NotSubscribed, ServiceError, UpstreamUnavailable
from services.numbering import NUMBER_EVERY, lock_key, number_some_now
from services.prepared import Prepared
from services.sql import upsert_insert
from services.subscription import (
    SubscriptionCheck,
    check_subscription,
    remember_answer,
    remembered_since,
)
from services.transaction import (
    autocommit_engine,
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
    # One write settles the order as far as the database knows it: already in? captcha done?
    # a "subscribed" answer from Telegram recent enough to rely on? then the entry.
    written = _write_entry(
        giveaway, user_id, pending, channel_id=_channel_id(giveaway.account_id), check=None
    )
    if written.entry is not None:
        return RegistrationResult(entry=written.entry)
    if not written.captcha_completed:
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
    engine = autocommit_engine()
    if engine is not None:
        row = prepared.fetch_one(engine, _STANDING_POSTGRES, parameters)
    else:
        with read_connection() as connection:
            row = connection.execute(_STANDING, parameters).one_or_none()
    if row is None:
        return _Standing(entry=None, captcha_completed=False)
    completed_at, username, first_name, last_name, entry_id, participated_at = row
    entry = None
    if entry_id is not None:
        entry = Entry(
            participant_id=entry_id, participated_at=participated_at, already_registered=True
        )
    profile = PendingRegistration(
        giveaway_id=giveaway_id, username=username, first_name=first_name, last_name=last_name
    )
    return _Standing(entry=entry, captcha_completed=completed_at is not None, profile=profile)


def _enter(giveaway: Giveaway, user_id: int, pending: PendingRegistration) -> Entry:
    check = check_subscription(account_id=giveaway.account_id, user_id=user_id, remember=False)
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
    written = _write_entry(
        giveaway, user_id, pending, channel_id=check.channel.channel_id, check=check
    )
    if written.entry is None:  # the captcha was completed just before: only a deleted user
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_user"})
    return written.entry


@dataclass(frozen=True)
class _Written:
    entry: Entry | None  # the new entry, or the user's existing one
    captcha_completed: bool


def _write_entry(
    giveaway: Giveaway,
    user_id: int,
    pending: PendingRegistration,
    *,
    channel_id: int | None,
    check: SubscriptionCheck | None,
) -> _Written:
    """Enter the user if everything allows it; ``check`` is Telegram's fresh "subscribed" answer
    (remembered with the entry), else only a remembered one will do."""
    ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id)
    written = _insert_entry(giveaway.id, user_id, pending, channel_id, check)
    if written is _NO_STATE:
        # The state row vanished under us (never in production: rows are not deleted); make it
        # again once rather than refusing the user.
        ensure_giveaway_state(giveaway.id, account_id=giveaway.account_id, force=True)
        written = _insert_entry(giveaway.id, user_id, pending, channel_id, check)
    if written is _NO_STATE:
        raise GiveawayNotActive(details={"giveaway_id": giveaway.id, "reason": "no_state"})
    return written


# PostgreSQL: the whole registration write in one round trip (prepared: planning it cost more
# than running it). A multi-statement string runs as one transaction on the server: the shared
# advisory lock first (a draw closing the giveaway waits for it), then, on a fresh snapshot:
# Telegram's fresh "subscribed" answer remembered (when one is given), and the entry with its
# audit event, only if the captcha is done, a fresh or recent-enough "subscribed" answer exists
# and entries are open. The answer also says what was missing, and names an existing entry.
_ENTER_LOCK = "SELECT pg_advisory_xact_lock_shared(%(lock_namespace)s, %(lock_key)s)"
_ENTER_POSTGRES = Prepared(
    "participant_enter",
    """
WITH captcha AS (
    SELECT 1 FROM participant_users
    WHERE user_id = %(user_id)s AND captcha_completed_at IS NOT NULL
), fresh AS (
    INSERT INTO participant_memberships (channel_id, user_id, status, verified_at)
    SELECT %(channel_id)s, %(user_id)s, %(status)s, %(verified_at)s
    WHERE %(verified_at)s IS NOT NULL
    ON CONFLICT (channel_id, user_id)
        DO UPDATE SET status = EXCLUDED.status, verified_at = EXCLUDED.verified_at
    RETURNING verified_at
), member AS (
    SELECT verified_at FROM fresh
    UNION ALL
    SELECT verified_at FROM participant_memberships
    WHERE channel_id = %(channel_id)s AND user_id = %(user_id)s AND verified_at > %(since)s
      AND %(verified_at)s IS NULL
), entry AS (
    INSERT INTO participant_entries
        (giveaway_id, user_id, username, first_name, last_name, participated_at,
         subscription_verified_at)
    SELECT %(giveaway_id)s, %(user_id)s, %(username)s, %(first_name)s, %(last_name)s, %(now)s,
           member.verified_at
    FROM member
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
SELECT (SELECT id FROM entry), EXISTS (SELECT 1 FROM captcha), EXISTS (SELECT 1 FROM member),
       existing.id, existing.participated_at
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
        "channel_id": "bigint",
        "status": "text",
        "verified_at": "timestamptz",
        "since": "timestamptz",
        "actor": "text",
        "request_id": "text",
    },
)
_NO_STATE = object()  # the giveaway's state row is missing


def _insert_entry(
    giveaway_id: int,
    user_id: int,
    pending: PendingRegistration,
    channel_id: int | None,
    check: SubscriptionCheck | None,
) -> _Written | object:
    """Insert the entry and its audit event in one transaction, in parallel with every other
    registration (entries are numbered later, in batches: ``services.numbering``).

    Returns the new entry, or the existing one when the user is already in (a parallel request
    may have won), or what was missing (captcha, subscription); ``_NO_STATE`` when the giveaway's
    state row is missing; raises GiveawayNotActive when a draw closed its entries.
    """
    now = utcnow()
    parameters = {
        "giveaway_id": giveaway_id,
        "user_id": user_id,
        "username": pending.username,
        "first_name": pending.first_name,
        "last_name": pending.last_name,
        "now": now,
        "channel_id": channel_id,
        "status": check.status if check else None,
        "verified_at": check.verified_at if check else None,
        "since": remembered_since(now),
        "actor": current_caller(),
        "request_id": current_request_id(),
    }
    engine = autocommit_engine()
    if engine is not None:
        written = prepared.fetch_one(
            engine, _ENTER_POSTGRES, {**parameters, **lock_key(giveaway_id)}, first=_ENTER_LOCK
        )
    else:
        written = _insert_entry_in_transaction(parameters, check)
    participant_id, captcha_completed, subscribed, existing_id, existing_at = written
    if existing_id is not None:
        entry = Entry(
            participant_id=existing_id, participated_at=existing_at, already_registered=True
        )
        return _Written(entry=entry, captcha_completed=True)
    if participant_id is not None:
        if participant_id % NUMBER_EVERY == 0:
            number_some_now(giveaway_id)
        entry = Entry(participant_id=participant_id, participated_at=now, already_registered=False)
        return _Written(entry=entry, captcha_completed=True)
    if not (captcha_completed and subscribed):
        return _Written(entry=None, captcha_completed=captcha_completed)
    return _why_not_entered(giveaway_id, user_id)


def _insert_entry_in_transaction(
    parameters: dict, check: SubscriptionCheck | None
) -> tuple[int | None, bool, bool, int | None, datetime | None]:
    """The same write as ``_ENTER_POSTGRES``, statement by statement (SQLite, where BEGIN
    IMMEDIATE already keeps a closing draw out of this transaction), with the same answer: the
    new entry's id, whether the captcha is done and a subscription known, the existing entry."""
    giveaway_id, user_id = parameters["giveaway_id"], parameters["user_id"]
    verified_at = parameters["verified_at"]
    with write_transaction() as session:
        if check is not None:
            remember_answer(session, check, user_id=user_id)
        elif parameters["channel_id"] is not None:
            verified_at = session.scalar(
                select(Membership.verified_at).where(
                    Membership.channel_id == parameters["channel_id"],
                    Membership.user_id == user_id,
                    Membership.verified_at > parameters["since"],
                )
            )
        existing = session.execute(
            select(_ENTRIES.c.id, _ENTRIES.c.participated_at).where(
                _ENTRIES.c.giveaway_id == giveaway_id, _ENTRIES.c.user_id == user_id
            )
        ).one_or_none()
        completed = session.scalar(
            select(_USERS.c.captcha_completed_at).where(_USERS.c.user_id == user_id)
        )
        subscribed = verified_at is not None
        if existing is not None:
            return None, completed is not None, subscribed, existing.id, existing.participated_at
        open_ = session.scalar(
            select(GiveawayState.giveaway_id).where(
                GiveawayState.giveaway_id == giveaway_id, GiveawayState.closed_at.is_(None)
            )
        )
        if completed is None or not subscribed or open_ is None:
            return None, completed is not None, subscribed, None, None
        participant_id = session.execute(
            upsert_insert(session, _ENTRIES)
            .values(
                giveaway_id=giveaway_id,
                user_id=user_id,
                username=parameters["username"],
                first_name=parameters["first_name"],
                last_name=parameters["last_name"],
                participated_at=parameters["now"],
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
                occurred_at=parameters["now"],
            )
        return participant_id, True, True, None, None


def _why_not_entered(giveaway_id: int, user_id: int) -> _Written | object:
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
        entry = Entry(
            participant_id=row.id, participated_at=row.participated_at, already_registered=True
        )
        return _Written(entry=entry, captcha_completed=True)
    if state is None:
        return _NO_STATE
    raise GiveawayNotActive(details={"giveaway_id": giveaway_id, "reason": "entries_closed"})


def _not_subscribed_message(username: str | None, title: str | None) -> str:
    if username:
        return f"Please subscribe to {username} first, then try again."
    if title:
        return f"Please subscribe to the channel “{title}” first, then try again."
    return NotSubscribed.message
