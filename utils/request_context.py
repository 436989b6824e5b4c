"""The id of the request being served, visible to logging and outgoing calls.

A ContextVar rather than ``flask.g`` so that services and clients can read it without importing
Flask; it is per thread under threaded workers and per greenlet under gevent.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_caller: ContextVar[str | None] = ContextVar("caller", default=None)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def accept_request_id(candidate: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one."""
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def set_request_context(request_id: str | None, caller: str | None = None) -> None:
    """Bind the request id (and caller name) for the current thread or greenlet."""
    _request_id.set(request_id)
    _caller.set(caller)


def set_caller(caller: str | None) -> None:
    """Record who is calling, once authentication has decided it."""
    _caller.set(caller)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def current_caller() -> str | None:
    """The name of the calling service, if known."""
    return _caller.get()
