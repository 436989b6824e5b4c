"""Client for the Telegram Bot API: ``getChatMember`` only.

The request URL carries the bot token, so it never reaches a log line: the path is logged as
``/bot***/getChatMember``. Every answer that does not say clearly whether the user is a member
(429, 5xx, timeout, an unknown chat, a bot that is not an admin, an unreadable body, a result
under any status but 200) raises ``UpstreamUnavailable``; it is never read as "subscribed".
No call is made outside the bot's budget of ``TELEGRAM_CALLS_PER_SECOND``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, RootModel, StrictBool, StrictInt, StrictStr

from config import current_settings
from services.clients.http import get_json, read_body
from services.errors import UpstreamUnavailable
from services.telegram_budget import refusal_reason, telegram_budget
from utils.pacing import Verdict

PEER = "telegram"
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})
NON_MEMBER_STATUSES = frozenset({"left", "kicked"})
# Telegram's descriptions of "this user is not in that chat" (a definite no, not an outage).
_USER_UNKNOWN = ("user not found", "participant_id_invalid", "user_id_invalid")
_REASONS = (
    ("chat not found", "chat_not_found"),
    ("member list is inaccessible", "bot_not_admin"),
    ("bot is not a member", "bot_not_member"),
    ("bot was kicked", "bot_kicked"),
    ("not enough rights", "bot_not_admin"),
)


@dataclass(frozen=True)
class ChatMembership:
    """What Telegram says about a user in a chat."""

    status: str
    is_member: bool


class _ChatMember(BaseModel):
    status: StrictStr
    is_member: StrictBool = False  # sent for "restricted" only


class _Member(BaseModel):
    ok: Literal[True]
    result: _ChatMember


class _Parameters(BaseModel):
    retry_after: StrictInt | None = None


class _Refusal(BaseModel):
    ok: Literal[False] = False
    error_code: StrictInt | None = None
    description: StrictStr | None = None
    parameters: _Parameters | None = None


class _Answer(RootModel[_Member | _Refusal]):
    """getChatMember's answer: ``{ok: true, result: {status, is_member?}}`` or
    ``{ok: false, error_code, description, parameters: {retry_after}}``."""


class InvalidBotToken(UpstreamUnavailable):
    """Telegram refused the bot token (401): the cached token must be dropped."""


def get_chat_member(
    *,
    token: str,
    chat_id: int,
    user_id: int,
    budget_wait: float | None = None,
    spare_wait: float | None = None,
) -> ChatMembership:
    """Ask Telegram whether ``user_id`` is a member of ``chat_id``, within the bot's budget.

    The call waits for a slot of the bot's budget (services/telegram_budget.py) at most
    ``budget_wait`` seconds (``TELEGRAM_BUDGET_WAIT_SECONDS`` when None); without one it is not
    made: ``UpstreamUnavailable`` (``over_budget``, or ``rate_limited`` during a flood wait) with
    the seconds until the bot's next slot. With ``spare_wait`` (work that can wait: the pending
    verifier) it takes only a slot nobody reserved, waiting for one at most that long. A 429
    closes the bot's budget until Telegram's ``retry_after`` has passed, for every instance:
    calling during a flood wait only prolongs it.
    """
    settings = current_settings()
    bot_id = _bot_id(token)
    budget = telegram_budget()
    if spare_wait is not None:
        slot = budget.acquire_spare(bot_id, max_wait=spare_wait)
    else:
        wait = settings.telegram_budget_wait if budget_wait is None else budget_wait
        slot = budget.acquire(bot_id, max_wait=wait)
    if slot.verdict is not Verdict.GRANTED:
        raise UpstreamUnavailable(PEER, refusal_reason(slot), retry_after=slot.retry_after)
    answer = get_json(
        peer=PEER,
        resource=bot_id,
        url=f"{settings.telegram_api_base}/bot{token}/getChatMember",
        params={"chat_id": chat_id, "user_id": user_id},
        timeout=(settings.upstream_connect_timeout, settings.telegram_timeout),
        log_path="/bot***/getChatMember",
    )
    body = read_body(_Answer, answer, peer=PEER).root
    if isinstance(body, _Member):
        if answer.status != 200:  # Telegram sends a result with 200 only: this is no answer
            raise UpstreamUnavailable(PEER, f"http_{answer.status}")
        return _membership(body.result)
    description = (body.description or "").lower()
    error_code = answer.status if body.error_code is None else body.error_code
    if error_code == 429 or answer.status == 429:
        retry_after = _retry_after(body.parameters)
        budget.flood_wait(bot_id, retry_after)
        raise UpstreamUnavailable(PEER, "rate_limited", retry_after=retry_after)
    if error_code == 401 or answer.status == 401:
        raise InvalidBotToken(PEER, "invalid_bot_token")
    if any(marker in description for marker in _USER_UNKNOWN):
        return ChatMembership(status="left", is_member=False)
    for marker, reason in _REASONS:
        if marker in description:
            raise UpstreamUnavailable(PEER, reason)
    raise UpstreamUnavailable(PEER, f"telegram_error_{error_code}")


def _bot_id(token: str) -> str:
    """The bot's id, the public part of its token (never the secret, even in a malformed one)."""
    bot_id = token.split(":", 1)[0]
    return bot_id if bot_id.isdecimal() and bot_id != token else "unknown"


def _membership(member: _ChatMember) -> ChatMembership:
    if member.status in MEMBER_STATUSES:
        return ChatMembership(status=member.status, is_member=True)
    if member.status in NON_MEMBER_STATUSES:
        return ChatMembership(status=member.status, is_member=False)
    if member.status == "restricted":
        return ChatMembership(status=member.status, is_member=member.is_member)
    raise UpstreamUnavailable(PEER, "unknown_member_status")


def _retry_after(parameters: _Parameters | None) -> int | None:
    """Telegram's wait in seconds, at most an hour; None when it gave none that makes sense."""
    if parameters is None or parameters.retry_after is None or parameters.retry_after <= 0:
        return None
    return min(parameters.retry_after, 3600)
