"""Entries pending verification (SUBSCRIPTION_OVERFLOW=defer): admitted while the bot's budget of
Telegram calls is spent, kept as rows of the queue, settled later by the verifier within the
bot's spare budget (verified, excluded and audited, or still pending), and visible everywhere."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, update

from extensions import db
from models import AuditEvent, Membership, Participant, PendingVerification
from services import pending
from services.store import EntryRequest, postgres, store
from services.telegram_budget import LocalPacer, TelegramBudget
from tests.conftest import ADMIN, BOT, DASHBOARD, GIVEAWAY, TELEGRAM_URL
from tests.factories import add_entries, complete_captcha
from tests.routes.test_registration import answer, current_answer, entries, register
from tests.services.test_indexes import full_scan_offenders
from utils.pacing import Verdict
from utils.timeutil import utcnow

USERS = [7_000_000_001 + i for i in range(12)]
BUSY = {"TELEGRAM_CALLS_PER_SECOND": "0.1", "TELEGRAM_BUDGET_WAIT_SECONDS": "1"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"telegive_participant_{name}", labels) or 0.0


def spend_the_budget(client) -> None:
    """One verify-subscription takes the bot's only slot for the next 10 s (at 0.1 a second)."""
    taken = client.post(
        "/api/participants/verify-subscription", json={"user_id": 9, "account_id": 42}, headers=BOT
    )
    assert taken.status_code == 200


def register_together(app, user_ids) -> list:
    """Every user registers at the same instant, each through their own request."""
    barrier = threading.Barrier(len(user_ids))

    def one(user_id: int):
        client = app.test_client()
        barrier.wait()
        return register(client, user_id=user_id)

    with ThreadPoolExecutor(max_workers=len(user_ids)) as pool:
        return list(pool.map(one, user_ids))


def queue(app) -> list[PendingVerification]:
    with app.app_context():
        return list(db.session.scalars(select(PendingVerification)))


def statuses(app) -> dict[int, str]:
    with app.app_context():
        return dict(db.session.execute(select(Participant.user_id, Participant.status)).all())


def events(app, event_type: str) -> list[AuditEvent]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event_type == event_type)
                .order_by(AuditEvent.id)
            )
        )


def telegram_calls_by_user(peers) -> Counter:
    calls = Counter()
    for call in peers.mock.calls:
        if call.request.url.startswith(TELEGRAM_URL):
            calls[int(parse_qs(urlsplit(call.request.url).query)["user_id"][0])] += 1
    return calls


def enter_pending(app, user_ids, giveaway_id: int = 1) -> None:
    """Users entered pending verification, by the store's own write (captcha done first)."""
    complete_captcha(app, user_ids)
    with app.app_context():
        add_entries(app, giveaway_id, [])  # the giveaway's state row, as a registration makes it
        for user_id in user_ids:
            attempt = store().enter_pending(
                EntryRequest(
                    giveaway_id=giveaway_id,
                    user_id=user_id,
                    username=f"user{user_id}",
                    first_name=None,
                    last_name=None,
                    now=utcnow(),
                    channel_id=None,
                    fresh_status=None,
                    fresh_verified_at=None,
                    remembered_since=utcnow(),
                    actor="bot",
                    request_id=None,
                    account_id=42,
                )
            )
            assert attempt.participant_id is not None


def verifier_app(make_app, **overrides):
    """An instance of its own (its own pools, its own budget): a restart, or a second machine."""
    return make_app(TELEGRAM_CALLS_PER_SECOND="1000", **overrides)


# --- registrations over the budget --------------------------------------------------------------


def test_a_burst_over_the_budget_enters_everyone_pending_verification(make_app, peers):
    app = make_app(**BUSY)
    peers.standard()
    spend_the_budget(app.test_client())
    complete_captcha(app, USERS)
    enqueued = sample("pending_verifications_total", outcome="enqueued")

    responses = register_together(app, USERS)

    bodies = [response.get_json() for response in responses]
    assert [response.status_code for response in responses] == [201] * len(USERS)
    assert all(body["success"] and body["participant_id"] for body in bodies)
    assert all(body["subscription_pending"] is True for body in bodies)
    assert all("confirm your channel subscription" in body["message"] for body in bodies)
    assert peers.calls_to(TELEGRAM_URL) == 1  # only the verify-subscription that spent it
    assert statuses(app) == dict.fromkeys(USERS, "pending")
    rows = queue(app)
    assert sorted(row.user_id for row in rows) == USERS
    assert {row.participant_id for row in rows} == {body["participant_id"] for body in bodies}
    assert {(row.account_id, row.giveaway_id, row.failures) for row in rows} == {(42, 1, 0)}
    facts = [event.facts for event in events(app, "participation")]
    assert all(fact["subscription_pending"] is True for fact in facts) and len(facts) == 12
    assert sample("pending_verifications_total", outcome="enqueued") == enqueued + len(USERS)


def test_refuse_mode_still_answers_503_and_writes_nothing(make_app, peers):
    app = make_app(**BUSY, SUBSCRIPTION_OVERFLOW="refuse")
    peers.standard()
    spend_the_budget(app.test_client())
    complete_captcha(app, USERS)

    responses = register_together(app, USERS)

    assert [response.status_code for response in responses] == [503] * len(USERS)
    bodies = [response.get_json() for response in responses]
    assert {body["error_code"] for body in bodies} == {"SUBSCRIPTION_CHECK_UNAVAILABLE"}
    assert {body["details"]["reason"] for body in bodies} == {"over_budget"}
    assert all(1 <= body["retry_after"] <= 11 for body in bodies)  # the next slot: 1.1 / 0.1 s
    assert entries(app) == [] and queue(app) == []


def test_a_telegram_429_defers_too_and_the_bot_is_not_asked_again(make_app, peers):
    app = make_app()
    client = app.test_client()
    peers.standard()
    flood = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many",
        "parameters": {"retry_after": 30},
    }
    peers.telegram_answer = lambda _user: (429, flood)
    complete_captcha(app, USERS[:2])
    first = register(client, user_id=USERS[0]).get_json()
    second = register(client, user_id=USERS[1]).get_json()
    assert first["subscription_pending"] is True and second["subscription_pending"] is True
    assert peers.calls_to(TELEGRAM_URL) == 1  # the second met the flood wait, not Telegram
    assert statuses(app) == {USERS[0]: "pending", USERS[1]: "pending"}


def test_telegram_failing_is_not_deferred_it_stays_a_503(make_app, peers):
    app = make_app()
    peers.standard()
    peers.telegram_answer = lambda _user: (502, {"ok": False, "error_code": 502})
    complete_captcha(app, USERS[:1])
    response = register(app.test_client(), user_id=USERS[0])
    assert response.status_code == 503
    assert entries(app) == [] and queue(app) == []


def test_the_captcha_flow_is_unchanged_and_a_pending_entry_is_idempotent(make_app, peers):
    app = make_app(**BUSY)
    client = app.test_client()
    peers.standard()
    spend_the_budget(client)
    question = register(client).get_json()
    assert question["requires_captcha"] is True and question["subscription_pending"] is False

    right = current_answer(app)
    done = answer(client, right)
    body = done.get_json()
    assert done.status_code == 200
    assert body["captcha_completed"] is True and body["participant_id"]
    assert body["subscription_pending"] is True

    again = answer(client, right).get_json()  # the Bot retries
    assert again["participant_id"] == body["participant_id"] and again["already_registered"]
    assert again["subscription_pending"] is True
    repeated = register(client)
    assert repeated.status_code == 200
    assert repeated.get_json()["participant_id"] == body["participant_id"]
    assert repeated.get_json()["subscription_pending"] is True
    assert len(entries(app)) == 1 and len(queue(app)) == 1


def test_an_entry_in_good_standing_says_subscription_pending_false(app, client, peers):
    peers.standard()
    complete_captcha(app, USERS[:1])
    body = register(client, user_id=USERS[0]).get_json()
    assert body["subscription_pending"] is False and body["participant_id"]
    assert queue(app) == []


# --- the verifier -------------------------------------------------------------------------------


def test_the_verifier_settles_each_pending_entry_and_a_restart_loses_none(make_app, peers):
    first = make_app(**BUSY)
    peers.standard()
    spend_the_budget(first.test_client())
    complete_captcha(first, USERS[:3])
    register_together(first, USERS[:3])
    member, gone, unknown = USERS[:3]
    broken = {unknown}

    def telegram(user_id):  # a member, one who left, and one Telegram fails to answer about
        if user_id in broken:
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        status = "left" if user_id == gone else "member"
        return 200, {"ok": True, "result": {"status": status, "user": {"id": user_id}}}

    peers.telegram_answer = telegram

    second = verifier_app(make_app)  # the first instance is gone: everything is in the rows
    with second.app_context():
        run = pending.verify_pending(workers=2)
    assert run.outcomes == Counter(verified=1, excluded=1, unverifiable=1)

    assert statuses(second) == {member: "active", gone: "excluded", unknown: "pending"}
    with second.app_context():
        verified_at = db.session.scalar(
            select(Participant.subscription_verified_at).where(Participant.user_id == member)
        )
        remembered = db.session.scalar(
            select(Membership.user_id).where(Membership.user_id == member)
        )
    assert verified_at is not None and remembered == member
    [confirmed] = events(second, "subscription_verified")
    assert (confirmed.user_id, confirmed.actor, confirmed.facts["status"]) == (
        member,
        "verifier",
        "member",
    )
    assert confirmed.request_id == run.run_id
    [excluded] = events(second, "entry_excluded")
    assert (excluded.user_id, excluded.facts["status"]) == (gone, "left")
    # Still pending: retried later, with back-off; nothing was deleted.
    [row] = queue(second)
    assert (row.user_id, row.failures, row.last_error) == (unknown, 1, "http_502")
    waits = (row.next_attempt_at - utcnow()).total_seconds()
    assert pending.RETRY_BASE_SECONDS - 5 < waits <= pending.RETRY_BASE_SECONDS
    assert len(entries(second)) == 3

    with second.app_context():  # not due yet: a second run leaves it alone
        assert pending.verify_pending(workers=2).outcomes == Counter()
    broken.clear()
    with second.app_context():
        db.session.execute(update(PendingVerification).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert pending.verify_pending(workers=2).outcomes == Counter(verified=1)
    assert queue(second) == [] and statuses(second)[unknown] == "active"


def test_the_back_off_doubles_with_each_failure_up_to_its_cap(make_app, peers):
    app = verifier_app(make_app)
    peers.standard()
    peers.telegram_answer = lambda _user: (502, {"ok": False, "error_code": 502})
    enter_pending(app, USERS[:1])
    waits = []
    with app.app_context():
        for _ in range(9):
            db.session.execute(update(PendingVerification).values(next_attempt_at=utcnow()))
            db.session.commit()
            claim = pending.claim_next()
            assert pending.verify_claim(claim) == "unverifiable"
            row = db.session.get(PendingVerification, claim.participant_id, populate_existing=True)
            waits.append(round((row.next_attempt_at - utcnow()).total_seconds() / 30))
            db.session.commit()
    assert waits == [1, 2, 4, 8, 16, 32, 64, 120, 120]  # in 30 s: 30 s doubling, at most an hour


def test_without_a_spare_slot_an_entry_is_put_back_without_counting_a_failure(
    make_app, peers, monkeypatch
):
    monkeypatch.setattr(pending, "SLOT_PATIENCE_SECONDS", 0.2)
    app = make_app(TELEGRAM_CALLS_PER_SECOND="0.1")
    peers.standard()
    enter_pending(app, USERS[:1])
    spend_the_budget(app.test_client())  # a live caller holds the bot's slot for 11 s
    with app.app_context():
        run = pending.verify_pending(workers=1, max_seconds=1)
    assert run.outcomes == Counter(postponed=1)
    assert peers.calls_to(TELEGRAM_URL) == 1  # the verifier took no slot and asked nothing
    [row] = queue(app)
    assert row.failures == 0 and row.last_error is None
    # It comes back when the bot's next slot frees (the live caller's holds it for 11 s).
    assert 8 <= (row.next_attempt_at - utcnow()).total_seconds() <= 11
    assert statuses(app) == {USERS[0]: "pending"}


def test_a_verdict_is_recorded_only_by_the_claim_that_still_holds_the_row(make_app, peers):
    app = verifier_app(make_app)
    peers.standard()
    enter_pending(app, USERS[:1])
    with app.app_context():
        stalled = pending.claim_next()
        assert pending.claim_next() is None  # leased: no one else takes it
        db.session.execute(update(PendingVerification).values(next_attempt_at=utcnow()))
        db.session.commit()  # the lease ran out: another verifier takes the row
        current = pending.claim_next()
        assert current.claims == stalled.claims + 1
        assert pending.verify_claim(stalled) == "stale"
        assert statuses(app) == {USERS[0]: "pending"}
        assert pending.verify_claim(current) == "verified"
    assert len(events(app, "subscription_verified")) == 1


@pytest.mark.postgres
def test_two_verifiers_in_parallel_never_verify_the_same_entry_twice(make_app, peers):
    users = [7_100_000_000 + i for i in range(60)]
    one, two = verifier_app(make_app), verifier_app(make_app)
    peers.standard()
    enter_pending(one, users)
    barrier = threading.Barrier(2)

    def run(app):
        with app.app_context():
            barrier.wait()
            return pending.verify_pending(workers=4)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(run, (one, two)))

    assert sum((run.outcomes for run in runs), Counter()) == Counter(verified=len(users))
    assert all(run.outcomes["verified"] > 0 for run in runs)  # both took part
    assert telegram_calls_by_user(peers) == Counter(dict.fromkeys(users, 1))
    assert Counter(event.user_id for event in events(one, "subscription_verified")) == Counter(
        dict.fromkeys(users, 1)
    )
    assert queue(one) == [] and set(statuses(one).values()) == {"active"}


def test_the_verifier_takes_only_slots_nobody_reserved(app):
    clock_now = [1000.0]

    def clock():
        return clock_now[0]

    def sleep(seconds):
        clock_now[0] += seconds

    budget = TelegramBudget(10, LocalPacer(clock=clock), sleep=sleep)
    context = app.app_context()  # the budget looks for Redis in the application: none here
    context.push()
    refusals = sample("telegram_budget_refusals_total", reason="over_budget")
    live = [budget.local.reserve("1", rate=10, max_wait=2.0) for _ in range(5)]  # ahead of now
    assert all(slot.verdict is Verdict.GRANTED for slot in live)
    too_soon = budget.acquire_spare("1", max_wait=0.3)
    assert too_soon.verdict is Verdict.BUSY
    # Nothing was reserved by the refusal: the next live caller still gets the next slot.
    assert budget.local.reserve("1", rate=10, max_wait=2.0).at_us == live[-1].at_us + 100_000
    spare = budget.acquire_spare("1", max_wait=2.0)
    assert spare.verdict is Verdict.GRANTED
    assert spare.at_us >= live[-1].at_us + 200_000  # after every reserved slot
    assert sample("telegram_budget_refusals_total", reason="over_budget") == refusals
    budget.local.penalize("1", flood_wait=30)
    assert budget.acquire_spare("1", max_wait=5).verdict is Verdict.CLOSED  # at once
    context.pop()


def test_the_command_drains_the_queue_and_says_what_it_did(make_app, peers):
    app = verifier_app(make_app)
    peers.standard()
    enter_pending(app, USERS[:3])
    peers.members[USERS[2]] = "kicked"
    result = app.test_cli_runner().invoke(args=["verify-pending", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "excluded 1, verified 2" in result.output
    assert "still pending 0" in result.output
    again = app.test_cli_runner().invoke(args=["verify-pending"])
    assert "nothing to verify" in again.output


def test_the_cron_configuration_runs_the_command_and_exits():
    with open("railway.verify-pending.json") as file:
        deploy = json.load(file)["deploy"]
    assert deploy["startCommand"].startswith("flask verify-pending")
    assert "--loop" not in deploy["startCommand"]
    assert deploy["cronSchedule"] and deploy["restartPolicyType"] == "NEVER"


# --- visible everywhere ---------------------------------------------------------------------------


@pytest.fixture
def mixed(make_app, peers):
    """Giveaway 1: two active entries, two pending, one excluded by the verifier."""
    app = verifier_app(make_app)
    peers.standard()
    add_entries(app, 1, USERS[:2])
    enter_pending(app, USERS[2:5])
    peers.members[USERS[4]] = "left"
    with app.app_context():  # only USERS[4] is due: the other two wait for a later attempt
        db.session.execute(
            update(PendingVerification)
            .where(PendingVerification.user_id.in_(USERS[2:4]))
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
        db.session.commit()
        assert pending.verify_pending(workers=1).outcomes == Counter(excluded=1)
    assert statuses(app) == {
        USERS[0]: "active",
        USERS[1]: "active",
        USERS[2]: "pending",
        USERS[3]: "pending",
        USERS[4]: "excluded",
    }
    return app


def test_lists_show_each_entrys_status(mixed):
    client = mixed.test_client()
    body = json.loads(client.get("/api/participants/1?limit=100", headers=GIVEAWAY).get_data())
    assert {p["user_id"]: p["status"] for p in body["participants"]} == statuses(mixed)
    assert body["total"] == 5
    dashboard = json.loads(client.get("/api/participants/list/1", headers=DASHBOARD).get_data())
    assert dashboard["stats"]["subscription_pending"] == 2
    assert dashboard["stats"]["excluded"] == 1
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get("/api/participants/export/1", headers=DASHBOARD).get_data(as_text=True)
            )
        )
    )
    assert {int(row["user_id"]): row["status"] for row in rows} == statuses(mixed)
    history = client.get(f"/api/participants/history/{USERS[2]}", headers=BOT).get_json()
    assert history["participations"][0]["status"] == "pending"


def test_counts_and_stats_show_pending_and_excluded_entries(mixed):
    client = mixed.test_client()
    count = client.get("/api/participants/1/count", headers=GIVEAWAY).get_json()
    assert (count["total_participants"], count["count"]) == (5, 5)
    assert (count["subscription_pending"], count["excluded"]) == (2, 1)
    stats = client.get("/api/participants/1/stats", headers=GIVEAWAY).get_json()["stats"]
    assert stats["total_participants"] == 5
    assert stats["active_participants"] == 4  # pending entries may still win; excluded may not
    assert (stats["subscription_pending"], stats["excluded"], stats["unsubscribed"]) == (2, 1, 0)
    summary = mixed.test_cli_runner().invoke(args=["giveaway-summary", "1", "--json"])
    data = json.loads(summary.output)
    assert (data["subscription_pending"], data["excluded"]) == (2, 1)


def test_metrics_show_the_queue_not_draining(mixed):
    response = mixed.test_client().get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert sample("pending_verification_queue") == 2
    assert sample("pending_verification_queue_due") == 0  # both wait for their next attempt
    assert sample("pending_verification_oldest_seconds") > 0
    assert "telegive_participant_pending_verification_queue 2.0" in response.get_data(as_text=True)


# --- for the draw ---------------------------------------------------------------------------------


def test_the_draw_can_ask_which_candidates_are_pending_or_excluded(mixed):
    with mixed.app_context():
        found = pending.candidate_statuses(1, [USERS[0], USERS[2], USERS[4], 1])
    assert found == {USERS[2]: "pending", USERS[4]: "excluded"}


def test_the_draw_settles_pending_candidates_in_its_own_transaction(mixed):
    now = utcnow()
    with mixed.app_context(), db.session.begin():
        pending.settle_at_draw(
            db.session,
            giveaway_id=1,
            subscribed={USERS[2]: "administrator", USERS[0]: "member"},
            not_subscribed={USERS[3]: "left"},
            verified_at=now,
        )
    assert statuses(mixed) == {
        USERS[0]: "active",
        USERS[1]: "active",
        USERS[2]: "active",
        USERS[3]: "excluded",
        USERS[4]: "excluded",
    }
    assert queue(mixed) == []
    by_draw = [
        (event.event_type, event.user_id, event.facts["status"])
        for event in events(mixed, "subscription_verified") + events(mixed, "entry_excluded")
        if event.facts["by"] == "draw"
    ]
    assert sorted(by_draw) == [
        ("entry_excluded", USERS[3], "left"),
        ("subscription_verified", USERS[2], "administrator"),
    ]


@pytest.mark.postgres
def test_the_queue_and_the_draws_questions_are_index_scans(mixed):
    captured = []
    with mixed.app_context():

        def capture(_conn, _cursor, statement, parameters, _context, _executemany):
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                captured.append((statement, parameters))

        db.session.execute(update(PendingVerification).values(next_attempt_at=utcnow()))
        db.session.commit()
        engines = [db.engine, mixed.extensions["telegive.store"].autocommit]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", capture)
        try:
            pending.candidate_statuses(1, USERS)
            claim = pending.claim_next()
            pending.verify_claim(claim)
            pending.seconds_until_due()
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", capture)
        captured.append(
            (
                postgres._ENTER_PENDING.sql,
                {**dict.fromkeys(postgres._ENTER_PENDING.types), "giveaway_id": 1, "user_id": 10},
            )
        )
        offenders = full_scan_offenders(db.session.connection(), captured)
        db.session.rollback()
    assert len(captured) >= 6
    assert offenders == {}
    with mixed.app_context():
        assert db.session.scalar(select(func.count()).select_from(PendingVerification)) == 1
