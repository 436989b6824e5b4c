"""The Bot's flow through HTTP: register → captcha → answer → entry, and every refusal."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from extensions import db
from models import AuditEvent, CaptchaChallenge, Membership, Participant, ParticipantUser
from services import captcha
from tests.conftest import ADMIN, BOT, BOT_TOKEN, TELEGRAM_URL
from utils.timeutil import utcnow

USER = 5_000_000_001  # above 2^32, as real Telegram ids are


def register(client, user_id=USER, giveaway_id=1, **names):
    body = {
        "giveaway_id": giveaway_id,
        "user_id": user_id,
        "username": "alice",
        "first_name": "Alice",
        "last_name": None,
    }
    body.update(names)
    return client.post("/api/participants/register", json=body, headers=BOT)


def answer(client, value, user_id=USER, giveaway_id=1, **extra):
    return client.post(
        "/api/participants/validate-captcha",
        json={"user_id": user_id, "giveaway_id": giveaway_id, "answer": value, **extra},
        headers=BOT,
    )


def current_answer(app, user_id=USER) -> int:
    with app.app_context():
        return captcha.captcha_store().load(user_id).answer


def entries(app, **filters) -> list[Participant]:
    with app.app_context():
        return list(db.session.scalars(select(Participant).filter_by(**filters)))


def audit_types(app, user_id=USER) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.event_type)
                .where(AuditEvent.user_id == user_id)
                .order_by(AuditEvent.id)
            )
        )


def pass_captcha(app, client, user_id=USER, giveaway_id=1):
    register(client, user_id=user_id, giveaway_id=giveaway_id)
    return answer(client, current_answer(app, user_id), user_id=user_id, giveaway_id=giveaway_id)


def test_a_first_time_user_gets_a_question_and_nothing_is_entered(app, client, peers):
    peers.standard()
    response = register(client)
    body = response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["requires_captcha"] is True
    assert body["captcha_question"].startswith("What is ")
    assert body["session_id"]
    assert body["attempts_remaining"] == 3
    assert body["expires_at"].endswith("+00:00")
    assert entries(app) == []
    assert peers.calls_to(TELEGRAM_URL) == 0  # the subscription is checked after the captcha


def test_the_right_answer_completes_the_registration_in_the_same_call(app, client, peers):
    peers.standard()
    register(client, username="alice", first_name="Alice", last_name="Liddell")
    response = answer(client, current_answer(app))
    body = response.get_json()
    assert response.status_code == 200
    assert body["success"] is True and body["captcha_completed"] is True
    [entry] = entries(app)
    assert body["participant_id"] == entry.id
    assert (entry.user_id, entry.giveaway_id, entry.username, entry.last_name) == (
        USER,
        1,
        "alice",
        "Liddell",
    )
    assert peers.calls_to(TELEGRAM_URL) == 1
    assert audit_types(app) == ["captcha_issued", "captcha_passed", "participation"]


@pytest.mark.parametrize("form", ["{}", " {} ", "+{}"])
def test_answers_are_read_as_integers(app, client, peers, form):
    peers.standard()
    register(client)
    response = answer(client, form.format(current_answer(app)))
    assert response.get_json()["captcha_completed"] is True


def test_no_session_id_is_needed_and_a_stale_one_is_harmless(app, client, peers):
    peers.standard()
    register(client)
    response = answer(client, current_answer(app), session_id="from-a-lost-bot-worker")
    assert response.get_json()["captcha_completed"] is True


def test_a_wrong_answer_is_a_success_without_completion_and_counts_once(app, client, peers):
    peers.standard()
    register(client)
    wrong = current_answer(app) + 1
    first = answer(client, wrong).get_json()
    assert first["success"] is True
    assert first["captcha_completed"] is False
    assert first["attempts_remaining"] == 2
    assert "new_question" not in first or first["new_question"] is None
    # The Bot lost the answer and sends the same call again: no second attempt is used.
    again = answer(client, wrong).get_json()
    assert again["attempts_remaining"] == 2
    assert entries(app) == []


def test_after_the_last_attempt_a_fresh_question_is_issued(app, client, peers):
    peers.standard()
    register(client)
    right = current_answer(app)
    answer(client, right + 1)
    answer(client, right + 2)
    body = answer(client, right + 3).get_json()
    assert body["captcha_completed"] is False
    assert body["new_question"].startswith("What is ")
    assert body["attempts_remaining"] == 3
    # The new question has its own answer, which completes the registration.
    assert answer(client, current_answer(app)).get_json()["captcha_completed"] is True


def test_too_many_failed_questions_lock_the_user_out_with_retry_after(app, client, peers):
    peers.standard()
    register(client)
    for _ in range(3):
        right = current_answer(app)
        for offset in (1, 2, 3):
            response = answer(client, right + offset)
    body = response.get_json()
    assert response.status_code == 429
    assert body["success"] is False
    assert body["error_code"] == "CAPTCHA_LOCKED"
    assert body["retry_after"] == 3600
    assert response.headers["Retry-After"] == "3600"
    # Locked for registering too, and the right answer to nothing does not help.
    blocked = register(client)
    assert blocked.status_code == 429 and blocked.get_json()["error_code"] == "CAPTCHA_LOCKED"
    assert answer(client, 1).status_code == 429
    status = client.get(f"/api/participants/captcha-status/{USER}", headers=BOT).get_json()
    assert status["locked"] is True and status["captcha_completed"] is False
    assert "captcha_locked" in audit_types(app)


def test_the_captcha_is_global_a_second_giveaway_never_asks_again(app, client, peers):
    peers.standard(1, 2)
    pass_captcha(app, client)
    response = register(client, giveaway_id=2)
    body = response.get_json()
    assert response.status_code == 201
    assert body["requires_captcha"] is False
    assert body["already_registered"] is False
    assert len(entries(app, user_id=USER)) == 2


def test_a_repeated_register_returns_the_same_entry(app, client, peers):
    peers.standard()
    first_id = pass_captcha(app, client).get_json()["participant_id"]
    again = register(client)
    body = again.get_json()
    assert again.status_code == 200
    assert body["success"] is True
    assert body["already_registered"] is True
    assert body["participant_id"] == first_id
    assert len(entries(app)) == 1


def test_a_repeated_right_answer_returns_the_same_entry(app, client, peers):
    peers.standard()
    register(client)
    right = current_answer(app)
    first = answer(client, right).get_json()
    again = answer(client, right).get_json()
    assert again["captcha_completed"] is True
    assert again["participant_id"] == first["participant_id"]
    assert again["already_registered"] is True
    assert len(entries(app)) == 1


def test_captcha_status_reports_completion_and_totals_from_the_entries(app, client, peers):
    peers.standard(1, 2)
    fresh = client.get(f"/api/participants/captcha-status/{USER}", headers=BOT).get_json()
    assert fresh == {
        "success": True,
        "user_id": USER,
        "captcha_completed": False,
        "captcha_completed_at": None,
        "total_participations": 0,
        "total_wins": 0,
        "locked": False,
        "retry_after": None,
    }
    pass_captcha(app, client)
    register(client, giveaway_id=2)
    status = client.get(f"/api/participants/captcha-status/{USER}", headers=BOT).get_json()
    assert status["captcha_completed"] is True
    assert status["captcha_completed_at"].endswith("+00:00")
    assert status["total_participations"] == 2
    assert status["total_wins"] == 0


def test_an_unknown_giveaway_is_404_and_nothing_is_written(app, client, peers):
    peers.mock.get(
        "http://giveaway.test/api/giveaways/9",
        status=404,
        json={"success": False, "error_code": "GIVEAWAY_NOT_FOUND"},
    )
    response = register(client, giveaway_id=9)
    assert response.status_code == 404
    assert response.get_json()["error_code"] == "GIVEAWAY_NOT_FOUND"
    assert audit_types(app) == []


def test_a_finished_giveaway_refuses_entries(app, client, peers):
    peers.standard()
    peers.giveaway(3, status="finished")
    pass_captcha(app, client)
    response = register(client, giveaway_id=3)
    assert response.status_code == 409
    assert response.get_json()["error_code"] == "GIVEAWAY_NOT_ACTIVE"
    assert entries(app, giveaway_id=3) == []


@pytest.mark.parametrize("status", ["left", "kicked"])
def test_a_user_who_is_not_subscribed_is_told_which_channel_to_join(app, client, peers, status):
    peers.standard(1, 2)
    peers.members[USER] = status
    assert pass_captcha(app, client).get_json()["captcha_completed"] is True
    response = register(client, giveaway_id=2)
    body = response.get_json()
    assert response.status_code == 403
    assert body["success"] is False
    assert body["error_code"] == "USER_NOT_SUBSCRIBED"
    assert "@telegive_news" in body["error"]
    assert body["details"] == {
        "channel_username": "@telegive_news",
        "channel_title": "Telegive News",
    }
    assert entries(app, giveaway_id=2) == []
    assert audit_types(app)[-1] == "subscription_refused"


def test_a_recent_subscribed_answer_spares_telegram_and_the_entry_says_when_it_was_given(
    app, client, peers
):
    peers.standard(1, 2)
    pass_captcha(app, client)
    assert peers.calls_to(TELEGRAM_URL) == 1
    assert register(client, giveaway_id=2).status_code == 201
    assert peers.calls_to(TELEGRAM_URL) == 1
    [first] = entries(app, giveaway_id=1)
    [second] = entries(app, giveaway_id=2)
    assert second.subscription_verified_at == first.subscription_verified_at
    assert second.participated_at > second.subscription_verified_at


def test_a_remembered_subscription_never_spares_a_first_time_user_the_captcha(app, client, peers):
    peers.standard()
    verify = client.post(
        "/api/participants/verify-subscription",
        json={"user_id": USER, "account_id": 42},
        headers=BOT,
    )
    assert verify.get_json()["is_subscribed"] is True
    first = register(client)
    assert first.status_code == 200 and first.get_json()["requires_captcha"] is True
    assert entries(app) == []
    done = answer(client, current_answer(app)).get_json()
    assert done["captcha_completed"] is True and done["participant_id"]
    assert peers.calls_to(TELEGRAM_URL) == 1  # the answer relied on verify-subscription's
    again = register(client)
    assert again.status_code == 200
    assert again.get_json()["participant_id"] == done["participant_id"]
    assert len(entries(app)) == 1


def test_not_subscribed_is_never_remembered_so_joining_and_retrying_works(app, client, peers):
    peers.standard()
    peers.members[USER] = "left"
    assert pass_captcha(app, client).status_code == 403
    assert register(client).status_code == 403
    peers.members[USER] = "member"
    assert register(client).status_code == 201
    assert peers.calls_to(TELEGRAM_URL) == 3


def test_a_fresh_not_subscribed_answer_forgets_the_remembered_one(app, client, peers):
    peers.standard(1, 2)
    pass_captcha(app, client)
    peers.members[USER] = "left"
    verify = client.post(
        "/api/participants/verify-subscription",
        json={"user_id": USER, "account_id": 42},
        headers=BOT,
    )
    assert verify.get_json()["is_subscribed"] is False
    response = register(client, giveaway_id=2)
    assert response.status_code == 403
    assert response.get_json()["error_code"] == "USER_NOT_SUBSCRIBED"
    assert entries(app, giveaway_id=2) == []


def test_an_answer_older_than_the_cache_window_is_asked_again_and_cleaned_up(app, client, peers):
    peers.standard(1, 2)
    pass_captcha(app, client)
    with app.app_context():
        db.session.execute(update(Membership).values(verified_at=utcnow() - timedelta(seconds=301)))
        db.session.commit()
    peers.members[USER] = "left"
    assert register(client, giveaway_id=2).status_code == 403
    assert peers.calls_to(TELEGRAM_URL) == 2
    peers.members[USER] = "member"
    assert register(client, giveaway_id=2).status_code == 201
    with app.app_context():
        db.session.execute(update(Membership).values(verified_at=utcnow() - timedelta(seconds=301)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["clean-captcha"])
    assert "removed 1 expired subscription answer(s)" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


def test_with_no_subscription_cache_every_registration_asks_telegram(make_app, peers):
    app = make_app(SUBSCRIPTION_CACHE_SECONDS="0")
    client = app.test_client()
    peers.standard(1, 2)
    pass_captcha(app, client)
    peers.members[USER] = "left"
    assert register(client, giveaway_id=2).status_code == 403
    assert peers.calls_to(TELEGRAM_URL) == 2


def test_restricted_members_count_as_subscribed(app, client, peers):
    peers.standard()
    peers.members[USER] = "restricted"
    assert pass_captcha(app, client).get_json()["participant_id"] is not None


def test_not_subscribed_after_the_right_answer_keeps_the_captcha_done(app, client, peers):
    peers.standard()
    peers.members[USER] = "left"
    register(client)
    response = answer(client, current_answer(app))
    body = response.get_json()
    assert response.status_code == 403
    assert body["error_code"] == "USER_NOT_SUBSCRIBED"
    assert body["captcha_completed"] is True
    # They join the channel and the Bot retries the same answer: no captcha again, they are in,
    # under the names they registered with (the retried answer carries no names).
    peers.members[USER] = "member"
    retry = answer(client, 12345).get_json()
    assert retry["captcha_completed"] is True and retry["participant_id"]
    [entry] = entries(app)
    assert (entry.username, entry.first_name) == ("alice", "Alice")


UNAVAILABLE = {
    "telegram 429": (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 17",
            "parameters": {"retry_after": 17},
        },
    ),
    "telegram 502": (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    "chat not found": (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
    ),
    "bot not admin": (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: member list is inaccessible"},
    ),
    "bot kicked": (
        403,
        {
            "ok": False,
            "error_code": 403,
            "description": "Forbidden: bot was kicked from the channel chat",
        },
    ),
    "unknown status": (200, {"ok": True, "result": {"status": "mystery"}}),
    "no result": (200, {"ok": True}),
}


@pytest.mark.parametrize("case", UNAVAILABLE)
def test_telegram_cannot_verify_is_a_retryable_503_and_never_subscribed(make_app, peers, case):
    # A 429 is Telegram busy, which the default overflow mode (defer) answers with a pending
    # entry (tests/services/test_pending.py); refuse answers it like every other case.
    busy = case == "telegram 429"
    app = make_app(SUBSCRIPTION_OVERFLOW="refuse") if busy else make_app()
    client = app.test_client()
    peers.standard()
    peers.telegram_answer = lambda _user: UNAVAILABLE[case]
    register(client)
    response = answer(client, current_answer(app))
    body = response.get_json()
    assert response.status_code == 503
    assert body["success"] is False
    assert body["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    assert body["retry_after"] == (17 if case == "telegram 429" else 5)
    assert entries(app) == []


def test_after_a_telegram_429_the_bot_is_left_alone_until_retry_after(make_app, peers):
    app = make_app(SUBSCRIPTION_OVERFLOW="refuse")
    client = app.test_client()
    peers.standard()
    peers.telegram_answer = lambda _user: UNAVAILABLE["telegram 429"]
    register(client)
    first = answer(client, current_answer(app))
    assert first.get_json()["retry_after"] == 17
    calls = peers.calls_to(TELEGRAM_URL)
    retry = answer(client, 12345)  # the Bot retries at once (the captcha is already done)
    assert retry.status_code == 503
    assert 1 <= retry.get_json()["retry_after"] <= 17
    assert peers.calls_to(TELEGRAM_URL) == calls  # Telegram was not asked again


@pytest.mark.parametrize("use_redis", [False, True], ids=["database-store", "redis-store"])
def test_many_long_wrong_answers_are_remembered_without_error(make_app, peers, use_redis):
    app = make_app(redis=use_redis, CAPTCHA_MAX_ATTEMPTS="100")
    client = app.test_client()
    peers.standard()
    register(client)
    for value in range(-999_999_999, -999_999_960):  # 39 distinct ten-character wrong answers
        response = answer(client, value)
        assert response.status_code == 200
    assert response.get_json()["attempts_remaining"] == 61


def test_telegram_user_not_found_means_not_subscribed(app, client, peers):
    peers.standard()
    peers.telegram_answer = lambda _user: (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: user not found"},
    )
    register(client)
    assert answer(client, current_answer(app)).get_json()["error_code"] == "USER_NOT_SUBSCRIBED"


def test_a_telegram_timeout_is_a_503(app, client, peers):
    peers.giveaway(1)
    peers.channel()
    peers.bot_token()
    peers.mock.get(f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember", body=requests.Timeout())
    register(client)
    response = answer(client, current_answer(app))
    assert response.status_code == 503
    assert response.get_json()["details"] == {"peer": "telegram", "reason": "timeout"}
    assert entries(app) == []


@pytest.mark.parametrize("peer", ["channel", "auth"])
def test_a_sibling_down_means_the_subscription_cannot_be_verified(app, client, peers, peer):
    peers.giveaway(1)
    peers.telegram()
    if peer == "channel":
        peers.bot_token()
        peers.mock.get(
            "http://channel.test/api/accounts/42/channel", body=requests.ConnectionError()
        )
    else:
        peers.channel()
        peers.mock.get("http://auth.test/api/v1/bots/token/42", status=500, json={"error": "boom"})
    register(client)
    response = answer(client, current_answer(app))
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
    assert response.get_json()["captcha_completed"] is True
    assert entries(app) == []


def test_the_giveaway_service_down_is_a_503_and_nothing_is_written(app, client, peers):
    peers.mock.get("http://giveaway.test/api/giveaways/1", body=requests.ConnectionError())
    response = register(client)
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "UPSTREAM_UNAVAILABLE"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaptchaChallenge)) == 0
        assert db.session.scalar(select(func.count()).select_from(ParticipantUser)) == 0


def test_verify_subscription_answers_what_the_bot_reads(client, peers):
    peers.standard()
    peers.members[USER] = "left"
    response = client.post(
        "/api/participants/verify-subscription",
        json={"user_id": USER, "account_id": 42},
        headers=BOT,
    )
    body = response.get_json()
    assert response.status_code == 200
    assert body["is_subscribed"] is False
    assert body["status"] == "left"
    assert body["channel_info"] == {
        "channel_id": -1001234567890,
        "channel_username": "@telegive_news",
        "channel_title": "Telegive News",
    }
    assert body["verified_at"].endswith("+00:00")


def test_verify_subscription_for_an_unknown_account_is_404(client, peers):
    peers.mock.get(
        "http://channel.test/api/accounts/77/channel",
        status=404,
        json={"success": False, "code": "ACCOUNT_NOT_FOUND"},
    )
    response = client.post(
        "/api/participants/verify-subscription",
        json={"user_id": USER, "account_id": 77},
        headers=BOT,
    )
    assert response.status_code == 404
    assert response.get_json()["error_code"] == "ACCOUNT_NOT_FOUND"


def test_a_channel_not_configured_cannot_be_verified(client, peers):
    peers.mock.get(
        "http://channel.test/api/accounts/78/channel",
        status=404,
        json={"success": False, "code": "CHANNEL_NOT_CONFIGURED"},
    )
    response = client.post(
        "/api/participants/verify-subscription",
        json={"user_id": USER, "account_id": 78},
        headers=BOT,
    )
    assert response.status_code == 503
    assert response.get_json()["details"]["reason"] == "channel_not_configured"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"giveaway_id", "user_id"}),
        ({"giveaway_id": 0, "user_id": 1}, {"giveaway_id"}),
        ({"giveaway_id": 1, "user_id": 2**63}, {"user_id"}),
        ({"giveaway_id": "x", "user_id": True}, {"giveaway_id", "user_id"}),
        ({"giveaway_id": 1, "user_id": 1, "username": "a" * 257}, {"username"}),
        ({"giveaway_id": 1, "user_id": 1, "first_name": "nul\x00byte"}, {"first_name"}),
        ([1, 2], {"body"}),
    ],
)
def test_invalid_registrations_name_every_bad_field_and_change_nothing(
    app, client, peers, body, fields
):
    response = client.post("/api/participants/register", json=body, headers=BOT)
    payload = response.get_json()
    assert response.status_code == 400
    assert payload["success"] is False
    assert payload["error_code"] == "VALIDATION_ERROR"
    assert set(payload["details"]) == fields
    assert len(peers.mock.calls) == 0
    assert audit_types(app) == []


@pytest.mark.parametrize("value", ["seven", "7.5", None, True, [7]])
def test_a_non_numeric_answer_is_a_400_and_uses_no_attempt(app, client, peers, value):
    peers.standard()
    register(client)
    response = answer(client, value)
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"answer"}
    with app.app_context():
        assert captcha.captcha_store().load(USER).attempts_used == 0


def test_names_with_sql_html_and_control_characters_are_stored_and_returned_as_data(
    app, client, peers
):
    peers.standard()
    names = {
        "username": "'; DROP TABLE participant_entries; --",
        "first_name": "<script>alert(1)</script>\x07\x1b[31m",
        "last_name": "tab\there\u202eevil\r\nX-Injected: yes",
    }
    register(client, **names)
    answer(client, current_answer(app))
    [entry] = entries(app)
    assert (entry.username, entry.first_name, entry.last_name) == tuple(names.values())
    listed = client.get("/api/participants/list/1", headers=ADMIN)
    assert listed.mimetype == "application/json"
    [row] = json.loads(listed.get_data())["participants"]
    assert (row["username"], row["first_name"], row["last_name"]) == tuple(names.values())
    assert "X-Injected" not in listed.headers
    exported = client.get("/api/participants/export/1", headers=ADMIN).get_data(as_text=True)
    [record] = list(csv.DictReader(io.StringIO(exported)))
    assert (record["username"], record["first_name"]) == (names["username"], names["first_name"])
    assert record["last_name"] == names["last_name"]
