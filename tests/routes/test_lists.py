"""Lists, counts, stats and the CSV export, as the Giveaway service and the Dashboard read them."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import BOT, DASHBOARD, GIVEAWAY
from tests.factories import add_entries

USERS = [2_000_000_000 + i for i in range(1, 3001)]  # 3,000 entrants


@pytest.fixture
def crowd(app):
    add_entries(app, 1, USERS)
    return USERS


def get_json(client, path, headers=GIVEAWAY):
    response = client.get(path, headers=headers)
    return response, json.loads(response.get_data())


def test_the_giveaway_service_gets_the_whole_giveaway_in_one_streamed_page(client, crowd):
    response, body = get_json(client, "/api/participants/1?page=1&limit=100000")
    assert response.status_code == 200
    assert "Content-Length" not in response.headers  # streamed, not built in memory first
    assert body["success"] is True
    assert body["total"] == 3000
    assert body["totalPages"] == 1
    assert body["next_cursor"] is None
    assert [p["user_id"] for p in body["participants"]] == crowd
    assert all(p["is_winner"] is False for p in body["participants"])


def test_deep_pages_are_exact_ranges_of_entries(client, crowd):
    _, page2 = get_json(client, "/api/participants/1?page=2&limit=1000")
    assert [p["user_id"] for p in page2["participants"]] == crowd[1000:2000]
    assert [p["entry_number"] for p in page2["participants"]][:2] == [1001, 1002]
    _, last = get_json(client, "/api/participants/1?page=4&limit=999")
    assert [p["user_id"] for p in last["participants"]] == crowd[2997:]
    assert last["totalPages"] == 4
    _, beyond = get_json(client, "/api/participants/1?page=9&limit=1000")
    assert beyond["participants"] == []


def test_following_the_cursor_visits_every_entry_once(client, crowd):
    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/participants/1?limit=700" + (f"&cursor={cursor}" if cursor else "")
        _, body = get_json(client, path)
        seen += [p["user_id"] for p in body["participants"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == crowd
    assert pages == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("limit=0", "limit"),
        ("limit=1000001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=WyJoaXN0b3J5IiwxLDJd", "cursor"),  # a history cursor, not a list cursor
    ],
)
def test_bad_paging_parameters_are_400(client, query, field):
    response, body = get_json(client, f"/api/participants/1?{query}")
    assert response.status_code == 400
    assert body["error_code"] == "VALIDATION_ERROR"
    assert field in body["details"]


def test_the_dashboard_list_has_its_fields_stats_and_pagination(app, client, crowd, peers):
    peers.standard()
    client.post("/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY)
    response, body = get_json(client, "/api/participants/list/1?page=3&limit=20", DASHBOARD)
    assert response.status_code == 200
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3000, 3, 20, 150)
    assert body["stats"] == {
        "total": 3000,
        "captcha_completed": 3000,
        "captcha_pending": 0,
        "winners": 2,
        "subscription_pending": 0,
        "excluded": 0,
    }
    row = body["participants"][0]
    assert {
        "id",
        "user_id",
        "username",
        "first_name",
        "last_name",
        "captcha_completed",
        "participated_at",
        "is_winner",
    } <= set(row)
    assert row["user_id"] == crowd[40]
    assert row["captcha_completed"] is True
    assert row["participated_at"].endswith("+00:00")
    too_many, _ = get_json(client, "/api/participants/list/1?limit=1001", DASHBOARD)
    assert too_many.status_code == 400


def test_counts_on_both_paths(client, crowd):
    for path in ("/api/participants/1/count", "/api/participants/count/1"):
        response, body = get_json(client, path)
        assert response.status_code == 200
        assert body == {
            "success": True,
            "giveaway_id": 1,
            "count": 3000,
            "total_participants": 3000,
            "subscription_pending": 0,
            "excluded": 0,
        }
    _, empty = get_json(client, "/api/participants/count/99")
    assert empty["count"] == 0


def test_stats_have_every_key_the_contract_lists(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS[:10])
    client.post(
        "/api/participants/register", json={"giveaway_id": 1, "user_id": 77}, headers=BOT
    )  # pending captcha
    loser = USERS[0]
    peers.members[loser] = "left"
    # Whoever the seed picks, force the first candidate to be the one who left by drawing all 10.
    client.post("/api/participants/1/select-winners", json={"winner_count": 10}, headers=GIVEAWAY)
    for path in ("/api/participants/1/stats", "/api/participants/stats/1"):
        _, body = get_json(client, path, DASHBOARD)
        stats = body["stats"]
        assert stats["total_participants"] == 10
        assert stats["captcha_completed_participants"] == 10
        assert stats["active_participants"] == 9
        assert stats["captcha_pending"] == 1
        assert stats["winners"] == 9
        assert stats["unsubscribed"] == 1
        assert stats["drawn"] is True


def test_the_export_is_a_streamed_spreadsheet_safe_csv(app, client):
    add_entries(app, 1, USERS[:2000])
    add_entries(app, 2, [5, 6], names=False)
    from sqlalchemy import update

    from extensions import db
    from models import Participant

    with app.app_context():
        db.session.execute(
            update(Participant)
            .where(Participant.user_id == USERS[0])
            .values(username='=HYPERLINK("http://evil")', first_name="+1", last_name="@SUM(A1)")
        )
        db.session.commit()
    for path in ("/api/participants/export/1", "/api/participants/1/export"):
        response = client.get(path, headers=DASHBOARD)
        assert response.status_code == 200
        assert "Content-Length" not in response.headers  # streamed, not built in memory first
        assert response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert rows[0][:3] == ["participant_id", "user_id", "username"]
        assert len(rows) == 2001
        first = dict(zip(rows[0], rows[1], strict=True))
        assert first["user_id"] == str(USERS[0])
        assert first["username"] == '\'=HYPERLINK("http://evil")'
        assert (first["first_name"], first["last_name"]) == ("'+1", "'@SUM(A1)")
        assert first["captcha_completed"] == "true"


def test_an_empty_giveaway_exports_just_the_header(client):
    response = client.get("/api/participants/export/404", headers=DASHBOARD)
    assert response.get_data(as_text=True).count("\n") == 1


def test_reading_needs_the_read_scope(make_app):
    client = make_app().test_client()
    assert client.get("/api/participants/1").status_code == 401
    assert client.get("/api/participants/export/1").status_code == 401


def test_a_single_segment_route_does_not_shadow_its_siblings(client):
    assert client.get("/api/participants/register", headers=BOT).status_code == 405
    assert client.get("/api/participants/abc", headers=BOT).status_code == 404
