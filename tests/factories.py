"""Test data made the way the service makes it, in bulk where the test needs many rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from devtools import drand_chain
from extensions import db
from models import EntrantCommitment, GiveawayState, Participant, ParticipantUser
from services import draws
from services.commitments import ensure_giveaway_state
from utils import draw
from utils.drand import randomness_of
from utils.entrant_tree import build_tree
from utils.timeutil import utcnow


def add_entries(
    app, giveaway_id: int, user_ids, *, account_id: int = 42, names: bool = True
) -> None:
    """Enter users in a giveaway (captcha done, numbered densely, as registration does)."""
    user_ids = list(user_ids)
    now = utcnow()
    with app.app_context():
        ensure_giveaway_state(giveaway_id, account_id=account_id)
        start = db.session.scalar(
            select(GiveawayState.entry_count).where(GiveawayState.giveaway_id == giveaway_id)
        )
        rows = [
            {
                "giveaway_id": giveaway_id,
                "user_id": user_id,
                "entry_number": start + index,
                "username": f"user{user_id}" if names else None,
                "first_name": f"First {user_id}" if names else None,
                "last_name": None,
                "participated_at": now + timedelta(milliseconds=index),
                "subscription_verified_at": now,
            }
            for index, user_id in enumerate(user_ids, start=1)
        ]
        if rows:
            db.session.execute(insert(Participant), rows)
        known = set(
            db.session.scalars(
                select(ParticipantUser.user_id).where(ParticipantUser.user_id.in_(user_ids))
            )
        )
        fresh = [
            {"user_id": u, "captcha_completed_at": now, "created_at": now}
            for u in user_ids
            if u not in known
        ]
        if fresh:
            db.session.execute(insert(ParticipantUser), fresh)
        db.session.execute(
            update(GiveawayState)
            .where(GiveawayState.giveaway_id == giveaway_id)
            .values(entry_count=start + len(rows))
        )
        db.session.commit()


def complete_captcha(app, user_ids) -> None:
    """Users who passed the captcha (as a right answer records it), with no entry yet."""
    now = utcnow()
    with app.app_context():
        db.session.execute(
            insert(ParticipantUser),
            [{"user_id": u, "captcha_completed_at": now, "created_at": now} for u in user_ids],
        )
        db.session.commit()


# --- draws whose inputs the test fixes ----------------------------------------------------------

SALT_KEY = "5a" * 32
# In the future, so that every answer Telegram gave before the draw (at registration) is older
# than the close, as it always is; the beacon's fake clock gets there at once.
CLOSED_AT = datetime(2030, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)


class ForeseenDraw:
    """A draw whose every input the test knows in advance — the salt key, the moment entries
    close (so the beacon round) and the test chain's signature of that round — so the test can
    say who must win before asking. Only a test can: the real chain's next signature is unknown
    to everyone, the service included."""

    def __init__(self, app, monkeypatch, giveaway_id: int = 1) -> None:
        self.app = app
        self.giveaway_id = giveaway_id
        self.beacon_round = drand_chain.DEV_CHAIN.first_round_after(CLOSED_AT.timestamp())
        monkeypatch.setattr(draws, "utcnow", lambda: CLOSED_AT)
        with app.app_context():
            ensure_giveaway_state(giveaway_id)
            db.session.execute(
                insert(EntrantCommitment).values(
                    giveaway_id=giveaway_id,
                    salt_key=SALT_KEY,
                    committed_at=CLOSED_AT,
                    beacon_round=self.beacon_round,
                    created_at=CLOSED_AT,
                )
            )
            db.session.commit()

    def winners(self, entrants, count: int, left=()) -> tuple[list[int], list[int]]:
        """The winners and the skipped users the draw of ``count`` must give, ``left`` being
        those Telegram says left the channel (for the first draw, before it is made)."""
        with self.app.app_context():
            seed = db.session.get(GiveawayState, self.giveaway_id).next_seed
        ordered = sorted(entrants)
        root = build_tree(ordered, bytes.fromhex(SALT_KEY)).root
        randomness = randomness_of(drand_chain.sign(self.beacon_round))
        mixed = draw.mixed_seed(seed, randomness, root)
        return draw.select_winners(mixed, ordered, count, left, version=2)
