"""Properties (hypothesis) of the draw: the random stream, the candidate order, winner selection,
and the verifier, which accepts an honest record or chain and rejects any single changed field."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.utils.chains import build_chain, rehash
from tests.utils.strategies import bounded, json_values
from utils import draw

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
        "algorithm_version": 1,  # the list-based rules, shared by both versions
        "commitment": draw.commitment_of(seed),
        "seed": seed,
        "entrants_hash": draw.entrants_digest(entrants),
        "entrant_count": len(entrants),
        "exclusions": list(exclusions),
        "requested_count": count,
        "winners": [{"position": i, "user_id": u} for i, u in enumerate(winners, start=1)],
        "skipped": [{"user_id": u, "reason": "not_subscribed"} for u in reached],
        "unclaimed_count": count - len(winners),
        "replaced_user_id": None,
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
    if record["requested_count"] >= 0:  # the service never asks for fewer than no winners
        # As a chain of one, it is a first draw, which excludes no one.
        assert (draw.verify_chain([record]) == []) == (record["exclusions"] == [])


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


@st.composite
def honest_chains(draw_from):
    """A draw and 0-3 rerolls (a replacement or added winners) over random entrants, some of whom
    the re-check refuses, built as the service builds them; and the entrant list."""
    entrants = draw_from(st.lists(user_ids, unique=True, max_size=40).map(sorted))
    refused = draw_from(st.sets(st.sampled_from(entrants)) if entrants else st.just(set()))
    label = draw_from(st.integers(0, 2**32))
    steps = [("draw", draw_from(st.integers(0, 8)))]
    chain = build_chain(entrants, steps, refused=refused, seed_label=label)
    for _ in range(draw_from(st.integers(0, 3))):
        current = sorted(draw.winners_after(chain))
        if current and draw_from(st.booleans()):
            steps.append(("replace", draw_from(st.sampled_from(current))))
        else:
            steps.append(("add", draw_from(st.integers(1, 4))))
        chain = build_chain(entrants, steps, refused=refused, seed_label=label)
    return chain, entrants


@bounded(60)
@given(honest=honest_chains())
def test_an_honest_chain_verifies(honest):
    chain, entrants = honest
    assert draw.verify_draw(chain, entrants) == []
    assert draw.verify_chain(chain) == []


# Every field the verifier derives or recomputes. The others (giveaway_id, committed_at,
# drawn_at, reason, recheck_subscription, a skip's reason and status) describe the draw without
# deciding it: a re-hashed edit of them verifies, as the record hash is no signature.
DECIDING_FIELDS = (
    "sequence",
    "kind",
    "algorithm",
    "algorithm_version",
    "commitment",
    "seed",
    "entrants_hash",
    "entrant_count",
    "exclusions",
    "requested_count",
    "winners",
    "skipped",
    "unclaimed_count",
    "replaced_user_id",
    "next_commitment",
    "previous_hash",
    "entrant_root",
    "entrants_committed_at",
    "randomness_fixed_at",
)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)


def changed_value(draw_from, value, entrants: list[int]):
    """Another value for a field: near the old one most of the time, any JSON value sometimes."""
    someone = st.sampled_from(entrants) if entrants else user_ids
    if draw_from(st.integers(0, 9)) == 0:
        return draw_from(json_values)
    if value is None or isinstance(value, int):
        return draw_from(
            st.one_of(
                st.none(),
                someone,
                st.integers(-3, 3).map(lambda delta: (value or 0) + delta),
            )
        )
    if isinstance(value, str):
        if len(value) == 64:
            return draw_from(st.one_of(hex64, st.just(value.upper())))
        return draw_from(st.sampled_from(["draw", "reroll", "telegive-draw-v2"]))
    items = list(value)
    how = draw_from(st.sampled_from(["add", "drop", "reverse", "replace", "reposition"]))
    if how == "add":
        user_id = draw_from(someone)
        new = {"position": len(items) + 1, "user_id": user_id, "reason": "not_subscribed"}
        items.append(user_id if not items or isinstance(items[0], int) else new)
    elif how == "drop" and items:
        items.pop(draw_from(st.integers(0, len(items) - 1)))
    elif how == "reverse":
        items.reverse()
    elif items:
        index = draw_from(st.integers(0, len(items) - 1))
        if isinstance(items[index], int):
            items[index] = draw_from(someone)
        else:
            field = "position" if how == "reposition" and "position" in items[index] else "user_id"
            items[index] = {**items[index], field: draw_from(st.integers(-1, 50) | someone)}
    return items


@bounded(300)
@given(honest=honest_chains(), data=st.data())
def test_a_chain_with_any_single_field_changed_and_re_hashed_does_not_verify(honest, data):
    """A forger edits one deciding field of one record and re-hashes the chain from there with
    the project's digest: the verifier refuses, unless the edit changes nothing."""
    chain, entrants = honest
    index = data.draw(st.integers(0, len(chain) - 1), label="record")
    field = data.draw(st.sampled_from(DECIDING_FIELDS), label="field")
    record = chain[index]
    value = changed_value(data.draw, record[field], entrants)
    assume(json.dumps(value, sort_keys=True) != json.dumps(record[field], sort_keys=True))
    record[field] = value
    rehash(chain, index)
    if draw.verify_draw(chain, entrants):
        return
    # What the chain alone cannot witness: the last record's announcement of the next seed (the
    # next reroll checks it), and whom a reroll that found nobody replaced.
    last = index == len(chain) - 1
    assert (field == "next_commitment" and last) or (
        field == "replaced_user_id" and not record["winners"] and record["requested_count"] == 1
    ), f"{field} of record {index + 1} changed to {value!r} and the chain still verifies"
