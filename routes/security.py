"""Incoming service authentication (contract §5): per-caller tokens with scopes.

A token arrives as ``X-Service-Token`` or ``Authorization: Bearer``; it is compared in constant
time with every configured token. With ``REQUIRE_SERVICE_AUTH=false`` a request without a token is
let through (the deployed siblings send none yet) and named by its ``X-Service-Name``. A valid
token still only grants its caller's scopes, and a wrong ``X-Service-Token`` (our own header) is
always refused. A bearer token we do not know is refused only while enforcement is on: during the
roll-out the Dashboard's bearer may still be its users' session token, not one of ours.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from config import SCOPES_BY_CALLER, SERVICE_NAMES, current_settings
from services.errors import AuthenticationRequired, InvalidToken, ScopeForbidden
from utils.request_context import set_caller

# The OpenAPI security requirement of every scoped operation: either header works.
SERVICE_AUTH = ["ServiceToken", "BearerToken"]
SECURITY_SCHEMES = {
    "ServiceToken": {"type": "apiKey", "in": "header", "name": "X-Service-Token"},
    "BearerToken": {"type": "http", "scheme": "bearer"},
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """Who is calling, as far as the request proves it."""

    name: str | None
    scopes: frozenset[str]
    authenticated: bool


def _presented_token() -> tuple[str, str] | None:
    """The token sent and the header it came in ("service" or "bearer")."""
    token = request.headers.get("X-Service-Token")
    if token:
        return token.strip(), "service"
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "bearer"
    return None


def _match(token: str) -> str | None:
    presented = token.encode()
    matched = None
    # Compare with every token, always, so timing reveals neither match nor position.
    for caller, expected in current_settings().service_tokens.items():
        if hmac.compare_digest(presented, expected.encode()):
            matched = caller
    return matched


def identify_caller() -> Caller:
    """The caller of the current request; raises InvalidToken for a token nobody holds."""
    sent = _presented_token()
    if sent is not None:
        token, header = sent
        matched = _match(token)
        if matched is not None:
            return Caller(name=matched, scopes=SCOPES_BY_CALLER[matched], authenticated=True)
        if header == "service" or current_settings().require_service_auth:
            raise InvalidToken()
    service_name = request.headers.get("X-Service-Name", "")
    name = SERVICE_NAMES.get(service_name) or (_SAFE_NAME.sub("", service_name)[:64] or None)
    return Caller(name=name, scopes=frozenset(), authenticated=False)


def authorize(scope: str, *, required: bool | None = None) -> Caller:
    """The caller, if it may act with ``scope``; raises 401/403 otherwise.

    ``required`` overrides REQUIRE_SERVICE_AUTH (the metrics endpoint has its own switch).
    """
    caller = identify_caller()
    g.caller = caller
    set_caller(caller.name)
    if required is None:
        required = current_settings().require_service_auth
    if caller.authenticated:
        if scope not in caller.scopes:
            raise ScopeForbidden(
                f"The {caller.name} caller may not do this (needs scope {scope!r})."
            )
    elif required:
        raise AuthenticationRequired()
    return caller


def require_scope(scope: str) -> Callable[[F], F]:
    """Let the request through only for a caller holding ``scope`` (or when enforcement is off)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            authorize(scope)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorator
