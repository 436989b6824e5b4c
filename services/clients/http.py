"""The one way this service makes an outgoing HTTP call.

Every call has an explicit (connect, read) timeout, sends ``X-Service-Name`` and the request id,
and turns every transport failure, 5xx and unreadable body into ``UpstreamUnavailable``. Callers
interpret the remaining statuses themselves and read a body with ``read_body`` (one pydantic model
per answer; a body that does not fit is unavailable too). Each call names the resource it is about
(a giveaway id, an account, a bot) and goes through that peer's circuits (utils/circuit.py): a
resource that keeps failing is not asked about for a while, and neither is a peer that refuses
connections or leaves several resources unanswered, so a dead sibling cannot hold every worker
for its full timeout while one failing id cannot shut a peer off for everyone else. 4xx answers
("not found" included) never count as failures.
Outgoing calls must never be made while a database transaction is open: services call these
between their transactions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Hashable
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
from urllib3.exceptions import NewConnectionError

from config import Settings
from services.errors import UpstreamUnavailable
from utils.circuit import Outcome, PeerCircuits, Refusal
from utils.metrics import OUTGOING_LATENCY, OUTGOING_REQUESTS
from utils.request_context import current_request_id

SERVICE_NAME = "telegive-participant"
PEERS = ("giveaway", "channel", "auth", "telegram", "drand")  # drand: services/beacon.py
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
    """The circuits of each peer (its own and its resources') for this application."""
    # Hand-written (utils/circuit.py): pybreaker holds its lock for the whole wrapped call, which
    # would let one process make only one call to a peer at a time.
    app.extensions["telegive.breakers"] = {
        peer: PeerCircuits(settings.circuit_failures, settings.circuit_cooldown) for peer in PEERS
    }


def _circuits(peer: str) -> PeerCircuits:
    return current_app.extensions["telegive.breakers"][peer]


def _transport_outcome(error: requests.RequestException) -> Outcome:
    """Whether a failed call never reached the peer (no connection) or went unanswered."""
    if isinstance(error, requests.ConnectTimeout):
        return Outcome.UNREACHABLE
    cause = error.args[0] if error.args else None  # urllib3's MaxRetryError, for connections
    if isinstance(getattr(cause, "reason", None), NewConnectionError):  # refused, unknown host
        return Outcome.UNREACHABLE
    return Outcome.NO_ANSWER


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
    resource: Hashable,
    url: str,
    timeout: tuple[float, float],
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    log_path: str | None = None,
) -> PeerResponse:
    """GET a JSON object from a peer; raise UpstreamUnavailable when no usable answer comes back.

    ``resource`` names what the call is about, for the circuits (never a secret: it may be
    logged). ``log_path`` replaces the URL in log lines (the Telegram URL carries the bot token).
    """
    sent_headers = {"X-Service-Name": SERVICE_NAME, "Accept": "application/json"}
    request_id = current_request_id()
    if request_id:
        sent_headers["X-Request-ID"] = request_id
    if headers:
        sent_headers.update(headers)
    shown = log_path or url
    call = _circuits(peer).admit(resource)
    if isinstance(call, Refusal):
        OUTGOING_REQUESTS.labels(peer, "circuit_open").inc()
        raise UpstreamUnavailable(peer, "circuit_open", retry_after=call.wait)
    started = time.perf_counter()
    outcome = "error"
    verdict: Outcome | None = None  # stays None only when something unexpected was raised
    try:
        try:
            # Straight to the pooled adapter: none of the session's cookie, auth, hook, redirect
            # and environment merging, which cost more CPU than the call itself.
            prepared = _prepared_get(url, params, sent_headers)
            response = _session().get_adapter(url).send(prepared, timeout=timeout)
            content = response.content  # read here: a body cut short is a transport failure
        except requests.Timeout as error:
            outcome, verdict = "timeout", _transport_outcome(error)
            raise UpstreamUnavailable(peer, "timeout") from None
        except requests.RequestException as error:
            outcome, verdict = "connection_error", _transport_outcome(error)
            raise UpstreamUnavailable(peer, "connection_error") from None
        if response.status_code >= 500:
            outcome, verdict = f"http_{response.status_code}", Outcome.BAD_ANSWER
            raise UpstreamUnavailable(peer, f"http_{response.status_code}")
        try:
            body = json.loads(content)  # JSON is UTF-8: no encoding detection needed
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            body = None
        if not isinstance(body, dict):
            # Unusable either way; but a 4xx is about what was asked, never a failure of the peer.
            client_error = 400 <= response.status_code < 500
            outcome = "malformed_body"
            verdict = Outcome.ANSWERED if client_error else Outcome.BAD_ANSWER
            raise UpstreamUnavailable(peer, "malformed_body")
        outcome, verdict = f"http_{response.status_code}", Outcome.ANSWERED
        return PeerResponse(status=response.status_code, body=body)
    finally:
        if verdict is None:
            call.close()  # the circuits learn nothing, and a trial call is given back
        else:
            for circuit in call.finish(verdict):
                about = {"resource": str(resource)} if circuit == "resource" else {}
                log.warning("circuit opened", extra={"peer": peer, "circuit": circuit, **about})
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
