"""The audit log: events written with their change (or not at all), and read back filtered."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from extensions import db
from models import AuditEvent, Participant
from services import audit
from tests.conftest import ADMIN, BOT, DASHBOARD, GIVEAWAY
from tests.factories import add_entries

USER = 4_000_000_001


def join(app, client, user=USER, giveaway_id=1):
    from services import captcha

    client.post(
        "/api/participants/register",
        json={"giveaway_id": giveaway_id, "user_id": user},
        headers=BOT,
    )
    with app.app_context():
        right = captcha.captcha_store().load(user).answer
    return client.post(
        "/api/participants/validate-captcha",
        json={"giveaway_id": giveaway_id, "user_id": user, "answer": right},
        headers={**BOT, "X-Request-ID": "req-join"},
    )


def events(client, query="", headers=DASHBOARD):
    response = client.get(f"/api/participants/audit{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_events_carry_time_type_giveaway_user_actor_request_and_facts(app, client, peers):
    peers.standard()
    join(app, client)
    body = events(client, f"?user_id={USER}")
    assert [e["event_type"] for e in body["events"]] == [
        "participation",
        "captcha_passed",
        "captcha_issued",
    ]
    participation = body["events"][0]
    assert participation["giveaway_id"] == 1
    assert participation["actor"] == "bot"
    assert participation["request_id"] == "req-join"
    assert participation["occurred_at"].endswith("+00:00")
    assert participation["facts"]["participant_id"] >= 1


def test_filters_and_cursor(app, client, peers):
    peers.standard(1, 2)
    for user in range(5):
        join(app, client, user=USER + user, giveaway_id=1 + user % 2)
    only_g2 = events(client, "?giveaway_id=2&event_type=participation")
    assert {e["giveaway_id"] for e in only_g2["events"]} == {2}
    assert len(only_g2["events"]) == 2
    seen, cursor = [], ""
    while True:
        body = events(client, f"?event_type=participation&limit=2{cursor}")
        seen += [e["id"] for e in body["events"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    future = events(client, "?since=2999-01-01T00:00:00")
    assert future["events"] == []
    past = events(client, "?until=2000-01-01T00:00:00Z")
    assert past["events"] == []


@pytest.mark.parametrize(
    "query",
    ["?event_type=nonsense", "?limit=0", "?since=yesterday", "?cursor=abc", "?giveaway_id=-1"],
)
def test_bad_audit_queries_are_400(client, query):
    assert client.get(f"/api/participants/audit{query}", headers=DASHBOARD).status_code == 400


def test_only_audit_callers_read_the_log(client):
    assert client.get("/api/participants/audit", headers=BOT).status_code == 403
    assert client.get("/api/participants/audit", headers=GIVEAWAY).status_code == 403
    assert client.get("/api/participants/audit", headers=ADMIN).status_code == 200


@pytest.fixture
def audit_insert_fails(app):
    """The database refuses the participation event (a trigger), as if it failed mid-write."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                text(
                    "CREATE FUNCTION participant_test_refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql"
                )
            )
            db.session.execute(
                text(
                    "CREATE TRIGGER participant_test_refuse BEFORE INSERT ON participant_audit_events "
                    "FOR EACH ROW WHEN (NEW.event_type = 'participation') "
                    "EXECUTE FUNCTION participant_test_refuse()"
                )
            )
        else:
            db.session.execute(
                text(
                    "CREATE TRIGGER participant_test_refuse BEFORE INSERT ON participant_audit_events "
                    "WHEN NEW.event_type = 'participation' BEGIN SELECT RAISE(ABORT, 'injected'); END"
                )
            )
        db.session.commit()
    yield
    with app.app_context():
        db.session.execute(
            text("DROP TRIGGER participant_test_refuse ON participant_audit_events")
            if db.engine.dialect.name == "postgresql"
            else text("DROP TRIGGER participant_test_refuse")
        )
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP FUNCTION participant_test_refuse()"))
        db.session.commit()


def test_a_change_that_fails_halfway_leaves_neither_the_change_nor_its_event(
    app, client, peers, audit_insert_fails
):
    peers.standard()
    response = join(app, client)
    assert response.status_code >= 400
    assert response.get_json()["success"] is False
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Participant)) == 0
        kinds = db.session.scalars(select(AuditEvent.event_type)).all()
    assert "participation" not in kinds
    assert "captcha_passed" in kinds  # the captcha was passed, in its own committed transaction


def test_a_failed_delivery_update_writes_no_event(app, client, monkeypatch):
    add_entries(app, 1, [11])
    from services import delivery

    def fail(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(delivery, "record_event", fail)
    with app.app_context():
        [entry_id] = db.session.scalars(select(Participant.id)).all()
    client.put(
        "/api/participants/update-delivery-status",
        json={"participant_ids": [entry_id], "delivered": True},
        headers=BOT,
    )
    with app.app_context():
        assert db.session.get(Participant, entry_id).delivery_attempts == 0
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event_type == "delivery_update")
            )
            == 0
        )


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_delete_audit_events(app, client, peers):
    peers.standard()
    join(app, client)
    with app.app_context():
        for statement in (
            "UPDATE participant_audit_events SET actor = 'me'",
            "DELETE FROM participant_audit_events",
        ):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(text(statement))
            db.session.rollback()
        assert audit.list_events(where=audit.AuditFilter(), limit=10).events
