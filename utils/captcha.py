"""The global captcha: question maths, answer parsing and the per-user state machine.

Everything here is pure: the stores (database or Redis) load a user's ``CaptchaState``, apply one
of the two transitions below atomically, and write the new state back. Keeping the rules in one
place is what makes the two stores behave the same.

Rules (docs/contract.md §3): a question allows ``max_attempts`` answers and expires after
``timeout``; when the attempts are used up a new question is issued and the question counts as
failed; after ``max_questions`` failed questions the user is locked out for ``lockout``. Failed
questions are forgotten once ``lockout`` has passed since the last failure. A repeated wrong
answer to the same question costs nothing: it carries no new information, and the Bot retries
calls it lost.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from utils.timeutil import seconds_until


@dataclass(frozen=True)
class CaptchaPolicy:
    """The limits operators configure."""

    timeout: timedelta = timedelta(minutes=10)
    max_attempts: int = 3
    max_questions: int = 3
    lockout: timedelta = timedelta(minutes=60)


@dataclass(frozen=True)
class PendingRegistration:
    """The registration a challenge was issued for, completed when the answer is right."""

    giveaway_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class CaptchaState:
    """One user's captcha situation; the empty state means nothing is pending or remembered."""

    question: str | None = None
    answer: int | None = None
    session_id: str | None = None
    expires_at: datetime | None = None
    attempts_used: int = 0
    wrong_answers: tuple[int, ...] = ()
    pending: PendingRegistration | None = None
    failed_questions: int = 0
    last_failed_at: datetime | None = None
    locked_until: datetime | None = None
    passed_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.question is None
            and self.failed_questions == 0
            and self.locked_until is None
            and self.passed_at is None
        )

    def has_live_question(self, now: datetime) -> bool:
        return self.question is not None and self.expires_at is not None and now < self.expires_at

    def keep_until(self, policy: CaptchaPolicy) -> datetime | None:
        """When the state may be forgotten: the latest moment any part of it still matters."""
        moments = [self.expires_at, self.locked_until]
        if self.last_failed_at is not None:
            moments.append(self.last_failed_at + policy.lockout)
        if self.passed_at is not None:
            moments.append(self.passed_at + timedelta(hours=1))
        present = [moment for moment in moments if moment is not None]
        return max(present) if present else None


class Outcome(StrEnum):
    """What a transition decided."""

    ISSUED = "issued"  # a new question was issued
    PENDING = "pending"  # the live question was handed out again
    LOCKED = "locked"  # the user is (still) locked out
    NOW_LOCKED = "now_locked"  # this answer used the last chance
    WRONG = "wrong"  # a wrong answer, attempts remain on the same question
    REPEATED = "repeated"  # the same wrong answer again, not counted
    NEW_QUESTION = "new_question"  # attempts used up or question expired: a fresh question
    PASSED = "passed"  # the right answer


@dataclass(frozen=True)
class Decision:
    """The result of one transition, with what the caller needs to answer the user."""

    outcome: Outcome
    state: CaptchaState
    attempts_remaining: int = 0
    retry_after: int | None = None
    counted: bool = False  # whether this answer used an attempt
    question_failed: bool = False  # whether this answer ended a question as failed
    events: tuple[str, ...] = field(default=())


_OPERATIONS = ("+", "-", "×")
_ANSWER_PATTERN = re.compile(r"^[+-]?[0-9]{1,9}$")


def generate_question() -> tuple[str, int]:
    """A short arithmetic question and its answer, with numbers from ``secrets``."""
    operation = _OPERATIONS[secrets.randbelow(len(_OPERATIONS))]
    if operation == "+":
        left, right = 10 + secrets.randbelow(90), 10 + secrets.randbelow(90)
        answer = left + right
    elif operation == "-":
        left = 20 + secrets.randbelow(80)
        right = 1 + secrets.randbelow(left - 1)
        answer = left - right
    else:
        left, right = 2 + secrets.randbelow(11), 2 + secrets.randbelow(11)
        answer = left * right
    return f"What is {left} {operation} {right}?", answer


_QUESTION_PATTERN = re.compile(r"^What is (\d+) ([+\-×]) (\d+)\?$")


def solve_question(question: str) -> int:
    """The answer to a question of ``generate_question`` (what a human reader works out)."""
    match = _QUESTION_PATTERN.match(question)
    if match is None:
        raise ValueError(f"not a captcha question: {question!r}")
    left, operation, right = int(match[1]), match[2], int(match[3])
    return {"+": left + right, "-": left - right, "×": left * right}[operation]


def parse_answer(raw: object) -> int | None:
    """An answer as an integer: ``7``, ``"7"`` and ``" 7 "`` are the same; anything else is None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if abs(raw) < 10**9 else None
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() and abs(raw) < 10**9 else None
    if isinstance(raw, str):
        text = raw.strip()
        return int(text) if _ANSWER_PATTERN.match(text) else None
    return None


def _forget_old_failures(state: CaptchaState, now: datetime, policy: CaptchaPolicy) -> CaptchaState:
    if state.locked_until is not None and now >= state.locked_until:
        state = replace(state, locked_until=None, failed_questions=0, last_failed_at=None)
    if state.last_failed_at is not None and now - state.last_failed_at >= policy.lockout:
        state = replace(state, failed_questions=0, last_failed_at=None)
    return state


def _with_new_question(
    state: CaptchaState, now: datetime, policy: CaptchaPolicy, pending: PendingRegistration | None
) -> CaptchaState:
    question, answer = generate_question()
    return replace(
        state,
        question=question,
        answer=answer,
        session_id=secrets.token_urlsafe(16),
        expires_at=now + policy.timeout,
        attempts_used=0,
        wrong_answers=(),
        pending=pending,
    )


def _locked(state: CaptchaState, now: datetime, locked_until: datetime) -> Decision:
    return Decision(
        outcome=Outcome.LOCKED, state=state, retry_after=seconds_until(locked_until, now)
    )


def request_challenge(
    state: CaptchaState, *, now: datetime, policy: CaptchaPolicy, pending: PendingRegistration
) -> Decision:
    """A registration needs the captcha: hand out the live question or issue a new one."""
    if state.passed_at is not None:
        # Answered right, but the database has not recorded it yet: finish that instead.
        return Decision(outcome=Outcome.PASSED, state=state)
    state = _forget_old_failures(state, now, policy)
    if state.locked_until is not None:
        return _locked(state, now, state.locked_until)
    remaining = policy.max_attempts - state.attempts_used
    if state.has_live_question(now):
        return Decision(
            outcome=Outcome.PENDING,
            state=replace(state, pending=pending),
            attempts_remaining=remaining,
        )
    state = _with_new_question(state, now, policy, pending)
    return Decision(
        outcome=Outcome.ISSUED,
        state=state,
        attempts_remaining=policy.max_attempts,
        events=("captcha_issued",),
    )


def submit_answer(
    state: CaptchaState,
    *,
    answer: int,
    now: datetime,
    policy: CaptchaPolicy,
    pending: PendingRegistration,
) -> Decision:
    """Judge one answer and move the state on; exactly one attempt is used per new wrong answer."""
    if state.passed_at is not None:
        return Decision(outcome=Outcome.PASSED, state=state)
    state = _forget_old_failures(state, now, policy)
    if state.locked_until is not None:
        return _locked(state, now, state.locked_until)
    if not state.has_live_question(now):
        state = _with_new_question(state, now, policy, state.pending or pending)
        return Decision(
            outcome=Outcome.NEW_QUESTION,
            state=state,
            attempts_remaining=policy.max_attempts,
            events=("captcha_issued",),
        )
    if answer == state.answer:
        passed = CaptchaState(passed_at=now, pending=state.pending or pending)
        return Decision(
            outcome=Outcome.PASSED, state=passed, counted=True, events=("captcha_passed",)
        )
    if answer in state.wrong_answers:
        return Decision(
            outcome=Outcome.REPEATED,
            state=state,
            attempts_remaining=policy.max_attempts - state.attempts_used,
        )
    used = state.attempts_used + 1
    state = replace(state, attempts_used=used, wrong_answers=(*state.wrong_answers, answer))
    if used < policy.max_attempts:
        return Decision(
            outcome=Outcome.WRONG,
            state=state,
            attempts_remaining=policy.max_attempts - used,
            counted=True,
            events=("captcha_failed",),
        )
    failed = state.failed_questions + 1
    if failed >= policy.max_questions:
        locked_until = now + policy.lockout
        state = replace(
            state,
            question=None,
            answer=None,
            session_id=None,
            expires_at=None,
            attempts_used=0,
            wrong_answers=(),
            failed_questions=0,
            last_failed_at=now,
            locked_until=locked_until,
        )
        return Decision(
            outcome=Outcome.NOW_LOCKED,
            state=state,
            retry_after=seconds_until(locked_until, now),
            counted=True,
            question_failed=True,
            events=("captcha_failed", "captcha_locked"),
        )
    state = replace(state, failed_questions=failed, last_failed_at=now)
    state = _with_new_question(state, now, policy, state.pending)
    return Decision(
        outcome=Outcome.NEW_QUESTION,
        state=state,
        attempts_remaining=policy.max_attempts,
        counted=True,
        question_failed=True,
        events=("captcha_failed", "captcha_issued"),
    )


def lock_status(state: CaptchaState, *, now: datetime, policy: CaptchaPolicy) -> int | None:
    """Seconds until the user may try again, or None when not locked out."""
    state = _forget_old_failures(state, now, policy)
    return None if state.locked_until is None else seconds_until(state.locked_until, now)
