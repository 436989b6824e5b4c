"""The one way this service makes an outgoing HTTP call.

Every call has an explicit (connect, read) timeout, sends ``X-Service-Name`` and the request id,
and turns every transport failure, 5xx and unreadable body into ``UpstreamUnavailable``. Callers
interpret the remaining statuses themselves and read a body with ``read_body`` (one pydantic model
per answer; a body that does not fit is unavailable too). A peer that keeps failing is not called
for a while (a circuit breaker per peer), so a dead sibling cannot hold every worker for its full
timeout.
Outgoing calls must never be made while a database transaction is open: services call these
between their transactions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import requests
from flask import Flask, current_app
from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from config import Settings
from services.errors import UpstreamUnavailable
from utils.circuit import CircuitBreaker
from utils.metrics import OUTGOING_LATENCY, OUTGOING_REQUESTS
from utils.request_context import current_request_id

SERVICE_NAME = "telegive-participant"
PEERS = ("giveaway", "channel", "auth", "telegram")
log = logging.getLogger("telegive.outgoing")
Body = TypeVar("Body", bound=BaseModel)

_sessions: dict[int, requests.Session] = {}
_sessions_lock = threading.Lock()


def _session() -> requests.Session:
    """One pooled session per process (workers fork after import, so key it by pid)."""
    pid = os.getpid()
    session = _sessions.get(pid)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(pid)
            if session is None:
                session = requests.Session()
                session.trust_env = False  # no proxy or netrc lookup in the environment per call
                adapter = HTTPAdapter(pool_connections=8, pool_maxsize=128, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                _sessions.clear()
                _sessions[pid] = session
    return session


def init_app(app: Flask, settings: Settings) -> None:
    """One circuit breaker per peer for this application."""
    # Hand-written (utils/circuit.py): pybreaker holds its lock for the whole wrapped call, which
    # would let one process make only one call to a peer at a time.
    app.extensions["telegive.breakers"] = {
        peer: CircuitBreaker(settings.circuit_failures, settings.circuit_cooldown) for peer in PEERS
    }


def _breaker(peer: str) -> CircuitBreaker:
    return current_app.extensions["telegive.breakers"][peer]


def _prepared_get(
    url: str, params: dict[str, Any] | None, headers: dict[str, str]
) -> requests.PreparedRequest:
    """The GET that ``requests.Request(...).prepare()`` would build, without its generality
    (cookies, auth, bodies, IDNA hosts: none apply to our calls), which cost a tenth of a fresh
    registration's CPU (py-spy, in process). The URL is still quoted as requests quotes it."""
    request = requests.PreparedRequest()
    request.method = "GET"
    request.url = requote_uri(f"{url}?{urlencode(params)}" if params else url)
    request.headers = CaseInsensitiveDict(headers)
    request.body = None
    request.hooks = default_hooks()
    return request


@dataclass(frozen=True)
class PeerResponse:
    """A peer's answer that was readable: its status and JSON object body."""

    status: int
    body: dict[str, Any]


def get_json(
    *,
    peer: str,
    url: str,
    timeout: tuple[float, float],
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    log_path: str | None = None,
) -> PeerResponse:
    """GET a JSON object from a peer; raise UpstreamUnavailable when no usable answer comes back.

    ``log_path`` replaces the URL in log lines (the Telegram URL carries the bot token).
    """
    sent_headers = {"X-Service-Name": SERVICE_NAME, "Accept": "application/json"}
    request_id = current_request_id()
    if request_id:
        sent_headers["X-Request-ID"] = request_id
    if headers:
        sent_headers.update(headers)
    shown = log_path or url
    breaker = _breaker(peer)
    wait = breaker.wait_time()
    if wait is not None:
        OUTGOING_REQUESTS.labels(peer, "circuit_open").inc()
        raise UpstreamUnavailable(peer, "circuit_open", retry_after=wait)
    started = time.perf_counter()
    outcome = "error"
    try:
        try:
            # Straight to the pooled adapter: none of the session's cookie, auth, hook, redirect
            # and environment merging, which cost more CPU than the call itself.
            prepared = _prepared_get(url, params, sent_headers)
            response = _session().get_adapter(url).send(prepared, timeout=timeout)
        except requests.Timeout:
            outcome = "timeout"
            raise UpstreamUnavailable(peer, "timeout") from None
        except requests.RequestException:
            outcome = "connection_error"
            raise UpstreamUnavailable(peer, "connection_error") from None
        if response.status_code >= 500:
            outcome = f"http_{response.status_code}"
            raise UpstreamUnavailable(peer, f"http_{response.status_code}")
        try:
            body = json.loads(response.content)  # JSON is UTF-8: no encoding detection needed
        except ValueError:
            outcome = "malformed_body"
            raise UpstreamUnavailable(peer, "malformed_body") from None
        if not isinstance(body, dict):
            outcome = "malformed_body"
            raise UpstreamUnavailable(peer, "malformed_body")
        outcome = f"http_{response.status_code}"
        breaker.succeeded()
        return PeerResponse(status=response.status_code, body=body)
    except UpstreamUnavailable:
        breaker.failed()
        raise
    finally:
        elapsed = time.perf_counter() - started
        OUTGOING_REQUESTS.labels(peer, outcome).inc()
        OUTGOING_LATENCY.labels(peer).observe(elapsed)
        log.info(
            "outgoing call",
            extra={
                "peer": peer,
                "path": shown,
                "outcome": outcome,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")  # JSON true would otherwise read as 1
    return value


Int64 = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=-(2**63), lt=2**63)]
"""An integer a BIGINT column can hold, as a peer's JSON carries it (ids, Telegram chat ids)."""


def read_body(model: type[Body], answer: PeerResponse, *, peer: str) -> Body:
    """The answer's body read as ``model``; a body that does not fit raises UpstreamUnavailable."""
    try:
        return model.model_validate(answer.body)
    except ValidationError:
        raise UpstreamUnavailable(peer, "malformed_body") from None
