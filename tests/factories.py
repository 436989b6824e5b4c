"""Test data made the way the service makes it, in bulk where the test needs many rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update

from extensions import db
from models import GiveawayState, Participant, ParticipantUser
from services.commitments import ensure_giveaway_state
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
