"""Streamed lists, exports and entrant lists hold no database connection while the client reads,
and a failure before the first chunk is an error answer, not a 200 with a cut body."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.exc import OperationalError

from services.store import store
from tests.conftest import BOT, DASHBOARD, GIVEAWAY
from tests.factories import add_entries

STREAMS = [  # (path, headers, pieces sent before the first rows)
    ("/api/participants/1?page=1&limit=1000000", GIVEAWAY, 1),
    ("/api/participants/export/1", DASHBOARD, 1),
    ("/api/participants/1/draw/entrants", GIVEAWAY, 0),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("path", "headers", "head"), STREAMS)
def test_clients_that_stop_reading_do_not_keep_a_new_user_out(make_app, peers, path, headers, head):
    # One connection in each pool, and five clients that read the first bytes and then stall.
    app = make_app(DB_POOL_SIZE="1")
    peers.standard(1)
    add_entries(app, 1, range(3_000_000_001, 3_000_020_001))
    stalled = []
    for _ in range(5):
        response = app.test_client().get(path, headers=headers, buffered=False)
        assert response.status_code == 200
        stream = iter(response.response)
        for _ in range(head + 1):  # past the head: rows have been read
            next(stream)
        stalled.append((response, stream))
    started = time.perf_counter()
    with ThreadPoolExecutor(1) as other:  # another worker thread, as a server would use
        answer = other.submit(
            app.test_client().post,  # a new user: their captcha question is written down
            "/api/participants/register",
            json={"giveaway_id": 1, "user_id": 555},
            headers=BOT,
        ).result()
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["requires_captcha"] is True
    assert time.perf_counter() - started < 2  # no wait for a connection a stalled reader holds
    for response, _stream in reversed(stalled):  # contexts pushed by streams pop in reverse
        response.close()


@pytest.mark.parametrize(("path", "headers", "_head"), STREAMS)
def test_a_database_failure_before_the_first_chunk_is_a_503_not_a_cut_200(
    app, client, monkeypatch, path, headers, _head
):
    add_entries(app, 1, range(3_000_000_001, 3_000_000_101))
    chosen = app.extensions["telegive.store"]

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, ConnectionError("the pool timed out"))
        yield  # a generator, as the store's streams are

    for name in ("page_json", "export_csv", "entrant_chunks"):
        monkeypatch.setattr(chosen, name, unreachable)
    with app.app_context():
        assert store() is chosen
    response = client.get(path, headers=headers)
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "DATABASE_UNAVAILABLE"
