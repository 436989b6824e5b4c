"""Parity of the two stores: the same tests, run against SQLite and PostgreSQL.

Every ``Store`` method is checked through what it leaves in the database or hands back, with the
same inputs and the same expected outputs on both implementations. The PostgreSQL runs need
TEST_DATABASE_URL (they are skipped on a plain SQLite run, and CI's strict run has both); the
SQLite runs use a migrated file of their own, so they run on every database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, update

from app import create_app
from extensions import db
from models import AuditEvent, GiveawayState, Membership, Participant, ParticipantUser
from services.commitments import ensure_giveaway_state
from services.store import EntryRequest, ExistingEntry, Standing, postgres, sqlite, store
from services.transaction import read_only, write_transaction
from tests.conftest import test_env, wipe
from utils.draw import entrants_digest

USER = 5_000_000_001
CHANNEL = -1001234567890
OTHER_CHANNEL = -1009999999999
# Fixed moments (with microseconds, as the service's own clock gives them).
T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)


# --- one application per store ------------------------------------------------------------------


@pytest.fixture
def sqlite_app(sqlite_url: str) -> Iterator[object]:
    """The application on SQLite, even when the session runs on PostgreSQL."""
    app = create_app(test_env(sqlite_url))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    wipe(sqlite_url)


@pytest.fixture
def postgresql_app(make_app):
    """The application on the session's PostgreSQL (only run when TEST_DATABASE_URL names one)."""
    return make_app()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[object]:
    """The application on each store, inside an application context."""
    app = request.getfixturevalue(f"{request.param}_app")
    with app.app_context():
        yield app


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of two rows on both stores, so a handful of entries crosses chunk boundaries."""
    monkeypatch.setattr(sqlite, "CHUNK_ROWS", 2)
    monkeypatch.setattr(sqlite, "ENTRANTS_CHUNK_ROWS", 2)
    for name in ("PAGE_CHUNK_ROWS", "EXPORT_CHUNK_ROWS", "ENTRANTS_CHUNK_ROWS"):
        monkeypatch.setattr(postgres, name, 2)


# --- data ---------------------------------------------------------------------------------------


def passed_captcha(user_id: int = USER, **names) -> None:
    with write_transaction() as session:
        session.execute(
            insert(ParticipantUser).values(
                user_id=user_id, captcha_completed_at=T0, created_at=T0, **names
            )
        )


def put_entries(giveaway_id: int, rows: list[dict], *, numbered: bool = True) -> list[int]:
    """Entries with exactly these fields, numbered 1, 2, ... in this order (or not at all)."""
    ensure_giveaway_state(giveaway_id, account_id=42)
    ids = []
    with write_transaction() as session:
        for number, row in enumerate(rows, start=1):
            values = {
                "giveaway_id": giveaway_id,
                "username": None,
                "first_name": None,
                "last_name": None,
                "participated_at": T0,
                "entry_number": number if numbered else None,
                **row,
            }
            ids.append(
                session.scalar(insert(Participant).values(**values).returning(Participant.id))
            )
        if numbered:
            session.execute(
                update(GiveawayState)
                .where(GiveawayState.giveaway_id == giveaway_id)
                .values(entry_count=len(rows))
            )
    return ids


def entry_request(**overrides) -> EntryRequest:
    """A registration write of USER in giveaway 1 with Telegram's fresh "member" answer."""
    values = {
        "giveaway_id": 1,
        "user_id": USER,
        "username": "alice",
        "first_name": "Alice",
        "last_name": None,
        "now": T1,
        "channel_id": CHANNEL,
        "fresh_status": "member",
        "fresh_verified_at": T1,
        "remembered_since": T1 - timedelta(minutes=5),
        "actor": "bot",
        "request_id": "req-1",
    }
    return EntryRequest(**{**values, **overrides})


def no_fresh_answer(**overrides) -> EntryRequest:
    return entry_request(fresh_status=None, fresh_verified_at=None, **overrides)


def stored_entries(giveaway_id: int = 1) -> list:
    with read_only() as session:
        return session.execute(
            select(
                Participant.id,
                Participant.user_id,
                Participant.username,
                Participant.first_name,
                Participant.participated_at,
                Participant.subscription_verified_at,
                Participant.entry_number,
            )
            .where(Participant.giveaway_id == giveaway_id)
            .order_by(Participant.id)
        ).all()


def numbers(giveaway_id: int = 1) -> list[int | None]:
    return [row.entry_number for row in stored_entries(giveaway_id)]


def entry_count(giveaway_id: int = 1) -> int:
    with read_only() as session:
        return session.scalar(
            select(GiveawayState.entry_count).where(GiveawayState.giveaway_id == giveaway_id)
        )


def remembered() -> list:
    with read_only() as session:
        return session.execute(
            select(Membership.channel_id, Membership.user_id, Membership.status)
        ).all()


# --- standing -----------------------------------------------------------------------------------


def test_standing_of_a_user_never_seen(backend):
    assert store().standing(user_id=USER, giveaway_id=1) == Standing(captcha_completed=False)


def test_standing_has_the_captcha_and_names_and_the_entry_of_this_giveaway_only(backend):
    passed_captcha(username="alice", first_name="Alice", last_name="Liddell")
    expected = Standing(
        captcha_completed=True, username="alice", first_name="Alice", last_name="Liddell"
    )
    assert store().standing(user_id=USER, giveaway_id=1) == expected
    [participant_id] = put_entries(1, [{"user_id": USER, "participated_at": T1}])
    standing = store().standing(user_id=USER, giveaway_id=1)
    assert standing.entry == ExistingEntry(participant_id, T1)
    assert store().standing(user_id=USER, giveaway_id=2).entry is None


def test_standing_of_a_user_whose_captcha_is_not_done(backend):
    with write_transaction() as session:
        session.execute(insert(ParticipantUser).values(user_id=USER, created_at=T0))
    assert store().standing(user_id=USER, giveaway_id=1).captcha_completed is False


# --- enter --------------------------------------------------------------------------------------


def test_enter_writes_the_entry_its_event_and_remembers_the_fresh_answer(backend):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    attempt = store().enter(entry_request())
    assert attempt.participant_id is not None
    assert (attempt.captcha_completed, attempt.subscribed, attempt.existing) == (True, True, None)
    [row] = stored_entries()
    assert (row.id, row.user_id, row.username, row.first_name) == (
        attempt.participant_id,
        USER,
        "alice",
        "Alice",
    )
    assert (row.participated_at, row.subscription_verified_at) == (T1, T1)
    assert remembered() == [(CHANNEL, USER, "member")]
    with read_only() as session:
        [event] = session.execute(
            select(AuditEvent.event_type, AuditEvent.occurred_at, AuditEvent.facts).where(
                AuditEvent.user_id == USER
            )
        ).all()
    assert event == ("participation", T1, {"participant_id": attempt.participant_id})


def test_enter_names_the_request_actor_and_id_in_the_entry_event(backend):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    store().enter(entry_request(actor="bot", request_id="req-42"))
    with read_only() as session:
        event = session.execute(
            select(AuditEvent.actor, AuditEvent.request_id).where(
                AuditEvent.event_type == "participation"
            )
        ).one()
    assert tuple(event) == ("bot", "req-42")


def test_enter_of_a_user_already_in_returns_their_entry_and_writes_nothing(backend):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    first = store().enter(entry_request())
    again = store().enter(entry_request(now=T2, username="changed"))
    assert again.participant_id is None
    assert again.existing == ExistingEntry(first.participant_id, T1)
    [row] = stored_entries()
    assert row.username == "alice"


def test_enter_without_the_captcha_enters_nobody(backend):
    ensure_giveaway_state(1, account_id=42)
    attempt = store().enter(entry_request())
    assert (attempt.participant_id, attempt.captcha_completed, attempt.existing) == (
        None,
        False,
        None,
    )
    assert stored_entries() == []


@pytest.mark.parametrize(
    "situation",
    [
        "nothing remembered",
        "remembered too long ago",
        "remembered for another channel",
        "no channel",
    ],
)
def test_enter_without_a_known_subscription_enters_nobody(backend, situation):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    request = no_fresh_answer()
    if situation == "remembered too long ago":
        store().enter(entry_request(giveaway_id=2, fresh_verified_at=T0 - timedelta(minutes=6)))
    elif situation == "remembered for another channel":
        store().enter(entry_request(giveaway_id=2, channel_id=OTHER_CHANNEL))
    elif situation == "no channel":
        store().enter(entry_request(giveaway_id=2))
        request = no_fresh_answer(channel_id=None)
    attempt = store().enter(request)
    assert (attempt.participant_id, attempt.captcha_completed, attempt.subscribed) == (
        None,
        True,
        False,
    )
    assert stored_entries(1) == []


def test_a_fresh_answer_is_remembered_and_later_relied_upon(backend):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    ensure_giveaway_state(2, account_id=42)
    store().enter(entry_request(giveaway_id=1, fresh_verified_at=T0))
    attempt = store().enter(no_fresh_answer(giveaway_id=2, now=T2))
    assert attempt.participant_id is not None and attempt.subscribed is True
    [row] = stored_entries(2)
    assert (row.participated_at, row.subscription_verified_at) == (T2, T0)
    # A newer fresh answer replaces the remembered one.
    store().enter(entry_request(giveaway_id=3, fresh_status="administrator", fresh_verified_at=T2))
    assert remembered() == [(CHANNEL, USER, "administrator")]


@pytest.mark.parametrize("how", ["closed", "no state row"])
def test_enter_while_entries_are_closed_enters_nobody(backend, how):
    passed_captcha()
    if how == "closed":
        ensure_giveaway_state(1, account_id=42)
        with write_transaction() as session:
            store().exclude_registrations(session, 1)
            session.execute(update(GiveawayState).values(closed_at=T0))
    attempt = store().enter(entry_request())
    assert (attempt.participant_id, attempt.captcha_completed, attempt.subscribed) == (
        None,
        True,
        True,
    )
    assert attempt.existing is None
    assert stored_entries() == []


def test_an_entry_attempted_while_entries_close_waits_and_is_refused(backend):
    passed_captcha()
    ensure_giveaway_state(1, account_id=42)
    outcome = {}

    def attempt() -> None:
        with backend.app_context():
            try:
                outcome["attempt"] = store().enter(entry_request())
            finally:
                db.session.remove()

    registration = threading.Thread(target=attempt)
    with write_transaction() as session:
        store().exclude_registrations(session, 1)
        session.execute(select(GiveawayState).with_for_update())  # as the draw's close does
        registration.start()
        registration.join(0.5)
        assert registration.is_alive()  # it waits for the closing transaction
        session.execute(update(GiveawayState).values(closed_at=T0))
    registration.join(20)
    assert outcome["attempt"].participant_id is None
    assert stored_entries() == []


def test_enter_after_entries_closed_still_names_an_existing_entry(backend):
    passed_captcha()
    [participant_id] = put_entries(1, [{"user_id": USER, "participated_at": T0}])
    with write_transaction() as session:
        session.execute(update(GiveawayState).values(closed_at=T1))
    assert store().enter(entry_request()).existing == ExistingEntry(participant_id, T0)


# --- number_pending -----------------------------------------------------------------------------


@pytest.mark.parametrize("wait", [True, False])
def test_number_pending_numbers_densely_in_id_order_within_the_limit(backend, wait):
    # User ids out of order: numbers follow the entries' ids (the order they were accepted).
    put_entries(1, [{"user_id": u} for u in (30, 10, 20, 50, 40)], numbered=False)
    put_entries(2, [{"user_id": 10}], numbered=False)
    assert store().number_pending(1, wait=wait, limit=2) == 2
    assert numbers() == [1, 2, None, None, None]
    assert store().number_pending(1, wait=wait, limit=100) == 3
    assert numbers() == [1, 2, 3, 4, 5]
    assert store().number_pending(1, wait=wait, limit=100) == 0  # idempotent
    assert numbers() == [1, 2, 3, 4, 5] and entry_count() == 5
    assert numbers(2) == [None]  # another giveaway's entries are left alone


def test_number_pending_continues_after_the_numbered_entries(backend):
    put_entries(1, [{"user_id": 10}, {"user_id": 20}])
    ensure_giveaway_state(1)
    with write_transaction() as session:
        session.execute(insert(Participant).values(giveaway_id=1, user_id=5, participated_at=T1))
    assert store().number_pending(1, wait=True, limit=100) == 1
    assert numbers() == [1, 2, 3] and entry_count() == 3


def test_number_pending_without_a_state_row_numbers_nothing(backend):
    with write_transaction() as session:
        session.execute(insert(Participant).values(giveaway_id=9, user_id=5, participated_at=T1))
    assert store().number_pending(9, wait=True, limit=100) == 0
    assert numbers(9) == [None]


# --- page_json ----------------------------------------------------------------------------------

LISTED = [
    {"user_id": 101, "username": "alice", "first_name": "Alice", "participated_at": T0},
    {
        "user_id": 102,
        "username": 'say "hi"',
        "first_name": "Zoë 🎉",
        "last_name": "back\\slash",
        "participated_at": T1,
        "is_winner": True,
        "winner_position": 1,
        "winner_selected_at": T2,
    },
    {"user_id": 103, "first_name": "line\nbreak", "participated_at": T1, "status": "unsubscribed"},
    {"user_id": 9_223_372_036_854_775_807, "username": "<b>&</b>", "participated_at": T2},
    {"user_id": 105, "participated_at": T2},
]


def listed_object(participant_id: int, number: int, row: dict) -> dict:
    """What a list shows of an entry."""
    moment = row.get("winner_selected_at")
    return {
        "id": participant_id,
        "user_id": row["user_id"],
        "username": row.get("username"),
        "first_name": row.get("first_name"),
        "last_name": row.get("last_name"),
        "captcha_completed": True,
        "participated_at": row["participated_at"].isoformat(),
        "is_winner": row.get("is_winner", False),
        "winner_position": row.get("winner_position"),
        "winner_selected_at": moment.isoformat() if moment else None,
        "status": row.get("status", "active"),
        "entry_number": number,
    }


def page(giveaway_id: int, after: int, last: int) -> list[dict]:
    """A page's chunks as the list route joins them, parsed."""
    chunks = list(store().page_json(giveaway_id, after, last))
    assert all(chunks)
    return json.loads("[" + ",".join(chunks) + "]")


@pytest.mark.usefixtures("small_chunks")
def test_page_json_is_the_entries_numbered_after_to_last_as_json_objects(backend):
    ids = put_entries(1, LISTED)
    put_entries(2, [{"user_id": 101}])
    expected = [
        listed_object(i, n, row) for n, (i, row) in enumerate(zip(ids, LISTED, strict=True), 1)
    ]
    assert page(1, 0, 5) == expected
    assert page(1, 1, 4) == expected[1:4]
    assert page(1, 4, 100) == expected[4:]
    assert page(1, 5, 10) == [] and page(1, 3, 3) == []
    assert page(3, 0, 5) == []


def test_page_json_writes_timestamps_the_same_way_whatever_their_microseconds(backend):
    whole_second = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    put_entries(1, [{"user_id": 101, "participated_at": whole_second}])
    [listed] = page(1, 0, 1)
    assert listed["participated_at"] == "2026-11-26T12:00:00.000000+00:00"


# --- export_csv ---------------------------------------------------------------------------------

EXPORTED = [
    {"user_id": 101, "username": "alice", "first_name": "Alice", "participated_at": T0},
    {
        "user_id": 102,
        "username": '=HYPERLINK("http://evil.test")',
        "first_name": "+1",
        "last_name": "-2",
        "participated_at": T1,
        "is_winner": True,
        "winner_position": 1,
        "winner_selected_at": T2,
        "delivered": True,
        "delivered_at": T2,
    },
    {
        "user_id": 103,
        "username": "@bob",
        "first_name": "\ttab",
        "last_name": 'say "hi", twice',
        "participated_at": T1,
        "status": "unsubscribed",
        "delivered": False,
    },
    {"user_id": 104, "username": "Zoë 🎉", "first_name": "line\nbreak", "last_name": "\rcr"},
    {"user_id": 105},
]


def exported_cells(participant_id: int, number: int, row: dict) -> list[str]:
    """An export row as a spreadsheet reads it: typed text neutralised, everything text."""

    def typed(value: str | None) -> str:
        if value is None:
            return ""
        return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r", "\n")) else value

    def moment(value: datetime | None) -> str:
        return value.isoformat() if value else ""

    delivered = row.get("delivered")
    return [
        str(participant_id),
        str(row["user_id"]),
        typed(row.get("username")),
        typed(row.get("first_name")),
        typed(row.get("last_name")),
        "true",
        moment(row.get("participated_at", T0)),
        "true" if row.get("is_winner") else "false",
        str(row.get("winner_position") or ""),
        moment(row.get("winner_selected_at")),
        row.get("status", "active"),
        str(number),
        "" if delivered is None else str(delivered).lower(),
        moment(row.get("delivered_at")),
    ]


def export_text(giveaway_id: int, total: int) -> str:
    return "".join(store().export_csv(giveaway_id, total))


@pytest.mark.usefixtures("small_chunks")
def test_export_csv_is_header_less_lines_with_typed_text_neutralised(backend):
    ids = put_entries(1, EXPORTED)
    put_entries(2, [{"user_id": 101}])
    text = export_text(1, 5)
    assert text.endswith("\n") and not text.startswith("participant_id")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        exported_cells(i, n, row) for n, (i, row) in enumerate(zip(ids, EXPORTED, strict=True), 1)
    ]
    assert list(csv.reader(io.StringIO(export_text(1, 2), newline=""))) == rows[:2]
    assert export_text(1, 0) == "" and export_text(3, 5) == ""


def test_export_csv_quotes_typed_cells_so_no_name_splits_a_row(backend):
    put_entries(1, [{"user_id": 104, "username": "a,b", "first_name": "line\nbreak"}])
    text = export_text(1, 1)
    assert text.startswith('1,104,"a,b","line\nbreak",')
    assert len(list(csv.reader(io.StringIO(text, newline="")))) == 1


# --- entrants -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_chunks")
def test_entrants_are_ascending_user_ids_with_the_published_digest(backend):
    users = [2**63 - 1, 7, 1_000_000_000, 99, 5_000_000_001, 10]  # text order would differ
    put_entries(1, [{"user_id": u} for u in users], numbered=False)
    put_entries(2, [{"user_id": 8}])
    chunks = list(store().entrant_chunks(1))
    assert len(chunks) == 3  # two ids a chunk
    text = "".join(chunks)
    assert text == "".join(f"{user_id}\n" for user_id in sorted(users))
    assert hashlib.sha256(text.encode()).hexdigest() == entrants_digest(sorted(users))


def test_entrants_of_a_giveaway_without_entries(backend):
    assert list(store().entrant_chunks(1)) == []


# --- insert and read_only -----------------------------------------------------------------------


def test_insert_supports_on_conflict_do_nothing_and_do_update(backend):
    def remember(status: str, at: datetime, *, update: bool) -> None:
        statement = (
            store()
            .insert(Membership)
            .values(channel_id=CHANNEL, user_id=USER, status=status, verified_at=at)
        )
        if update:
            statement = statement.on_conflict_do_update(
                index_elements=["channel_id", "user_id"],
                set_={"status": statement.excluded.status},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["channel_id", "user_id"])
        with write_transaction() as session:
            session.execute(statement)

    remember("member", T0, update=False)
    remember("creator", T1, update=False)
    assert remembered() == [(CHANNEL, USER, "member")]
    remember("administrator", T2, update=True)
    assert remembered() == [(CHANNEL, USER, "administrator")]


def test_read_only_sees_each_commit_and_leaves_no_transaction_open(backend):
    put_entries(1, [{"user_id": 101}])
    with read_only() as session:
        state = session.get(GiveawayState, 1)
    assert not db.session().in_transaction()
    assert state.entry_count == 1  # what was read stays readable after the block
    other = create_engine(db.engine.url)  # another process's connection
    try:
        with other.begin() as connection:
            connection.execute(update(GiveawayState.__table__).values(entry_count=7))
    finally:
        other.dispose()
    with read_only() as session:
        assert session.scalar(select(func.max(GiveawayState.entry_count))) == 7
    assert not db.session().in_transaction()


# --- both stores, side by side ------------------------------------------------------------------


def written_by_both(sqlite_app, postgresql_app, read) -> tuple[object, object]:
    """What ``read()`` returns on each store after the same entries (ids included) were put."""
    rows = [{"id": n, **row} for n, row in enumerate(EXPORTED, start=1)]
    results = []
    for app in (sqlite_app, postgresql_app):
        with app.app_context():
            put_entries(1, rows)
            results.append(read())
    return results[0], results[1]


@pytest.mark.postgres
def test_both_stores_list_the_same_objects_and_publish_the_same_entrants(
    sqlite_app, postgresql_app
):
    on_sqlite, on_postgresql = written_by_both(
        sqlite_app,
        postgresql_app,
        lambda: (page(1, 0, 5), "".join(store().entrant_chunks(1))),
    )
    assert on_sqlite == on_postgresql


@pytest.mark.postgres
def test_both_stores_export_the_same_bytes(sqlite_app, postgresql_app):
    on_sqlite, on_postgresql = written_by_both(
        sqlite_app, postgresql_app, lambda: export_text(1, 5).encode()
    )
    assert on_sqlite == on_postgresql
