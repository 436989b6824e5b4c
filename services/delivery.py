"""The Bot reports whether it delivered a message (a winner notification) to participants."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from models import Participant
from services.audit import EventType, record_event
from services.errors import ParticipantNotFound
from services.transaction import write_transaction
from utils.timeutil import as_utc, isoformat, utcnow


@dataclass(frozen=True)
class DeliveryResult:
    """Which entries were updated, and why the others were not."""

    updated: list[int]
    failed: list[dict[str, object]]


def update_delivery_status(
    *, participant_ids: list[int], delivered: bool, delivered_at: datetime | None
) -> DeliveryResult:
    """Record a delivery attempt on every known entry; unknown ids are reported, not fatal."""
    ids = list(dict.fromkeys(participant_ids))  # once each, in the order sent
    moment = as_utc(delivered_at) if delivered_at is not None else utcnow()
    with write_transaction() as session:
        found = session.execute(
            select(Participant.id, Participant.giveaway_id, Participant.user_id).where(
                Participant.id.in_(ids)
            )
        ).all()
        known = {row.id for row in found}
        if known:
            session.execute(
                update(Participant)
                .where(Participant.id.in_(known))
                .values(
                    delivered=delivered,
                    delivered_at=moment if delivered else None,
                    delivery_attempts=Participant.delivery_attempts + 1,
                )
            )
        by_giveaway: dict[int, list] = defaultdict(list)
        for row in found:
            by_giveaway[row.giveaway_id].append(row)
        for giveaway_id, rows in sorted(by_giveaway.items()):
            record_event(
                session,
                EventType.DELIVERY_UPDATE,
                giveaway_id=giveaway_id,
                facts={
                    "participant_ids": [row.id for row in rows],
                    "user_ids": [row.user_id for row in rows],
                    "delivered": delivered,
                    "delivered_at": isoformat(moment),
                },
            )
    return DeliveryResult(
        updated=[i for i in ids if i in known],
        failed=[_not_found(i) for i in ids if i not in known],
    )


def _not_found(participant_id: int) -> dict[str, object]:
    error = ParticipantNotFound("No entry has this id.")
    return {"participant_id": participant_id, "error_code": error.code, "error": error.message}
