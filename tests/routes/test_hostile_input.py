"""What a hostile client can send to any endpoint: answered in the envelope, changing nothing and
growing nothing (issue 14: invented methods, nested bodies, control characters, content types)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Base, DrawRecord
from tests.conftest import ADMIN, GIVEAWAY
from tests.factories import add_entries
from tests.routes.test_conventions import assert_error


def json_operations(app) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a JSON body, ids filled in."""
    spec = app.test_client().get("/openapi.json").get_json()
    return [
        (method.upper(), path.replace("{giveaway_id}", "1").replace("{user_id}", "5"))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def rows(app) -> int:
    """Rows in all of the service's tables together."""
    with app.app_context():
        return sum(
            db.session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        )


def test_every_json_operation_is_covered(app):
    assert len(json_operations(app)) >= 7


# --- /metrics: every label that comes from the request is a closed set -----------------------


def series(client) -> set[str]:
    """The series /metrics exposes now (each sample line without its value)."""
    text = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#") and "_created" not in line
    }


def test_invented_methods_and_paths_do_not_grow_the_metrics(client):
    client.open("/health", method="XWARMUP")  # the one series every invented method shares
    client.open("/warm/up/path", method="GET")
    series(client)  # the scrape's own series exist from here on
    before = series(client)
    for index in range(200):
        assert client.open("/health", method=f"X{index:05d}AAAA").status_code == 405
        client.open(f"/invented/{index}", method="GET")
    after = series(client)
    assert after == before, f"{len(after - before)} new series, e.g. {sorted(after - before)[:3]}"


# --- bodies the JSON parser cannot hold --------------------------------------------------------

NESTED_BODIES = {
    "lists": "[" * 40_000,
    "objects": '{"a":' * 10_000,
    "inside a field": '{"giveaway_id": 1, "user_id": ' + "[" * 40_000,
}


@pytest.mark.parametrize("shape", NESTED_BODIES)
def test_deeply_nested_json_is_a_validation_error_on_every_json_operation(app, peers, shape):
    client = app.test_client()
    for method, path in json_operations(app):
        response = client.open(
            path,
            method=method,
            data=NESTED_BODIES[shape],
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        body = assert_error(response, 400, "VALIDATION_ERROR")
        assert body["details"] == {"body": "not valid JSON"}, (method, path)
    assert rows(app) == 0


# --- control characters in free text -----------------------------------------------------------

USERS = [1_000_000_000 + i for i in range(1, 11)]


@pytest.mark.parametrize("field", ["idempotency_key", "reason"])
@pytest.mark.parametrize("character", ["\u0000", "\u001b", "\u007f"])
def test_a_control_character_in_a_reroll_is_refused_naming_the_field(
    app, client, peers, field, character
):
    peers.standard()
    add_entries(app, 1, USERS)
    drawn = client.post(
        "/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY
    )
    assert drawn.status_code == 200
    body = {"reason": "winner unreachable", "idempotency_key": "k1", "add_count": 1}
    body[field] = f"bad{character}text"
    response = client.post("/api/participants/1/reroll", json=body, headers=GIVEAWAY)
    answer = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(answer["details"]) == {field}
    assert "control character" in answer["details"][field]
    assert field in answer["error"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 1


@pytest.mark.parametrize("character", ["\u0000", "\u001b"])
def test_a_control_character_in_the_idempotency_key_header_is_refused(
    app, client, peers, character
):
    """What gunicorn refuses before the application; any other server may pass it on."""
    peers.standard()
    add_entries(app, 1, USERS)
    client.post("/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY)
    response = client.post(
        "/api/participants/1/reroll",
        json={"reason": "winner unreachable", "add_count": 1},
        headers={**GIVEAWAY, "Idempotency-Key": f"key{character}"},
    )
    answer = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(answer["details"]) == {"Idempotency-Key"}
    assert "control character" in answer["details"]["Idempotency-Key"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DrawRecord)) == 1


def test_a_reroll_reason_may_span_lines(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    client.post("/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY)
    response = client.post(
        "/api/participants/1/reroll",
        json={
            "reason": "winner unreachable:\n\tno answer in 48 h",
            "idempotency_key": "k1",
            "add_count": 1,
        },
        headers=GIVEAWAY,
    )
    assert response.status_code == 200
    assert response.get_json()["draw"]["reason"] == "winner unreachable:\n\tno answer in 48 h"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/participants/validate-captcha",
            {"user_id": 5, "giveaway_id": 1, "answer": 7, "session_id": "s\u0000"},
            "session_id",
        ),
        (
            "/api/participants/register",
            {"giveaway_id": 1, "user_id": 5, "username": "a\u0000"},
            "username",
        ),
        (
            "/api/participants/register",
            {"giveaway_id": 1, "user_id": 5, "last_name": "\u0000"},
            "last_name",
        ),
    ],
)
def test_a_nul_in_any_text_field_is_refused_naming_the_field(client, peers, path, body, field):
    peers.standard()
    answer = assert_error(client.post(path, json=body, headers=ADMIN), 400, "VALIDATION_ERROR")
    assert set(answer["details"]) == {field}


@pytest.mark.parametrize(
    "path", ["/api/participants/1", "/api/participants/history/5", "/api/participants/audit"]
)
def test_a_control_character_in_a_cursor_is_refused_naming_it(client, path):
    response = client.get(path, query_string={"cursor": "abc\u0000"}, headers=ADMIN)
    answer = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(answer["details"]) == {"cursor"}


def test_names_keep_what_telegram_sends_apart_from_nul(client, peers):
    """Names come from Telegram as the user typed them: only NUL (which PostgreSQL cannot store)
    is refused."""
    peers.standard()
    name = "Zoë \u202e\u200d\U0001f389 \u0007bell"
    response = client.post(
        "/api/participants/register",
        json={"giveaway_id": 1, "user_id": 5, "first_name": name},
        headers=ADMIN,
    )
    assert response.status_code == 200


# --- content types: JSON only, so no CORS-"simple" request gets through -------------------------

REGISTRATION = '{"giveaway_id": 1, "user_id": 5, "username": "someone"}'


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_a_body_not_sent_as_json_is_415_on_every_json_operation(app, peers, content_type):
    peers.standard()
    client = app.test_client()
    headers = {**ADMIN, **({"Content-Type": content_type} if content_type else {})}
    for method, path in json_operations(app):
        response = client.open(path, method=method, data=REGISTRATION, headers=headers)
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert rows(app) == 0


def test_a_cross_site_text_plain_post_registers_nobody_while_auth_is_off(make_app, peers):
    """What a page on any site can make a browser send without a CORS preflight."""
    peers.standard()
    app = make_app(REQUIRE_SERVICE_AUTH="false")
    response = app.test_client().post(
        "/api/participants/register",
        data=REGISTRATION,
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert rows(app) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_with_a_charset_is_read(client, peers, content_type):
    peers.standard()
    response = client.post(
        "/api/participants/register",
        data=REGISTRATION,
        headers={**ADMIN, "Content-Type": content_type},
    )
    assert response.status_code == 200
    assert response.get_json()["requires_captcha"] is True


def test_a_json_operation_without_a_body_is_still_a_validation_error(client):
    response = client.post("/api/participants/register", headers=ADMIN)
    assert_error(response, 400, "VALIDATION_ERROR")


def test_the_document_says_json_operations_answer_415(app):
    spec = app.test_client().get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "415" in operation["responses"], f"{method.upper()} {path}"
