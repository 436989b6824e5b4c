"""Shapes of the Bot's registration flow (docs/contract.md §2, the Bot)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from schemas.common import InputModel, Name, OpaqueText, OutputModel, TelegramId, Timestamp
from utils.captcha import parse_answer


class RegisterIn(InputModel):
    giveaway_id: TelegramId
    user_id: TelegramId
    username: Name = None
    first_name: Name = None
    last_name: Name = None


class RegisterOut(OutputModel):
    success: bool = True
    requires_captcha: bool
    participant_id: int | None = None
    already_registered: bool = False
    captcha_question: str | None = None
    session_id: str | None = None
    attempts_remaining: int | None = None
    expires_at: Timestamp | None = None
    participated_at: Timestamp | None = None
    subscription_pending: bool = Field(
        default=False,
        description="true: entered while Telegram was busy; the channel subscription is "
        "confirmed before the draw (docs/contract.md §3). Always present; a caller may ignore it.",
    )
    message: str


def _answer(value: object) -> int:
    parsed = parse_answer(value)
    if parsed is None:
        raise ValueError("must be a whole number, such as 7")
    return parsed


class CaptchaAnswerIn(InputModel):
    user_id: TelegramId
    giveaway_id: TelegramId
    answer: Annotated[
        int | str,
        BeforeValidator(_answer),
        Field(description='A whole number; 7, "7" and " 7 " are the same answer.'),
    ]
    session_id: OpaqueText | None = Field(
        default=None, max_length=64, description="Accepted, never required."
    )


class CaptchaAnswerOut(OutputModel):
    success: bool = True
    captcha_completed: bool
    participant_id: int | None = None
    already_registered: bool | None = None
    attempts_remaining: int | None = None
    new_question: str | None = None
    session_id: str | None = None
    expires_at: Timestamp | None = None
    subscription_pending: bool = Field(
        default=False, description="As in the registration's answer."
    )
    message: str


class CaptchaStatusOut(OutputModel):
    success: bool = True
    user_id: int
    captcha_completed: bool
    captcha_completed_at: Timestamp | None = None
    total_participations: int
    total_wins: int
    locked: bool = False
    retry_after: int | None = None


class VerifySubscriptionIn(InputModel):
    user_id: TelegramId
    account_id: TelegramId


class ChannelInfo(OutputModel):
    channel_id: int
    channel_username: str | None = None
    channel_title: str | None = None


class VerifySubscriptionOut(OutputModel):
    success: bool = True
    user_id: int
    account_id: int
    is_subscribed: bool
    status: str
    channel_info: ChannelInfo
    verified_at: Timestamp


def channel_info(channel: Any) -> dict[str, Any]:
    """The channel fields the Bot shows a user who must subscribe."""
    return {
        "channel_id": channel.channel_id,
        "channel_username": channel.channel_username,
        "channel_title": channel.channel_title,
    }
