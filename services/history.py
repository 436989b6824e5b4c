"""A user's participation history; every count is derived from the entries, never kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from models import Participant, ParticipantUser
from services.errors import InvalidCursorError
from services.transaction import read_only
from utils.cursors import InvalidCursor, decode_cursor, encode_cursor
from utils.timeutil import as_utc


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


@dataclass(frozen=True)
class Participation:
    """One entry of a user's history."""

    participant_id: int
    giveaway_id: int
    participated_at: datetime
    is_winner: bool
    winner_position: int | None
    winner_selected_at: datetime | None
    status: str


@dataclass(frozen=True)
class HistoryPage:
    participations: list[Participation]
    next_cursor: str | None


HISTORY_CURSOR = "history"


def participations(*, user_id: int, limit: int, cursor: str | None = None) -> HistoryPage:
    """The user's entries, newest first, ``limit`` at a time (keyset on (time, id))."""
    query = (
        select(
            Participant.id,
            Participant.giveaway_id,
            Participant.participated_at,
            Participant.is_winner,
            Participant.winner_position,
            Participant.winner_selected_at,
            Participant.status,
        )
        .where(Participant.user_id == user_id)
        .order_by(Participant.participated_at.desc(), Participant.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        moment, last_id = _position(cursor)
        query = query.where(
            or_(
                Participant.participated_at < moment,
                and_(Participant.participated_at == moment, Participant.id < last_id),
            )
        )
    with read_only() as session:
        rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        Participation(
            participant_id=row.id,
            giveaway_id=row.giveaway_id,
            participated_at=row.participated_at,
            is_winner=row.is_winner,
            winner_position=row.winner_position,
            winner_selected_at=row.winner_selected_at,
            status=row.status,
        )
        for row in rows
    ]
    next_cursor = None
    if more and items:
        last = items[-1]
        next_cursor = encode_cursor(
            HISTORY_CURSOR, last.participated_at.isoformat(), last.participant_id
        )
    return HistoryPage(participations=items, next_cursor=next_cursor)


def _position(cursor: str) -> tuple[datetime, int]:
    try:
        moment, last_id = decode_cursor(cursor, HISTORY_CURSOR, str, int)
        return as_utc(datetime.fromisoformat(moment)), last_id
    except (InvalidCursor, ValueError, OverflowError):  # ValueError: not an ISO time
        raise InvalidCursorError() from None
