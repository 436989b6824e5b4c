"""Client for the Auth service: a giveaway account's bot token (``GET /api/v1/bots/token/{id}``).

The token is a secret: it is cached in-process only (never in Redis), never logged and never
returned; ``BotCredentials`` hides it from ``repr``.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from config import current_settings
from services.cache import cached, secret_cache
from services.clients.http import get_json, read_body
from services.errors import AccountNotFound, UpstreamUnavailable

PEER = "auth"
log = logging.getLogger("telegive.auth_client")


class BotCredentials(BaseModel):
    """The bot of a giveaway account: the Auth service's 200 ``{bot_token, bot_id}``, of which
    only the token is used."""

    model_config = ConfigDict(frozen=True)

    token: str = Field(alias="bot_token", min_length=1, repr=False)


def get_bot_credentials(account_id: int) -> BotCredentials:
    """The account's bot token, from the in-process cache or the Auth service."""
    return cached(
        secret_cache(),
        f"bot_token:{account_id}",
        current_settings().bot_token_cache_seconds,
        lambda: _fetch(account_id),
    )


def forget_bot_credentials(account_id: int) -> None:
    """Drop a token Telegram refused, so the next call asks Auth again."""
    secret_cache().delete(f"bot_token:{account_id}")


def _fetch(account_id: int) -> BotCredentials:
    settings = current_settings()
    if not settings.auth_url:
        raise UpstreamUnavailable(PEER, "not_configured")
    answer = get_json(
        peer=PEER,
        resource=account_id,
        url=f"{settings.auth_url}/api/v1/bots/token/{account_id}",
        timeout=(settings.upstream_connect_timeout, settings.upstream_timeout),
        headers={"X-Service-Token": settings.service_to_service_secret.get_secret_value()},
    )
    if answer.status == 404:
        raise AccountNotFound(details={"account_id": account_id})
    if answer.status in (401, 403):
        log.error(
            "the auth service refused our SERVICE_TO_SERVICE_SECRET",
            extra={"status": answer.status},
        )
        raise UpstreamUnavailable(PEER, "unauthorized")
    if answer.status != 200:
        raise UpstreamUnavailable(PEER, f"unexpected_answer_{answer.status}")
    return read_body(BotCredentials, answer, peer=PEER)
