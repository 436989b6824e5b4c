"""The Bot's delivery reports."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from extensions import db
from models import AuditEvent, Participant
from tests.conftest import BOT, DASHBOARD
from tests.factories import add_entries


def entry_ids(app):
    with app.app_context():
        return list(db.session.scalars(select(Participant.id).order_by(Participant.id)))


def entry(app, participant_id):
    with app.app_context():
        return db.session.get(Participant, participant_id)


def put(client, body, headers=BOT):
    return client.put("/api/participants/update-delivery-status", json=body, headers=headers)


def test_known_ids_are_updated_and_unknown_ones_reported_per_id(app, client):
    add_entries(app, 1, [11, 12, 13])
    first, second, _ = entry_ids(app)
    response = put(
        client,
        {
            "participant_ids": [first, 999_999, second],
            "delivered": True,
            "delivery_timestamp": "2026-11-26T10:15:00",
        },
    )
    body = response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["updated_count"] == 2
    assert body["updated_ids"] == [first, second]
    assert body["failed_updates"] == [
        {
            "participant_id": 999_999,
            "error_code": "PARTICIPANT_NOT_FOUND",
            "error": "No entry has this id.",
        }
    ]
    assert "999" not in body["error"] and "not found" in body["error"]
    stored = entry(app, first)
    assert stored.delivered is True
    # No offset in the timestamp: it is read as UTC.
    assert stored.delivered_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert stored.delivery_attempts == 1


def test_attempts_count_and_offsets_are_honoured(app, client):
    add_entries(app, 1, [11])
    [only] = entry_ids(app)
    put(client, {"participant_ids": [only], "delivered": False})
    put(
        client,
        {
            "participant_ids": [only, only],
            "delivered": True,
            "delivery_timestamp": "2026-11-26T12:00:00+02:00",
        },
    )
    stored = entry(app, only)
    assert stored.delivery_attempts == 2
    assert stored.delivered is True
    assert stored.delivered_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_every_update_is_audited_per_giveaway(app, client):
    add_entries(app, 1, [11, 12])
    add_entries(app, 2, [11])
    put(client, {"participant_ids": entry_ids(app), "delivered": True})
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.event_type == "delivery_update")
            .order_by(AuditEvent.giveaway_id)
        ).all()
    assert [(e.giveaway_id, len(e.facts["participant_ids"])) for e in events] == [(1, 2), (2, 1)]
    assert events[0].actor == "bot"


def test_bad_delivery_bodies_are_400_and_change_nothing(app, client):
    add_entries(app, 1, [11])
    for body, field in (
        ({"participant_ids": [], "delivered": True}, "participant_ids"),
        ({"participant_ids": [1], "delivered": "perhaps"}, "delivered"),
        ({"participant_ids": ["x"], "delivered": True}, "participant_ids.0"),
        (
            {"participant_ids": [1], "delivered": True, "delivery_timestamp": "yesterday"},
            "delivery_timestamp",
        ),
    ):
        response = put(client, body)
        assert response.status_code == 400, body
        assert field in response.get_json()["details"]
    assert entry(app, entry_ids(app)[0]).delivery_attempts == 0


def test_only_the_bot_and_admin_report_deliveries(client):
    assert (
        put(client, {"participant_ids": [1], "delivered": True}, headers=DASHBOARD).status_code
        == 403
    )
