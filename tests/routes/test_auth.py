"""Incoming service authentication: tokens per caller, scopes, enforcement switch."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, BOT, DASHBOARD, GIVEAWAY

STATUS = "/api/participants/captcha-status/5"
REGISTER = "/api/participants/register"


def call(client, path, headers):
    if path == REGISTER:
        return client.post(path, json={"giveaway_id": 1, "user_id": 5}, headers=headers)
    return client.get(path, headers=headers)


@pytest.mark.parametrize(
    "path",
    [
        STATUS,
        REGISTER,
        "/api/participants/validate-captcha",
        "/api/participants/verify-subscription",
    ],
)
def test_missing_credentials_are_401(client, path):
    response = client.post(path, json={}) if path != STATUS else client.get(path)
    body = response.get_json()
    assert response.status_code == 401
    assert body["success"] is False
    assert body["error_code"] == "AUTHENTICATION_REQUIRED"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Service-Token": "not-a-real-token-at-all"},
        {"Authorization": "Bearer not-a-real-token-at-all"},
        {"X-Service-Token": "bot-token-0123456789abcde"},  # one character short
    ],
)
def test_wrong_credentials_are_401_invalid_token(client, headers):
    response = client.get(STATUS, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error_code"] == "INVALID_TOKEN"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_bearer_tokens_work_like_service_tokens(client, scheme):
    token = BOT["X-Service-Token"]
    assert client.get(STATUS, headers={"Authorization": f"{scheme} {token}"}).status_code == 200


@pytest.mark.parametrize("headers", [GIVEAWAY, DASHBOARD])
def test_out_of_scope_callers_are_403(client, headers):
    response = call(client, REGISTER, headers)
    assert response.status_code == 403
    assert response.get_json()["error_code"] == "FORBIDDEN"
    assert "needs scope 'participate'" in response.get_json()["error"]


def test_admin_may_do_what_the_bot_does(client, peers):
    peers.standard()
    assert call(client, REGISTER, ADMIN).status_code == 200


def test_health_and_the_api_document_need_no_token(client):
    for path in ("/health", "/health/live", "/health/ready", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_with_enforcement_off_callers_without_token_pass_and_are_named(make_app, peers, capsys):
    peers.standard()
    client = make_app(REQUIRE_SERVICE_AUTH="false").test_client()
    response = client.post(
        REGISTER, json={"giveaway_id": 1, "user_id": 5}, headers={"X-Service-Name": "telegive-bot"}
    )
    assert response.status_code == 200
    output = capsys.readouterr().out
    assert "SERVICE AUTHENTICATION IS OFF" in output
    assert '"caller": "bot"' in output


def test_with_enforcement_off_a_wrong_service_token_is_still_refused(make_app):
    client = make_app(REQUIRE_SERVICE_AUTH="false").test_client()
    assert (
        client.get(STATUS, headers={"X-Service-Token": "forged-token-forged-token"}).status_code
        == 401
    )
    # A valid token still grants only its caller's scopes, even with enforcement off.
    assert client.get(STATUS, headers=GIVEAWAY).status_code == 403
    assert client.get(STATUS, headers=BOT).status_code == 200
    # An unknown bearer passes while enforcement is off: the Dashboard may still send its users'
    # session tokens during the roll-out. With enforcement on it is refused (see above).
    bearer = {"Authorization": "Bearer a-dashboard-session-jwt"}
    assert client.get(STATUS, headers=bearer).status_code == 200


def test_metrics_keep_their_own_switch(make_app):
    api_open = make_app(REQUIRE_SERVICE_AUTH="false").test_client()
    assert api_open.get(STATUS).status_code == 200
    assert api_open.get("/metrics").get_json()["error_code"] == "AUTHENTICATION_REQUIRED"
    assert api_open.get("/metrics", headers=ADMIN).status_code == 200
    metrics_open = make_app(METRICS_REQUIRE_AUTH="false").test_client()
    assert metrics_open.get("/metrics").status_code == 200
    assert metrics_open.get(STATUS).get_json()["error_code"] == "AUTHENTICATION_REQUIRED"
    assert metrics_open.get("/metrics", headers=BOT).status_code == 403
