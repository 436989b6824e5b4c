"""The Bot's flow: register, answer the captcha, captcha status, subscription check."""

from __future__ import annotations

from apiflask import APIBlueprint

from routes.security import auth
from schemas.common import also_answers, error_responses
from schemas.registration import (
    CaptchaAnswerIn,
    CaptchaAnswerOut,
    CaptchaStatusOut,
    RegisterIn,
    RegisterOut,
    VerifySubscriptionIn,
    VerifySubscriptionOut,
    channel_info,
)
from services import captcha, history, registration, subscription
from utils.captcha import Decision, Outcome

bp = APIBlueprint("registration", __name__, url_prefix="/api/participants", tag="Registration")


@bp.post("/register")
@bp.doc(
    summary="Take part in a giveaway",
    description="201 with the new entry; 200 with the existing entry (already_registered) or "
    "with the captcha question a first-time user must answer (requires_captcha). "
    "subscription_pending: true when the entry was admitted while Telegram was busy "
    "(SUBSCRIPTION_OVERFLOW=defer); its subscription is confirmed later.",
    responses={
        **also_answers(200, "RegisterOut", "Already registered, or a captcha is required."),
        **error_responses(400, 401, 403, 404, 409, 413, 429, 503),
    },
)
@bp.auth_required(auth, roles=["participate"])
@bp.input(RegisterIn, arg_name="body")
@bp.output(RegisterOut, status_code=201, description="A new entry.")
def register(body: RegisterIn):
    result = registration.register_participant(**body.model_dump())
    if isinstance(result, registration.CaptchaRequired):
        challenge = result.challenge
        return RegisterOut(
            requires_captcha=True,
            captcha_question=challenge.state.question,
            session_id=challenge.state.session_id,
            attempts_remaining=challenge.attempts_remaining,
            expires_at=challenge.state.expires_at,
            message="Please answer the question to take part.",
        ), 200
    entry = result
    out = RegisterOut(
        requires_captcha=False,
        participant_id=entry.participant_id,
        already_registered=entry.already_registered,
        participated_at=entry.participated_at,
        subscription_pending=entry.subscription_pending,
        message=_entry_message(
            entry, "You are already taking part." if entry.already_registered else "You are in!"
        ),
    )
    return out, 200 if entry.already_registered else 201


def _entry_message(entry: registration.Entry, active: str) -> str:
    """What the user is told about their entry; ``active`` for an entry in good standing."""
    if entry.subscription_pending:
        return (
            "You're in! Telegram is busy right now, so we'll confirm your channel "
            "subscription before the draw."
        )
    if entry.status == "excluded":
        return (
            "You are registered, but this entry cannot win: you were not subscribed to the "
            "channel when we checked."
        )
    return active


def _answer_message(decision: Decision) -> str:
    if decision.outcome is Outcome.NEW_QUESTION:
        return "Here is a new question."
    if decision.outcome is Outcome.REPEATED:
        return "That answer was already tried; please answer the question."
    return f"Wrong answer. {decision.attempts_remaining} attempt(s) left."


@bp.post("/validate-captcha")
@bp.doc(
    summary="Answer the captcha",
    description="A wrong answer is a success with captcha_completed false (the Bot retries "
    "failures); the right one completes the pending registration and returns participant_id.",
    responses=error_responses(400, 401, 403, 404, 409, 413, 429, 503),
)
@bp.auth_required(auth, roles=["participate"])
@bp.input(CaptchaAnswerIn, arg_name="body")
@bp.output(CaptchaAnswerOut)
def validate_captcha(body: CaptchaAnswerIn):
    result = registration.answer_captcha(
        user_id=body.user_id, giveaway_id=body.giveaway_id, answer=int(body.answer)
    )
    if isinstance(result, registration.Entry):
        return CaptchaAnswerOut(
            captcha_completed=True,
            participant_id=result.participant_id,
            already_registered=result.already_registered,
            subscription_pending=result.subscription_pending,
            message=_entry_message(result, "Correct! You are in."),
        )
    decision = result
    fresh = decision.outcome is Outcome.NEW_QUESTION
    return CaptchaAnswerOut(
        captcha_completed=False,
        attempts_remaining=decision.attempts_remaining,
        new_question=decision.state.question if fresh else None,
        session_id=decision.state.session_id,
        expires_at=decision.state.expires_at,
        message=_answer_message(decision),
    )


@bp.get("/captcha-status/<id64:user_id>")
@bp.doc(
    summary="A user's global captcha status and totals",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["participate"])
@bp.output(CaptchaStatusOut)
def captcha_status(user_id: int):
    stats = history.user_stats(user_id)
    retry_after = None if stats.captcha_completed else captcha.lock_status(user_id)
    return CaptchaStatusOut(
        user_id=user_id,
        captcha_completed=stats.captcha_completed,
        captcha_completed_at=stats.captcha_completed_at,
        total_participations=stats.total_participations,
        total_wins=stats.total_wins,
        locked=retry_after is not None,
        retry_after=retry_after,
    )


@bp.post("/verify-subscription")
@bp.doc(
    summary="Is the user subscribed to the account's channel?",
    description="Asks Telegram (getChatMember) every time. 503 SUBSCRIPTION_CHECK_UNAVAILABLE "
    "when Telegram or a sibling cannot give a clear answer: that is never read as subscribed.",
    responses=error_responses(400, 401, 403, 404, 413, 503),
)
@bp.auth_required(auth, roles=["participate"])
@bp.input(VerifySubscriptionIn, arg_name="body")
@bp.output(VerifySubscriptionOut)
def verify_subscription(body: VerifySubscriptionIn):
    check = subscription.check_subscription(account_id=body.account_id, user_id=body.user_id)
    return VerifySubscriptionOut(
        user_id=body.user_id,
        account_id=body.account_id,
        is_subscribed=check.is_subscribed,
        status=check.status,
        channel_info=channel_info(check.channel),
        verified_at=check.verified_at,
    )
