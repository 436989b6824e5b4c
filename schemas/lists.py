"""Shapes of the read side: giveaway lists, counts, stats, history, delivery, audit."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.common import InputModel, OpaqueText, OutputModel, TelegramId, Timestamp, UTCInstant
from services.audit import EventType

GIVEAWAY_LIST_MAX = 1_000_000
DASHBOARD_LIST_MAX = 1_000


class GiveawayListQuery(InputModel):
    page: int = Field(default=1, ge=1, le=10_000_000)
    limit: int = Field(
        default=100,
        ge=1,
        le=GIVEAWAY_LIST_MAX,
        description="Up to 1,000,000 rows in one streamed response (the whole giveaway).",
    )
    cursor: OpaqueText | None = Field(
        default=None, max_length=512, description="next_cursor of a page."
    )


class DashboardListQuery(GiveawayListQuery):
    limit: int = Field(default=50, ge=1, le=DASHBOARD_LIST_MAX)


class ParticipantOut(OutputModel):
    id: int
    user_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    captcha_completed: bool
    participated_at: str
    is_winner: bool
    winner_position: int | None
    winner_selected_at: str | None
    status: str = Field(
        description="active; pending (entered while Telegram was busy, subscription not "
        "confirmed yet); excluded (found not subscribed when verified); unsubscribed (found "
        "gone by a draw)."
    )
    entry_number: int


class GiveawayListOut(OutputModel):
    success: bool = True
    giveaway_id: int
    total: int
    page: int | None
    limit: int
    totalPages: int
    next_cursor: str | None
    participants: list[ParticipantOut]


class ListStats(OutputModel):
    total: int
    captcha_completed: int
    captcha_pending: int
    winners: int
    subscription_pending: int
    excluded: int


class DashboardListOut(GiveawayListOut):
    stats: ListStats


class CountOut(OutputModel):
    success: bool = True
    giveaway_id: int
    count: int
    total_participants: int
    subscription_pending: int = Field(
        description="Entries among them still pending verification (entered while Telegram was "
        "busy)."
    )
    excluded: int = Field(
        description="Entries among them excluded: found not subscribed when verified."
    )


class StatsBody(OutputModel):
    total_participants: int
    captcha_completed_participants: int
    active_participants: int
    total: int
    captcha_completed: int
    captcha_pending: int
    winners: int
    unsubscribed: int
    delivered: int
    drawn: bool
    subscription_pending: int
    excluded: int


class StatsOut(OutputModel):
    success: bool = True
    giveaway_id: int
    stats: StatsBody


class HistoryQuery(InputModel):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: OpaqueText | None = Field(default=None, max_length=512)


class UserStatsOut(OutputModel):
    user_id: int
    captcha_completed: bool
    captcha_completed_at: Timestamp | None
    total_participations: int
    total_wins: int
    first_participation_at: Timestamp | None
    last_participation_at: Timestamp | None


class ParticipationOut(OutputModel):
    participant_id: int
    giveaway_id: int
    participated_at: Timestamp
    is_winner: bool
    winner_position: int | None
    winner_selected_at: Timestamp | None
    status: str


class HistoryOut(OutputModel):
    success: bool = True
    user_stats: UserStatsOut
    participations: list[ParticipationOut]
    next_cursor: str | None


class DeliveryIn(InputModel):
    participant_ids: list[TelegramId] = Field(min_length=1, max_length=10_000)
    delivered: bool
    delivery_timestamp: UTCInstant | None = None


class FailedUpdate(OutputModel):
    participant_id: int
    error_code: str
    error: str


class DeliveryOut(OutputModel):
    success: bool = True
    updated_count: int
    updated_ids: list[int]
    failed_updates: list[FailedUpdate]
    error: str | None = None


class AuditQuery(InputModel):
    giveaway_id: TelegramId | None = None
    user_id: TelegramId | None = None
    event_type: EventType | None = None
    since: UTCInstant | None = None
    until: UTCInstant | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: OpaqueText | None = Field(default=None, max_length=512)


class AuditEventOut(OutputModel):
    id: int
    occurred_at: Timestamp
    event_type: str
    giveaway_id: int | None
    user_id: int | None
    actor: str | None
    request_id: str | None
    facts: dict[str, Any]


class AuditOut(OutputModel):
    success: bool = True
    events: list[AuditEventOut]
    next_cursor: str | None
