"""Incoming service authentication: per-caller tokens with scopes, through APIFlask's token auth.

A route names the scope it needs once, ``@bp.auth_required(auth, roles=["draw"])``; APIFlask runs
the check and documents both headers (ServiceToken, BearerToken) with that scope in the OpenAPI
document. A token arrives as ``X-Service-Token`` or ``Authorization: Bearer``; it is compared in
constant time with every configured token. With ``REQUIRE_SERVICE_AUTH=false`` a request without a
token is let through (the deployed siblings send none yet) and named by its ``X-Service-Name``;
``/metrics`` has its own switch, ``METRICS_REQUIRE_AUTH``. A valid token still only grants its
caller's scopes, and a wrong ``X-Service-Token`` (our own header) is always refused. A bearer token
we do not know is refused only while enforcement is on: during the roll-out the Dashboard's bearer
may still be its users' session token, not one of ours.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiflask import APIKeyHeaderAuth, HTTPTokenAuth, MultiAuth
from flask import g, request
from werkzeug.datastructures import Authorization

from config import SCOPES_BY_CALLER, SERVICE_NAMES, current_settings
from services.errors import AuthenticationRequired, InvalidToken, ScopeForbidden
from utils.request_context import set_caller

# METRICS_REQUIRE_AUTH governs the metrics scope; REQUIRE_SERVICE_AUTH governs all the others.
METRICS_SCOPE = "metrics"
_API_SCOPES = frozenset().union(*SCOPES_BY_CALLER.values()) - {METRICS_SCOPE}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Caller:
    """Who is calling, as far as the request proves it."""

    name: str | None
    scopes: frozenset[str]
    authenticated: bool


class _ScopedTokenAuth:
    """What both headers share: a caller without the route's scope is refused in our envelope."""

    def authorize(self, role: Any, user: Caller, auth: Any) -> bool:
        """True if ``user`` holds the route's scope; raises 401 (no token) or 403 otherwise."""
        # Raised here rather than in an error processor: only here is the scope known.
        if super().authorize(role, user, auth):
            return True
        if not user.authenticated:
            raise AuthenticationRequired()
        needed = " or ".join(repr(scope) for scope in role)
        raise ScopeForbidden(f"The {user.name} caller may not do this (needs scope {needed}).")

    def ensure_sync(self, f: Any) -> Any:
        """``f`` as it is: our callbacks are plain functions; auth_required made the view sync."""
        # Flask's version inspects each callable again on every call, three times a request.
        return f


class _ServiceTokenHeader(_ScopedTokenAuth, APIKeyHeaderAuth):
    """``X-Service-Token: <token>``, and what MultiAuth falls back to when no token came."""

    def is_compatible_auth(self, headers: Mapping[str, str]) -> bool:
        """An empty header counts as absent (a Bearer token may still come)."""
        return bool(headers.get(self.param_name))

    def authenticate(self, auth: Authorization | None, stored_password: Any) -> Caller:
        """Ask verify_token even without a token: with enforcement off the request may pass."""
        return self.verify_token_callback(auth.token if auth is not None else "")


class _BearerToken(_ScopedTokenAuth, HTTPTokenAuth):
    """``Authorization: Bearer <token>``, the scheme in any case."""

    def is_compatible_auth(self, headers: Mapping[str, str]) -> bool:
        """A Bearer scheme with a token."""
        return self.get_auth() is not None

    def get_auth(self) -> Authorization | None:
        """The bearer token, read by hand (werkzeug reads a token with an inner = as parameters)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return Authorization("bearer", token=token.strip())


service_token = _ServiceTokenHeader(
    name="ServiceToken",
    param_name="X-Service-Token",
    description="The caller's token from SERVICE_TOKENS.",
)
bearer_token = _BearerToken(
    name="BearerToken", description="The caller's token from SERVICE_TOKENS, as a bearer token."
)
# Either header works; the operations list both, each with the route's scope.
auth = MultiAuth(service_token, bearer_token)


def _holder_of(token: str) -> str | None:
    """The caller whose configured token this is, if any."""
    presented = token.strip().encode()
    matched = None
    # Compare with every token, always, so timing reveals neither match nor position.
    for caller, expected in current_settings().tokens_by_caller.items():
        if hmac.compare_digest(presented, expected.get_secret_value().encode()):
            matched = caller
    return matched


def _without_token() -> Caller:
    """A request without a token we know: named by X-Service-Name, holding the scopes whose
    enforcement switch is off."""
    settings = current_settings()
    scopes = set()
    if not settings.require_service_auth:
        scopes |= _API_SCOPES
    if not settings.metrics_require_auth:
        scopes.add(METRICS_SCOPE)
    service_name = request.headers.get("X-Service-Name", "")
    name = SERVICE_NAMES.get(service_name) or (_SAFE_NAME.sub("", service_name)[:64] or None)
    return Caller(name=name, scopes=frozenset(scopes), authenticated=False)


def _identified(token: str, *, refuse_unknown: bool) -> Caller:
    """The caller the token (or its absence) names, recorded for audit events and logs."""
    holder = _holder_of(token) if token else None
    if holder is not None:
        caller = Caller(name=holder, scopes=SCOPES_BY_CALLER[holder], authenticated=True)
    elif token and refuse_unknown:
        raise InvalidToken()
    else:
        caller = _without_token()
    g.caller = caller
    set_caller(caller.name)
    return caller


@service_token.verify_token
def _verify_service_token(token: str) -> Caller:
    """X-Service-Token is our own header: a token nobody holds is always refused."""
    return _identified(token, refuse_unknown=True)


@bearer_token.verify_token
def _verify_bearer_token(token: str) -> Caller:
    """An unknown bearer is refused only while enforcement is on (see the module docstring)."""
    return _identified(token, refuse_unknown=current_settings().require_service_auth)


@service_token.get_user_roles
@bearer_token.get_user_roles
def _scopes(caller: Caller) -> list[str]:
    """The caller's scopes, as the roles ``auth_required(roles=...)`` checks."""
    return list(caller.scopes)  # a list: Flask-HTTPAuth would take a set as one role
