"""Drawing winners through HTTP: idempotent, verifiable, rerolls, re-checks, the chain."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from devtools import drand_chain
from extensions import db
from models import DrawRecord, Participant
from tests.conftest import BOT, GIVEAWAY, TELEGRAM_URL
from tests.factories import ForeseenDraw, add_entries
from utils import draw as algorithm

ROOT = Path(__file__).resolve().parents[2]
USERS = [1_000_000_000 + i for i in range(1, 21)]


def select_winners(client, giveaway_id=1, count=3, alias=False):
    path = (
        f"/api/participants/select-winners/{giveaway_id}"
        if alias
        else f"/api/participants/{giveaway_id}/select-winners"
    )
    return client.post(path, json={"winner_count": count}, headers=GIVEAWAY)


def reroll(client, giveaway_id=1, key="k1", **body):
    return client.post(
        f"/api/participants/{giveaway_id}/reroll",
        json={"reason": "winner unreachable", "idempotency_key": key, **body},
        headers=GIVEAWAY,
    )


def document(client, giveaway_id=1):
    return client.get(f"/api/participants/{giveaway_id}/draw", headers=GIVEAWAY).get_json()


def winner_ids(body) -> list[int]:
    return [winner["user_id"] for winner in body["winners"]]


def test_zero_entrants_is_a_success_with_no_winners(client, peers):
    first = select_winners(client, giveaway_id=5, count=2)
    body = first.get_json()
    assert first.status_code == 200
    assert body["success"] is True
    assert body["winners"] == []
    assert body["total_participants"] == 0
    assert body["unclaimed_count"] == 2
    again = select_winners(client, giveaway_id=5, count=2).get_json()
    assert again["already_drawn"] is True


def test_the_first_call_draws_and_every_later_call_returns_the_same_draw(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client, count=3)
    body = first.get_json()
    assert first.status_code == 200
    assert body["already_drawn"] is False
    assert body["total_participants"] == 20
    assert [w["position"] for w in body["winners"]] == [1, 2, 3]
    winner = body["winners"][0]
    assert set(winner) >= {
        "user_id",
        "participant_id",
        "username",
        "first_name",
        "last_name",
        "position",
    }
    assert winner["username"] == f"user{winner['user_id']}"
    for repeat in (select_winners(client, count=3), select_winners(client, count=3, alias=True)):
        again = repeat.get_json()
        assert again["already_drawn"] is True
        assert winner_ids(again) == winner_ids(body)
        assert again["draw"]["record_hash"] == body["draw"]["record_hash"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 1


def test_a_repeat_with_another_winner_count_is_a_conflict(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client, count=3)
    response = select_winners(client, count=4)
    assert response.status_code == 409
    assert response.get_json()["error_code"] == "ALREADY_DRAWN"
    assert response.get_json()["details"]["winner_count"] == 3


def test_fewer_entrants_than_prizes_all_win_and_the_rest_is_unclaimed(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS[:2])
    body = select_winners(client, count=5).get_json()
    assert sorted(winner_ids(body)) == sorted(USERS[:2])
    assert body["unclaimed_count"] == 3


def test_the_commitment_is_published_before_and_the_seed_revealed_after(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    before = document(client)
    assert before["drawn"] is False
    assert "seed" not in json.dumps(before)
    assert len(before["commitment"]) == 64
    record = select_winners(client).get_json()["draw"]
    assert record["commitment"] == before["commitment"]
    assert hashlib.sha256(bytes.fromhex(record["seed"])).hexdigest() == before["commitment"]
    after = document(client)
    assert after["drawn"] is True
    assert after["records"] == [record]
    assert after["commitment"] == record["next_commitment"] != record["commitment"]


def test_the_giveaway_service_can_commit_before_any_entry(client):
    response = client.post("/api/participants/77/commitment", headers=GIVEAWAY)
    body = response.get_json()
    assert response.status_code == 200
    assert body["drawn"] is False and body["entrant_count"] == 0
    assert (
        client.post("/api/participants/77/commitment", headers=GIVEAWAY).get_json()["commitment"]
        == body["commitment"]
    )
    assert client.get("/api/participants/78/draw", headers=GIVEAWAY).status_code == 404


def test_winners_follow_from_the_seed_and_the_entrant_list(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    record = select_winners(client, count=4).get_json()["draw"]
    entrants = client.get("/api/participants/1/draw/entrants", headers=GIVEAWAY)
    assert entrants.mimetype == "text/plain"
    listed = [int(line) for line in entrants.get_data(as_text=True).splitlines()]
    assert listed == sorted(USERS)
    assert algorithm.verify_record(record, listed) == []


def test_no_entry_is_accepted_after_the_draw(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client)
    late = 1_999_999_991
    add_entries(app, 2, [late])  # the late user has done the captcha elsewhere
    response = client.post(
        "/api/participants/register", json={"giveaway_id": 1, "user_id": late}, headers=BOT
    )
    assert response.status_code == 409
    assert response.get_json()["error_code"] == "GIVEAWAY_NOT_ACTIVE"
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(Participant).where(Participant.giveaway_id == 1)
            )
            == 20
        )


@pytest.mark.parametrize("entered", ["directly", "by_registration"])
def test_a_winner_who_left_is_skipped_and_the_next_takes_the_place(
    app, client, peers, entered, monkeypatch
):
    peers.standard(1, 2)
    foreseen = ForeseenDraw(app, monkeypatch)
    if entered == "directly":
        add_entries(app, 1, USERS)
    else:  # each registration hears "member" and remembers it: the draw must ask again anyway
        add_entries(app, 2, USERS)  # captcha done elsewhere
        for user_id in USERS:
            response = client.post(
                "/api/participants/register",
                json={"giveaway_id": 1, "user_id": user_id},
                headers=BOT,
            )
            assert response.status_code == 201
    expected, _ = foreseen.winners(USERS, 3)
    peers.members[expected[0]] = "left"
    body = select_winners(client, count=3).get_json()
    assert expected[0] not in winner_ids(body)
    assert winner_ids(body)[:2] == expected[1:]
    assert [(s["user_id"], s["reason"], s["status"]) for s in body["skipped"]] == [
        (expected[0], "not_subscribed", "left")
    ]
    assert algorithm.verify_record(body["draw"], sorted(USERS)) == []
    stats = client.get(f"/api/participants/winner-status/{expected[0]}/1", headers=BOT).get_json()
    assert stats["participated"] is True and stats["is_winner"] is False


def test_a_telegram_outage_during_the_recheck_fails_cleanly(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    peers.telegram_answer = lambda _user: (502, {"ok": False})
    response = select_winners(client)
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 0
        assert (
            db.session.scalar(
                select(func.count()).select_from(Participant).where(Participant.is_winner)
            )
            == 0
        )
    peers.telegram_answer = None
    assert select_winners(client).status_code == 200


def test_the_recheck_can_be_switched_off(make_app, peers):
    app = make_app(DRAW_RECHECK_SUBSCRIPTION="false")
    add_entries(app, 1, USERS)
    body = select_winners(app.test_client()).get_json()
    assert len(body["winners"]) == 3
    assert body["draw"]["recheck_subscription"] is False
    assert peers.calls_to(TELEGRAM_URL) == 0


def test_the_draw_does_not_call_the_giveaway_service(app, client, peers):
    # The Giveaway service waits on this call; asking it back could deadlock the two services.
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client)
    assert peers.calls_to("http://giveaway.test") == 0


def test_winners_are_marked_and_counted_for_the_bot(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    body = select_winners(client).get_json()
    winner = body["winners"][0]["user_id"]
    status = client.get(f"/api/participants/winner-status/{winner}/1", headers=BOT).get_json()
    assert status["participated"] is True
    assert status["is_winner"] is True
    assert status["winner_selected_at"].endswith("+00:00")
    assert status["total_winners"] == 3
    loser = next(u for u in USERS if u not in winner_ids(body))
    assert (
        client.get(f"/api/participants/winner-status/{loser}/1", headers=BOT).get_json()[
            "is_winner"
        ]
        is False
    )
    stranger = client.get("/api/participants/winner-status/5/1", headers=BOT).get_json()
    assert stranger["participated"] is False
    captcha = client.get(f"/api/participants/captcha-status/{winner}", headers=BOT).get_json()
    assert captcha["total_wins"] == 1
    listed = client.get("/api/participants/1/winners", headers=GIVEAWAY).get_json()
    assert listed["drawn"] is True and winner_ids(listed) == winner_ids(body)


def test_a_reroll_replaces_a_named_winner_with_someone_who_never_won(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client).get_json()
    replaced = first["winners"][1]
    response = reroll(client, replace_user_id=replaced["user_id"])
    body = response.get_json()
    assert response.status_code == 200
    [new] = body["new_winners"]
    assert new["position"] == replaced["position"]
    assert new["user_id"] not in winner_ids(first)
    assert replaced["user_id"] not in winner_ids(body)
    assert len(body["winners"]) == 3
    record = body["draw"]
    assert record["kind"] == "reroll" and record["sequence"] == 2
    assert record["previous_hash"] == first["draw"]["record_hash"]
    assert record["commitment"] == first["draw"]["next_commitment"]
    assert set(record["exclusions"]) == set(winner_ids(first))
    assert algorithm.verify_record(record, sorted(USERS)) == []
    assert algorithm.verify_chain([first["draw"], record]) == []
    loser = client.get(
        f"/api/participants/winner-status/{replaced['user_id']}/1", headers=BOT
    ).get_json()
    assert loser["is_winner"] is False


def test_rerolls_never_pick_a_past_winner_until_nobody_is_left(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS[:5])
    winners = winner_ids(select_winners(client, count=2).get_json())
    ever = set(winners)
    for attempt in range(3):
        body = reroll(client, key=f"r{attempt}", replace_user_id=winners[0]).get_json()
        winners = winner_ids(body)
        assert not ({w["user_id"] for w in body["new_winners"]} & ever)
        ever |= set(winners)
    assert ever == set(USERS[:5])
    exhausted = reroll(client, key="last", replace_user_id=winners[0]).get_json()
    assert exhausted["new_winners"] == [] and exhausted["unclaimed_count"] == 1


def test_a_reroll_can_add_winners(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client, count=2).get_json()
    body = reroll(client, add_count=2).get_json()
    assert [w["position"] for w in body["new_winners"]] == [3, 4]
    assert len(body["winners"]) == 4
    assert not set(winner_ids({"winners": body["new_winners"]})) & set(winner_ids(first))


def test_a_reroll_is_idempotent_under_its_key(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client).get_json()
    target = first["winners"][0]["user_id"]
    once = reroll(client, key="same", replace_user_id=target).get_json()
    twice = reroll(client, key="same", replace_user_id=target).get_json()
    assert twice["already_done"] is True
    assert twice["draw"]["record_hash"] == once["draw"]["record_hash"]
    reused = reroll(client, key="same", add_count=1)
    assert reused.status_code == 409
    assert reused.get_json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    by_header = client.post(
        "/api/participants/1/reroll",
        json={"reason": "r", "add_count": 1},
        headers={**GIVEAWAY, "Idempotency-Key": "hdr"},
    )
    assert by_header.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 3


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"replace_user_id": 5}, 409, "NOT_A_WINNER"),
        ({}, 400, "VALIDATION_ERROR"),
        ({"replace_user_id": 5, "add_count": 1}, 400, "VALIDATION_ERROR"),
        ({"add_count": 0}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_rerolls_are_refused_and_change_nothing(app, client, peers, body, status, code):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client)
    response = reroll(client, **body)
    assert response.status_code == status
    assert response.get_json()["error_code"] == code
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 1


def test_a_reroll_before_the_draw_is_a_conflict(client):
    response = reroll(client, giveaway_id=9, add_count=1)
    assert response.status_code == 409
    assert response.get_json()["error_code"] == "NOT_DRAWN"


def test_a_reroll_needs_an_idempotency_key(client):
    response = client.post(
        "/api/participants/1/reroll", json={"reason": "x", "add_count": 1}, headers=GIVEAWAY
    )
    assert response.status_code == 400
    assert "idempotency_key" in response.get_json()["details"]


@pytest.mark.parametrize("count", [0, -1, "many", None, 100_001])
def test_invalid_winner_counts_are_rejected(client, count):
    response = client.post(
        "/api/participants/1/select-winners", json={"winner_count": count}, headers=GIVEAWAY
    )
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"winner_count"}


def test_only_the_draw_scope_may_draw(client):
    assert select_winners.__name__
    response = client.post(
        "/api/participants/1/select-winners", json={"winner_count": 1}, headers=BOT
    )
    assert response.status_code == 403


def test_the_chain_check_finds_a_modified_record(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client).get_json()
    reroll(client, replace_user_id=first["winners"][0]["user_id"])
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["verify-draws"])
    assert clean.exit_code == 0, clean.output
    assert "1 giveaway(s) checked, 0 broken" in clean.output
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET session_replication_role = replica"))  # bypass the trigger
        forged_winner = {**first["draw"]["winners"][0], "user_id": USERS[-1]}
        record = dict(first["draw"], winners=[forged_winner])
        db.session.execute(
            text("UPDATE participant_draws SET record = :record WHERE sequence = 1"),
            {"record": json.dumps(record)},
        )
        db.session.commit()
    broken = runner.invoke(args=["verify-draws"])
    assert broken.exit_code == 1
    assert "record_hash does not match" in broken.output


@pytest.mark.postgres
def test_the_database_refuses_to_change_a_draw_record(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client)
    with app.app_context():
        for statement in (
            "UPDATE participant_draws SET kind = 'x'",
            "DELETE FROM participant_draws",
        ):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(text(statement))
            db.session.rollback()


def test_a_participant_can_verify_a_real_draw_with_the_standalone_script(
    app, client, peers, tmp_path
):
    """From the published document alone (the proofs in the records) and with the entrant list;
    the beacon's signature checked against the chain's facts (the test chain is not quicknet)."""
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client).get_json()
    reroll(client, replace_user_id=first["winners"][0]["user_id"])
    (tmp_path / "draw.json").write_text(json.dumps(document(client)))
    (tmp_path / "entrants.txt").write_bytes(
        client.get("/api/participants/1/draw/entrants", headers=GIVEAWAY).get_data()
    )
    (tmp_path / "chain.json").write_text(json.dumps(drand_chain.info()))

    def run(*arguments: str) -> subprocess.CompletedProcess:
        script = ROOT / "utils" / "draw.py"
        return subprocess.run(
            [sys.executable, str(script), "verify", "--record", "draw.json", *arguments],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    with_list = run("--entrants", "entrants.txt", "--chain", "chain.json")
    assert with_list.returncode == 0, with_list.stdout + with_list.stderr
    assert "VERIFIED: 2 record(s) follow from the seed(s) and 20 entrants" in with_list.stdout
    from_root = run("--chain", "chain.json")
    assert from_root.returncode == 0, from_root.stdout + from_root.stderr
    assert "VERIFIED: 2 record(s) follow from the seed(s) and the committed entrant root" in (
        from_root.stdout
    )
    unknown_chain = run()
    assert unknown_chain.returncode == 3
    assert "NOT FULLY VERIFIED" in unknown_chain.stdout
    assert "is unknown here (give its public facts with --chain)" in unknown_chain.stdout
