"""Draws nobody can steer (telegive-draw v2) through the API: the entrant list committed at the
close, the beacon round that fixes and its verified signature, a relay that lies or is down, the
reroll's reserved round, and each entrant's inclusion proof."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from devtools import drand_chain
from extensions import db
from models import AuditEvent, DrawRecord, EntrantCommitment
from tests.conftest import DRAND_CHAIN, GIVEAWAY
from tests.factories import add_entries
from tests.routes.test_draws import USERS, document, reroll, select_winners, winner_ids
from utils import draw as algorithm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(make_app):
    """The test application, its circuits not opened by the outages these tests stage (an
    outage's retry here comes at once; in production it comes after the Retry-After)."""
    return make_app(UPSTREAM_CIRCUIT_FAILURES="1000")


@pytest.fixture
def client(app):
    return app.test_client()


def record_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(DrawRecord))


def proof(client, user_id: int, giveaway_id: int = 1):
    return client.get(f"/api/participants/{giveaway_id}/draw/proof/{user_id}", headers=GIVEAWAY)


def test_a_draw_uses_the_first_round_after_the_close_and_records_its_verified_beacon(
    app, client, peers
):
    peers.standard()
    add_entries(app, 1, USERS)
    body = select_winners(client, count=3).get_json()
    record = body["draw"]
    doc = document(client)
    committed = doc["entrant_commitment"]
    assert record["algorithm_version"] == 2
    assert record["entrant_root"] == committed["entrant_root"]
    assert record["entrant_count"] == committed["entrant_count"] == len(USERS)
    assert record["randomness_fixed_at"] == committed["entrants_committed_at"]
    beacon = record["beacon"]
    assert beacon["round"] == committed["beacon_round"]
    assert beacon["chain_hash"] == DRAND_CHAIN.hash == doc["beacon"]["chain_hash"]
    assert beacon == drand_chain.beacon(beacon["round"]) | {"chain_hash": DRAND_CHAIN.hash}
    verdict = algorithm.check_draw([record], None, [DRAND_CHAIN])
    assert verdict.problems == [] and verdict.unchecked == [] and verdict.notes == []
    # Every winner proves its place against the root, alone.
    for winner in record["winners"]:
        assert algorithm.proof_holds(
            record["entrant_root"],
            record["entrant_count"],
            winner["user_id"],
            winner["salt"],
            winner["leaf_index"],
            winner["proof"],
        )


@pytest.mark.parametrize(
    "relay",
    [
        pytest.param(lambda round: (503, {"error": "down"}), id="down"),
        pytest.param(
            lambda round: (200, drand_chain.beacon(round - 1) | {"round": round}),
            id="another-rounds-signature",
        ),
        pytest.param(
            lambda round: (200, {**drand_chain.beacon(round), "signature": "b" + "0" * 95}),
            id="not-a-point",
        ),
        pytest.param(lambda round: (200, {"round": "x"}), id="garbage"),
    ],
)
def test_a_relay_that_is_down_or_lies_gives_503_records_nothing_and_the_round_does_not_move(
    app, client, peers, beacon_clock, relay
):
    peers.standard()
    add_entries(app, 1, USERS)
    peers.drand_answer = relay
    refused = select_winners(client, count=3)
    assert refused.status_code == 503
    body = refused.get_json()
    assert body["error_code"] == "BEACON_UNAVAILABLE"
    assert int(refused.headers["Retry-After"]) >= 1
    assert record_count(app) == 0
    fixed = document(client)["entrant_commitment"]
    assert fixed["beacon_round"] >= 1
    # Later, with rounds long past the fixed one, the retry still uses the fixed round.
    peers.drand_answer = None
    beacon_clock.advance(60)
    retried = select_winners(client, count=3).get_json()
    assert retried["draw"]["beacon"]["round"] == fixed["beacon_round"]
    assert retried["draw"]["entrant_root"] == fixed["entrant_root"]
    assert record_count(app) == 1


def test_the_winners_follow_from_seed_beacon_and_root_and_nothing_else(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    record = select_winners(client, count=5).get_json()["draw"]
    mixed = algorithm.mixed_seed(
        record["seed"], record["beacon"]["randomness"], record["entrant_root"]
    )
    expected, _ = algorithm.select_winners(mixed, sorted(USERS), 5, version=2)
    assert [w["user_id"] for w in record["winners"]] == expected
    # Without the beacon the same seed and list give other winners: it decided.
    alone = algorithm.mixed_seed(record["seed"], None, record["entrant_root"])
    assert algorithm.select_winners(alone, sorted(USERS), 5, version=2)[0] != expected


def test_a_reroll_fixes_its_round_once_and_a_retry_keeps_it(app, client, peers, beacon_clock):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client, count=3).get_json()
    peers.drand_answer = lambda round: (503, {})
    failed = reroll(client, key="r1", replace_user_id=winner_ids(first)[0])
    assert failed.status_code == 503
    reserved = document(client)["next_reroll_round"]
    assert reserved["beacon_round"] > first["draw"]["beacon"]["round"] - 1
    peers.drand_answer = None
    beacon_clock.advance(30)
    done = reroll(client, key="r1", replace_user_id=winner_ids(first)[0]).get_json()
    assert done["draw"]["beacon"]["round"] == reserved["beacon_round"]
    assert done["draw"]["randomness_fixed_at"] == reserved["randomness_fixed_at"]
    assert document(client)["next_reroll_round"] is None
    records = document(client)["records"]
    assert algorithm.check_draw(records, None, [DRAND_CHAIN]).problems == []


def test_a_new_reroll_request_replacing_an_abandoned_reservation_is_in_the_audit_log(
    app, client, peers, beacon_clock
):
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client, count=3).get_json()
    peers.drand_answer = lambda round: (503, {})
    assert reroll(client, key="a", add_count=1).status_code == 503
    abandoned = document(client)["next_reroll_round"]["beacon_round"]
    beacon_clock.advance(30)
    peers.drand_answer = None
    done = reroll(client, key="b", add_count=1).get_json()
    assert done["draw"]["beacon"]["round"] >= abandoned  # fixed anew, from the clock
    with app.app_context():
        facts = db.session.scalars(
            select(AuditEvent.facts)
            .where(AuditEvent.event_type == "reroll_round_fixed")
            .order_by(AuditEvent.id)
        ).all()
    assert [f["idempotency_key"] for f in facts] == ["a", "b"]
    assert facts[1]["abandoned_round"] == abandoned and facts[1]["abandoned_key"] == "a"
    assert first["draw"]["entrant_root"] == done["draw"]["entrant_root"]


def test_an_entrant_proves_inclusion_and_learns_nothing_about_others(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    early = proof(client, USERS[3])
    assert early.status_code == 409
    assert early.get_json()["error_code"] == "ENTRIES_NOT_COMMITTED"
    record = select_winners(client, count=3).get_json()["draw"]
    for user_id in (USERS[0], USERS[7], USERS[-1]):
        answer = proof(client, user_id)
        assert answer.status_code == 200
        body = answer.get_json()
        assert body["entrant_root"] == record["entrant_root"]
        assert body["leaf_index"] == sorted(USERS).index(user_id)
        assert algorithm.check_proof(body, [record]) == []
        others = [str(other) for other in USERS if other != user_id]
        assert not any(other in answer.get_data(as_text=True) for other in others)
    stranger = proof(client, USERS[-1] + 1)
    assert stranger.status_code == 404
    assert stranger.get_json()["error_code"] == "NOT_AN_ENTRANT"
    before_everyone = proof(client, 1)
    assert before_everyone.status_code == 404


def test_a_proof_from_the_api_verifies_with_the_standalone_script(app, client, peers, tmp_path):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client, count=2)
    (tmp_path / "proof.json").write_text(json.dumps(proof(client, USERS[5]).get_json()))
    (tmp_path / "draw.json").write_text(json.dumps(document(client)))
    arguments = ["verify-proof", "--proof", str(tmp_path / "proof.json")]
    assert algorithm.main([*arguments, "--record", str(tmp_path / "draw.json")]) == 0


def test_proofs_hold_across_chunks_of_the_list(app, client, peers):
    """More entrants than one chunk of the tree: proofs made from one chunk and the stored chunk
    roots lead to the same root as the draw's."""
    peers.standard()
    many = [5_000_000 + 3 * i for i in range(4096 + 700)]
    add_entries(app, 1, many, names=False)
    record = select_winners(client, count=2).get_json()["draw"]
    for user_id in (many[0], many[4095], many[4096], many[-1]):
        body = proof(client, user_id).get_json()
        assert algorithm.check_proof(body, [record]) == [], user_id


def test_with_the_beacon_off_the_record_says_no_public_randomness_was_used(
    make_app, peers, capsys, tmp_path
):
    app = make_app(DRAW_BEACON="off")
    client = app.test_client()
    peers.standard()
    add_entries(app, 1, USERS)
    body = select_winners(client, count=2).get_json()
    assert body["draw"]["beacon"] is None
    assert document(client)["beacon"] is None
    (tmp_path / "draw.json").write_text(json.dumps(document(client)))
    assert algorithm.main(["verify", "--record", str(tmp_path / "draw.json")]) == 0
    assert "no public randomness was used" in capsys.readouterr().out


@pytest.mark.postgres
def test_the_database_refuses_to_change_a_committed_list(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client)
    with app.app_context():
        for statement in (
            "UPDATE participant_entrant_commitments SET entrant_count = 1",
            "DELETE FROM participant_entrant_commitments",
            "TRUNCATE participant_entrant_commitments",
        ):
            with pytest.raises(Exception, match="refused"):
                db.session.execute(text(statement))
            db.session.rollback()
        assert db.session.get(EntrantCommitment, 1).entrant_count == len(USERS)


def test_the_standalone_verifier_without_the_bls_package_says_which_check_it_skipped(
    app, client, peers, tmp_path
):
    """draw.py and drand.py copied alone, run on the standard library only (-I -S): every rule
    is checked, and the beacon's signature is named as not checked (exit status 3)."""
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client, count=3)
    for name in ("draw.py", "drand.py"):
        shutil.copy(ROOT / "utils" / name, tmp_path / name)
    (tmp_path / "draw.json").write_text(json.dumps(document(client)))
    (tmp_path / "chain.json").write_text(json.dumps(drand_chain.info()))
    command = [sys.executable, "-I", "-S", "draw.py", "verify", "--record", "draw.json"]
    result = subprocess.run(
        [*command, "--chain", "chain.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "NOT FULLY VERIFIED: every rule checked holds" in result.stdout
    assert "pip install py-arkworks-bls12381" in result.stdout
    # A forged winner is still refused without the package.
    forged = document(client)
    forged["records"][0]["winners"][0]["user_id"] += 1
    (tmp_path / "draw.json").write_text(json.dumps(forged))
    refused = subprocess.run(
        [*command, "--chain", "chain.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert "NOT VERIFIED" in refused.stdout


def test_the_draw_answers_link_to_the_page_that_checks_it(make_app, peers):
    """select-winners and the draw document give the public page's address (PUBLIC_BASE_URL),
    and the page is there."""
    app = make_app(PUBLIC_BASE_URL="https://participant.example/")
    client = app.test_client()
    peers.standard()
    add_entries(app, 1, USERS)
    body = select_winners(client, count=2).get_json()
    assert body["verification_url"] == "https://participant.example/draws/1"
    assert document(client)["verification_url"] == "https://participant.example/draws/1"
    assert client.get("/draws/1").status_code == 200


def test_without_a_public_address_no_link_is_given(client, peers, app):
    peers.standard()
    add_entries(app, 1, USERS)
    assert select_winners(client, count=2).get_json()["verification_url"] is None
