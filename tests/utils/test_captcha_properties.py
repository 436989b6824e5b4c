"""Properties (hypothesis) of the captcha: its questions, answer parsing and state machine.

The state machine is checked against an independent model of the rules (attempts never exceed
the policy, a repeat never costs an attempt, the lockout comes exactly at max_attempts ×
max_questions counted wrong answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from unittest import mock

from hypothesis import event, given
from hypothesis import strategies as st

from tests.utils.strategies import bounded
from utils import captcha
from utils.captcha import CaptchaPolicy, CaptchaState, Outcome, PendingRegistration

# --- the questions ----------------------------------------------------------------------------

QUESTION = re.compile(r"^What is (\d+) ([+\-×]) (\d+)\?$")


class ScriptedSecrets:
    """``secrets`` whose ``randbelow`` hypothesis drives, so every value (edges included) of
    every draw the question makes is reachable."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def randbelow(self, bound: int) -> int:
        return self.data.draw(st.integers(min_value=0, max_value=bound - 1))

    def token_urlsafe(self, size: int) -> str:
        return "t" * size


@bounded(150)
@given(data=st.data())
def test_every_question_states_its_answer_and_the_answer_is_positive(data):
    with mock.patch.object(captcha, "secrets", ScriptedSecrets(data)):
        text, answer = captcha.generate_question()
    match = QUESTION.match(text)
    assert match, text
    left, operation, right = int(match[1]), match[2], int(match[3])
    assert answer == {"+": left + right, "-": left - right, "×": left * right}[operation]
    assert answer > 0


# --- answer parsing ----------------------------------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003", max_size=3)


@bounded(200)
@given(value=st.integers())
def test_an_integer_is_its_own_answer_up_to_nine_digits(value):
    expected = value if abs(value) < 10**9 else None
    assert captcha.parse_answer(value) == expected
    assert captcha.parse_answer(str(value)) == expected  # 7 and "7" are the same answer


@bounded(200)
@given(
    before=WHITESPACE,
    sign=st.sampled_from(["", "+", "-"]),
    digits=st.text(alphabet="0123456789", min_size=1, max_size=12),
    after=WHITESPACE,
)
def test_a_numeric_string_with_whitespace_and_a_sign_is_an_answer(before, sign, digits, after):
    parsed = captcha.parse_answer(f"{before}{sign}{digits}{after}")
    assert parsed == (int(sign + digits) if len(digits) <= 9 else None)


ASCII_ANSWER = re.compile(r"[+-]?[0-9]{1,9}")


@bounded(200)
@given(text=st.one_of(st.text(max_size=14), st.from_regex(r"\s*[+-]?\d{0,11}\s*", fullmatch=True)))
def test_any_other_text_is_not_an_answer(text):
    # Only ASCII digits count: "٣" is a decimal digit to Python's int(), but not an answer here.
    parsed = captcha.parse_answer(text)
    if ASCII_ANSWER.fullmatch(text.strip()):
        assert parsed == int(text.strip())
    else:
        assert parsed is None, (text, parsed)


@bounded(200)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_an_answer_only_when_it_is_a_whole_number(value):
    parsed = captcha.parse_answer(value)
    if value == value and value not in (float("inf"), float("-inf")) and value.is_integer():
        assert parsed == (int(value) if abs(value) < 10**9 else None)
    else:
        assert parsed is None


@bounded(100)
@given(
    value=st.one_of(
        st.booleans(),
        st.none(),
        st.binary(max_size=5),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
)
def test_nothing_else_is_an_answer(value):
    assert captcha.parse_answer(value) is None


# --- the state machine -------------------------------------------------------------------------

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PENDING = PendingRegistration(giveaway_id=7, username="alice")

policies = st.builds(
    CaptchaPolicy,
    timeout=st.integers(min_value=1, max_value=20).map(lambda m: timedelta(minutes=m)),
    max_attempts=st.integers(min_value=1, max_value=4),
    max_questions=st.integers(min_value=1, max_value=4),
    lockout=st.integers(min_value=1, max_value=120).map(lambda m: timedelta(minutes=m)),
)
# A step: ask for the question, answer right, answer wrong (one of four wrong values, so repeats
# are common), or let time pass (mostly a little, sometimes past a timeout or a lockout).
steps = st.lists(
    st.sampled_from(["request", "right", "wrong", "wrong", "wrong", "wrong", "wait", "long wait"])
    .flatmap(
        lambda action: st.tuples(
            st.just(action),
            {
                "wrong": st.integers(min_value=1, max_value=3),
                "wait": st.integers(min_value=0, max_value=120),
                "long wait": st.integers(min_value=0, max_value=3 * 7200),
            }.get(action, st.just(0)),
        )
    )
    .map(lambda step: ("wait", step[1]) if step[0] == "long wait" else step),
    max_size=60,
)


def _wrong(state: CaptchaState, offset: int) -> int:
    """A wrong answer to the live question (or to none)."""
    return (state.answer or 0) + offset


@dataclass
class Model:
    """What the rules say, counted independently of the state machine's own fields."""

    wrong_on_question: int = 0  # counted wrong answers to the live question
    failed: list[datetime] = None  # when each failed question failed, since the last reset
    locked_until: datetime | None = None

    def __post_init__(self) -> None:
        self.failed = []

    def forget(self, now: datetime, policy: CaptchaPolicy) -> None:
        if self.locked_until is not None and now >= self.locked_until:
            self.locked_until, self.failed = None, []
        if self.failed and now - self.failed[-1] >= policy.lockout:
            self.failed = []


@bounded(150)
@given(policy=policies, script=steps)
def test_the_state_machine_keeps_the_rules_under_any_sequence(policy, script):
    state, now, model = CaptchaState(), START, Model()
    lockout_seconds = int(policy.lockout.total_seconds())
    for action, value in script:
        if action == "wait":
            now += timedelta(seconds=value)
            continue
        model.forget(now, policy)
        before = state
        live = before.has_live_question(now)
        locked = captcha.lock_status(before, now=now, policy=policy)
        assert (locked is not None) == (model.locked_until is not None)
        if action == "request":
            decision = captcha.request_challenge(before, now=now, policy=policy, pending=PENDING)
            assert not decision.counted
            if decision.outcome is Outcome.ISSUED:
                model.wrong_on_question = 0
        else:
            answer = before.answer if action == "right" else _wrong(before, value)
            decision = captcha.submit_answer(
                before, answer=answer, now=now, policy=policy, pending=PENDING
            )
            if locked is not None:
                assert decision.outcome is Outcome.LOCKED
            elif not live:
                # No live question: a fresh one, and the answer is not judged.
                assert decision.outcome is Outcome.NEW_QUESTION and not decision.counted
                model.wrong_on_question = 0
            elif action == "right":
                # The right answer to a live question always passes unless locked out.
                assert decision.outcome is Outcome.PASSED and decision.counted
            elif answer in before.wrong_answers:
                # A repeated wrong answer uses no attempt and changes nothing.
                assert decision.outcome is Outcome.REPEATED and not decision.counted
                assert decision.state.attempts_used == before.attempts_used
                assert decision.state.wrong_answers == before.wrong_answers
                assert decision.state.question == before.question
            else:
                assert decision.counted
                model.wrong_on_question += 1
                question_failed = model.wrong_on_question == policy.max_attempts
                assert decision.question_failed == question_failed
                if question_failed:
                    model.wrong_on_question = 0
                    model.failed.append(now)
                    # Locked exactly when max_questions questions failed within the window.
                    now_locked = len(model.failed) >= policy.max_questions
                    assert (decision.outcome is Outcome.NOW_LOCKED) == now_locked
                    if now_locked:
                        model.locked_until, model.failed = now + policy.lockout, []
                    else:
                        assert decision.outcome is Outcome.NEW_QUESTION
                else:
                    assert decision.outcome is Outcome.WRONG
        event(f"outcome {decision.outcome.value}")
        state = decision.state
        # Attempts never exceed the policy.
        assert 0 <= state.attempts_used <= policy.max_attempts
        assert 0 <= decision.attempts_remaining <= policy.max_attempts
        assert len(state.wrong_answers) == state.attempts_used
        if decision.retry_after is not None:
            assert 0 < decision.retry_after <= lockout_seconds
        retry_after = captcha.lock_status(state, now=now, policy=policy)
        assert retry_after is None or 0 < retry_after <= lockout_seconds
        if decision.outcome is Outcome.PASSED:
            # Passed for good: any later answer passes too. Then start over as a new user.
            again = captcha.submit_answer(
                state, answer=_wrong(state, 1), now=now, policy=policy, pending=PENDING
            )
            assert again.outcome is Outcome.PASSED
            state, model = CaptchaState(), Model()


@bounded(100)
@given(
    policy=policies,
    script=st.lists(
        st.one_of(
            st.just(("request", 0)),
            st.tuples(st.just("wrong"), st.integers(min_value=1, max_value=4)),
        ),
        max_size=80,
    ),
)
def test_a_user_is_locked_exactly_after_attempts_times_questions_counted_wrong_answers(
    policy, script
):
    """Without time passing (nothing expires, nothing is forgotten): requests and repeated wrong
    answers never count; the lock falls on the max_attempts·max_questions-th counted wrong answer
    and not one answer earlier; from then on every answer, even the right one, is refused."""
    limit = policy.max_attempts * policy.max_questions
    state, counted, seen = CaptchaState(), 0, set()  # seen: (question's session, wrong answer)
    for action, offset in script:
        if action == "request":
            decision = captcha.request_challenge(state, now=START, policy=policy, pending=PENDING)
            assert not decision.counted
        else:
            answer = _wrong(state, offset)
            decision = captcha.submit_answer(
                state, answer=answer, now=START, policy=policy, pending=PENDING
            )
            # Counted exactly when it is a new wrong answer to a live question, not locked out.
            new = state.session_id is not None and (state.session_id, answer) not in seen
            assert decision.counted == (new and counted < limit)
            if decision.counted:
                seen.add((state.session_id, answer))
        counted += decision.counted
        assert counted <= limit
        locked = captcha.lock_status(decision.state, now=START, policy=policy)
        assert (locked is not None) == (counted == limit)
        if decision.counted:
            assert (decision.outcome is Outcome.NOW_LOCKED) == (counted == limit)
        state = decision.state
    event("locked" if counted == limit else "not locked")
    if counted == limit:
        right = captcha.submit_answer(
            state, answer=state.answer or 0, now=START, policy=policy, pending=PENDING
        )
        assert right.outcome is Outcome.LOCKED
        assert 0 < right.retry_after <= policy.lockout.total_seconds()
        later = START + policy.lockout
        assert captcha.lock_status(state, now=later, policy=policy) is None
