"""Test vectors for the browser's verifier (``web/telegive-draw.js``), written by the Python one
(``utils/draw.py``): honest chains (version 1 with its entrant list, version 2 with a signed beacon
or none, empty and oversubscribed draws, ids beyond 2^53, more entrants than one chunk), every
forgery class the Python verifier refuses (tests/utils/test_draw_forgeries.py and more), random
single-field changes, inclusion proofs, canonical JSON and timestamps, each with Python's answer.

Each chain carries two verdicts: ``python``, what ``check_draw`` says with the BLS12-381 package,
and ``browser``, what it says without it (the signature left unchecked): the JavaScript must give
``browser`` exactly, problem for problem, in order. Run from the repository root:

    python -m tests.vectors.generate      # rewrites tests/vectors/draw-vectors.json

``tests/utils/test_draw_vectors.py`` checks that the committed file is what this writes now.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from unittest import mock

from devtools import drand_chain
from tests.utils.chains import (
    ENTRANTS_COMMITTED_AT,
    build_chain,
    edited,
    fixed_at,
    redraw,
    rehash,
    tree_of,
)
from utils import drand, draw

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PATH = Path(__file__).resolve().parent / "draw-vectors.json"
CHAIN = drand_chain.DEV_CHAIN
CHAIN_FACTS = {"hash": CHAIN.hash, "genesis_time": CHAIN.genesis_time, "period": CHAIN.period}

ENTRANTS = sorted(
    {int(hashlib.sha256(f"user-{i}".encode()).hexdigest()[:12], 16) for i in range(300)}
)
REFUSED = set(ENTRANTS[::4])  # the re-check turns these away, so the records carry skips
SEED_LABEL = "vectors"
REASON = 'не забрал приз 🎁 "quoted" \\ tab\t line\n\u2028 \x01 ～'


def round_of(sequence: int) -> int:
    """The beacon round a record's randomness_fixed_at fixes: the first after it."""
    return CHAIN.first_round_after(draw._moment(fixed_at(sequence)).timestamp())


def signed(sequence: int) -> dict:
    return drand_chain.beacon(round_of(sequence)) | {"chain_hash": CHAIN.hash}


def unchecked_kind(text: str) -> str:
    """What an unchecked item is about, in words both verifiers share."""
    if "needs the entrant list" in text:
        return "entrants"
    if "is unknown here" in text:
        return "chain"
    if "the beacon's signature" in text:
        return "signature"
    raise ValueError(text)


def verdict(records, entrants, chains, root, *, bls: bool) -> dict:
    """check_draw's answer, with or without the BLS12-381 package."""
    if bls:
        found = draw.check_draw(records, entrants, chains, root)
    else:
        missing = drand.VerifierMissing("the BLS12-381 package is not installed")
        with mock.patch.object(drand, "_bls", side_effect=missing):
            found = draw.check_draw(records, entrants, chains, root)
    return {
        "problems": found.problems,
        "unchecked": [unchecked_kind(text) for text in found.unchecked],
        "notes": found.notes,
    }


class Vectors:
    """The vectors in the order they are added."""

    def __init__(self) -> None:
        self.chains: list[dict] = []
        self.proofs: list[dict] = []

    def chain(
        self,
        name: str,
        records: object,
        *,
        entrants: Sequence[int] | None = None,
        chains: Sequence[drand.Chain] = (CHAIN,),
        root: str | None = None,
    ) -> dict:
        records = records if isinstance(records, list) else [records]
        entrants = list(entrants) if entrants is not None else None
        vector = {
            "name": name,
            "records": records,
            "entrants": entrants,
            "chains": [CHAIN_FACTS for chain in chains if chain == CHAIN],
            "witnessed_root": root,
            "python": verdict(records, entrants, chains, root, bls=True),
            "browser": verdict(records, entrants, chains, root, bls=False),
        }
        self.chains.append(vector)
        return vector

    def proof(self, name: str, proof: object, records_of: int | None) -> None:
        """A proof checked against the records of chain vector ``records_of`` (or none)."""
        records = self.chains[records_of]["records"] if records_of is not None else []
        self.proofs.append(
            {
                "name": name,
                "proof": proof,
                "records_of": records_of,
                "problems": draw.check_proof(proof, records),
            }
        )


def winners(record: dict) -> list[int]:
    return [w["user_id"] for w in record["winners"]]


def honest(vectors: Vectors) -> list[dict]:
    """Honest chains; returns the genuine version 2 chain the forgeries start from."""
    first = build_chain(
        ENTRANTS, [("draw", 6)], refused=REFUSED, seed_label=SEED_LABEL, beacon=signed
    )
    replaced = first[0]["winners"][1]["user_id"]
    steps = [("draw", 6), ("replace", replaced), ("add", 4)]
    genuine = build_chain(ENTRANTS, steps, refused=REFUSED, seed_label=SEED_LABEL, beacon=signed)
    for record in genuine[1:]:
        record["reason"] = REASON
    genuine[2]["extra"] = {"～": 1, "🎁": [2, 3.5, None, True], "é": "x"}
    rehash(genuine)
    vectors.chain("v2: a draw and two rerolls, a signed beacon, skips", genuine)
    vectors.chain("v2: the same chain with its entrant list", genuine, entrants=ENTRANTS)
    vectors.chain("v2: the same chain and the root a witness kept", genuine, root=tree_root())
    vectors.chain("v2: the beacon's chain unknown to the verifier", genuine, chains=())
    unchecked = build_chain(
        ENTRANTS, [("draw", 6)], refused=REFUSED, seed_label="unchecked-0", beacon=signed
    )
    skips = unchecked[0]["skipped"]
    assert len(skips) >= 2, "the seed label must give this draw two skips"
    for index, entry in enumerate(skips):  # DRAW_RECHECK_SUBSCRIPTION=false with deferred entries
        if index % 2:
            entry.update(reason="excluded", status="excluded")
        else:
            entry["pending"] = True
    unchecked[0]["recheck_subscription"] = False
    rehash(unchecked)
    vectors.chain(
        "v2: no re-check; a pending entrant asked, an excluded one passed over", unchecked
    )
    off = build_chain(ENTRANTS, [("draw", 8), ("add", 3)], refused=REFUSED, seed_label="off")
    vectors.chain("v2: DRAW_BEACON=off", off)
    v1 = build_chain(
        ENTRANTS, [("draw", 8), ("add", 3)], refused=REFUSED, seed_label="v1", version=1
    )
    vectors.chain("v1: a draw and two rerolls with the entrant list", v1, entrants=ENTRANTS)
    vectors.chain("v1: without the entrant list", v1)
    vectors.chain("v2: no entrants", build_chain([], [("draw", 3)], beacon=signed))
    few = [11, 22, 33]
    vectors.chain(
        "v2: fewer entrants than prizes",
        build_chain(few, [("draw", 5), ("add", 2)], beacon=signed),
        entrants=few,
    )
    huge = sorted({2**63 - 1 - 7919 * i for i in range(40)})
    vectors.chain(
        "v2: ids beyond 2^53",
        build_chain(huge, [("draw", 4), ("add", 3)], refused=set(huge[::5]), beacon=signed),
        entrants=huge,
    )
    many = [5_000_000 + 3 * i for i in range(4096 + 700)]
    vectors.chain(
        "v2: more entrants than one chunk", build_chain(many, [("draw", 4)], beacon=signed)
    )
    return genuine


def tree_root() -> str:
    return tree_of(tuple(ENTRANTS)).root


def forge(vectors: Vectors, name: str, genuine: list[dict], change: Callable[[list], object]):
    """A forgery: ``change`` edits a copy of the genuine chain (and returns the records to
    publish, or None for the whole edited chain)."""
    records = edited(genuine)
    published = change(records)
    vectors.chain(name, records if published is None else published)


def forgeries(vectors: Vectors, genuine: list[dict]) -> None:
    """Every forgery class, as a forger would make it: edited, recomputed, re-hashed."""

    def a_exclusions_emptied(records):
        records[2]["exclusions"] = []
        redraw(records[2], ENTRANTS, REFUSED)
        rehash(records)

    def b_hidden_entrant(records):
        records[0]["exclusions"] = [genuine[1]["replaced_user_id"]]
        redraw(records[0], ENTRANTS, REFUSED)
        rehash(records)

    def c_lone_reroll(records):
        lone = records[1]
        lone["seed"] = "42" * 32
        lone["commitment"] = hashlib.sha256(bytes.fromhex(lone["seed"])).hexdigest()
        redraw(lone, ENTRANTS, REFUSED)
        lone["record_hash"] = draw.record_digest(lone)
        return [lone]

    def d_steered(records):
        record = records[0]
        non_winners = [u for u in ENTRANTS if u not in winners(genuine[0]) and u not in REFUSED]
        for friend in non_winners:
            for a in ENTRANTS[:12]:
                for b in ENTRANTS[:12]:
                    if a < b and friend not in (a, b):
                        record["exclusions"] = [a, b]
                        redraw(record, ENTRANTS, REFUSED)
                        if friend in winners(record):
                            rehash(records)
                            return None
        raise AssertionError("no pair of exclusions steers the draw")

    def e_outsider(records):
        records[0]["winners"][0]["user_id"] = max(ENTRANTS) + 1
        rehash(records)

    def f_skip_dropped(records):
        next(r for r in records if r["skipped"])["skipped"].pop(0)
        rehash(records)

    def another_root(records):
        records[2]["entrant_root"] = "ab" * 32
        rehash(records)

    def randomness_too_early(records):
        records[0]["randomness_fixed_at"] = "2025-12-31T23:00:00+00:00"
        rehash(records)

    def randomness_not_of_signature(records):
        records[1]["beacon"]["randomness"] = "cd" * 32
        redraw(records[1], ENTRANTS, REFUSED)
        rehash(records)

    def short_signature(records):
        records[0]["beacon"]["signature"] = records[0]["beacon"]["signature"][:-2]
        records[0]["beacon"]["randomness"] = drand.randomness_of(records[0]["beacon"]["signature"])
        redraw(records[0], ENTRANTS, REFUSED)
        rehash(records)

    def seed_changed(records):
        records[0]["seed"] = "77" * 32
        redraw(records[0], ENTRANTS, REFUSED)
        rehash(records)

    def not_rehashed(records):
        records[1]["winners"][0]["user_id"] = ENTRANTS[5]

    def broken_link(records):
        records[1]["previous_hash"] = "ef" * 32
        rehash(records, start=1)
        records[1]["previous_hash"] = "ef" * 32
        rehash(records, start=1)

    def unannounced_seed(records):
        records[2]["seed"] = "99" * 32
        records[2]["commitment"] = draw.commitment_of(records[2]["seed"])
        redraw(records[2], ENTRANTS, REFUSED)
        rehash(records)

    def version_changed(records):
        records[1]["algorithm_version"] = 1
        rehash(records)

    def kind_changed(records):
        records[1]["kind"] = "draw"
        rehash(records)

    def replaced_never_won(records):
        records[1]["replaced_user_id"] = next(u for u in ENTRANTS if u not in winners(genuine[0]))
        rehash(records)

    def first_replaces(records):
        records[0]["replaced_user_id"] = winners(genuine[0])[0]
        rehash(records)

    def replacement_of_two(records):
        records[1]["requested_count"] = 2
        records[1]["unclaimed_count"] = 1
        rehash(records)

    def repeated_winner(records):
        records[2]["winners"][0]["user_id"] = winners(genuine[0])[0]
        rehash(records)

    def positions_changed(records):
        records[0]["winners"][0]["position"] = 7
        rehash(records)

    def counts_changed(records):
        records[2]["unclaimed_count"] = 3
        rehash(records)

    def skipped_twice(records):
        record = next(r for r in records if r["skipped"])
        record["skipped"].append(dict(record["skipped"][0]))
        rehash(records)

    def skipped_without_recheck(records):
        next(r for r in records if r["skipped"])["recheck_subscription"] = False
        rehash(records)

    def gap(records):
        return [records[0], records[2]]

    def sequence_as_text(records):
        records[0]["sequence"] = "1"
        rehash(records)

    def malformed(field, value):
        def change(records):
            records[1][field] = value
            rehash(records)

        return change

    def entry_without_proof(records):
        del records[0]["winners"][3]["proof"]
        rehash(records)

    classes = [
        ("A: a reroll that forgets its exclusions", a_exclusions_emptied),
        ("B: a first draw that hides an entrant", b_hidden_entrant),
        ("C: a lone reroll with a seed chosen by hand", c_lone_reroll),
        ("C: a chain with a gap", gap),
        ("D: a first draw steered to a chosen winner", d_steered),
        ("E: a winner who never entered", e_outsider),
        ("F: a skip dropped from a record", f_skip_dropped),
        ("a record with another root than the first", another_root),
        ("randomness fixed before the list was committed", randomness_too_early),
        ("beacon randomness that is not the SHA-256 of its signature", randomness_not_of_signature),
        ("a signature one byte short", short_signature),
        ("a seed that is not the committed one", seed_changed),
        ("a record edited and not re-hashed", not_rehashed),
        ("a broken previous_hash", broken_link),
        ("a reroll seed nobody announced", unannounced_seed),
        ("a reroll of another version", version_changed),
        ("a reroll that says it is a draw", kind_changed),
        ("a replaced user who never won", replaced_never_won),
        ("a first draw that replaces someone", first_replaces),
        ("a replacement of two winners", replacement_of_two),
        ("a winner who won before", repeated_winner),
        ("winner positions changed", positions_changed),
        ("counts that do not add up", counts_changed),
        ("a skipped user listed twice", skipped_twice),
        ("skips without a re-check", skipped_without_recheck),
        ("malformed: a sequence in quotes", sequence_as_text),
        ("malformed: a float for a count", malformed("requested_count", 1.0)),
        ("malformed: true for a user id", malformed("replaced_user_id", True)),
        ("malformed: an unknown algorithm", malformed("algorithm", "telegive-draw-v9")),
        ("malformed: a time without an offset", malformed("drawn_at", "2026-01-01T00:03:00")),
        ("malformed: an impossible date", malformed("committed_at", "2026-02-30T00:00:00+00:00")),
        ("malformed: a beacon without its signature", malformed("beacon", {"round": 1})),
        ("malformed: a record without exclusions", malformed("exclusions", None)),
        ("malformed: a winner without a proof", entry_without_proof),
    ]
    for name, change in classes:
        forge(vectors, name, genuine, change)

    def later_round(sequence: int) -> dict:
        return drand_chain.beacon(round_of(sequence) + 1) | {"chain_hash": CHAIN.hash}

    def another_rounds_signature(sequence: int) -> dict:
        signature = drand_chain.sign(round_of(sequence) - 1)
        return {
            "round": round_of(sequence),
            "randomness": drand.randomness_of(signature),
            "signature": signature,
            "chain_hash": CHAIN.hash,
        }

    steps = [("draw", 8), ("add", 3)]
    for name, beacon in (
        ("a later beacon round than the first after the close", later_round),
        ("another round's signature (only BLS can tell)", another_rounds_signature),
    ):
        chain = build_chain(ENTRANTS, steps, refused=REFUSED, seed_label=name, beacon=beacon)
        vectors.chain(name, chain)

    padded = sorted([*ENTRANTS, max(ENTRANTS) + 7])
    relisted = build_chain(
        padded, [("draw", 6)], refused=REFUSED, seed_label=SEED_LABEL, beacon=signed
    )
    vectors.chain("G: a list re-committed after the draw, from its root alone", relisted)
    vectors.chain("G: the same, with the published list", relisted, entrants=ENTRANTS)
    vectors.chain("G: the same, against the witnessed root", relisted, root=tree_root())

    v1 = build_chain(
        ENTRANTS,
        [("draw", 8), ("add", 3)],
        refused=REFUSED,
        seed_label="v1-forged",
        version=1,
    )
    v1[1]["exclusions"] = []
    redraw(v1[1], ENTRANTS, REFUSED)
    rehash(v1)
    vectors.chain("v1: a reroll that forgets its exclusions", v1, entrants=ENTRANTS)
    stood = edited(genuine)
    stood[0]["winners"][0]["leaf_index"] += 1
    rehash(stood)
    vectors.chain("v2 with the list: a winner at another leaf", stood, entrants=ENTRANTS)


ODD_VALUES = [0, 1, -1, 2**53 + 1, 2**63, 2**64 + 5, 1.5, True, False, None, "", "x", [], {}]


def mutations(vectors: Vectors, count: int = 30) -> None:
    """Random single-field changes of a small genuine chain, re-hashed (a fixed random
    sequence)."""
    few = ENTRANTS[:40]
    genuine = build_chain(few, [("draw", 4), ("add", 2)], refused=set(few[::3]), beacon=signed)
    rng = random.Random(20261129)  # noqa: S311 - a fixed sequence, so the file is reproducible
    made = 0
    while made < count:
        records = edited(genuine)
        record = rng.choice(records)
        target, field = record, rng.choice(sorted(record))
        if field in ("winners", "skipped") and record[field] and rng.random() < 0.7:
            target = rng.choice(record[field])
            field = rng.choice(sorted(target))
        if field == "beacon" and record["beacon"] and rng.random() < 0.7:
            target = record["beacon"]
            field = rng.choice(sorted(target))
        old = target[field]
        choices = [*ODD_VALUES, "ab" * 32, [few[3]], rng.choice(few)]
        if isinstance(old, int) and not isinstance(old, bool):
            choices += [old + 1, old - 1]
        target[field] = rng.choice(choices)
        if target[field] == old and type(target[field]) is type(old):
            continue
        if field != "record_hash":
            rehash(records)
        made += 1
        vectors.chain(f"mutation {made}: {field} = {target[field]!r:.40}", records)


def proofs(vectors: Vectors) -> None:
    """Inclusion proofs against the first vector's chain (the genuine one)."""
    tree = tree_of(tuple(ENTRANTS))
    index = 123
    proof = tree.proof(index)
    honest_proof = {
        "giveaway_id": 7,
        "user_id": ENTRANTS[index],
        "algorithm": draw.ALGORITHM,
        "algorithm_version": 2,
        "entrant_root": tree.root,
        "entrant_count": len(ENTRANTS),
        "entrants_committed_at": ENTRANTS_COMMITTED_AT,
        "leaf_index": proof.leaf_index,
        "salt": proof.salt,
        "leaf": draw.leaf_hash(bytes.fromhex(proof.salt), ENTRANTS[index]).hex(),
        "proof": proof.path,
    }
    other = tree_of(tuple(ENTRANTS[:-1]))
    last = tree.proof(len(ENTRANTS) - 1)
    cases = [
        ("an entrant's proof", honest_proof),
        ("another id with that proof", {**honest_proof, "user_id": ENTRANTS[index] + 1}),
        (
            "a proof against another list",
            {**honest_proof, "entrant_root": other.root, "entrant_count": len(ENTRANTS) - 1},
        ),
        ("another count", {**honest_proof, "entrant_count": len(ENTRANTS) + 1}),
        ("a hash too many", {**honest_proof, "proof": [*proof.path, "00" * 32]}),
        ("a hash too few", {**honest_proof, "proof": proof.path[:-1]}),
        ("a place out of the list", {**honest_proof, "leaf_index": len(ENTRANTS)}),
        ("a short salt", {**honest_proof, "salt": proof.salt[:-2]}),
        ("a string for the user id", {**honest_proof, "user_id": str(ENTRANTS[index])}),
        (
            "the last entrant's proof",
            {
                **honest_proof,
                "user_id": ENTRANTS[-1],
                "leaf_index": last.leaf_index,
                "salt": last.salt,
                "proof": last.path,
            },
        ),
        ("not an object", [honest_proof]),
    ]
    for name, document in cases:
        vectors.proof(name, document, 0)
    vectors.proof("an entrant's proof, no records", honest_proof, None)


CANONICAL = [
    {"b": 1, "a": [True, False, None], "c": {"z": "", "y": -0}},
    {"é": "ü", "～": 1, "🎁": 2, "a\u2028b": "\u2029", "\x7f": '\x00\x1f"\\/'},
    {"ints": [2**53, 2**53 + 1, -(2**63), 2**64 + 1, 10**30]},
    {"floats": [1.0, 0.1, -0.0, 1e16, 1.5e16, 1e-5, 0.0001, 123456789.125, 1.7976931348623157e308]},
    {"reason": REASON, "text": "\U0001f600 emoji \ud7ff \ue000 \uffff"},
]

MOMENTS = [
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00Z",
    "2026-11-29T19:50:08.123456+00:00",
    "2026-11-29 19:50:08.5+02:30",
    "2026-01-01T00:00:00-05:00",
    "2026-01-01T00:00:00",
    "2026-02-30T00:00:00+00:00",
    "2026-01-01T25:00:00+00:00",
    "yesterday",
    "",
]


def micros(value: str) -> int:
    """Microseconds since the epoch, exactly."""
    return (draw._moment(value) - EPOCH) // timedelta(microseconds=1)


STREAM_BOUNDS = [1, 2, 3, 10, 300, 2**32 + 1, 2**53 + 3, 2**63 + 1, 2**63 + 1, 2**64 - 1, 2**63 + 1]


def streams() -> list[dict]:
    """The random stream (steps 4 and 5) and the candidate order (step 6), alone: bounds near
    2^64 make rejection sampling refuse about every second number."""
    found = []
    for version in (1, 2):
        for label in ("a", "b"):
            seed = hashlib.sha256(f"stream-{version}-{label}".encode()).hexdigest()
            stream = draw.RandomStream(seed, version)
            found.append(
                {
                    "seed": seed,
                    "version": version,
                    "bounds": STREAM_BOUNDS,
                    "values": [stream.below(bound) for bound in STREAM_BOUNDS],
                    "calls": stream._counter,
                    "orders": {
                        str(count): list(islice(draw.candidate_order(seed, count, version), 12))
                        for count in (1, 7, 300, 2**40, 2**63 + 1)
                    },
                }
            )
    return found


def build() -> dict:
    """Every vector, as the file holds them."""
    vectors = Vectors()
    genuine = honest(vectors)
    forgeries(vectors, genuine)
    mutations(vectors)
    proofs(vectors)
    chain = drand_chain.DEV_CHAIN
    return {
        "about": "Written by tests/vectors/generate.py from utils/draw.py; do not edit by hand.",
        "chains": vectors.chains,
        "proofs": vectors.proofs,
        "streams": streams(),
        "canonical": [
            {
                "json": json.dumps(value),
                "canonical": json.dumps(
                    value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ),
                "sha256": hashlib.sha256(
                    json.dumps(
                        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                    ).encode("utf-8")
                ).hexdigest(),
            }
            for value in CANONICAL
        ],
        "moments": [
            {
                "value": value,
                "micros": micros(value) if draw._is_moment(value) else None,
                "first_round": (
                    chain.first_round_after(draw._moment(value).timestamp())
                    if draw._is_moment(value)
                    else None
                ),
            }
            for value in MOMENTS
        ],
    }


def render() -> str:
    """The file's text."""
    document = build()
    lines = [
        f"  {json.dumps(key)}: [\n"
        + ",\n".join(f"   {json.dumps(item, ensure_ascii=False)}" for item in value)
        + "\n  ]"
        if isinstance(value, list)
        else f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in document.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
