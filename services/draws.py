"""Winner selection: ``secrets``-grade, idempotent, verifiable and steerable by no one.

A draw (``telegive-draw`` v2, ``utils/draw.py``) runs in steps so that no outgoing call happens
inside a transaction:

1. close entries: take the giveaway's registration lock exclusively
   (``Store.exclude_registrations``: it waits for registrations in flight, and a registration that
   comes later finds ``closed_at`` set), then set ``closed_at`` under the state row's lock and,
   in the same transaction, fix what commits the list — the closed list and a secret salt
   key — and the beacon round: the first drand round published after that moment;
2. commit the list: read the canonical entrant list (user ids only, no ORM objects), build the
   Merkle tree over its salted leaves and write the root, once (every instance computes the same
   root from the same list and key), while the round is still to come;
3. compute, outside any transaction: wait for that round, fetch it and verify its signature
   (``services/beacon.py``; unavailable: a retryable 503, nothing recorded, the same round next
   time), mix our committed seed with its randomness and the root, walk the candidate order and
   re-check candidates' subscription with Telegram (an outage raises and nothing is recorded);
4. record, in one transaction under the row lock again: the chained draw record (each winner and
   skipped entry with its inclusion proof), the winners' flags, the skipped entrants' status, the
   audit event and the next seed's commitment. If another instance recorded first, its draw is
   returned instead (the unique (giveaway, sequence) constraint is the last word).

A reroll fixes its own round when it is first requested (kept with its idempotency key, so a
retry uses the same round) and otherwise follows steps 3 and 4 over the list committed in step 2.
Chains drawn with version 1 (before the list was committed) keep version 1 for their rerolls.
"""

from __future__ import annotations

import bisect
import contextvars
import hashlib
import json
import secrets
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config import current_settings
from models import DrawRecord, EntrantCommitment, GiveawayState, Membership, Participant
from services import beacon, pending
from services.audit import EventType, record_event
from services.clients.channel import get_channel
from services.clients.giveaway import get_giveaway
from services.commitments import ensure_giveaway_state
from services.errors import (
    AlreadyDrawnDifferently,
    Conflict,
    DrawNotFound,
    EntriesNotCommitted,
    IdempotencyKeyReused,
    NotAnEntrant,
    NotAWinner,
    NotDrawn,
    SubscriptionCheckUnavailable,
)
from services.numbering import exclude_registrations, number_pending, pending_entries
from services.store import store
from services.subscription import check_subscription
from services.transaction import read_only, write_transaction
from utils import draw as algorithm
from utils import entrant_tree
from utils.iterators import started
from utils.metrics import DRAW_RECHECK_WAITS, DRAWS
from utils.request_context import current_caller, current_request_id
from utils.timeutil import isoformat, utcnow

RECHECK_PARALLELISM = 16
# A draw's close, list, beacon and re-check must be done this long after the request came: the
# Giveaway service waits 30 s for select-winners, and the record and the answer need the rest.
DRAW_SECONDS = 25.0
# A re-check answer "subscribed" given after the close and at most this long ago is not asked
# again when a draw or reroll that failed (Telegram's limits, a beacon outage) is retried.
RECHECK_REUSE_SECONDS = 600
MAX_RECORD_ATTEMPTS = 3
# How long after its publication time a beacon round may take to arrive from the relays before
# the draw answers 503 (the round stays fixed for the retry).
BEACON_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Winner:
    """A winning entry, as the Giveaway service passes it on to the Bot."""

    user_id: int
    participant_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    position: int
    winner_selected_at: datetime | None


@dataclass(frozen=True)
class DrawOutcome:
    """A recorded draw or reroll, and the giveaway's winners after it."""

    record: dict[str, Any]
    already_done: bool
    new_winners: list[Winner]
    current_winners: list[Winner]

    @property
    def total_participants(self) -> int:
        return self.record["entrant_count"]


@dataclass(frozen=True)
class _Seed:
    seed: str
    commitment: str
    committed_at: datetime
    account_id: int | None
    closed_at: datetime | None


@dataclass(frozen=True)
class _Committed:
    """The entrant list as committed at the close, and the beacon round that fixed."""

    root: str
    count: int
    entrants_hash: str
    committed_at: datetime
    beacon_round: int | None
    salt_key: bytes
    chunk_roots: list[str]


@dataclass(frozen=True)
class _Plan:
    """Everything a record needs, computed outside any transaction."""

    kind: str
    seed: _Seed
    after_sequence: int
    previous_hash: str
    entrants_hash: str
    entrant_count: int
    exclusions: list[int]
    requested_count: int
    winners: list[tuple[int, int]]  # (position, user_id) in pick order
    skipped: list[dict[str, Any]]
    replaced_user_id: int | None
    reason: str | None
    recheck: bool
    idempotency_key: str | None
    fingerprint: str | None
    version: int = 1
    commitment: _Committed | None = None
    randomness_fixed_at: datetime | None = None
    beacon: dict[str, Any] | None = None
    proofs: dict[int, entrant_tree.Proof] | None = None
    pending_verdicts: dict[int, tuple[bool, str]] | None = None


class _Stale(Exception):
    """Another draw or reroll was recorded while this one was being computed."""


# --- use cases ------------------------------------------------------------------------------------


def draw_winners(*, giveaway_id: int, winner_count: int) -> DrawOutcome:
    """Draw the giveaway's winners once; every later call returns that same draw."""
    deadline = time.monotonic() + DRAW_SECONDS
    existing = _first_draw(giveaway_id)
    if existing is not None:
        return _repeat(existing, winner_count)
    _close_after_a_round(giveaway_id)
    seed = _close_entries(giveaway_id)
    entrants = _load_entrants(giveaway_id)
    committed, tree = _commit_entrants(giveaway_id, entrants)
    randomness = _beacon(committed.beacon_round)
    recheck = current_settings().draw_recheck_subscription
    picked = _pick(
        algorithm.mixed_seed(seed.seed, randomness and randomness["randomness"], committed.root),
        entrants.user_ids,
        winner_count,
        _asker(giveaway_id, seed, deadline),
        giveaway_id=giveaway_id,
        recheck=recheck,
        version=2,
    )
    plan = _Plan(
        kind="draw",
        seed=seed,
        after_sequence=0,
        previous_hash=algorithm.GENESIS_HASH,
        entrants_hash=entrants.digest,
        entrant_count=len(entrants.user_ids),
        exclusions=[],
        requested_count=winner_count,
        winners=list(enumerate(picked.winners, start=1)),
        skipped=picked.skipped,
        replaced_user_id=None,
        reason=None,
        recheck=recheck,
        idempotency_key=None,
        fingerprint=None,
        version=2,
        commitment=committed,
        randomness_fixed_at=committed.committed_at,
        beacon=randomness,
        proofs=_proofs(entrants, committed, picked.winners, picked.skipped, tree),
        pending_verdicts=picked.pending_verdicts,
    )
    try:
        return _record(giveaway_id, plan)
    except _Stale:
        existing = _first_draw(giveaway_id)
        if existing is None:
            raise
        return _repeat(existing, winner_count)


def reroll(
    *,
    giveaway_id: int,
    reason: str,
    idempotency_key: str,
    replace_user_id: int | None = None,
    add_count: int | None = None,
) -> DrawOutcome:
    """Replace one winner, or add winners, never choosing anyone who has won before."""
    fingerprint = _fingerprint(replace_user_id, add_count, reason)
    deadline = time.monotonic() + DRAW_SECONDS
    for _ in range(MAX_RECORD_ATTEMPTS):
        done = _by_idempotency_key(giveaway_id, idempotency_key)
        if done is not None:
            DRAWS.labels("reroll", "repeated").inc()
            if done.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused(details={"idempotency_key": idempotency_key})
            return _outcome(done, already_done=True)
        plan = _plan_reroll(
            giveaway_id, replace_user_id, add_count, reason, idempotency_key, fingerprint, deadline
        )
        try:
            return _record(giveaway_id, plan)
        except _Stale:
            continue
    raise Conflict("The giveaway's draw changed several times meanwhile; please retry.")


def commit_to_seed(giveaway_id: int) -> dict[str, Any]:
    """Create (if needed) and return the published commitment to the next draw's seed."""
    ensure_giveaway_state(giveaway_id)
    return draw_document(giveaway_id)


def draw_document(giveaway_id: int) -> dict[str, Any]:
    """What anyone may see: the commitment before the draw, every record after it."""
    with read_only() as session:
        state = session.get(GiveawayState, giveaway_id)
        entrant_count = (state.entry_count if state else 0) + pending_entries(session, giveaway_id)
        records = session.scalars(
            select(DrawRecord.record)
            .where(DrawRecord.giveaway_id == giveaway_id)
            .order_by(DrawRecord.sequence)
        ).all()
        committed = session.get(EntrantCommitment, giveaway_id)
    if state is None:
        raise DrawNotFound(details={"giveaway_id": giveaway_id})
    document: dict[str, Any] = {
        "giveaway_id": giveaway_id,
        "drawn": bool(records),
        "algorithm": algorithm.ALGORITHM,
        "algorithm_version": algorithm.ALGORITHM_VERSION,
        "entries_closed": state.closed_at is not None,
        "entrant_count": entrant_count,
        "commitment": state.next_commitment,
        "committed_at": isoformat(state.committed_at),
        "entrant_commitment": None,
        "beacon": _beacon_facts(),
        "verification_url": verification_url(giveaway_id),
    }
    if committed is not None and committed.entrant_root is not None:
        document["entrant_commitment"] = {
            "entrant_root": committed.entrant_root,
            "entrant_count": committed.entrant_count,
            "entrants_hash": committed.entrants_hash,
            "entrants_committed_at": isoformat(committed.committed_at),
            "beacon_round": committed.beacon_round,
        }
    if state.reroll_round_fixed_at is not None:
        document["next_reroll_round"] = {
            "beacon_round": state.reroll_round,
            "randomness_fixed_at": isoformat(state.reroll_round_fixed_at),
        }
    if records:
        document["draw"] = records[-1]
        document["records"] = list(records)
    return document


def verification_url(giveaway_id: int) -> str | None:
    """The public page where anyone checks this giveaway's draw (None without PUBLIC_BASE_URL)."""
    base = current_settings().public_base_url
    return f"{base}/draws/{giveaway_id}" if base else None


def _beacon_facts() -> dict[str, Any] | None:
    """The public randomness new draws use: the drand chain and its relays (None when off)."""
    if not beacon.enabled():
        return None
    chain = beacon.chain()
    return {
        "chain_hash": chain.hash,
        "public_key": chain.public_key,
        "genesis_time": chain.genesis_time,
        "period": chain.period,
        "relays": list(current_settings().drand_urls),
    }


def inclusion_proof(*, giveaway_id: int, user_id: int) -> dict[str, Any]:
    """One entrant's proof that they are in the committed list: their leaf's salt and place and
    the path to the root, and nothing about anyone else."""
    row = _commitment_row(giveaway_id)
    if row is None or row.entrant_root is None:
        raise EntriesNotCommitted(details={"giveaway_id": giveaway_id})
    chunk = entrant_tree.chunk_of(row.chunk_first_ids, user_id)
    proof = None
    if chunk >= 0:
        with read_only() as session:
            chunk_ids = session.scalars(
                select(Participant.user_id)
                .where(
                    Participant.giveaway_id == giveaway_id,
                    Participant.user_id >= row.chunk_first_ids[chunk],
                )
                .order_by(Participant.user_id)
                .limit(entrant_tree.CHUNK)
            ).all()
        proof = entrant_tree.proof_in_chunk(
            bytes.fromhex(row.salt_key), chunk, chunk_ids, row.chunk_roots, user_id
        )
    if proof is None:
        raise NotAnEntrant(details={"giveaway_id": giveaway_id, "user_id": user_id})
    return {
        "giveaway_id": giveaway_id,
        "user_id": user_id,
        "algorithm": algorithm.ALGORITHM,
        "algorithm_version": algorithm.ALGORITHM_VERSION,
        "entrant_root": row.entrant_root,
        "entrant_count": row.entrant_count,
        "entrants_committed_at": isoformat(row.committed_at),
        "leaf_index": proof.leaf_index,
        "salt": proof.salt,
        "leaf": algorithm.leaf_hash(bytes.fromhex(proof.salt), user_id).hex(),
        "proof": proof.path,
    }


def stream_entrants(giveaway_id: int) -> Iterator[str]:
    """The canonical entrant list, one user id per line, ascending (the draw's input); its first
    chunk is read before this returns."""
    return started(store().entrant_chunks(giveaway_id))


def has_draw(giveaway_id: int) -> bool:
    """Whether winners were ever drawn for this giveaway."""
    return _first_draw(giveaway_id) is not None


def current_winners(giveaway_id: int) -> list[Winner]:
    """The giveaway's winners now (rerolls applied), by position."""
    with read_only() as session:
        return _winners(session, giveaway_id)


@dataclass(frozen=True)
class WinnerStatus:
    participated: bool
    is_winner: bool
    winner_selected_at: datetime | None
    position: int | None
    total_winners: int


def winner_status(*, user_id: int, giveaway_id: int) -> WinnerStatus:
    """Did this user take part, and win? Answered from two indexed lookups."""
    with read_only() as session:
        entry = session.execute(
            select(
                Participant.is_winner, Participant.winner_selected_at, Participant.winner_position
            ).where(Participant.giveaway_id == giveaway_id, Participant.user_id == user_id)
        ).one_or_none()
        total = session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.giveaway_id == giveaway_id, Participant.is_winner)
        )
    return WinnerStatus(
        participated=entry is not None,
        is_winner=bool(entry and entry.is_winner),
        winner_selected_at=entry.winner_selected_at if entry and entry.is_winner else None,
        position=entry.winner_position if entry and entry.is_winner else None,
        total_winners=total or 0,
    )


def verify_all_chains(giveaway_id: int | None = None) -> dict[int, list[str]]:
    """Every giveaway's chain, records, entrant list and winner flags checked; problems by id."""
    with read_only() as session:
        query = select(DrawRecord.giveaway_id).distinct()
        if giveaway_id is not None:
            query = query.where(DrawRecord.giveaway_id == giveaway_id)
        giveaway_ids = sorted(session.scalars(query))
    return {gid: _verify_giveaway(gid) for gid in giveaway_ids}


# --- steps ----------------------------------------------------------------------------------------


def _first_draw(giveaway_id: int) -> DrawRecord | None:
    with read_only() as session:
        return session.scalars(
            select(DrawRecord).where(
                DrawRecord.giveaway_id == giveaway_id, DrawRecord.sequence == 1
            )
        ).one_or_none()


def _repeat(first: DrawRecord, winner_count: int) -> DrawOutcome:
    DRAWS.labels("draw", "repeated").inc()
    if first.requested_count != winner_count:
        raise AlreadyDrawnDifferently(
            details={"winner_count": first.requested_count, "requested": winner_count}
        )
    return _outcome(first, already_done=True)


# The entrant tree's build, per entrant, with room to spare (bench/findings.md has the figures).
TREE_SECONDS_PER_ENTRANT = 2.5e-6


def _close_after_a_round(giveaway_id: int) -> None:
    """When the list's tree would outlast the wait for the round the close fixes (a close just
    before a round), close just after that round instead: the first round after the close is then
    a whole period away, and the tree is built while it comes. The rule is unchanged (the first
    round published after the close); only the moment of the close moves, by less than the tree
    would have taken."""
    if not beacon.enabled():
        return
    with read_only() as session:
        state = session.get(GiveawayState, giveaway_id)
        if state is None or state.closed_at is not None:
            return  # nothing to build, or a retry: its round is fixed already
        entrants = state.entry_count + pending_entries(session, giveaway_id)
    chain = beacon.chain()
    now = beacon.clock.time()
    next_round_at = chain.time_of(chain.first_round_after(now))
    if next_round_at - now < entrants * TREE_SECONDS_PER_ENTRANT:
        beacon.clock.sleep(next_round_at - now + 0.01)


def _close_entries(giveaway_id: int) -> _Seed:
    """Stop taking entries (waiting for registrations in flight), fix what the list's commitment
    is made of and the beacon round that follows it, and return the committed seed."""
    ensure_giveaway_state(giveaway_id)
    with write_transaction() as session:
        exclude_registrations(session, giveaway_id)
        state = _lock_state(session, giveaway_id)
        now = utcnow()
        if state.closed_at is None:
            state.closed_at = now
        # The list is closed and its salt key chosen in this transaction: its root is now a
        # function of fixed data, so the round can be fixed too, and the tree built while the
        # draw waits for that round (the first instance to close wins; a later one finds it).
        beacon_round = (
            beacon.chain().first_round_after(now.timestamp()) if beacon.enabled() else None
        )
        session.execute(
            store()
            .insert(EntrantCommitment)
            .values(
                giveaway_id=giveaway_id,
                salt_key=secrets.token_hex(32),
                committed_at=now,
                beacon_round=beacon_round,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["giveaway_id"])
        )
        seed = _seed_of(state)
    number_pending(giveaway_id)  # the list is final now: number it whole for the readers
    return seed


def _lock_state(session: Session, giveaway_id: int) -> GiveawayState:
    return session.scalars(
        select(GiveawayState)
        .where(GiveawayState.giveaway_id == giveaway_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _seed_of(state: GiveawayState) -> _Seed:
    return _Seed(
        seed=state.next_seed,
        commitment=state.next_commitment,
        committed_at=state.committed_at,
        account_id=state.account_id,
        closed_at=state.closed_at,
    )


@dataclass(frozen=True)
class _Entrants:
    """The canonical entrant list: user ids ascending, and the SHA-256 of its published text."""

    user_ids: array
    digest: str


def _load_entrants(giveaway_id: int) -> _Entrants:
    """Every entrant's user id as a compact array (no Python object per row), and the digest of
    the published text, hashed as the store writes it."""
    digest = hashlib.sha256()
    user_ids = array("q")
    for chunk in store().entrant_chunks(giveaway_id):
        digest.update(chunk.encode("ascii"))
        user_ids.extend(map(int, chunk.split()))
    return _Entrants(user_ids=user_ids, digest=digest.hexdigest())


Ask = Callable[[list[int]], dict[int, tuple[bool, str]]]  # user id: (subscribed, status)


@dataclass(frozen=True)
class _Picked:
    """Who won, who was passed over and why, and what Telegram said of pending entrants."""

    winners: list[int]
    skipped: list[dict[str, Any]]
    pending_verdicts: dict[int, tuple[bool, str]]  # user id: (subscribed, Telegram's status)


def _pick(
    seed: str,
    eligible: Sequence[int],
    count: int,
    ask: Ask,
    *,
    giveaway_id: int,
    recheck: bool,
    version: int,
) -> _Picked:
    """Walk the seed's candidate order; candidates the re-check refuses are skipped, in order.

    An excluded entrant (found not subscribed while pending) is skipped without asking; a pending
    one is asked, whatever DRAW_RECHECK_SUBSCRIPTION says (it may win only on a fresh
    "subscribed"); with the re-check on, every other candidate is asked too. Candidates are taken
    in batches a quarter larger than the winners still needed (some will be skipped), asked in
    parallel, so a few skips do not cost another round trip to Telegram. Verdicts on candidates
    beyond the last winner do not change the record: it depends only on the order.
    """
    order = algorithm.candidate_order(seed, len(eligible), version)
    winners: list[int] = []
    skipped: list[dict[str, Any]] = []
    pending_verdicts: dict[int, tuple[bool, str]] = {}
    while len(winners) < count:
        needed = count - len(winners)
        batch = [eligible[position] for position in islice(order, needed + (needed + 3) // 4)]
        if not batch:
            break
        standing = pending.candidate_statuses(giveaway_id, batch)
        asked = [
            user_id
            for user_id in batch
            if standing.get(user_id) != pending.STATUS_EXCLUDED
            and (recheck or standing.get(user_id) == pending.STATUS_PENDING)
        ]
        verdicts = ask(asked) if asked else {}
        for user_id, verdict in verdicts.items():
            if standing.get(user_id) == pending.STATUS_PENDING:
                pending_verdicts[user_id] = verdict
        for user_id in batch:
            if len(winners) == count:
                break
            if standing.get(user_id) == pending.STATUS_EXCLUDED:
                skipped.append({"user_id": user_id, "reason": "excluded", "status": "excluded"})
            elif user_id in verdicts and not verdicts[user_id][0]:
                entry = {
                    "user_id": user_id,
                    "reason": "not_subscribed",
                    "status": verdicts[user_id][1],
                }
                if standing.get(user_id) == pending.STATUS_PENDING:
                    entry["pending"] = True
                skipped.append(entry)
            else:
                winners.append(user_id)
    return _Picked(winners=winners, skipped=skipped, pending_verdicts=pending_verdicts)


def _asker(giveaway_id: int, seed: _Seed, deadline: float) -> Ask:
    """Ask Telegram about candidates in parallel, within the bot's budget and by ``deadline``.

    Telegram's limits are waited out while the deadline allows: a candidate refused a slot, or
    answered 429, is asked again once the budget lets it (the budget holds every call of the bot
    back during a flood wait). Any other "cannot verify", or one that cannot be waited out in
    time, fails the whole draw, which records nothing. "Subscribed" answers are remembered, so a
    retried draw does not ask again about a candidate answered after the close moments ago.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    account: list[int] = [] if seed.account_id is None else [seed.account_id]

    def check_one(user_id: int) -> tuple[int, tuple[bool, str]]:
        with app.app_context():
            while True:
                try:
                    verdict = check_subscription(
                        account_id=account[0],
                        user_id=user_id,
                        budget_wait=max(0.0, deadline - time.monotonic()),
                    )
                    return user_id, (verdict.is_subscribed, verdict.status)
                except SubscriptionCheckUnavailable as error:
                    if not _can_wait_out(error, deadline):
                        raise
                    DRAW_RECHECK_WAITS.inc()
                    time.sleep(RECHECK_PAUSE_SECONDS)  # then the budget's own wait, if any

    def ask(user_ids: list[int]) -> dict[int, tuple[bool, str]]:
        if not account:  # only giveaways committed before any entry lack it; asked once, cached
            account.append(get_giveaway(giveaway_id).account_id)
        answered = _subscribed_since_close(account[0], seed.closed_at, user_ids)
        verdicts = {user_id: (True, status) for user_id, status in answered.items()}
        asked = [user_id for user_id in user_ids if user_id not in answered]
        if not asked:
            return verdicts
        with ThreadPoolExecutor(max_workers=min(RECHECK_PARALLELISM, len(asked))) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, check_one, user_id) for user_id in asked
            ]
            verdicts.update(future.result() for future in futures)  # re-raises "cannot verify"
        return verdicts

    return ask


RECHECK_PAUSE_SECONDS = 0.05
_PACED = frozenset({"over_budget", "rate_limited"})


def _can_wait_out(error: SubscriptionCheckUnavailable, deadline: float) -> bool:
    """Whether a "cannot verify" is only Telegram's pace (the bot's budget, a flood wait) and
    passes before the deadline."""
    paced = (error.details or {}).get("reason") in _PACED
    wait = error.retry_after or 1
    return paced and time.monotonic() + wait < deadline


def _subscribed_since_close(
    account_id: int, closed_at: datetime | None, user_ids: list[int]
) -> dict[int, str]:
    """The users Telegram called subscribed after the close, within RECHECK_REUSE_SECONDS (the
    answers of an earlier attempt of this draw), with Telegram's status."""
    if closed_at is None:
        return {}
    since = max(closed_at, utcnow() - timedelta(seconds=RECHECK_REUSE_SECONDS))
    channel_id = get_channel(account_id).channel_id
    with read_only() as session:
        return dict(
            session.execute(
                select(Membership.user_id, Membership.status).where(
                    Membership.channel_id == channel_id,
                    Membership.user_id.in_(user_ids),
                    Membership.verified_at >= since,
                )
            ).all()
        )


def _plan_reroll(
    giveaway_id: int,
    replace_user_id: int | None,
    add_count: int | None,
    reason: str,
    idempotency_key: str,
    fingerprint: str,
    deadline: float,
) -> _Plan:
    with read_only() as session:
        past = session.scalars(
            select(DrawRecord)
            .where(DrawRecord.giveaway_id == giveaway_id)
            .order_by(DrawRecord.sequence)
        ).all()
        if not past:
            raise NotDrawn(details={"giveaway_id": giveaway_id})
        current = _winners(session, giveaway_id)
    last = past[-1]
    positions = {winner.user_id: winner.position for winner in current}
    if replace_user_id is not None and replace_user_id not in positions:
        raise NotAWinner(details={"user_id": replace_user_id})
    ever_won = {w["user_id"] for row in past for w in row.record["winners"]}
    exclusions = sorted(ever_won | set(positions))
    count = 1 if replace_user_id is not None else int(add_count or 0)
    version = past[0].record["algorithm_version"]
    entrants = _load_entrants(giveaway_id)
    recheck = current_settings().draw_recheck_subscription
    eligible = algorithm.eligible_list(entrants.user_ids, exclusions)
    committed = fixed_at = randomness = None
    if version == 2:
        committed = _stored_commitment(giveaway_id, entrants)
        fixed_at, beacon_round = _reserve_round(giveaway_id, idempotency_key, fingerprint)
        randomness = _beacon(beacon_round)
    with read_only() as session:
        seed = _seed_of(session.get(GiveawayState, giveaway_id))
    order_seed = seed.seed
    if committed is not None:
        order_seed = algorithm.mixed_seed(
            seed.seed, randomness and randomness["randomness"], committed.root
        )
    picked = _pick(
        order_seed,
        eligible,
        count,
        _asker(giveaway_id, seed, deadline),
        giveaway_id=giveaway_id,
        recheck=recheck,
        version=version,
    )
    if replace_user_id is not None:
        numbered = [(positions[replace_user_id], user_id) for user_id in picked.winners]
    else:
        start = max(positions.values(), default=0) + 1
        numbered = list(enumerate(picked.winners, start=start))
    return _Plan(
        kind="reroll",
        seed=seed,
        after_sequence=last.sequence,
        previous_hash=last.record_hash,
        entrants_hash=entrants.digest,
        entrant_count=len(entrants.user_ids),
        exclusions=exclusions,
        requested_count=count,
        winners=numbered,
        skipped=picked.skipped,
        replaced_user_id=replace_user_id,
        reason=reason,
        recheck=recheck,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        version=version,
        commitment=committed,
        randomness_fixed_at=fixed_at,
        beacon=randomness,
        proofs=None
        if committed is None
        else _proofs(entrants, committed, picked.winners, picked.skipped),
        pending_verdicts=picked.pending_verdicts,
    )


# --- the committed list and the beacon ------------------------------------------------------------


def _commit_entrants(
    giveaway_id: int, entrants: _Entrants
) -> tuple[_Committed, entrant_tree.EntrantTree | None]:
    """The list's commitment: its root written now if no instance wrote it yet, and the tree
    when this call built it."""
    row = _commitment_row(giveaway_id)
    if row.entrant_root is not None:
        return _checked(row, entrants), None
    tree = entrant_tree.build_tree(entrants.user_ids, bytes.fromhex(row.salt_key))
    with write_transaction() as session:
        written = session.execute(
            update(EntrantCommitment)
            .where(
                EntrantCommitment.giveaway_id == giveaway_id,
                EntrantCommitment.entrant_root.is_(None),
            )
            .values(
                entrant_root=tree.root,
                entrant_count=tree.count,
                entrants_hash=entrants.digest,
                chunk_first_ids=tree.chunk_first_ids,
                chunk_roots=tree.chunk_roots,
            )
        ).rowcount
        if written:
            record_event(
                session,
                EventType.ENTRANTS_COMMITTED,
                giveaway_id=giveaway_id,
                facts={
                    "entrant_root": tree.root,
                    "entrant_count": tree.count,
                    "entrants_committed_at": isoformat(row.committed_at),
                    "beacon_round": row.beacon_round,
                },
            )
    # Another instance may have written it meanwhile: the same list and key, so the same root.
    return _checked(_commitment_row(giveaway_id), entrants), tree


def _commitment_row(giveaway_id: int) -> EntrantCommitment:
    with read_only() as session:
        return session.get(EntrantCommitment, giveaway_id, populate_existing=True)


def _stored_commitment(giveaway_id: int, entrants: _Entrants) -> _Committed:
    row = _commitment_row(giveaway_id)
    if row is None or row.entrant_root is None:
        raise EntriesNotCommitted(details={"giveaway_id": giveaway_id})
    return _checked(row, entrants)


def _checked(row: EntrantCommitment, entrants: _Entrants) -> _Committed:
    """The stored commitment, after making sure the list read now is the list it committed."""
    if row.entrants_hash != entrants.digest or row.entrant_count != len(entrants.user_ids):
        raise Conflict(
            "The entrant list differs from the list committed at the close.",
            details={"giveaway_id": row.giveaway_id},
        )
    return _Committed(
        root=row.entrant_root,
        count=row.entrant_count,
        entrants_hash=row.entrants_hash,
        committed_at=row.committed_at,
        beacon_round=row.beacon_round,
        salt_key=bytes.fromhex(row.salt_key),
        chunk_roots=list(row.chunk_roots or []),
    )


def _reserve_round(giveaway_id: int, key: str, fingerprint: str) -> tuple[datetime, int | None]:
    """The moment and beacon round fixed for this reroll request: fixed at its first attempt and
    reused by its retries; a new request replaces an abandoned reservation, in the audit log."""
    with write_transaction() as session:
        state = _lock_state(session, giveaway_id)
        if state.reroll_round_key == key:
            if state.reroll_round_fingerprint != fingerprint:
                raise IdempotencyKeyReused(details={"idempotency_key": key})
            return state.reroll_round_fixed_at, state.reroll_round
        now = utcnow()
        beacon_round = (
            beacon.chain().first_round_after(now.timestamp()) if beacon.enabled() else None
        )
        record_event(
            session,
            EventType.REROLL_ROUND_FIXED,
            giveaway_id=giveaway_id,
            facts={
                "beacon_round": beacon_round,
                "idempotency_key": key,
                "abandoned_round": state.reroll_round,
                "abandoned_key": state.reroll_round_key,
            },
            occurred_at=now,
        )
        state.reroll_round = beacon_round
        state.reroll_round_fixed_at = now
        state.reroll_round_key = key
        state.reroll_round_fingerprint = fingerprint
        return now, beacon_round


def _beacon(beacon_round: int | None) -> dict[str, Any] | None:
    """The fixed round's verified beacon, or None when draws use no public randomness (a round
    fixed while DRAW_BEACON=off)."""
    if beacon_round is None:
        return None
    publish_in = beacon.chain().time_of(beacon_round) - beacon.clock.time()
    deadline = beacon.clock.monotonic() + max(0.0, publish_in) + BEACON_GRACE_SECONDS
    return beacon.fetch_round(beacon_round, deadline=deadline).as_record()


def _proofs(
    entrants: _Entrants,
    committed: _Committed,
    winners: Sequence[int],
    skipped: Sequence[dict[str, Any]],
    tree: entrant_tree.EntrantTree | None = None,
) -> dict[int, entrant_tree.Proof]:
    """The inclusion proof of every winner and skipped entry: from the tree when this draw built
    it, else from each one's chunk of the list and the stored chunk roots."""
    proofs: dict[int, entrant_tree.Proof] = {}
    users = list(winners) + [entry["user_id"] for entry in skipped]
    for user_id in users:
        index = bisect.bisect_left(entrants.user_ids, user_id)
        if tree is not None:
            proofs[user_id] = tree.proof(index)
            continue
        chunk = index // entrant_tree.CHUNK
        start = chunk * entrant_tree.CHUNK
        proof = entrant_tree.proof_in_chunk(
            committed.salt_key,
            chunk,
            entrants.user_ids[start : start + entrant_tree.CHUNK],
            committed.chunk_roots,
            user_id,
        )
        if proof is None:  # a candidate is an entrant by construction
            raise RuntimeError(f"user {user_id} is missing from the committed list")
        proofs[user_id] = proof
    return proofs


def _record(giveaway_id: int, plan: _Plan) -> DrawOutcome:
    """Write the record, the winners and the next commitment in one transaction."""
    now = utcnow()
    next_seed = algorithm.new_seed()
    try:
        with write_transaction() as session:
            state = _lock_state(session, giveaway_id)
            last_sequence = session.scalar(
                select(func.max(DrawRecord.sequence)).where(DrawRecord.giveaway_id == giveaway_id)
            )
            if (last_sequence or 0) != plan.after_sequence or state.next_seed != plan.seed.seed:
                raise _Stale()
            record = _document(giveaway_id, plan, now, algorithm.commitment_of(next_seed))
            session.add(
                DrawRecord(
                    giveaway_id=giveaway_id,
                    sequence=record["sequence"],
                    kind=plan.kind,
                    requested_count=plan.requested_count,
                    idempotency_key=plan.idempotency_key,
                    request_fingerprint=plan.fingerprint,
                    record=record,
                    record_hash=record["record_hash"],
                    previous_hash=plan.previous_hash,
                    created_at=now,
                    actor=current_caller(),
                    request_id=current_request_id(),
                )
            )
            _apply_winners(session, giveaway_id, plan, now)
            verdicts = plan.pending_verdicts or {}
            pending.settle_at_draw(
                session,
                giveaway_id=giveaway_id,
                subscribed={u: status for u, (ok, status) in verdicts.items() if ok},
                not_subscribed={u: status for u, (ok, status) in verdicts.items() if not ok},
                verified_at=now,
            )
            state.reroll_round = state.reroll_round_fixed_at = None
            state.reroll_round_key = state.reroll_round_fingerprint = None
            state.next_seed = next_seed
            state.next_commitment = record["next_commitment"]
            state.committed_at = now
            record_event(
                session,
                EventType.DRAW if plan.kind == "draw" else EventType.REROLL,
                giveaway_id=giveaway_id,
                facts={
                    "sequence": record["sequence"],
                    "record_hash": record["record_hash"],
                    "winners": [user_id for _, user_id in plan.winners],
                    "skipped": [entry["user_id"] for entry in plan.skipped],
                    "replaced_user_id": plan.replaced_user_id,
                    "reason": plan.reason,
                },
                occurred_at=now,
            )
    except IntegrityError:
        raise _Stale() from None
    DRAWS.labels(plan.kind, "recorded").inc()
    with read_only() as session:
        current = _winners(session, giveaway_id)
    by_user = {winner.user_id: winner for winner in current}
    return DrawOutcome(
        record=record,
        already_done=False,
        new_winners=[by_user[user_id] for _, user_id in plan.winners if user_id in by_user],
        current_winners=current,
    )


def _document(giveaway_id: int, plan: _Plan, now: datetime, next_commitment: str) -> dict:
    record: dict[str, Any] = {
        "giveaway_id": giveaway_id,
        "sequence": plan.after_sequence + 1,
        "kind": plan.kind,
        "algorithm": algorithm.ALGORITHM,
        "algorithm_version": plan.version,
        "commitment": plan.seed.commitment,
        "committed_at": isoformat(plan.seed.committed_at),
        "seed": plan.seed.seed,
        "entrants_hash": plan.entrants_hash,
        "entrant_count": plan.entrant_count,
        "exclusions": plan.exclusions,
        "requested_count": plan.requested_count,
        "winners": [
            {"position": position, "user_id": user_id} for position, user_id in plan.winners
        ],
        "skipped": plan.skipped,
        "unclaimed_count": plan.requested_count - len(plan.winners),
        "replaced_user_id": plan.replaced_user_id,
        "reason": plan.reason,
        "recheck_subscription": plan.recheck,
        "next_commitment": next_commitment,
        "previous_hash": plan.previous_hash,
        "drawn_at": isoformat(now),
    }
    if plan.version == 2:
        record.update(
            entrant_root=plan.commitment.root,
            entrants_committed_at=isoformat(plan.commitment.committed_at),
            randomness_fixed_at=isoformat(plan.randomness_fixed_at),
            beacon=plan.beacon,
            winners=[_proven(entry, plan.proofs) for entry in record["winners"]],
            skipped=[_proven(entry, plan.proofs) for entry in record["skipped"]],
        )
    record["record_hash"] = algorithm.record_digest(record)
    return record


def _proven(entry: dict[str, Any], proofs: dict[int, entrant_tree.Proof]) -> dict[str, Any]:
    """A winner or skipped entry with its place in the committed list and its proof."""
    proof = proofs[entry["user_id"]]
    return {**entry, "leaf_index": proof.leaf_index, "salt": proof.salt, "proof": proof.path}


def _apply_winners(session: Session, giveaway_id: int, plan: _Plan, now: datetime) -> None:
    entries = Participant.__table__
    connection = session.connection()
    if plan.replaced_user_id is not None:
        connection.execute(
            update(entries)
            .where(entries.c.giveaway_id == giveaway_id, entries.c.user_id == plan.replaced_user_id)
            .values(is_winner=False, winner_position=None, winner_selected_at=None)
        )
    if plan.winners:
        connection.execute(
            update(entries)
            .where(entries.c.giveaway_id == giveaway_id, entries.c.user_id == bindparam("winner"))
            .values(is_winner=True, winner_selected_at=now, winner_position=bindparam("position")),
            [{"winner": user_id, "position": position} for position, user_id in plan.winners],
        )
    gone = [  # found gone by this re-check; pending and excluded entrants are settled apart
        {"skipped": entry["user_id"]}
        for entry in plan.skipped
        if entry["reason"] == "not_subscribed" and not entry.get("pending")
    ]
    if gone:
        connection.execute(
            update(entries)
            .where(entries.c.giveaway_id == giveaway_id, entries.c.user_id == bindparam("skipped"))
            .values(status="unsubscribed"),
            gone,
        )


def _winners(session: Session, giveaway_id: int) -> list[Winner]:
    rows = session.execute(
        select(
            Participant.user_id,
            Participant.id,
            Participant.username,
            Participant.first_name,
            Participant.last_name,
            Participant.winner_position,
            Participant.winner_selected_at,
        )
        .where(Participant.giveaway_id == giveaway_id, Participant.is_winner)
        .order_by(Participant.winner_position)
    ).all()
    return [
        Winner(
            user_id=row.user_id,
            participant_id=row.id,
            username=row.username,
            first_name=row.first_name,
            last_name=row.last_name,
            position=row.winner_position,
            winner_selected_at=row.winner_selected_at,
        )
        for row in rows
    ]


def _outcome(done: DrawRecord, *, already_done: bool) -> DrawOutcome:
    current = current_winners(done.giveaway_id)
    chosen = {winner["user_id"] for winner in done.record["winners"]}
    return DrawOutcome(
        record=done.record,
        already_done=already_done,
        new_winners=[winner for winner in current if winner.user_id in chosen],
        current_winners=current,
    )


def _by_idempotency_key(giveaway_id: int, key: str) -> DrawRecord | None:
    with read_only() as session:
        return session.scalars(
            select(DrawRecord).where(
                DrawRecord.giveaway_id == giveaway_id, DrawRecord.idempotency_key == key
            )
        ).one_or_none()


def _fingerprint(replace_user_id: int | None, add_count: int | None, reason: str) -> str:
    canonical = json.dumps([replace_user_id, add_count, reason], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _verify_giveaway(giveaway_id: int) -> list[str]:
    with read_only() as session:
        rows = session.scalars(
            select(DrawRecord)
            .where(DrawRecord.giveaway_id == giveaway_id)
            .order_by(DrawRecord.sequence)
        ).all()
        flagged = {winner.user_id: winner.position for winner in _winners(session, giveaway_id)}
    records = [row.record for row in rows]
    entrants = _load_entrants(giveaway_id).user_ids
    problems = algorithm.verify_draw(records, entrants, chains=[beacon.chain()])
    for row in rows:
        if row.record_hash != row.record.get("record_hash") or row.previous_hash != row.record.get(
            "previous_hash"
        ):
            problems.append(f"record {row.sequence}: columns disagree with the stored record")
    if algorithm.winners_after(records) != flagged:
        problems.append("the winners marked on the entries differ from what the records say")
    return problems
