"""The ceiling of this stack: the least a registration endpoint can do on Flask + gunicorn + psycopg2.

Two endpoints, run under exactly the gunicorn settings of the service (``gunicorn.conf.py``, the
same worker class, workers, threads and connections) so the service's throughput can be stated as
a ratio to it, measured in the same run on the same machine:

- ``POST /register``: read the JSON body, one ``INSERT ... ON CONFLICT DO NOTHING`` with psycopg2,
  commit, answer 201 (new) or 200 (already there);
- ``POST /register-checked``: first one outgoing HTTP call (requests, pooled session) to the
  Telegram stand-in's ``getChatMember``, then the same INSERT.

Per worker it keeps at most ``CEILING_POOL_SIZE`` connections (as the service's pool for single
statements, ``DB_POOL_SIZE`` = 20 by default), handed out by a blocking queue, so it never holds more
connections than the service may. Under gevent, gunicorn.conf.py's post_fork hook makes psycopg2
cooperative (psycogreen) exactly as for the service.

Run by ``bench/run.py``: ``gunicorn -c gunicorn.conf.py bench.ceiling_app:app`` from the repository
root, with ``DATABASE_URL`` and ``CEILING_TELEGRAM_URL`` set.
"""

from __future__ import annotations

import os
import queue
import threading
from contextlib import contextmanager

import psycopg2
import requests
from flask import Flask, jsonify, request
from requests.adapters import HTTPAdapter

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/participant_bench"
)
TELEGRAM_URL = os.environ.get("CEILING_TELEGRAM_URL", "http://127.0.0.1:18001")
POOL_SIZE = int(os.environ.get("CEILING_POOL_SIZE", "20"))
BOT_TOKEN = "42000:DEV-STANDIN-not-a-real-token-0000"
CHAT_ID = -1000000000042
MEMBER = frozenset({"creator", "administrator", "member"})

INSERT = (
    "INSERT INTO bench_ceiling_entries (giveaway_id, user_id, username, first_name, last_name) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (giveaway_id, user_id) DO NOTHING RETURNING id"
)

app = Flask(__name__)


class _Pool:
    """At most ``size`` connections per process, opened lazily, blocking when all are in use."""

    def __init__(self, size: int) -> None:
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self._opened = 0
        self._size = size

    @contextmanager
    def connection(self):
        conn = None
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                may_open = self._opened < self._size
                if may_open:
                    self._opened += 1
            if may_open:
                try:
                    conn = psycopg2.connect(DATABASE_URL, application_name="bench-ceiling")
                except Exception:
                    with self._lock:
                        self._opened -= 1
                    raise
            else:
                conn = self._idle.get(timeout=5)
        try:
            yield conn
        except Exception:
            conn.rollback()
            raise
        finally:
            self._idle.put(conn)


_pools: dict[int, _Pool] = {}
_sessions: dict[int, requests.Session] = {}


def _pool() -> _Pool:
    pid = os.getpid()  # workers fork after import: one pool per worker process
    if pid not in _pools:
        _pools.clear()
        _pools[pid] = _Pool(POOL_SIZE)
    return _pools[pid]


def _session() -> requests.Session:
    pid = os.getpid()
    if pid not in _sessions:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=128, max_retries=0))
        _sessions.clear()
        _sessions[pid] = session
    return _sessions[pid]


def _insert(body: dict):
    with _pool().connection() as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                INSERT,
                (
                    int(body["giveaway_id"]),
                    int(body["user_id"]),
                    body.get("username"),
                    body.get("first_name"),
                    body.get("last_name"),
                ),
            )
            row = cursor.fetchone()
        conn.commit()
    if row is None:
        return jsonify(success=True, already_registered=True), 200
    return jsonify(success=True, participant_id=row[0], already_registered=False), 201


@app.post("/register")
def register():
    return _insert(request.get_json())


@app.post("/register-checked")
def register_checked():
    body = request.get_json()
    answer = (
        _session()
        .get(
            f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember",
            params={"chat_id": CHAT_ID, "user_id": int(body["user_id"])},
            headers={"X-Service-Name": "bench-ceiling"},
            timeout=(1.0, 3.0),
        )
        .json()
    )
    if answer.get("result", {}).get("status") not in MEMBER:
        return jsonify(success=False, error_code="USER_NOT_SUBSCRIBED"), 403
    return _insert(body)


@app.after_request
def echo_request_id(response):
    # The service echoes X-Request-ID too; the wrk script reads it to know which user got a 201.
    response.headers["X-Request-ID"] = request.headers.get("X-Request-ID", "")
    return response


@app.get("/health")
def health():
    return jsonify(success=True, status="healthy")
