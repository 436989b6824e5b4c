"""Several instances at once: two gunicorn processes (two workers each) on loopback, sharing one
PostgreSQL and one Redis, with the development stand-in as the siblings and Telegram."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from tests.conftest import BOT, GIVEAWAY, test_env, wipe
from tests.factories import add_entries
from tests.servers import STANDIN_SECRET, gunicorn, standin
from utils.captcha import solve_question

pytestmark = pytest.mark.postgres
USER = 8_000_000_001  # ends in 1: the stand-in says "member"


@pytest.fixture
def instances(database_url, redis_url, tmp_path):
    """Two instances of the service, and a function spreading calls over both."""
    with standin(tmp_path) as siblings:
        env = test_env(
            database_url,
            APP_ENV="test",
            TELEGIVE_GIVEAWAY_URL=siblings,
            TELEGIVE_CHANNEL_URL=siblings,
            TELEGIVE_AUTH_URL=siblings,
            TELEGRAM_API_BASE=siblings,
            DRAND_URLS=siblings,  # the stand-in serves test_env's drand chain
            SERVICE_TO_SERVICE_SECRET=STANDIN_SECRET,
            LOG_LEVEL="WARNING",
            WEB_CONCURRENCY="2",
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        with gunicorn(env, tmp_path, "a") as first, gunicorn(env, tmp_path, "b") as second:
            yield [first, second]
    wipe(database_url)
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()


def spread(bases, count, method, path, **kwargs):
    """``count`` simultaneous calls, alternating between the instances."""

    def one(index):
        return requests.request(method, bases[index % len(bases)] + path, timeout=30, **kwargs)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def count_rows(database_url, sql):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar()
    engine.dispose()
    return value


def test_parallel_registrations_of_one_user_leave_one_entry(instances, database_url):
    first = requests.post(
        f"{instances[0]}/api/participants/register",
        json={"giveaway_id": 1, "user_id": USER},
        headers=BOT,
        timeout=10,
    ).json()
    requests.post(
        f"{instances[1]}/api/participants/validate-captcha",
        json={
            "giveaway_id": 2,
            "user_id": USER,
            "answer": solve_question(first["captcha_question"]),
        },
        headers=BOT,
        timeout=10,
    )
    answers = spread(
        instances,
        40,
        "POST",
        "/api/participants/register",
        json={"giveaway_id": 1, "user_id": USER},
        headers=BOT,
    )
    bodies = [answer.json() for answer in answers]
    assert all(body["success"] for body in bodies), bodies
    assert len({body["participant_id"] for body in bodies}) == 1
    assert sum(not body["already_registered"] for body in bodies) == 1
    assert (
        count_rows(
            database_url,
            f"SELECT count(*) FROM participant_entries WHERE user_id = {USER} AND giveaway_id = 1",
        )
        == 1
    )


def test_parallel_draws_leave_one_draw(instances, database_url, make_app):
    add_entries(make_app(), 1, [USER + i for i in range(0, 200, 2)])
    answers = spread(
        instances,
        20,
        "POST",
        "/api/participants/1/select-winners",
        json={"winner_count": 5},
        headers=GIVEAWAY,
    )
    bodies = [answer.json() for answer in answers]
    assert all(answer.status_code == 200 for answer in answers), bodies
    assert len({body["draw"]["record_hash"] for body in bodies}) == 1
    assert len({tuple(w["user_id"] for w in body["winners"]) for body in bodies}) == 1
    assert count_rows(database_url, "SELECT count(*) FROM participant_draws") == 1
    assert count_rows(database_url, "SELECT count(*) FROM participant_entries WHERE is_winner") == 5


def test_parallel_answers_count_exactly_and_the_lockout_holds_everywhere(instances):
    requests.post(
        f"{instances[0]}/api/participants/register",
        json={"giveaway_id": 1, "user_id": USER},
        headers=BOT,
        timeout=10,
    )

    def wrong(index):
        base = instances[index % 2]
        return requests.post(
            f"{base}/api/participants/validate-captcha",
            json={"giveaway_id": 1, "user_id": USER, "answer": -(index + 1)},  # never right
            headers=BOT,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(wrong, range(30)))
    statuses = Counter(answer.status_code for answer in answers)
    outcomes = Counter(
        "new_question"
        if answer.json().get("new_question")
        else answer.json().get("error_code", "wrong")
        for answer in answers
    )
    # 3 attempts x 3 questions: exactly 9 answers counted, whichever instance took them.
    assert statuses == {200: 8, 429: 22}
    assert outcomes == {"wrong": 6, "new_question": 2, "CAPTCHA_LOCKED": 22}
    for base in instances:
        again = requests.post(
            f"{base}/api/participants/register",
            json={"giveaway_id": 1, "user_id": USER},
            headers=BOT,
            timeout=10,
        )
        assert again.status_code == 429
        assert again.json()["retry_after"] > 3500


def test_health_stays_fast_while_a_sibling_hangs(database_url, tmp_path):
    """A Giveaway service that accepts connections and never answers: registrations fail with 503
    within the timeout, and /health keeps answering quickly all along."""
    import socket
    import threading

    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(512)
    held = []
    stop = threading.Event()

    def accept_and_hold():
        hanging.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hanging.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept_and_hold, daemon=True)
    acceptor.start()
    url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    env = test_env(
        database_url,
        TELEGIVE_GIVEAWAY_URL=url,
        UPSTREAM_TIMEOUT_SECONDS="2",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="2",
    )
    try:
        with gunicorn(env, tmp_path) as base, ThreadPoolExecutor(max_workers=64) as pool:
            pending = [
                pool.submit(
                    requests.post,
                    f"{base}/api/participants/register",
                    json={"giveaway_id": 1, "user_id": u},
                    headers=BOT,
                    timeout=30,
                )
                for u in range(1, 61)
            ]
            time.sleep(0.3)  # the registrations are now waiting on the hanging sibling
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                assert requests.get(f"{base}/health", timeout=5).ok
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
            answers = [future.result() for future in pending]
    finally:
        stop.set()
        acceptor.join()
        for connection in held:
            connection.close()
        hanging.close()
    assert {answer.status_code for answer in answers} == {503}
    # Each answer came within the configured timeout (2 s read + 1 s connect), most much sooner:
    # once a worker has seen the sibling fail five times its circuit opens and calls fail at once.
    assert max(answer.elapsed.total_seconds() for answer in answers) < 3.5
    assert max(latencies) < 0.1, latencies
    for table in (
        "participant_entries",
        "participant_captcha_challenges",
        "participant_audit_events",
        "participant_users",
    ):
        assert count_rows(database_url, f"SELECT count(*) FROM {table}") == 0, table
