"""Fuzzing the HTTP API: schemathesis against every operation of /openapi.json, in process,
bounded for CI (``make fuzz``, i.e. ``devtools/fuzz.py``, is the longer run).

The application is the test suite's own (``make_app``: SQLite or TEST_DATABASE_URL, admin token,
every outgoing call mocked with ``responses``). The siblings and Telegram answer *any* id through
regex URLs (``fuzz_world``), so fuzzed ids reach the service's real code paths; part of the
generated values are steered towards a seeded world (a drawn giveaway, an open one, a pending
captcha) so that lists, draws, history and captcha see existing data, not only 404s; date-times
include the extremes of years and UTC offsets; cursors are sometimes forged. Valid and invalid
input (positive and negative modes, plus schemathesis' coverage phase); every response must:

- not be a 5xx (``not_a_server_error``; a 503 only when a mocked peer could not answer);
- have a documented status code, the documented content type and match the documented schema
  of its status (``status_code_conformance``, ``content_type_conformance``,
  ``response_schema_conformance``);
- carry ``success`` agreeing with the status, and X-Request-ID (docs/contract.md §1).

Then directed properties a bounded run is unlikely to meet by chance (forged cursors, extreme
timestamps), and checks of the document itself (what schemathesis takes on trust).
``FUZZ_EXAMPLES`` (default 25), ``FUZZ_SEED`` and ``FUZZ_COVERAGE=0`` tune the schemathesis part.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.formats import STRING_FORMATS
from sqlalchemy import select

from app import create_app
from extensions import db
from models import Participant
from tests.conftest import (
    ADMIN,
    AUTH_URL,
    BOT_TOKEN,
    CHANNEL_URL,
    GIVEAWAY_URL,
    TELEGRAM_URL,
    TOKENS,
    test_env,
)
from tests.factories import add_entries
from utils.cursors import encode_cursor

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261126"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "1") == "1"
# Answers of the mocked peers that mean "cannot tell" (a missing channel, "chat not found"),
# recorded per request: the contract's answer to them is a 503, which is then no defect.
PEER_FAILURES: list[str] = []
PEER_UNAVAILABLE_CODES = {"SUBSCRIPTION_CHECK_UNAVAILABLE", "UPSTREAM_UNAVAILABLE"}


def not_a_server_error_unless_a_peer_failed(ctx, response, case):
    """``not_a_server_error``, except the contract's retryable 503 when, during this very
    request, a mocked sibling or Telegram answered that it cannot tell."""
    if response.status_code == 503 and PEER_FAILURES:
        try:
            code = json.loads(response.content).get("error_code")
        except (ValueError, AttributeError):
            code = None
        if code in PEER_UNAVAILABLE_CODES:
            return None
    return not_a_server_error(ctx, response, case)


def success_agrees_with_status(ctx, response, case):
    """Contract §1: every JSON response carries ``success``, true exactly when the status is 2xx
    (the Bot reads only the body)."""
    if "json" not in (response.headers.get("content-type") or [""])[0]:
        return None
    body = json.loads(response.content)
    if not isinstance(body, dict) or body.get("success") is not (200 <= response.status_code < 300):
        raise AssertionError(
            f"HTTP {response.status_code} with success={body.get('success')!r} "
            "(docs/contract.md §1: success must agree with the status code)"
        )
    return None


def carries_request_id(ctx, response, case):
    """Contract §1: every response carries X-Request-ID."""
    if not response.headers.get("x-request-id"):
        raise AssertionError(f"HTTP {response.status_code} without X-Request-ID")
    return None


CHECKS = [
    not_a_server_error_unless_a_peer_failed,
    success_agrees_with_status,
    carries_request_id,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The seeded world: giveaway 1 is drawn, giveaway 2 has entries and no draw, giveaway 3 has a
# commitment only; user 5000000001 has a captcha question pending for giveaway 2.
DRAWN, OPEN, COMMITTED = 1, 2, 3
ENTRANTS = {DRAWN: range(1000000001, 1000000021), OPEN: range(1000000101, 1000000106)}
PENDING_USER = 5000000001
KNOWN_GIVEAWAYS = (DRAWN, OPEN, COMMITTED)
SEEDED_USERS = frozenset(user for users in ENTRANTS.values() for user in users)
KNOWN_USERS = (1000000001, 1000000002, 1000000105, PENDING_USER)
ACCOUNT = 42


# ``devtools/fuzz.py --strict`` also checks the input side of the documentation: input the
# schema calls valid is not refused as malformed (400), input it calls invalid is refused (4xx).
VALID_INPUT_STATUSES = ["2xx", "403", "404", "409", "410", "413", "429", "503"]
INVALID_INPUT_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]


def valid_input_is_accepted(ctx, response, case):
    """``positive_data_acceptance``, except a 400 about the cursor alone: a cursor is an opaque
    token that only the service can make, which no schema can describe (a limitation of OpenAPI,
    not a defect)."""
    if response.status_code == 400:
        try:
            details = json.loads(response.content).get("details") or {}
        except (ValueError, AttributeError):
            details = {}
        if details and set(details) <= {"cursor"}:
            return None
    return positive_data_acceptance(ctx, response, case)


STRICT_CHECKS = [valid_input_is_accepted, negative_data_rejection]


def schemathesis_config(
    *, examples: int, seed: int, coverage: bool = False, token: str = TOKENS["admin"]
) -> schemathesis.Config:
    """Valid and invalid input, fuzzing (and optionally the coverage phase), admin token."""
    return schemathesis.Config.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"expected-statuses": VALID_INPUT_STATUSES},
                "negative_data_rejection": {"expected-statuses": INVALID_INPUT_STATUSES},
            },
            "seed": seed,
            "headers": {"X-Service-Token": token},
            "generation": {
                "mode": "all",
                "max-examples": examples,
                "database": "none",
                # The admin token is sent on every call: generating others only tests 401s.
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )


# --- the siblings and Telegram, answering any id ------------------------------------------------


def _json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def _last_int(url: str, pattern: re.Pattern[str]) -> int:
    return int(pattern.search(urlsplit(url).path).group(1))


_GIVEAWAY = re.compile(r"/api/giveaways/(\d+)$")
_CHANNEL = re.compile(r"/api/accounts/(\d+)/channel$")


def giveaway_answer(request) -> tuple[int, dict[str, str], str]:
    """Known giveaways are active; other ids: 1 in 5 unknown, 1 in 5 finished, else active."""
    giveaway_id = _last_int(request.url, _GIVEAWAY)
    if giveaway_id not in KNOWN_GIVEAWAYS and giveaway_id % 5 == 3:
        return _json(404, {"success": False, "error_code": "GIVEAWAY_NOT_FOUND"})
    status = "finished" if giveaway_id not in KNOWN_GIVEAWAYS and giveaway_id % 5 == 4 else "active"
    return _json(
        200,
        {
            "success": True,
            "giveaway": {
                "id": giveaway_id,
                "account_id": ACCOUNT if giveaway_id in KNOWN_GIVEAWAYS else giveaway_id % 97 + 1,
                "title": f"Giveaway {giveaway_id}",
                "status": status,
                "winner_count": 3,
                "message_id": 77,
            },
        },
    )


def channel_answer(request) -> tuple[int, dict[str, str], str]:
    """Every account has a channel, except 1 in 7 (not configured)."""
    account_id = _last_int(request.url, _CHANNEL)
    if account_id % 7 == 6:
        PEER_FAILURES.append(f"channel {account_id} not configured")
        return _json(404, {"success": False, "code": "CHANNEL_NOT_CONFIGURED"})
    return _json(
        200,
        {
            "success": True,
            "channel": {
                "channel_id": -1001234567890 - account_id % 10**12,  # a valid chat id
                "channel_username": "@telegive_news",
                "channel_title": "Telegive News",
                "is_verified": True,
            },
        },
    )


def token_answer(request) -> tuple[int, dict[str, str], str]:
    return _json(200, {"bot_token": BOT_TOKEN, "bot_id": 4242000})


def telegram_answer(request) -> tuple[int, dict[str, str], str]:
    """By the user id's last digit: 0 left, 9 kicked, otherwise a member; and "chat not found" for
    unseeded users whose id ends in 8 (Telegram cannot answer: a 503)."""
    raw = parse_qs(urlsplit(request.url).query).get("user_id", ["1"])[0]
    last = int(raw) % 10 if raw.isdigit() else 1
    if last == 8 and int(raw) not in SEEDED_USERS:
        PEER_FAILURES.append(f"telegram: chat not found for {raw}")
        return _json(
            400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        )
    status = {0: "left", 9: "kicked"}.get(last, "member")
    return _json(200, {"ok": True, "result": {"status": status, "user": {"id": raw}}})


def fuzz_world(mock: responses.RequestsMock) -> None:
    """Mocks that answer every URL the service may call, for any id."""
    base = re.escape
    mock.add_callback(responses.GET, re.compile(base(GIVEAWAY_URL) + r"/.*"), giveaway_answer)
    mock.add_callback(responses.GET, re.compile(base(CHANNEL_URL) + r"/.*"), channel_answer)
    mock.add_callback(responses.GET, re.compile(base(AUTH_URL) + r"/.*"), token_answer)
    mock.add_callback(responses.GET, re.compile(base(TELEGRAM_URL) + r"/.*"), telegram_answer)


def seed_world(app) -> None:
    """A drawn giveaway, an open one, a committed one and a pending captcha."""
    headers = {"X-Service-Token": TOKENS["admin"]}
    for giveaway_id, user_ids in ENTRANTS.items():
        add_entries(app, giveaway_id, user_ids, account_id=ACCOUNT)
    client = app.test_client()
    for path, body in (
        (f"/api/participants/{DRAWN}/select-winners", {"winner_count": 3}),
        (f"/api/participants/{COMMITTED}/commitment", None),
        (
            "/api/participants/register",
            {"giveaway_id": OPEN, "user_id": PENDING_USER, "username": "fuzz"},
        ),
    ):
        answer = client.post(path, json=body, headers=headers)
        assert answer.status_code < 300, (path, answer.status_code, answer.get_data(as_text=True))
    with app.app_context():
        SEEDED_ENTRY_IDS[:] = db.session.scalars(select(Participant.id).order_by(Participant.id))


# --- widening what schemathesis generates ----------------------------------------------------------

_ID_FIELDS = {"giveaway_id": KNOWN_GIVEAWAYS, "user_id": KNOWN_USERS}
# Entry ids of the seeded world, filled by ``seed_world`` (a delivery update converts its timestamp
# only for entries that exist).
SEEDED_ENTRY_IDS: list[int] = []
CURSOR_KINDS = ("entries", "history", "audit")

# Integers a forged position may hold: hypothesis' small ones, and those past SQL's BIGINT.
_positions = st.one_of(
    st.integers(),
    st.integers(min_value=2**62),
    st.sampled_from([2**63 - 1, 2**63, 2**64, 10**30, -1, 0]),
)
# JSON values of every shape a forged cursor may hold.
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _positions,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def _any_offset_timestamp() -> st.SearchStrategy[str]:
    """ISO 8601 timestamps anywhere in years 1..9999 with any UTC offset up to ±23:59 (the
    extremes do not fit in a datetime once converted to UTC), or naive, or with "Z"."""
    offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )
    moments = st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
    )
    return st.one_of(
        st.builds(lambda moment, zone: moment.replace(tzinfo=zone).isoformat(), moments, offsets),
        moments.map(lambda moment: moment.isoformat()),
        moments.map(lambda moment: moment.isoformat() + "Z"),
    )


EDGE_TIMESTAMPS = (
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00Z",
)


def widen_timestamps() -> None:
    """Schemathesis' date-time strings, plus offsets and years at the edges of what Python holds
    (a third of the values: a bounded CI run must meet them)."""
    default = STRING_FORMATS.get("date-time")
    widened = st.one_of(st.sampled_from(EDGE_TIMESTAMPS), _any_offset_timestamp())
    schemathesis.openapi.format(
        "date-time", widened if default is None else st.one_of(default, widened)
    )


widen_timestamps()


def _cursor_kind(path: str) -> str:
    if "/audit" in path:
        return "audit"
    if "/history/" in path:
        return "history"
    return "entries"


def forged_cursor(kind: str) -> st.SearchStrategy[str]:
    """A cursor as this service writes them (base64url JSON ``[kind, *position]``): half of them
    shaped like this list's own (an entry number or event id; a history cursor's timestamp and
    entry id) with hostile values, half of any kind and shape."""
    if kind == "history":
        shaped = st.tuples(
            st.one_of(st.sampled_from(EDGE_TIMESTAMPS), _any_offset_timestamp(), _json_scalars),
            st.one_of(_positions, _json_scalars),
        )
    else:
        shaped = st.tuples(st.one_of(_positions, _json_scalars))
    any_shape = st.tuples(
        st.sampled_from(CURSOR_KINDS), st.lists(_json_scalars, max_size=3).map(tuple)
    )
    return st.one_of(
        shaped.map(lambda position: encode_cursor(kind, *position)),
        any_shape.map(lambda forged: encode_cursor(forged[0], *forged[1])),
    )


# --- steering some generated values towards the seeded world and hostile cursors -----------------


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def towards_world(values: Any, cursor_kind: str = "entries") -> st.SearchStrategy[Any]:
    """The generated values as they are; or with their ids replaced by seeded ones; or, for a
    query with a cursor, with a forged cursor."""
    if not isinstance(values, dict):
        return st.just(values)
    replacements: dict[str, st.SearchStrategy[Any]] = {
        name: st.sampled_from(known)
        for name, known in _ID_FIELDS.items()
        if _plain_int(values.get(name))
    }
    ids = values.get("participant_ids")
    if isinstance(ids, list) and ids and all(_plain_int(value) for value in ids):
        replacements["participant_ids"] = st.lists(
            st.integers(min_value=0, max_value=999).map(
                lambda index: (
                    SEEDED_ENTRY_IDS[index % len(SEEDED_ENTRY_IDS)]
                    if SEEDED_ENTRY_IDS
                    else index + 1
                )
            ),
            min_size=1,
            max_size=5,
        )
    options = [st.just(values)]
    if replacements:
        options.append(st.fixed_dictionaries(replacements).map(lambda new: {**values, **new}))
    if "cursor" in values:
        options.append(forged_cursor(cursor_kind).map(lambda cursor: {**values, "cursor": cursor}))
    return st.one_of(options)


def steer(schema):
    """Register the hooks that send part of the generated values to the seeded world."""

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        return towards_world(path_parameters)

    @schema.hook
    def flatmap_body(context, body):
        return towards_world(body)

    @schema.hook
    def flatmap_query(context, query):
        return towards_world(query, _cursor_kind(context.operation.path))

    return schema


def load_schema(app, config: schemathesis.Config, *, steered: bool = True):
    """The application's own /openapi.json, ready for schemathesis. (Steering can turn an invalid
    generated value into a valid one behind schemathesis' back: not for ``negative_data_rejection``.)"""
    loaded = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    return steer(loaded) if steered else loaded


def load_schema_from_url(base_url: str, config: schemathesis.Config, *, steered: bool = True):
    """A running instance's /openapi.json (``devtools/fuzz.py --url``)."""
    loaded = schemathesis.openapi.from_url(f"{base_url.rstrip('/')}/openapi.json", config=config)
    return steer(loaded) if steered else loaded


def _spec_app():
    """An application used only to read /openapi.json at collection time (never connects)."""
    return create_app(test_env("sqlite:////tmp/telegive-fuzz-spec.db"))


# Loaded when the module is collected, so pytest gets one test per operation. (The lazy
# ``schemathesis.pytest.from_fixture`` cannot be used: it writes ``Function._nodeid``, which
# pytest 9 no longer has.) Each test runs against its own application from ``fuzz_app``.
_SPEC_APP = _spec_app()
schema = load_schema(
    _SPEC_APP, schemathesis_config(examples=EXAMPLES, seed=SEED, coverage=COVERAGE)
)


@pytest.fixture
def fuzz_app(make_app, peers):
    app = make_app()
    fuzz_world(peers.mock)
    seed_world(app)
    return app


@schema.parametrize()
# The application lives for all the examples of one operation: on purpose, the world grows as
# the fuzzer registers, answers and draws (each operation starts from the same seeded world).
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_every_operation_answers_as_documented(case, fuzz_app):
    PEER_FAILURES.clear()
    case.call_and_validate(app=fuzz_app, checks=CHECKS)


# --- directed properties: what a bounded schemathesis run is unlikely to meet by chance ----------

LIST_PATHS = {
    "entries": (f"/api/participants/{DRAWN}", f"/api/participants/list/{DRAWN}"),
    "history": (f"/api/participants/history/{min(ENTRANTS[DRAWN])}",),
    "audit": ("/api/participants/audit",),
}
DIRECTED = settings(
    max_examples=50,
    deadline=None,
    # No "explain" phase: it traces coverage and costs more than the search itself.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _read(app, method: str, path: str, **kwargs):
    """The status and the whole body (a streamed body is read to its end)."""
    response = app.test_client().open(path, method=method, headers=ADMIN, **kwargs)
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("kind", "path"), [(kind, path) for kind, paths in LIST_PATHS.items() for path in paths]
)
@DIRECTED
@given(data=st.data())
def test_a_forged_cursor_is_followed_or_refused_never_a_server_error(fuzz_app, kind, path, data):
    cursor = data.draw(forged_cursor(kind), label="cursor")
    status, body = _read(fuzz_app, "GET", path, query_string={"cursor": cursor})
    assert status in (200, 400), (path, cursor, status, body[:300])
    if status == 400:
        assert json.loads(body)["error_code"] == "VALIDATION_ERROR"


def _stamped(where: str, stamp: str) -> tuple[str, str, dict[str, Any]]:
    if where == "delivery_timestamp":
        body = {"participant_ids": SEEDED_ENTRY_IDS[:2], "delivered": True, where: stamp}
        return "PUT", "/api/participants/update-delivery-status", {"json": body}
    return "GET", "/api/participants/audit", {"query_string": {where: stamp}}


@pytest.mark.parametrize("where", ["delivery_timestamp", "since", "until"])
@DIRECTED
@given(stamp=st.one_of(st.sampled_from(EDGE_TIMESTAMPS), _any_offset_timestamp()))
def test_any_iso_timestamp_is_accepted_or_refused_never_a_server_error(fuzz_app, where, stamp):
    method, path, kwargs = _stamped(where, stamp)
    status, body = _read(fuzz_app, method, path, **kwargs)
    assert status in (200, 400), (where, stamp, status, body[:300])


# --- the document itself: what schemathesis takes on trust ---------------------------------------

SPEC = _SPEC_APP.test_client().get("/openapi.json").get_json()
JSON_SCHEMA_BOUNDS_ONLY = {"ge", "le", "gt", "lt"}  # pydantic's names, not JSON Schema's


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SPEC["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _operations():
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def _json_responses():
    for label, operation in _operations():
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                yield label, status, _resolve(schema)


def test_every_operation_is_fuzzed():
    fuzzed = {result.ok().label for result in schema.get_all_operations()}
    assert fuzzed == {label for label, _ in _operations()}
    assert len(fuzzed) >= 26


def test_every_request_body_is_documented_as_required():
    """Every body model has required fields and the service answers 400 without a body, so the
    document must say ``requestBody.required: true`` (else a client may omit it)."""
    optional = [
        label
        for label, operation in _operations()
        if "requestBody" in operation and operation["requestBody"].get("required") is not True
    ]
    assert not optional, f"request bodies documented as optional: {optional}"


def test_bounds_are_written_in_json_schema_keywords():
    """``minimum``/``maximum``, not pydantic's ``ge``/``le`` (which JSON Schema ignores, so the
    document would allow the ids 0 and -1 that the service refuses)."""
    found = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if JSON_SCHEMA_BOUNDS_ONLY & node.keys():
                found.append(pointer)
            for key, value in node.items():
                walk(value, f"{pointer}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(SPEC, "#")
    assert not found, f"{len(found)} schema(s) use ge/le instead of minimum/maximum: {found}"


def test_every_json_response_is_documented_with_success_required():
    """Contract §1: every JSON response carries ``success`` (the Bot reads only the body)."""
    optional: dict[str, int] = {}
    for _label, _status, body in _json_responses():
        if "success" not in body.get("required", []):
            name = body.get("title", "?")
            optional[name] = optional.get(name, 0) + 1
    assert not optional, (
        f"schemas documenting success as optional (and how many responses use them): {optional}"
    )


# Contract §2: the fields each caller reads, REQUIRED in the response (``success`` is above).
CALLERS_READ = {
    "GET /api/participants/captcha-status/{user_id}": (
        "captcha_completed",
        "total_participations",
        "total_wins",
    ),
    "POST /api/participants/register": ("requires_captcha",),
    "POST /api/participants/validate-captcha": ("captcha_completed",),
    "GET /api/participants/winner-status/{user_id}/{giveaway_id}": (
        "participated",
        "is_winner",
        "winner_selected_at",
        "total_winners",
    ),
    "POST /api/participants/verify-subscription": ("is_subscribed", "channel_info", "verified_at"),
    "PUT /api/participants/update-delivery-status": ("error",),
    "POST /api/participants/{giveaway_id}/select-winners": ("winners", "total_participants"),
    "GET /api/participants/{giveaway_id}": ("participants",),
    "GET /api/participants/{giveaway_id}/count": ("total_participants",),
    "GET /api/participants/{giveaway_id}/stats": ("stats",),
    "GET /api/participants/{giveaway_id}/winners": ("winners",),
    "GET /health": ("status",),
    "GET /api/participants/list/{giveaway_id}": (
        "participants",
        "stats",
        "total",
        "page",
        "limit",
        "totalPages",
    ),
    "GET /api/participants/stats/{giveaway_id}": ("stats",),
    "GET /api/participants/count/{giveaway_id}": ("giveaway_id", "count"),
    "GET /api/participants/history/{user_id}": ("user_stats",),
}


def test_the_fields_callers_read_are_documented_as_required():
    missing = [
        f"{label}: {field}"
        for label, status, body in _json_responses()
        if status == "200"
        for field in CALLERS_READ.get(label, ())
        if field not in body.get("required", [])
    ]
    assert not missing, f"fields callers read, documented as optional: {missing}"
