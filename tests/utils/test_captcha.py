"""The captcha's maths, answer parsing and state machine, without any store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from utils import captcha
from utils.captcha import CaptchaPolicy, CaptchaState, Outcome, PendingRegistration

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = CaptchaPolicy(
    timeout=timedelta(minutes=10), max_attempts=3, max_questions=3, lockout=timedelta(minutes=60)
)
PENDING = PendingRegistration(giveaway_id=7, username="alice", first_name="Alice")


def issued(now: datetime = NOW) -> CaptchaState:
    return captcha.request_challenge(CaptchaState(), now=now, policy=POLICY, pending=PENDING).state


def answer(state: CaptchaState, value: int, now: datetime = NOW) -> captcha.Decision:
    return captcha.submit_answer(state, answer=value, now=now, policy=POLICY, pending=PENDING)


def test_questions_are_arithmetic_with_the_stated_answer():
    pattern = re.compile(r"^What is (\d+) ([+\-×]) (\d+)\?$")
    seen_operations = set()
    for _ in range(500):
        text, expected = captcha.generate_question()
        left, operation, right = pattern.match(text).groups()
        seen_operations.add(operation)
        computed = {
            "+": int(left) + int(right),
            "-": int(left) - int(right),
            "×": int(left) * int(right),
        }
        assert computed[operation] == expected
        assert expected > 0
    assert seen_operations == {"+", "-", "×"}


@pytest.mark.parametrize("raw", [7, "7", " 7 ", "+7", 7.0, "\t7\n"])
def test_answers_are_compared_as_integers(raw):
    assert captcha.parse_answer(raw) == 7


@pytest.mark.parametrize("raw", [True, None, "seven", "7.5", 7.5, "", "1e3", [7], "9" * 20, 10**12])
def test_non_integers_are_not_answers(raw):
    assert captcha.parse_answer(raw) is None


def test_a_new_user_gets_a_question_with_all_attempts():
    decision = captcha.request_challenge(CaptchaState(), now=NOW, policy=POLICY, pending=PENDING)
    assert decision.outcome is Outcome.ISSUED
    assert decision.attempts_remaining == 3
    assert decision.state.expires_at == NOW + POLICY.timeout
    assert decision.state.pending == PENDING
    assert decision.events == ("captcha_issued",)


def test_asking_again_hands_out_the_same_question_not_a_new_one():
    state = issued()
    again = captcha.request_challenge(
        state, now=NOW + timedelta(minutes=1), policy=POLICY, pending=PENDING
    )
    assert again.outcome is Outcome.PENDING
    assert again.state.question == state.question
    assert again.state.answer == state.answer
    assert again.events == ()


def test_the_right_answer_passes():
    state = issued()
    decision = answer(state, state.answer)
    assert decision.outcome is Outcome.PASSED
    assert decision.state.passed_at == NOW
    assert decision.state.pending == PENDING


def test_each_new_wrong_answer_uses_one_attempt_and_a_repeat_uses_none():
    state = issued()
    wrong = state.answer + 1
    first = answer(state, wrong)
    assert (first.outcome, first.attempts_remaining, first.counted) == (Outcome.WRONG, 2, True)
    repeat = answer(first.state, wrong)
    assert (repeat.outcome, repeat.attempts_remaining, repeat.counted) == (
        Outcome.REPEATED,
        2,
        False,
    )
    second = answer(repeat.state, wrong + 1)
    assert (second.outcome, second.attempts_remaining) == (Outcome.WRONG, 1)


def test_using_every_attempt_issues_a_new_question_and_counts_a_failed_question():
    state = issued()
    for offset in (1, 2):
        state = answer(state, state.answer + offset).state
    decision = answer(state, state.answer + 3)
    assert decision.outcome is Outcome.NEW_QUESTION
    assert decision.attempts_remaining == 3
    assert decision.state.failed_questions == 1
    assert decision.state.attempts_used == 0
    assert decision.events == ("captcha_failed", "captcha_issued")


def fail_question(state: CaptchaState, now: datetime = NOW) -> captcha.Decision:
    decision = None
    for offset in (1, 2, 3):
        decision = answer(state, state.answer + offset, now)
        state = decision.state
    return decision


def test_too_many_failed_questions_lock_the_user_out():
    state = issued()
    state = fail_question(state).state
    state = fail_question(state).state
    decision = fail_question(state)
    assert decision.outcome is Outcome.NOW_LOCKED
    assert decision.retry_after == 3600
    assert decision.state.locked_until == NOW + POLICY.lockout
    assert decision.state.question is None
    assert "captcha_locked" in decision.events

    later = NOW + timedelta(minutes=30)
    locked = answer(decision.state, 5, later)
    assert locked.outcome is Outcome.LOCKED
    assert locked.retry_after == 1800
    asked = captcha.request_challenge(decision.state, now=later, policy=POLICY, pending=PENDING)
    assert asked.outcome is Outcome.LOCKED
    assert captcha.lock_status(decision.state, now=later, policy=POLICY) == 1800


def test_the_lockout_ends_and_the_counters_start_over():
    state = issued()
    for _ in range(3):
        state = fail_question(state).state
    after = NOW + POLICY.lockout + timedelta(seconds=1)
    assert captcha.lock_status(state, now=after, policy=POLICY) is None
    decision = captcha.request_challenge(state, now=after, policy=POLICY, pending=PENDING)
    assert decision.outcome is Outcome.ISSUED
    assert decision.state.failed_questions == 0


def test_failed_questions_are_forgotten_after_the_lockout_period():
    state = fail_question(issued()).state
    assert state.failed_questions == 1
    much_later = NOW + POLICY.lockout + timedelta(minutes=1)
    decision = captcha.request_challenge(state, now=much_later, policy=POLICY, pending=PENDING)
    assert decision.state.failed_questions == 0


def test_an_expired_question_is_replaced_without_using_an_attempt():
    state = issued()
    late = NOW + POLICY.timeout + timedelta(seconds=1)
    decision = answer(state, state.answer, late)  # even the old right answer no longer counts
    assert decision.outcome is Outcome.NEW_QUESTION
    assert decision.counted is False
    assert decision.state.expires_at == late + POLICY.timeout
    assert decision.state.failed_questions == 0


def test_an_answer_without_any_question_gets_one():
    decision = answer(CaptchaState(), 12)
    assert decision.outcome is Outcome.NEW_QUESTION
    assert decision.state.question is not None


def test_a_passed_state_stays_passed_whatever_is_answered():
    state = issued()
    passed = answer(state, state.answer).state
    assert answer(passed, -1).outcome is Outcome.PASSED


def test_state_is_kept_only_as_long_as_something_in_it_matters():
    assert CaptchaState().keep_until(POLICY) is None
    state = issued()
    assert state.keep_until(POLICY) == state.expires_at
    failed = fail_question(state).state
    assert failed.keep_until(POLICY) == NOW + POLICY.lockout
