"""The drand beacon service (services/beacon.py): relays asked in order and never trusted, the
wait for a round's publication (on the fake clock), and a retryable 503 when none answers."""

from __future__ import annotations

import logging
import time

import pytest
import requests
import responses

from devtools import drand_chain
from routes.errors import error_response
from services import beacon
from services.errors import BeaconUnavailable, Unavailable
from tests.conftest import DRAND_CHAIN, DRAND_URL
from tests.test_operations import metric
from utils.drand import QUICKNET
from utils.metrics import render

RELAY_A = "http://relay-a.test"
RELAY_B = "http://relay-b.test"
QUICKNET_657413 = (
    "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be"
    "41076862b98fad56e91a6b85b89cd97b"
)


def relay_url(relay: str, round: int) -> str:
    return f"{relay}/{DRAND_CHAIN.hash}/public/{round}"


def answer(relay, round, peers, *, status=200, body=None, **kwargs):
    """``relay`` answers this for ``round`` (a signed round of the test chain by default)."""
    if body is None and status == 200 and "body" not in kwargs:
        body = drand_chain.beacon(round)
    peers.mock.upsert(responses.GET, relay_url(relay, round), status=status, json=body, **kwargs)


def asked(peers, relay: str) -> int:
    return peers.calls_to(f"{relay}/")


def fetches(outcome: str) -> float:
    return metric(
        render()[0].decode(), "telegive_participant_beacon_fetches_total", outcome=outcome
    )


@pytest.fixture
def two_relays(make_app):
    return make_app(DRAND_URLS=f"{RELAY_A},{RELAY_B}")


def test_a_published_round_is_fetched_verified_and_recorded(app, peers, beacon_clock):
    round = beacon_clock.latest_round()
    with app.app_context():
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 10)
    assert got == beacon.Beacon(
        chain_hash=DRAND_CHAIN.hash,
        round=round,
        signature=drand_chain.sign(round),
        randomness=drand_chain.beacon(round)["randomness"],
    )
    assert got.as_record() == {
        "chain_hash": DRAND_CHAIN.hash,
        "round": round,
        "signature": drand_chain.sign(round),
        "randomness": drand_chain.beacon(round)["randomness"],
    }
    assert peers.calls_to(DRAND_URL) == 1
    assert beacon_clock.sleeps == []


def test_relays_are_asked_in_order_and_the_first_valid_answer_wins(two_relays, peers, beacon_clock):
    round = beacon_clock.latest_round()
    answer(RELAY_A, round, peers)
    answer(RELAY_B, round, peers)
    with two_relays.app_context():
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 10)
    assert got.signature == drand_chain.sign(round)
    assert (asked(peers, RELAY_A), asked(peers, RELAY_B)) == (1, 0)


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(
            lambda r: {"round": r, "signature": drand_chain.sign(r + 1)}, id="other-round"
        ),
        pytest.param(lambda r: {"round": r, "signature": QUICKNET_657413}, id="another-key"),
        pytest.param(lambda r: {"round": r, "signature": "c0" + "00" * 47}, id="identity"),
        pytest.param(lambda r: {"round": r + 1, "signature": drand_chain.sign(r + 1)}, id="round"),
        pytest.param(
            lambda r: {**drand_chain.beacon(r), "randomness": "00" * 32}, id="wrong-randomness"
        ),
        pytest.param(lambda r: {"round": str(r), "signature": drand_chain.sign(r)}, id="garbage"),
    ],
)
def test_a_relay_with_a_forged_answer_is_skipped_logged_and_counted(
    two_relays, peers, beacon_clock, caplog, forged
):
    round = beacon_clock.latest_round()
    answer(RELAY_A, round, peers, body=forged(round))
    answer(RELAY_B, round, peers)
    refused_before = fetches("invalid")
    with two_relays.app_context(), caplog.at_level(logging.WARNING, logger="telegive.beacon"):
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 10)
    assert got.signature == drand_chain.sign(round)  # relay B's, verified
    assert (asked(peers, RELAY_A), asked(peers, RELAY_B)) == (1, 1)
    assert fetches("invalid") == refused_before + 1
    [refusal] = [r for r in caplog.records if r.getMessage() == "drand relay answer refused"]
    assert refusal.relay == RELAY_A and refusal.round == round


def test_a_failing_relay_is_passed_over_for_the_next(two_relays, peers, beacon_clock):
    round = beacon_clock.latest_round()
    answer(RELAY_A, round, peers, status=502, body={"error": "bad gateway"})
    answer(RELAY_B, round, peers)
    with two_relays.app_context():
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 10)
    assert got.round == round and asked(peers, RELAY_B) == 1


def test_the_wait_for_a_future_round_is_on_the_clock_and_never_real(app, peers, beacon_clock):
    round = beacon_clock.latest_round() + 10  # published 28 to 30 s from now
    wait = DRAND_CHAIN.time_of(round) - beacon_clock.time()
    started = time.monotonic()
    with app.app_context():
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 60)
    assert got.signature == drand_chain.sign(round)
    assert beacon_clock.sleeps == [pytest.approx(wait)]
    assert 27 < wait <= 30
    assert time.monotonic() - started < 5  # nothing really waited
    assert peers.calls_to(DRAND_URL) == 1  # asked once, when it was published


def test_a_relay_that_lags_behind_the_schedule_is_asked_again(app, peers, beacon_clock):
    round = beacon_clock.latest_round() + 1
    published = DRAND_CHAIN.time_of(round)

    def lagging(asked_round):
        if beacon_clock.time() < published + 1.2:  # the relay has it 1.2 s late
            return 425, {"error": "too early"}
        return 200, drand_chain.beacon(asked_round)

    peers.drand_answer = lagging
    with app.app_context():
        got = beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 30)
    assert got.round == round
    assert beacon_clock.sleeps[1:] == [0.25, 0.5, 1.0]  # after the wait for the publication
    assert peers.calls_to(DRAND_URL) == 4


def test_when_every_relay_is_down_the_fetch_gives_up_at_the_deadline_with_a_retryable_503(
    two_relays, peers, beacon_clock
):
    round = beacon_clock.latest_round()
    for relay in (RELAY_A, RELAY_B):
        peers.mock.upsert(
            responses.GET, relay_url(relay, round), body=requests.ConnectionError("refused")
        )
    gave_up_before = fetches("gave_up")
    started = time.monotonic()
    with two_relays.app_context():
        deadline = beacon.clock.monotonic() + 20
        with pytest.raises(BeaconUnavailable) as unavailable:
            beacon.fetch_round(round, deadline=deadline)
        assert beacon.clock.monotonic() <= deadline
        rendered = error_response(unavailable.value)
    error = unavailable.value
    assert isinstance(error, Unavailable) and error.status == 503
    assert error.code == "BEACON_UNAVAILABLE" and error.details == {
        "round": round,
        "reason": "relays_unavailable",
    }
    assert rendered.status_code == 503
    body = rendered.get_json()
    assert body["success"] is False and body["error_code"] == "BEACON_UNAVAILABLE"
    assert body["retry_after"] >= 1 and rendered.headers["Retry-After"] == str(body["retry_after"])
    assert asked(peers, RELAY_A) >= 2 and asked(peers, RELAY_B) >= 2  # retried, both
    assert sum(beacon_clock.sleeps) > 15  # it kept trying until near the deadline ...
    assert time.monotonic() - started < 10  # ... on the fake clock
    assert fetches("gave_up") == gave_up_before + 1


def test_a_round_published_only_after_the_deadline_is_refused_at_once(app, peers, beacon_clock):
    round = beacon_clock.latest_round() + 20  # about a minute away
    with app.app_context(), pytest.raises(BeaconUnavailable) as unavailable:
        beacon.fetch_round(round, deadline=beacon.clock.monotonic() + 10)
    assert unavailable.value.details["reason"] == "not_published_before_deadline"
    assert 55 < unavailable.value.retry_after <= 60
    assert beacon_clock.sleeps == [] and peers.calls_to(DRAND_URL) == 0


def test_the_settings_name_the_chain_and_switch_the_beacon(make_app):
    with make_app().app_context():
        assert beacon.enabled() and beacon.chain() == DRAND_CHAIN
    with make_app(DRAW_BEACON="off").app_context():
        assert not beacon.enabled()
    defaults = {"DRAND_CHAIN_HASH": "", "DRAND_PUBLIC_KEY": "", "DRAND_GENESIS_TIME": ""}
    with make_app(**defaults, DRAND_PERIOD_SECONDS="").app_context():
        assert beacon.chain() == QUICKNET  # blank: the defaults
