"""Property-based tests (hypothesis) of the pure helpers: the captcha's maths, answer parsing and
state machine, the draw algorithm and its verifier, pagination cursors and CSV neutralising.

Every test is derandomized (the same examples on every run, so CI is deterministic) and small
enough that the whole file runs in a few seconds; ``HYPOTHESIS_EXAMPLES_FACTOR=10 pytest
tests/test_properties.py`` runs ten times as many examples.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from utils import captcha, draw
from utils.captcha import CaptchaPolicy, CaptchaState, Outcome, PendingRegistration
from utils.csv_export import csv_chunk, neutralise
from utils.cursors import InvalidCursor, decode_cursor, encode_cursor

FACTOR = int(os.environ.get("HYPOTHESIS_EXAMPLES_FACTOR", "1"))


def bounded(examples: int) -> settings:
    """Derandomized, no deadline (the machine may be busy), no example database."""
    return settings(max_examples=examples * FACTOR, deadline=None, derandomize=True, database=None)


# --- captcha: the questions ------------------------------------------------------------------

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


# --- captcha: answer parsing -------------------------------------------------------------------

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


# --- captcha: the state machine ----------------------------------------------------------------

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


# --- the draw ----------------------------------------------------------------------------------

seeds = st.binary(min_size=32, max_size=32).map(bytes.hex)
user_ids = st.integers(min_value=1, max_value=2**63 - 1)
entrant_lists = st.lists(user_ids, unique=True, max_size=120).map(sorted)


@bounded(40)
@given(seed=seeds, count=st.one_of(st.integers(0, 12), st.integers(0, 2000)))
def test_the_candidate_order_is_a_permutation(seed, count):
    order = list(draw.candidate_order(seed, count))
    assert sorted(order) == list(range(count))


@bounded(200)
@given(seed=seeds, bound=st.one_of(st.integers(1, 10), st.integers(1, 2**64)))
def test_the_random_stream_stays_below_its_bound(seed, bound):
    stream = draw.RandomStream(seed)
    for _ in range(5):
        assert 0 <= stream.below(bound) < bound


@bounded(20)
@given(seed=seeds, bound=st.integers(max_value=0))
def test_the_random_stream_refuses_an_empty_range(seed, bound):
    with pytest.raises(ValueError, match="positive"):
        draw.RandomStream(seed).below(bound)


@st.composite
def draw_inputs(draw_from):
    entrants = draw_from(entrant_lists)
    exclusions = draw_from(
        st.lists(st.sampled_from(entrants), unique=True) if entrants else st.just([])
    )
    outsiders = draw_from(st.lists(user_ids, max_size=3))
    eligible = draw.eligible_list(entrants, exclusions + outsiders)
    skipped = draw_from(
        st.lists(st.sampled_from(eligible), unique=True) if eligible else st.just([])
    )
    count = draw_from(st.integers(min_value=-1, max_value=len(entrants) + 3))
    return draw_from(seeds), entrants, exclusions, skipped, count


@bounded(100)
@given(inputs=draw_inputs())
def test_winners_are_distinct_eligible_entrants_never_excluded_or_skipped(inputs):
    seed, entrants, exclusions, skipped, count = inputs
    eligible = draw.eligible_list(entrants, exclusions)
    winners, reached = draw.select_winners(seed, eligible, count, skipped)
    assert len(winners) == len(set(winners)) == max(0, min(count, len(eligible) - len(skipped)))
    assert set(winners) <= set(eligible) <= set(entrants)
    assert not set(winners) & set(exclusions)
    assert not set(winners) & set(skipped)
    assert set(reached) <= set(skipped)
    # Deterministic: the same inputs, the same winners.
    assert draw.select_winners(seed, eligible, count, skipped) == (winners, reached)


def honest_record(seed, entrants, exclusions, skipped, count) -> dict:
    """A record built as the service builds one."""
    eligible = draw.eligible_list(entrants, exclusions)
    winners, reached = draw.select_winners(seed, eligible, count, skipped)
    record = {
        "giveaway_id": 1,
        "sequence": 1,
        "kind": "draw",
        "algorithm": draw.ALGORITHM,
        "algorithm_version": draw.ALGORITHM_VERSION,
        "commitment": draw.commitment_of(seed),
        "seed": seed,
        "entrants_hash": draw.entrants_digest(entrants),
        "entrant_count": len(entrants),
        "exclusions": list(exclusions),
        "requested_count": count,
        "winners": [{"position": i, "user_id": u} for i, u in enumerate(winners, start=1)],
        "skipped": [{"user_id": u, "reason": "not_subscribed"} for u in reached],
        "unclaimed_count": count - len(winners),
        "previous_hash": draw.GENESIS_HASH,
        "next_commitment": draw.commitment_of("cd" * 32),
    }
    record["record_hash"] = draw.record_digest(record)
    return record


@bounded(60)
@given(inputs=draw_inputs())
def test_an_honest_record_verifies(inputs):
    record = honest_record(*inputs)
    assert draw.verify_record(record, inputs[1]) == []
    assert draw.verify_chain([record]) == []


MUTATIONS = ("winners", "seed", "entrants", "exclusions", "requested_count")


@st.composite
def mutated(draw_from, field: str, rehash: bool):
    """An honest record with ``field`` changed (and, if ``rehash``, record_hash recomputed, as a
    forger would), and the entrant list the verifier is given."""
    seed, entrants, exclusions, skipped, count = draw_from(draw_inputs())
    record = honest_record(seed, entrants, exclusions, skipped, count)
    winners = [w["user_id"] for w in record["winners"]]
    if field == "exclusions" and not winners:
        # Nobody to hide: enter one user and draw one winner.
        entrants, exclusions, skipped, count = sorted({*entrants, 1}), [], [], 1
        record = honest_record(seed, entrants, exclusions, skipped, count)
        winners = [w["user_id"] for w in record["winners"]]
    given_entrants = entrants
    if field == "winners":
        others = [u for u in draw.eligible_list(entrants, exclusions) if u not in winners]
        choices = ["add"] + ["drop"] * bool(winners) + ["reverse"] * (len(winners) > 1)
        choices += ["swap"] * bool(others and winners)
        how = draw_from(st.sampled_from(choices))
        if how == "reverse":
            winners = winners[::-1]
        elif how == "drop":
            winners = winners[:-1]
        elif how == "add":
            winners = [*winners, draw_from(st.sampled_from(others) if others else user_ids)]
        else:
            winners = [*winners[:-1], draw_from(st.sampled_from(others))]
        record["winners"] = [{"position": i, "user_id": u} for i, u in enumerate(winners, 1)]
    elif field == "seed":
        record["seed"] = draw_from(seeds.filter(lambda other: other != seed))
    elif field == "entrants":
        if entrants and draw_from(st.booleans()):
            gone = draw_from(st.sampled_from(entrants))
            given_entrants = [u for u in entrants if u != gone]
        else:
            extra = draw_from(user_ids.filter(lambda u: u not in entrants))
            given_entrants = sorted([*entrants, extra])
    elif field == "exclusions":
        # Excluding a winner (a forger hiding who really won) must show.
        record["exclusions"] = sorted({*exclusions, draw_from(st.sampled_from(winners))})
    else:
        record["requested_count"] = draw_from(
            st.integers(-1, len(entrants) + 3).filter(lambda c: c != count)
        )
    if rehash:
        record["record_hash"] = draw.record_digest(record)
    return record, given_entrants


@pytest.mark.parametrize("rehash", [False, True], ids=["hash-left", "re-hashed"])
@pytest.mark.parametrize("field", MUTATIONS)
@bounded(25)
@given(data=st.data())
def test_a_record_with_any_single_field_changed_is_rejected(field, rehash, data):
    """Whether or not the forger recomputes record_hash (which is no signature), the verifier
    finds the change: the commitment, the entrants hash or the recomputed winners disagree."""
    record, entrants = data.draw(mutated(field, rehash), label="record")
    assert draw.verify_record(record, entrants)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
records = st.dictionaries(st.text(max_size=10), json_values, min_size=1, max_size=8)


@bounded(60)
@given(record=records, data=st.data())
def test_the_record_digest_changes_with_any_field_and_only_with_content(record, data):
    digest = draw.record_digest(record)
    # Key order and a stale record_hash do not matter.
    shuffled = dict(reversed(list(record.items())))
    assert draw.record_digest({**shuffled, "record_hash": "x" * 64}) == digest
    key = data.draw(st.sampled_from(sorted(record)), label="field")
    assume(key != "record_hash")
    value = data.draw(json_values, label="new value")
    assume(json.dumps(value, sort_keys=True) != json.dumps(record[key], sort_keys=True))
    assert draw.record_digest({**record, key: value}) != digest
    assert draw.record_digest({k: v for k, v in record.items() if k != key}) != digest


# --- cursors -----------------------------------------------------------------------------------

kinds = st.text(max_size=12)
positions = st.lists(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    max_size=4,
)


@bounded(150)
@given(kind=kinds, values=positions)
def test_a_cursor_decodes_to_what_was_encoded(kind, values):
    token = encode_cursor(kind, *values)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token)  # URL-safe, no padding
    assume(len(token) <= 512)
    assert decode_cursor(token, kind, len(values)) == values


@bounded(100)
@given(kind=kinds, other=kinds, values=positions, arity=st.integers(0, 5))
def test_a_cursor_never_decodes_as_another_kind_or_arity(kind, other, values, arity):
    token = encode_cursor(kind, *values)
    assume(len(token) <= 512 and (other, arity) != (kind, len(values)))
    with pytest.raises(InvalidCursor):
        decode_cursor(token, other, arity)


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@bounded(200)
@given(
    token=st.one_of(
        st.text(max_size=600),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
            max_size=80,
        ),
        st.binary(max_size=300).map(_b64),
        json_values.map(lambda value: _b64(json.dumps(value).encode())),
    ),
    kind=st.sampled_from(["entries", "history", "audit"]),
    arity=st.integers(0, 3),
)
def test_decoding_any_text_raises_nothing_but_invalid_cursor(token, kind, arity):
    try:
        values = decode_cursor(token, kind, arity)
    except InvalidCursor:
        return
    assert isinstance(values, list) and len(values) == arity


# --- CSV ---------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


@bounded(200)
@given(
    text=st.one_of(
        st.text(max_size=20),
        st.tuples(st.sampled_from(FORMULA_STARTS), st.text(max_size=10)).map("".join),
    )
)
def test_neutralised_text_never_starts_a_formula_and_only_formulas_change(text):
    result = neutralise(text)
    assert not result.startswith(FORMULA_STARTS)
    if text.startswith(FORMULA_STARTS):
        assert result == "'" + text
    else:
        assert result == text


@bounded(100)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False)))
def test_values_that_are_not_text_are_left_alone(value):
    assert neutralise(value) is value


@bounded(100)
@given(
    rows=st.lists(st.tuples(st.integers(), st.text(max_size=12), st.text(max_size=12)), max_size=6)
)
def test_a_csv_chunk_reads_back_with_only_its_text_columns_neutralised(rows):
    text = csv_chunk(rows, text_columns=[1])
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert len(read) == len(rows)
    for (number, typed, other), (number_cell, typed_cell, other_cell) in zip(
        rows, read, strict=True
    ):
        assert number_cell == str(number)
        assert typed_cell == neutralise(typed)
        assert not typed_cell.startswith(FORMULA_STARTS)
        assert other_cell == other
