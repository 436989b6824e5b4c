"""A user's history: totals derived from the entries, participations newest first by cursor."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from extensions import db
from models import Participant
from tests.conftest import DASHBOARD, GIVEAWAY
from tests.factories import add_entries
from utils.timeutil import utcnow

USER = 3_000_000_001


def spread_entries(app, giveaway_ids):
    """The user enters each giveaway a day apart (giveaway 1 first)."""
    for giveaway_id in giveaway_ids:
        add_entries(app, giveaway_id, [USER])
    start = utcnow() - timedelta(days=30)
    with app.app_context():
        for day, giveaway_id in enumerate(giveaway_ids):
            db.session.execute(
                update(Participant)
                .where(Participant.giveaway_id == giveaway_id, Participant.user_id == USER)
                .values(participated_at=start + timedelta(days=day))
            )
        db.session.commit()


def test_history_lists_participations_newest_first_with_derived_totals(app, client, peers):
    peers.standard()
    spread_entries(app, [1, 2, 3, 4, 5])
    add_entries(app, 3, [USER + 1])  # another user in giveaway 3, so the draw has a choice
    client.post("/api/participants/3/select-winners", json={"winner_count": 2}, headers=GIVEAWAY)
    response = client.get(f"/api/participants/history/{USER}", headers=DASHBOARD)
    body = response.get_json()
    assert response.status_code == 200
    stats = body["user_stats"]
    assert stats["user_id"] == USER
    assert stats["captcha_completed"] is True
    assert stats["total_participations"] == 5
    assert stats["total_wins"] == 1
    assert stats["first_participation_at"] < stats["last_participation_at"]
    assert [p["giveaway_id"] for p in body["participations"]] == [5, 4, 3, 2, 1]
    assert [p["is_winner"] for p in body["participations"]] == [False, False, True, False, False]
    assert body["next_cursor"] is None


def test_history_is_paginated_by_cursor(app, client):
    spread_entries(app, [1, 2, 3, 4, 5])
    seen, cursor = [], None
    for _ in range(5):
        path = f"/api/participants/history/{USER}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(path, headers=DASHBOARD).get_json()
        seen += [p["giveaway_id"] for p in body["participations"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]


def test_entries_made_in_the_same_instant_are_neither_lost_nor_repeated(app, client):
    add_entries(app, 1, [USER])
    add_entries(app, 2, [USER])
    add_entries(app, 3, [USER])
    moment = utcnow()
    with app.app_context():
        db.session.execute(update(Participant).values(participated_at=moment))
        db.session.commit()
    first = client.get(f"/api/participants/history/{USER}?limit=2", headers=DASHBOARD).get_json()
    rest = client.get(
        f"/api/participants/history/{USER}?limit=2&cursor={first['next_cursor']}", headers=DASHBOARD
    ).get_json()
    ids = [p["participant_id"] for p in first["participations"] + rest["participations"]]
    assert len(ids) == 3 == len(set(ids))


def test_an_unknown_user_is_404_user_not_found(client):
    response = client.get("/api/participants/history/42", headers=DASHBOARD)
    assert response.status_code == 404
    assert response.get_json()["error_code"] == "USER_NOT_FOUND"


def test_a_bad_history_cursor_is_400(app, client):
    add_entries(app, 1, [USER])
    response = client.get(
        f"/api/participants/history/{USER}?cursor=WyJlbnRyaWVzIiwxXQ", headers=DASHBOARD
    )
    assert response.status_code == 400
    assert "cursor" in response.get_json()["details"]
