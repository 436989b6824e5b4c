"""One error hierarchy: each error knows its HTTP status, its ``error_code`` and a sentence.

Services raise these; ``routes/errors.py`` is the one place that renders them in the contract's
envelope. ``extra`` holds top-level response fields a caller reads next to the error (for example
``retry_after`` or ``captcha_completed``).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error a caller may see."""

    status = 500
    code = "INTERNAL_ERROR"
    message = "Something went wrong on our side; the error has been logged."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.extra = dict(extra or {})
        self.retry_after = retry_after
        if code is not None:
            self.code = code
        super().__init__(self.message)


class ValidationFailed(ServiceError):
    status = 400
    code = "VALIDATION_ERROR"
    message = "The request is not valid; see details for each field."


class InvalidCursorError(ValidationFailed):
    message = "Invalid input: check cursor."

    def __init__(self) -> None:
        super().__init__(details={"cursor": "not a cursor of this list"})


class AuthenticationRequired(ServiceError):
    status = 401
    code = "AUTHENTICATION_REQUIRED"
    message = "A valid service token is required (X-Service-Token or Authorization: Bearer)."


class InvalidToken(ServiceError):
    status = 401
    code = "INVALID_TOKEN"
    message = "The service token is not valid."


class ScopeForbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"
    message = "This caller is not allowed to do that."


class NotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"
    message = "Nothing is known by that id."


class GiveawayNotFound(NotFound):
    code = "GIVEAWAY_NOT_FOUND"
    message = "This giveaway does not exist."


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"
    message = "This account is not known to the platform."


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    message = "This user has not taken part in any giveaway."


class ParticipantNotFound(NotFound):
    code = "PARTICIPANT_NOT_FOUND"
    message = "This user has no entry in this giveaway."


class Conflict(ServiceError):
    status = 409
    code = "CONFLICT"
    message = "The request conflicts with the current state."


class AlreadyDrawnDifferently(Conflict):
    code = "ALREADY_DRAWN"
    message = "Winners were already drawn for this giveaway with a different winner_count."


class NotDrawn(Conflict):
    code = "NOT_DRAWN"
    message = "No winners have been drawn for this giveaway yet."


class NotAWinner(Conflict):
    code = "NOT_A_WINNER"
    message = "That user is not a current winner of this giveaway."


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "This idempotency key was already used for a different reroll."


class DrawNotFound(NotFound):
    code = "DRAW_NOT_FOUND"
    message = "This giveaway has no entries and no commitment yet."


class EntriesNotCommitted(Conflict):
    code = "ENTRIES_NOT_COMMITTED"
    message = "Entries to this giveaway are not closed and committed yet; there is no proof yet."


class NotAnEntrant(NotFound):
    code = "NOT_AN_ENTRANT"
    message = "That user is not in this giveaway's committed entrant list."


class GiveawayNotActive(Conflict):
    code = "GIVEAWAY_NOT_ACTIVE"
    message = "This giveaway is not accepting participants any more."


class GiveawayMisconfigured(Conflict):
    code = "GIVEAWAY_MISCONFIGURED"
    message = "This giveaway's account is not set up correctly; the organiser has to fix it."


class NotSubscribed(ServiceError):
    status = 403
    code = "USER_NOT_SUBSCRIBED"
    message = "Please subscribe to the channel first, then try again."


class CaptchaLocked(ServiceError):
    status = 429
    code = "CAPTCHA_LOCKED"
    message = "Too many wrong answers. Please try again later."


class TooManyLookups(ServiceError):
    status = 429
    code = "RATE_LIMITED"
    message = "Too many proof lookups from this address; try again after retry_after seconds."


class Unavailable(ServiceError):
    """A dependency cannot answer now; the same request may succeed later."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    message = "A service we depend on is unavailable; please try again shortly."


class UpstreamUnavailable(Unavailable):
    """A sibling service or Telegram did not give a usable answer."""

    code = "UPSTREAM_UNAVAILABLE"

    def __init__(self, peer: str, reason: str, *, retry_after: int | None = None) -> None:
        self.peer = peer
        self.reason = reason
        super().__init__(
            f"The {peer} service is unavailable; please try again shortly.",
            details={"peer": peer, "reason": reason},
            retry_after=retry_after,
        )


class SubscriptionCheckUnavailable(Unavailable):
    code = "SUBSCRIPTION_CHECK_UNAVAILABLE"
    message = "We could not check the channel subscription right now; please try again shortly."


class DatabaseUnavailable(Unavailable):
    code = "DATABASE_UNAVAILABLE"
    message = "The database is unavailable; please try again shortly."


class RedisUnavailable(Unavailable):
    code = "REDIS_UNAVAILABLE"
    message = "The captcha store is unavailable; please try again shortly."


class BeaconUnavailable(Unavailable):
    """No drand relay gave a valid signature of the round in time; the draw can be asked again."""

    code = "BEACON_UNAVAILABLE"
    message = "The public randomness for this draw is not available yet; please try again shortly."

    def __init__(self, round: int, reason: str, *, retry_after: int | None = None) -> None:
        self.round = round
        self.reason = reason
        super().__init__(details={"round": round, "reason": reason}, retry_after=retry_after)
