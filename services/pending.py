"""Entries admitted while Telegram was busy, and the verifier that confirms them later.

With ``SUBSCRIPTION_OVERFLOW=defer`` (the default) a first-time registration whose
``getChatMember`` finds no slot of its bot's budget within ``TELEGRAM_BUDGET_WAIT_SECONDS``, or
falls in the bot's flood wait, is entered all the same with status ``pending`` and a row in
``participant_pending_verifications`` (``Store.enter_pending``: one write). That table is the
work queue: rows in the database, shared by every instance, kept across restarts.

``verify_pending`` drains it (``flask verify-pending``: once, from a cron, or as a long-running
loop). Each of its workers takes one due row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on
SQLite the write lock every transaction takes first does the same), leases it for
``LEASE_SECONDS`` and asks Telegram within the bot's spare budget only
(``TelegramBudget.acquire_spare``: a slot nobody reserved, so registrations and the draw always
come first). Then, in one transaction that still holds its claim:

- subscribed: the entry becomes ``active`` (``subscription_verified_at`` set), audited
  ``subscription_verified``;
- not subscribed: the entry becomes ``excluded``, audited ``entry_excluded``: kept, never
  deleted, never a winner;
- and the row goes.

"Cannot verify" (Telegram failing, a bot that is not admin, a sibling down) leaves the entry
pending: the row waits ``RETRY_BASE_SECONDS``, doubled with each failure up to
``RETRY_MAX_SECONDS``. No spare slot within ``SLOT_PATIENCE_SECONDS``, or a flood wait, is no
failure: the row comes back when the bot may have room.

The draw reads ``candidate_statuses`` (which of its candidates are pending, or excluded) and
records what Telegram told it about pending candidates with ``settle_at_draw``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import Participant, PendingVerification
from services.audit import EventType, record_event
from services.errors import ServiceError, SubscriptionCheckUnavailable
from services.subscription import SubscriptionCheck, check_subscription
from services.transaction import read_only, write_transaction
from utils.metrics import PENDING_DUE, PENDING_OLDEST, PENDING_QUEUE, PENDING_VERIFICATIONS
from utils.request_context import set_request_context
from utils.timeutil import utcnow

# A claimed row is left alone by other verifiers this long: more than a verification can take
# (the spare-slot wait, two sibling look-ups and Telegram, each with its timeout).
LEASE_SECONDS = 60.0
# How long a claimed entry waits for a spare slot of its bot before it is put back.
SLOT_PATIENCE_SECONDS = 5.0
# The wait after "cannot verify": doubled with each failure of the entry, capped.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
# A row put back for want of a spare slot comes back after at least this.
ROOM_DELAY_SECONDS = 1.0
# A worker that finds nothing due waits for a row coming due within this, else its run ends.
IDLE_HORIZON_SECONDS = 10.0
# What a registration over the budget is told by Telegram's side that makes it deferrable:
# the bot's budget is spent, or the bot is in a flood wait. Anything else stays "cannot verify".
DEFERRABLE_REASONS = frozenset({"over_budget", "rate_limited"})
ACTOR = "verifier"
STATUS_PENDING = "pending"
STATUS_EXCLUDED = "excluded"

_QUEUE = PendingVerification.__table__
_ENTRIES = Participant.__table__
log = logging.getLogger("telegive.pending")


def is_deferrable(error: SubscriptionCheckUnavailable) -> bool:
    """Whether this "cannot verify" only says Telegram is busy for the bot (its budget spent, or
    a flood wait), so a registration may be entered pending verification."""
    details = error.details or {}
    return details.get("peer") == "telegram" and details.get("reason") in DEFERRABLE_REASONS


# --- the verifier -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A queue row a worker took: the entry to verify, and the claim it must still hold to
    record a verdict."""

    participant_id: int
    giveaway_id: int
    user_id: int
    account_id: int
    claims: int
    failures: int


@dataclass(frozen=True)
class QueueFigures:
    """The queue at a glance."""

    pending: int
    due: int
    oldest_enqueued_at: datetime | None

    def oldest_age(self, now: datetime) -> float:
        """Seconds the oldest pending entry has waited; 0 when none waits."""
        if self.oldest_enqueued_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_enqueued_at).total_seconds())


@dataclass
class VerifierRun:
    """What one run of the verifier did (outcome → entries), and the queue it left."""

    run_id: str
    outcomes: Counter[str] = field(default_factory=Counter)
    left: QueueFigures | None = None
    seconds: float = 0.0


def verify_pending(
    *, workers: int = 4, max_seconds: float | None = None, stop: threading.Event | None = None
) -> VerifierRun:
    """Verify pending entries until none is due (or due soon), ``max_seconds`` have passed or
    ``stop`` is set; ``workers`` entries at a time. Several runs, on any instances, may go at
    once: each entry is taken by one of them."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run = VerifierRun(run_id=uuid.uuid4().hex)
    started = time.monotonic()
    deadline = started + max_seconds if max_seconds is not None else float("inf")
    stop = stop or threading.Event()
    lock = threading.Lock()

    def work() -> None:
        with app.app_context():
            set_request_context(run.run_id, ACTOR)  # sent with every call, written in audit
            while time.monotonic() < deadline and not stop.is_set():
                claim = claim_next()
                if claim is None:
                    wait = seconds_until_due()
                    if wait is None or wait > IDLE_HORIZON_SECONDS:
                        return
                    # (a row due now but not taken is being claimed by another verifier)
                    stop.wait(min(max(wait, 0.05), max(0.0, deadline - time.monotonic())))
                    continue
                outcome = verify_claim(claim)
                with lock:
                    run.outcomes[outcome] += 1

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify-pending") as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()  # a worker's unexpected error fails the run (its row's lease ends)
    run.left = queue_figures()
    run.seconds = time.monotonic() - started
    log.log(
        logging.INFO if run.outcomes else logging.DEBUG,
        "pending verifications",
        extra={
            "run_id": run.run_id,
            "outcomes": dict(run.outcomes),
            "still_pending": run.left.pending,
            "due": run.left.due,
            "oldest_seconds": round(run.left.oldest_age(utcnow()), 1),
            "duration_ms": round(run.seconds * 1000, 1),
        },
    )
    return run


def claim_next() -> Claim | None:
    """Take the row due first that no other verifier holds, and lease it."""
    now = utcnow()
    q = _QUEUE.c
    with write_transaction() as session:
        row = session.execute(
            select(q.participant_id, q.giveaway_id, q.user_id, q.account_id, q.claims, q.failures)
            .where(q.next_attempt_at <= now)
            .order_by(q.next_attempt_at, q.participant_id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            return None
        session.execute(
            update(_QUEUE)
            .where(q.participant_id == row.participant_id)
            .values(claims=row.claims + 1, next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
        )
    return Claim(
        participant_id=row.participant_id,
        giveaway_id=row.giveaway_id,
        user_id=row.user_id,
        account_id=row.account_id,
        claims=row.claims + 1,
        failures=row.failures,
    )


def verify_claim(claim: Claim) -> str:
    """Ask Telegram about the claimed entry within the bot's spare budget and record what
    follows; returns the outcome (``verified``, ``excluded``, ``unverifiable``, ``postponed``, or
    ``stale`` when the claim was lost or the entry settled meanwhile)."""
    try:
        check = check_subscription(
            account_id=claim.account_id,
            user_id=claim.user_id,
            spare_wait=SLOT_PATIENCE_SECONDS,
        )
    except SubscriptionCheckUnavailable as error:
        if is_deferrable(error):
            return _put_back(claim, max(ROOM_DELAY_SECONDS, float(error.retry_after or 0)))
        return _retry_later(claim, str((error.details or {}).get("reason") or error.code))
    except ServiceError as error:  # the account or its channel is unknown to the siblings
        return _retry_later(claim, error.code.lower())
    return _settle(claim, check)


def _settle(claim: Claim, check: SubscriptionCheck) -> str:
    status = "active" if check.is_subscribed else STATUS_EXCLUDED
    values: dict = {"status": status}
    if check.is_subscribed:
        values["subscription_verified_at"] = check.verified_at
    with write_transaction() as session:
        if not _release(session, claim):
            return "stale"
        changed = session.execute(
            update(_ENTRIES)
            .where(_ENTRIES.c.id == claim.participant_id, _ENTRIES.c.status == STATUS_PENDING)
            .values(**values)
        ).rowcount
        if not changed:  # the draw settled it first
            return "stale"
        facts = {
            "participant_id": claim.participant_id,
            "status": check.status,
            "attempts": claim.claims,
            "by": ACTOR,
        }
        if not check.is_subscribed:
            facts["channel_username"] = check.channel.channel_username
        record_event(
            session,
            EventType.SUBSCRIPTION_VERIFIED if check.is_subscribed else EventType.ENTRY_EXCLUDED,
            giveaway_id=claim.giveaway_id,
            user_id=claim.user_id,
            facts=facts,
        )
    outcome = "verified" if check.is_subscribed else "excluded"
    PENDING_VERIFICATIONS.labels(outcome).inc()
    return outcome


def _release(session: Session, claim: Claim) -> bool:
    """Delete the claimed row if the claim still holds it (no one took it since)."""
    q = _QUEUE.c
    deleted = session.execute(
        delete(_QUEUE).where(q.participant_id == claim.participant_id, q.claims == claim.claims)
    ).rowcount
    return deleted == 1


def _retry_later(claim: Claim, reason: str) -> str:
    failures = claim.failures + 1
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (failures - 1))
    if not _reschedule(claim, delay, failures=failures, last_error=reason[:64]):
        return "stale"
    PENDING_VERIFICATIONS.labels("unverifiable").inc()
    return "unverifiable"


def _put_back(claim: Claim, delay: float) -> str:
    if not _reschedule(claim, delay):
        return "stale"
    PENDING_VERIFICATIONS.labels("postponed").inc()
    return "postponed"


def _reschedule(claim: Claim, delay: float, **values) -> bool:
    q = _QUEUE.c
    with write_transaction() as session:
        changed = session.execute(
            update(_QUEUE)
            .where(q.participant_id == claim.participant_id, q.claims == claim.claims)
            .values(next_attempt_at=utcnow() + timedelta(seconds=delay), **values)
        ).rowcount
    return changed == 1


def seconds_until_due() -> float | None:
    """Seconds until the next row comes due (0 if one is due); None when the queue is empty."""
    with read_only() as session:
        first = session.scalar(select(func.min(_QUEUE.c.next_attempt_at)))
    if first is None:
        return None
    return max(0.0, (first - utcnow()).total_seconds())


def queue_figures() -> QueueFigures:
    """Rows in the queue, those due now, and when the oldest was enqueued."""
    now = utcnow()
    q = _QUEUE.c
    with read_only() as session:
        pending, due, oldest = session.execute(
            select(
                func.count(),
                func.count().filter(q.next_attempt_at <= now),
                func.min(q.enqueued_at),
            ).select_from(_QUEUE)
        ).one()
    return QueueFigures(pending=pending or 0, due=due or 0, oldest_enqueued_at=oldest)


def refresh_gauges() -> None:
    """Read the queue into the pending-verification gauges (when /metrics is served); a database
    that cannot answer leaves them as they were: the metrics must still be served."""
    try:
        figures = queue_figures()
    except SQLAlchemyError as error:
        log.warning("pending queue unreadable for metrics", extra={"error": type(error).__name__})
        return
    PENDING_QUEUE.set(figures.pending)
    PENDING_DUE.set(figures.due)
    PENDING_OLDEST.set(figures.oldest_age(utcnow()))


# --- for the draw --------------------------------------------------------------------------------

_IN_CHUNK = 1_000


def candidate_statuses(giveaway_id: int, user_ids: Sequence[int]) -> dict[int, str]:
    """The status of each of these entrants that is not ``active``: ``pending`` (a fresh
    "subscribed" answer is needed before they may win), ``excluded`` (never a winner) or
    ``unsubscribed`` (found gone by an earlier draw). Entrants absent from the answer are
    active. One indexed look-up per thousand ids."""
    found: dict[int, str] = {}
    with read_only() as session:
        for start in range(0, len(user_ids), _IN_CHUNK):
            chunk = list(user_ids[start : start + _IN_CHUNK])
            found.update(
                session.execute(
                    select(_ENTRIES.c.user_id, _ENTRIES.c.status).where(
                        _ENTRIES.c.giveaway_id == giveaway_id,
                        _ENTRIES.c.user_id.in_(chunk),
                        _ENTRIES.c.status != "active",
                    )
                ).all()
            )
    return found


def settle_at_draw(
    session: Session,
    *,
    giveaway_id: int,
    subscribed: Mapping[int, str],
    not_subscribed: Mapping[int, str],
    verified_at: datetime,
) -> None:
    """In the draw's transaction: pending entrants Telegram just said are subscribed become
    ``active``, those it said are not ``excluded`` (each mapping: user id → Telegram's status);
    each audited, its queue row deleted. Entrants that are not pending (any more) are left as
    they are."""
    verdicts = [(user_id, True, status) for user_id, status in subscribed.items()]
    verdicts += [(user_id, False, status) for user_id, status in not_subscribed.items()]
    for user_id, is_subscribed, telegram_status in verdicts:
        values: dict = {"status": "active" if is_subscribed else STATUS_EXCLUDED}
        if is_subscribed:
            values["subscription_verified_at"] = verified_at
        participant_id = session.execute(
            update(_ENTRIES)
            .where(
                _ENTRIES.c.giveaway_id == giveaway_id,
                _ENTRIES.c.user_id == user_id,
                _ENTRIES.c.status == STATUS_PENDING,
            )
            .values(**values)
            .returning(_ENTRIES.c.id)
        ).scalar_one_or_none()
        if participant_id is None:
            continue
        session.execute(delete(_QUEUE).where(_QUEUE.c.participant_id == participant_id))
        record_event(
            session,
            EventType.SUBSCRIPTION_VERIFIED if is_subscribed else EventType.ENTRY_EXCLUDED,
            giveaway_id=giveaway_id,
            user_id=user_id,
            facts={"participant_id": participant_id, "status": telegram_status, "by": "draw"},
            occurred_at=verified_at,
        )
        PENDING_VERIFICATIONS.labels("verified" if is_subscribed else "excluded").inc()
