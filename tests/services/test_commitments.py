"""The giveaway's state row: made by an early commitment or the first entry, whichever comes
first, and holding the giveaway's account either way."""

from __future__ import annotations

from extensions import db
from models import GiveawayState
from tests.conftest import BOT, GIVEAWAY, GIVEAWAY_URL
from tests.factories import complete_captcha

USERS = [6_000_000_001, 6_000_000_002, 6_000_000_003]


def test_a_draw_never_asks_the_giveaway_service_after_an_early_commitment(make_app, peers):
    # The Giveaway service's GET calls our /count synchronously: asking it back from a draw is
    # the call that can deadlock the two services.
    app = make_app(GIVEAWAY_CACHE_SECONDS="0")  # the draw comes long after any cached answer
    client = app.test_client()
    peers.standard()
    committed = client.post("/api/participants/1/commitment", headers=GIVEAWAY)
    assert committed.status_code == 200
    complete_captcha(app, USERS)
    for user_id in USERS:
        entered = client.post(
            "/api/participants/register",
            json={"giveaway_id": 1, "user_id": user_id},
            headers=BOT,
        )
        assert entered.status_code == 201, entered.get_json()
    asked_by_registrations = peers.calls_to(GIVEAWAY_URL)
    drawn = client.post(
        "/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY
    )
    assert drawn.status_code == 200, drawn.get_json()
    assert len(drawn.get_json()["winners"]) == 2
    assert peers.calls_to(GIVEAWAY_URL) == asked_by_registrations
    with app.app_context():
        assert db.session.get(GiveawayState, 1).account_id == 42
