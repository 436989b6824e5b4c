"""The sibling and Telegram clients: caching, secrets, and what goes over the wire."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from services.clients import giveaway, telegram
from services.errors import GiveawayMisconfigured, SubscriptionCheckUnavailable, UpstreamUnavailable
from services.subscription import check_subscription
from tests.conftest import AUTH_URL, BOT, BOT_TOKEN, CHANNEL_URL, GIVEAWAY_URL, TELEGRAM_URL
from tests.factories import complete_captcha
from tests.test_operations import metric


@pytest.mark.parametrize("use_redis", [False, True], ids=["in-process", "redis"])
def test_giveaway_and_channel_answers_are_cached_briefly(make_app, peers, use_redis):
    app = make_app(redis=use_redis)
    peers.standard()
    with app.app_context():
        for user in range(5):
            check_subscription(account_id=42, user_id=100 + user)
            giveaway.get_giveaway(1)
    assert peers.calls_to(GIVEAWAY_URL) == 1
    assert peers.calls_to(CHANNEL_URL) == 1
    assert peers.calls_to(AUTH_URL) == 1
    assert peers.calls_to(TELEGRAM_URL) == 5  # membership is never cached


def test_bot_tokens_never_go_to_redis(make_app, peers):
    app = make_app(redis=True)
    peers.standard()
    with app.app_context():
        check_subscription(account_id=42, user_id=100)
        client = app.extensions["telegive.redis"]
        read = {
            "hash": client.hgetall,
            "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
            "string": client.get,
        }
        stored = {key: str(read[client.type(key)](key)) for key in client.keys("*")}
    # the giveaway/channel cache is there, and the bot's budget (a hash and a sorted set)
    assert stored
    assert all(BOT_TOKEN not in key + (value or "") for key, value in stored.items())


def test_a_refused_bot_token_is_dropped_and_fetched_again(app, peers):
    peers.standard()
    peers.telegram_answer = lambda _u: (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    with app.app_context():
        for _ in range(2):
            with pytest.raises(SubscriptionCheckUnavailable):
                check_subscription(account_id=42, user_id=1)
    assert peers.calls_to(AUTH_URL) == 2


def test_the_auth_service_gets_our_service_secret(app, peers):
    peers.standard()
    with app.app_context():
        check_subscription(account_id=42, user_id=1)
    [auth_call] = [c for c in peers.mock.calls if c.request.url.startswith(AUTH_URL)]
    assert auth_call.request.headers["X-Service-Token"] == "s2s-secret-for-tests-0123456789"


def test_calls_have_explicit_timeouts(app, peers):
    peers.standard()
    with app.app_context():
        check_subscription(account_id=42, user_id=1)
        giveaway.get_giveaway(1)
    timeouts = [call.request.req_kwargs.get("timeout") for call in peers.mock.calls]
    assert len(timeouts) == 4  # channel, auth, telegram, giveaway
    assert all(isinstance(t, tuple) and all(0 < part <= 5 for part in t) for t in timeouts)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, "not json"),
        (200, json.dumps([1, 2])),
        (200, json.dumps({"success": True})),
        (200, json.dumps({"giveaway": {"id": 1}})),
        (200, json.dumps({"giveaway": {"id": 1, "account_id": True, "status": "active"}})),
        (200, json.dumps({"giveaway": {"id": 1, "account_id": 42, "status": None}})),
    ],
)
def test_garbage_from_the_giveaway_service_is_unavailable(app, peers, status, body):
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/1", status=status, body=body)
    with app.app_context(), pytest.raises(UpstreamUnavailable):
        giveaway.get_giveaway(1)


@pytest.mark.parametrize("channel_id", [2**63, -(2**63) - 1, "not a number", None, True])
def test_a_channel_id_that_is_no_telegram_chat_id_means_nobody_can_be_verified(
    app, client, peers, channel_id
):
    peers.standard()
    peers.channel(channel_id=channel_id)
    response = client.post(
        "/api/participants/verify-subscription", json={"user_id": 7, "account_id": 42}, headers=BOT
    )
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"


def test_the_channel_username_is_shown_with_its_at_sign(client, peers):
    peers.standard()
    peers.members[7] = "left"
    peers.mock.upsert(
        "GET",
        f"{CHANNEL_URL}/api/accounts/42/channel",
        json={"success": True, "channel": {"channel_id": -100777, "channel_username": "news"}},
    )
    response = client.post(
        "/api/participants/verify-subscription", json={"user_id": 7, "account_id": 42}, headers=BOT
    )
    assert response.get_json()["channel_info"] == {
        "channel_id": -100777,
        "channel_username": "@news",
        "channel_title": None,
    }


@pytest.mark.parametrize("body", [{"bot_token": ""}, {"bot_id": 4242000}, {"bot_token": 4242}])
def test_an_auth_answer_without_a_token_means_nobody_can_be_verified(client, peers, body):
    peers.standard()
    peers.mock.upsert("GET", f"{AUTH_URL}/api/v1/bots/token/42", json=body)
    response = client.post(
        "/api/participants/verify-subscription", json={"user_id": 7, "account_id": 42}, headers=BOT
    )
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    assert response.get_json()["details"] == {"peer": "auth", "reason": "malformed_body"}
    assert peers.calls_to(TELEGRAM_URL) == 0


def test_an_invalid_giveaway_account_is_a_clear_conflict(app, peers):
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/1", status=400, json={"success": False})
    with app.app_context(), pytest.raises(GiveawayMisconfigured):
        giveaway.get_giveaway(1)


@pytest.mark.parametrize(
    ("result", "member"),
    [
        ({"status": "creator"}, True),
        ({"status": "administrator"}, True),
        ({"status": "member"}, True),
        ({"status": "restricted", "is_member": True}, True),
        ({"status": "restricted", "is_member": False}, False),
        ({"status": "restricted"}, False),
        ({"status": "left"}, False),
        ({"status": "kicked"}, False),
    ],
)
def test_membership_statuses(app, peers, result, member):
    peers.mock.get(
        f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember", json={"ok": True, "result": result}
    )
    with app.app_context():
        assert (
            telegram.get_chat_member(token=BOT_TOKEN, chat_id=-100, user_id=1).is_member is member
        )


@pytest.mark.parametrize(
    "body",
    [
        {"ok": True, "result": {"status": 5}},
        {"ok": True, "result": {"status": "restricted", "is_member": "yes"}},
        {"ok": "true", "result": {"status": "member"}},
        {"ok": False, "error_code": "400", "description": "Bad Request: user not found"},
    ],
)
def test_a_telegram_answer_of_another_shape_is_never_read_as_an_answer(app, peers, body):
    peers.mock.get(f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember", json=body)
    with app.app_context(), pytest.raises(UpstreamUnavailable) as error:
        telegram.get_chat_member(token=BOT_TOKEN, chat_id=-100, user_id=1)
    assert error.value.reason == "malformed_body"


def test_telegram_retry_after_is_respected(app, peers):
    peers.mock.get(
        f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember",
        status=429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests",
            "parameters": {"retry_after": 31},
        },
    )
    with app.app_context(), pytest.raises(UpstreamUnavailable) as error:
        telegram.get_chat_member(token=BOT_TOKEN, chat_id=-100, user_id=1)
    assert error.value.retry_after == 31


def test_no_log_line_ever_holds_a_bot_token(capsys, make_app, peers):
    client = make_app(LOG_LEVEL="DEBUG").test_client()
    peers.standard()
    client.post("/api/participants/register", json={"giveaway_id": 1, "user_id": 5}, headers=BOT)
    client.post(
        "/api/participants/verify-subscription", json={"user_id": 5, "account_id": 42}, headers=BOT
    )
    peers.telegram_answer = lambda _u: (502, {"ok": False})
    client.post(
        "/api/participants/verify-subscription", json={"user_id": 6, "account_id": 42}, headers=BOT
    )
    output = capsys.readouterr().out
    assert "getChatMember" in output  # the calls were logged...
    assert BOT_TOKEN not in output  # ...without the token
    assert BOT_TOKEN.split(":")[1] not in output


def test_a_peer_that_keeps_failing_is_not_called_for_a_while(make_app, peers):
    app = make_app(UPSTREAM_CIRCUIT_FAILURES="3", UPSTREAM_CIRCUIT_COOLDOWN_SECONDS="30")
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/1", body=requests.ConnectTimeout())
    client = app.test_client()
    answers = [
        client.post(
            "/api/participants/register", json={"giveaway_id": 1, "user_id": 5}, headers=BOT
        )
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [503] * 6
    assert peers.calls_to(GIVEAWAY_URL) == 3  # the last three failed fast, without a call
    last = answers[-1].get_json()
    assert last["details"] == {"peer": "giveaway", "reason": "circuit_open"}
    assert 1 <= last["retry_after"] <= 30


# --- circuits: a failing resource or peer, and the trial call -----------------------------------


def register(client, giveaway_id: int, user_id: int = 5):
    return client.post(
        "/api/participants/register",
        json={"giveaway_id": giveaway_id, "user_id": user_id},
        headers=BOT,
    )


def verify(client, account_id: int):
    return client.post(
        "/api/participants/verify-subscription",
        json={"user_id": 7, "account_id": account_id},
        headers=BOT,
    )


def opened_circuits(capsys) -> list[dict]:
    """The "circuit opened" log lines printed so far."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line["message"] == "circuit opened"]


def test_one_failing_giveaway_does_not_open_the_circuit_for_the_others(capsys, make_app, peers):
    app = make_app()  # built after capsys: its log lines go where capsys reads them
    client = app.test_client()
    peers.standard(14)
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/13", status=500, json={"success": False})
    complete_captcha(app, [6])
    failed = [register(client, 13) for _ in range(7)]
    assert [a.status_code for a in failed] == [503] * 7
    assert peers.calls_to(f"{GIVEAWAY_URL}/api/giveaways/13") == 5  # then its own circuit opened
    assert failed[-1].get_json()["details"] == {"peer": "giveaway", "reason": "circuit_open"}
    entered = register(client, 14, user_id=6)
    assert entered.status_code == 201, entered.get_json()
    [opened] = opened_circuits(capsys)
    assert (opened["peer"], opened["circuit"], opened["resource"]) == ("giveaway", "resource", "13")


@pytest.mark.parametrize("peer", ["channel", "auth"])
def test_one_failing_account_does_not_open_the_circuit_for_the_others(client, peers, peer):
    peers.standard()
    peers.channel(43)
    peers.bot_token(43)
    failing = (
        f"{CHANNEL_URL}/api/accounts/43/channel"
        if peer == "channel"
        else f"{AUTH_URL}/api/v1/bots/token/43"
    )
    peers.mock.upsert("GET", failing, status=502, json={"error": "bad gateway"})
    failed = [verify(client, 43) for _ in range(7)]
    assert [a.status_code for a in failed] == [503] * 7
    assert peers.calls_to(failing) == 5
    assert failed[-1].get_json()["details"] == {"peer": peer, "reason": "circuit_open"}
    working = verify(client, 42)
    assert working.status_code == 200, working.get_json()
    assert working.get_json()["is_subscribed"] is True


def test_one_failing_bot_does_not_open_the_telegram_circuit_for_the_others(client, peers):
    peers.standard()
    other_token = "4343000:AAF-another-telegram-token-for-the-test"
    peers.channel(43)
    peers.mock.upsert("GET", f"{AUTH_URL}/api/v1/bots/token/43", json={"bot_token": other_token})
    failing = f"{TELEGRAM_URL}/bot{other_token}/getChatMember"
    peers.mock.get(failing, status=500, json={"ok": False})
    failed = [verify(client, 43) for _ in range(7)]
    assert [a.status_code for a in failed] == [503] * 7
    assert peers.calls_to(failing) == 5
    assert verify(client, 42).get_json()["is_subscribed"] is True


@pytest.mark.parametrize(
    ("status", "body", "answered"),
    [
        (400, json.dumps({"success": False}), 409),
        (404, json.dumps({"success": False}), 404),
        (404, "<html>Not Found</html>", 503),  # unusable, yet no failure of the peer
    ],
)
def test_answers_about_a_wrong_id_never_open_a_circuit(client, peers, status, body, answered):
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/13", status=status, body=body)
    answers = [register(client, 13) for _ in range(12)]
    assert {a.status_code for a in answers} == {answered}
    assert peers.calls_to(GIVEAWAY_URL) == 12


def test_a_peer_that_refuses_connections_opens_its_circuit_for_every_id(make_app, capsys):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused
    app = make_app(TELEGIVE_GIVEAWAY_URL=f"http://127.0.0.1:{port}", METRICS_REQUIRE_AUTH="false")
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    reasons = [
        register(client, giveaway_id).get_json()["details"]["reason"] for giveaway_id in range(1, 9)
    ]
    assert reasons == ["connection_error"] * 5 + ["circuit_open"] * 3
    after = client.get("/metrics").get_data(as_text=True)
    name = "telegive_participant_outgoing_requests_total"
    labels = {"peer": "giveaway", "outcome": "circuit_open"}
    assert metric(after, name, **labels) - metric(before, name, **labels) == 3
    [opened] = opened_circuits(capsys)
    assert (opened["peer"], opened["circuit"]) == ("giveaway", "peer")


def test_a_peer_that_hangs_for_many_ids_opens_its_circuit_for_every_id(make_app, peers):
    app = make_app()
    for giveaway_id in range(1, 9):
        peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/{giveaway_id}", body=requests.ReadTimeout())
    client = app.test_client()
    reasons = [
        register(client, giveaway_id).get_json()["details"]["reason"] for giveaway_id in range(1, 9)
    ]
    assert reasons == ["timeout"] * 5 + ["circuit_open"] * 3
    assert peers.calls_to(GIVEAWAY_URL) == 5


def _open_the_giveaway_circuit(make_app, peers):
    app = make_app(UPSTREAM_CIRCUIT_FAILURES="1", UPSTREAM_CIRCUIT_COOLDOWN_SECONDS="0.05")
    peers.mock.get(f"{GIVEAWAY_URL}/api/giveaways/1", body=requests.ConnectTimeout())
    with app.app_context(), pytest.raises(UpstreamUnavailable):
        giveaway.get_giveaway(1)
    with app.app_context(), pytest.raises(UpstreamUnavailable) as refused:
        giveaway.get_giveaway(1)
    assert refused.value.reason == "circuit_open"
    time.sleep(0.06)  # the cooldown is over: the next call is the trial
    return app


def test_a_trial_call_that_breaks_unexpectedly_does_not_keep_the_circuit_open(make_app, peers):
    app = _open_the_giveaway_circuit(make_app, peers)
    peers.mock.upsert("GET", f"{GIVEAWAY_URL}/api/giveaways/1", body=RuntimeError("transport bug"))
    with app.app_context(), pytest.raises(RuntimeError):
        giveaway.get_giveaway(1)
    peers.giveaway(1)
    with app.app_context():
        assert giveaway.get_giveaway(1).account_id == 42  # a healthy call closes the circuit


def test_a_deeply_nested_answer_is_a_malformed_body_that_fails_the_trial(make_app, peers):
    app = _open_the_giveaway_circuit(make_app, peers)
    peers.mock.upsert("GET", f"{GIVEAWAY_URL}/api/giveaways/1", body="[" * 100_000)
    with app.app_context(), pytest.raises(UpstreamUnavailable) as error:
        giveaway.get_giveaway(1)
    assert error.value.reason == "malformed_body"
    time.sleep(0.06)
    peers.giveaway(1)
    with app.app_context():
        assert giveaway.get_giveaway(1).account_id == 42
