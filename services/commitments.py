"""The per-giveaway state row: created with the first entry (or earlier, on request), it carries
the entry counter, the closure of entries and the published commitment to the next draw's seed."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import update

from models import GiveawayState
from services.audit import EventType, record_event
from services.store import store
from services.transaction import write_transaction
from utils.draw import commitment_of, new_seed
from utils.timeutil import utcnow


def _known_giveaways() -> dict[int, bool]:
    """Giveaways whose state row this process has seen, each with whether the row holds the
    giveaway's account, so the hot path skips the upsert once both are known."""
    return current_app.extensions.setdefault("telegive.known_giveaways", {})


def ensure_giveaway_state(
    giveaway_id: int, *, account_id: int | None = None, force: bool = False
) -> None:
    """Create the giveaway's state row and seed commitment if they do not exist yet, and store
    ``account_id`` in it if the row has none (a commitment published before any entry)."""
    known = _known_giveaways()
    stored = known.get(giveaway_id)  # None: no row seen yet; False: a row without the account
    if not force and stored is not None and (stored or account_id is None):
        return
    now = utcnow()
    seed = new_seed()
    with write_transaction() as session:
        statement = (
            store()
            .insert(GiveawayState)
            .values(
                giveaway_id=giveaway_id,
                account_id=account_id,
                entry_count=0,
                next_seed=seed,
                next_commitment=commitment_of(seed),
                committed_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["giveaway_id"])
            .returning(GiveawayState.next_commitment)
        )
        created = session.execute(statement).scalar_one_or_none()
        if created is None and account_id is not None:
            session.execute(
                update(GiveawayState)
                .where(GiveawayState.giveaway_id == giveaway_id, GiveawayState.account_id.is_(None))
                .values(account_id=account_id)
            )
        if created is not None:
            record_event(
                session,
                EventType.COMMITMENT,
                giveaway_id=giveaway_id,
                facts={"commitment": created, "sequence": 1},
                occurred_at=now,
            )
    known[giveaway_id] = bool(stored) or account_id is not None
