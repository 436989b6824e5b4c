"""Every operation of the API, with missing, wrong and out-of-scope credentials."""

from __future__ import annotations

import re

import pytest

from config import SCOPES_BY_CALLER
from tests.conftest import TOKENS, headers_for

OPEN = {"/health", "/health/live", "/health/ready", "/openapi.json", "/docs", "/metrics"}
# The scope each operation needs. A new operation must be added here (the test fails otherwise).
SCOPES = {
    ("POST", "/api/participants/register"): "participate",
    ("POST", "/api/participants/validate-captcha"): "participate",
    ("GET", "/api/participants/captcha-status/{user_id}"): "participate",
    ("POST", "/api/participants/verify-subscription"): "participate",
    ("POST", "/api/participants/{giveaway_id}/select-winners"): "draw",
    ("POST", "/api/participants/select-winners/{giveaway_id}"): "draw",
    ("POST", "/api/participants/{giveaway_id}/reroll"): "draw",
    ("POST", "/api/participants/{giveaway_id}/commitment"): "draw",
    ("GET", "/api/participants/{giveaway_id}/draw"): "read",
    ("GET", "/api/participants/{giveaway_id}/draw/entrants"): "read",
    ("GET", "/api/participants/{giveaway_id}/draw/proof/{user_id}"): "read",
    ("GET", "/api/participants/{giveaway_id}/winners"): "read",
    ("GET", "/api/participants/winner-status/{user_id}/{giveaway_id}"): "read",
    ("GET", "/api/participants/{giveaway_id}"): "read",
    ("GET", "/api/participants/list/{giveaway_id}"): "read",
    ("GET", "/api/participants/{giveaway_id}/count"): "read",
    ("GET", "/api/participants/count/{giveaway_id}"): "read",
    ("GET", "/api/participants/{giveaway_id}/stats"): "read",
    ("GET", "/api/participants/stats/{giveaway_id}"): "read",
    ("GET", "/api/participants/export/{giveaway_id}"): "read",
    ("GET", "/api/participants/{giveaway_id}/export"): "read",
    ("GET", "/api/participants/history/{user_id}"): "read",
    ("PUT", "/api/participants/update-delivery-status"): "deliver",
    ("GET", "/api/participants/audit"): "audit",
}


def operations(app) -> list[tuple[str, str]]:
    spec = app.test_client().get("/openapi.json").get_json()
    return [
        (method.upper(), path)
        for path, items in spec["paths"].items()
        for method in items
        if path not in OPEN
    ]


def call(client, method: str, path: str, headers: dict):
    url = re.sub(r"\{[a-z_]+\}", "1", path)
    response = client.open(url, method=method, json={}, headers=headers)
    response.get_data()  # streamed bodies are read to the end, as a real client would
    response.close()
    return response


def test_every_documented_operation_has_a_known_scope(app):
    assert sorted(operations(app)) == sorted(SCOPES)


def test_each_operation_documents_either_header_with_its_scope(app):
    spec = app.test_client().get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert (
        schemes["ServiceToken"].items()
        >= {
            "type": "apiKey",
            "in": "header",
            "name": "X-Service-Token",
        }.items()
    )
    assert schemes["BearerToken"].items() >= {"type": "http", "scheme": "bearer"}.items()
    for (method, path), scope in SCOPES.items():
        security = spec["paths"][path][method.lower()]["security"]
        assert security == [{"ServiceToken": [scope]}, {"BearerToken": [scope]}], (method, path)


@pytest.mark.parametrize(("method", "path"), sorted(SCOPES))
def test_each_operation_refuses_missing_wrong_and_out_of_scope_credentials(
    make_app, peers, method, path
):
    client = make_app().test_client()
    missing = call(client, method, path, {})
    assert (missing.status_code, missing.get_json()["error_code"]) == (
        401,
        "AUTHENTICATION_REQUIRED",
    )
    for wrong in ({"X-Service-Token": "x" * 26}, {"Authorization": "Bearer " + "y" * 26}):
        response = call(client, method, path, wrong)
        assert (response.status_code, response.get_json()["error_code"]) == (401, "INVALID_TOKEN")
    scope = SCOPES[(method, path)]
    for caller, scopes in SCOPES_BY_CALLER.items():
        response = call(client, method, path, headers_for(caller))
        if scope in scopes:
            assert response.status_code not in (401, 403), (caller, response.get_json())
        else:
            assert response.status_code == 403, caller
            assert response.get_json()["error_code"] == "FORBIDDEN"


def test_no_incoming_token_or_secret_ever_reaches_the_logs(capsys, make_app, peers):
    client = make_app(LOG_LEVEL="DEBUG").test_client()
    peers.standard()
    for caller in TOKENS:
        for method, path in sorted(SCOPES):
            call(client, method, path, headers_for(caller))
        client.get("/api/participants/1", headers={"Authorization": f"Bearer {TOKENS[caller]}"})
    client.get("/api/participants/1", headers={"X-Service-Token": "wrong-token-wrong-token"})
    output = capsys.readouterr().out
    assert output.count('"logger": "telegive.access"') > 90
    for secret in [*TOKENS.values(), "s2s-secret-for-tests-0123456789", "wrong-token-wrong-token"]:
        assert secret not in output
