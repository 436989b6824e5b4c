"""The contract's conventions on every path: envelope, status codes, request ids, health, docs."""

from __future__ import annotations

import json

import pytest

from services import registration
from tests.conftest import BOT

ENVELOPE_KEYS = {"success", "error", "error_code"}


def assert_error(response, status: int, code: str):
    body = response.get_json()
    assert response.status_code == status
    assert set(body) >= ENVELOPE_KEYS
    assert body["success"] is False
    assert body["error_code"] == code
    assert body["error"] and body["error"][0].isupper()
    return body


def test_unknown_paths_are_404_in_the_envelope(client):
    assert_error(client.get("/api/participants/nothing/here/at/all"), 404, "NOT_FOUND")


def test_wrong_methods_are_405_with_allow(client):
    response = client.delete("/api/participants/register", headers=BOT)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_a_validation_error(client):
    response = client.post(
        "/api/participants/register",
        data="{not json",
        headers={**BOT, "Content-Type": "application/json"},
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["details"] == {"body": "not valid JSON"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/participants/captcha-status/abc",
        "/api/participants/captcha-status/0",
        "/api/participants/captcha-status/99999999999999999999",
    ],
)
def test_malformed_path_ids_are_validation_errors_naming_the_parameter(client, path):
    body = assert_error(client.get(path, headers=BOT), 400, "VALIDATION_ERROR")
    assert body["details"] == {"user_id": "must be a positive 64-bit integer"}


def test_bodies_over_the_limit_are_413(make_app):
    client = make_app(MAX_REQUEST_BYTES="2048").test_client()
    response = client.post(
        "/api/participants/register",
        data=json.dumps({"giveaway_id": 1, "user_id": 1, "username": "x" * 5000}),
        headers={**BOT, "Content-Type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_an_unexpected_error_is_a_500_without_internals(client, monkeypatch):
    def explode(**_kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(registration, "register_participant", explode)
    response = client.post(
        "/api/participants/register", json={"giveaway_id": 1, "user_id": 2}, headers=BOT
    )
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert "SELECT" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)


def test_the_request_id_is_echoed_or_generated(client):
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123.X:9"})
    assert echoed.headers["X-Request-ID"] == "abc-123.X:9"
    generated = client.get("/health")
    assert len(generated.headers["X-Request-ID"]) == 32
    hostile = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 300})
    assert hostile.headers["X-Request-ID"] != "bad id\twith spaces"
    assert client.get("/nowhere").headers["X-Request-ID"]


def test_the_request_id_goes_out_with_every_call_and_into_the_logs(capsys, make_app, peers):
    client = make_app().test_client()  # built inside the test: its log handler writes to capsys
    peers.standard()
    client.post(
        "/api/participants/register",
        json={"giveaway_id": 1, "user_id": 5},
        headers={**BOT, "X-Request-ID": "trace-42"},
    )
    outgoing = peers.mock.calls[0].request
    assert outgoing.headers["X-Request-ID"] == "trace-42"
    assert outgoing.headers["X-Service-Name"] == "telegive-participant"
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    request_lines = [line for line in lines if line.get("request_id") == "trace-42"]
    assert {line["logger"] for line in request_lines} >= {"telegive.access", "telegive.outgoing"}
    assert all(
        line.get("caller") == "bot" for line in request_lines if line["logger"] == "telegive.access"
    )


def test_health_is_healthy_without_touching_anything(client, peers):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "healthy"
    assert response.get_json()["success"] is True
    assert len(peers.mock.calls) == 0
    assert client.get("/health/live").status_code == 200


def test_ready_checks_the_database_and_redis(make_app):
    ready = make_app(redis=True).test_client().get("/health/ready")
    body = ready.get_json()
    assert ready.status_code == 200
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis"}


def test_ready_is_503_when_the_database_is_unreachable(make_app):
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/health/ready")
    body = response.get_json()
    assert response.status_code == 503
    assert body["success"] is False
    assert body["error_code"] == "NOT_READY"
    assert body["checks"]["database"]["ok"] is False


def test_requests_fail_with_503_database_unavailable_when_the_database_is_down(make_app, peers):
    peers.standard()
    client = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none").test_client()
    response = client.get("/api/participants/captcha-status/5", headers=BOT)
    assert_error(response, 503, "DATABASE_UNAVAILABLE")
    assert response.get_json()["retry_after"] == 5


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/participants/register", {"giveaway_id": 1, "user_id": 5}),
        ("/api/participants/validate-captcha", {"giveaway_id": 1, "user_id": 5, "answer": 7}),
    ],
)
def test_the_registration_path_answers_503_when_the_database_is_down(make_app, peers, path, body):
    peers.standard()
    client = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none").test_client()
    response = client.post(path, json=body, headers=BOT)
    assert_error(response, 503, "DATABASE_UNAVAILABLE")


def test_the_openapi_document_and_docs_are_served_openly(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.get_json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/participants/register",
        "/api/participants/validate-captcha",
        "/api/participants/captcha-status/{user_id}",
        "/api/participants/verify-subscription",
    ):
        assert path in document["paths"], path
    user_id = document["paths"]["/api/participants/captcha-status/{user_id}"]["get"]["parameters"][
        0
    ]
    assert user_id["schema"]["type"] == "integer"
    assert client.get("/docs").status_code == 200


def test_cors_allows_the_dashboard_origin_only(client):
    allowed = client.get("/health", headers={"Origin": "https://dashboard.telegive.test"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://dashboard.telegive.test"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    preflight = client.options(
        "/api/participants/list/1",
        headers={
            "Origin": "https://dashboard.telegive.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dashboard.telegive.test"
    other = client.get("/health", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
