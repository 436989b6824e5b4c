"""A user's participation history; every count is derived from the entries, never kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from models import Participant, ParticipantUser
from services.transaction import read_only


@dataclass(frozen=True)
class UserStats:
    """What the Bot and the history page show about one user."""

    user_id: int
    known: bool
    captcha_completed: bool
    captcha_completed_at: datetime | None
    total_participations: int
    total_wins: int
    first_participation_at: datetime | None
    last_participation_at: datetime | None


def user_stats(user_id: int) -> UserStats:
    """The user's captcha state and totals, from two indexed lookups."""
    with read_only() as session:
        user = session.get(ParticipantUser, user_id)
        totals = session.execute(
            select(
                func.count(Participant.id),
                func.coalesce(func.sum(case((Participant.is_winner, 1), else_=0)), 0),
                func.min(Participant.participated_at),
                func.max(Participant.participated_at),
            ).where(Participant.user_id == user_id)
        ).one()
    completed_at = user.captcha_completed_at if user is not None else None
    return UserStats(
        user_id=user_id,
        known=user is not None or totals[0] > 0,
        captcha_completed=completed_at is not None,
        captcha_completed_at=completed_at,
        total_participations=int(totals[0]),
        total_wins=int(totals[1]),
        first_participation_at=totals[2],
        last_participation_at=totals[3],
    )
