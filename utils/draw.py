#!/usr/bin/env python3
"""Telegive's winner draw: the reference implementation and a standalone verifier.

This file needs nothing but Python's standard library (3.9+): copy it alone and run

    python3 draw.py verify --record draw.json --entrants entrants.txt

where ``draw.json`` is the published draw document (``GET /api/participants/{id}/draw``: every
record of the giveaway, from its first draw) and ``entrants.txt`` the published entrant list
(``GET /api/participants/{id}/draw/entrants``, one user id per line). It prints whether the winners
follow from them, and exits 0 only if they do. Nothing a record says about its own rules is
trusted: the exclusions, the replaced winner, the positions and the counts are derived from the
records before it, so a chain that does not start at its first draw, or has a gap, is refused
("NOT VERIFIED: incomplete chain").

The algorithm, ``telegive-draw`` version 1:

1. Commitment. A 32-byte seed comes from ``secrets``; its SHA-256 (hex) is published before the
   draw. The draw reveals the seed; ``sha256(seed) == commitment`` must hold.
2. Entrants. The canonical list is every entrant's Telegram user id, unique, sorted ascending;
   ``entrants_hash`` is the SHA-256 of the ids written in decimal, each followed by ``\\n``.
3. Eligible list. The canonical list without the record's ``exclusions``, order kept. The first
   draw excludes no one; a reroll excludes every user who won in any earlier record (replaced
   winners included), ascending.
4. Random stream. The i-th 64-bit number (i = 0, 1, 2, ...) is the first 8 bytes, big-endian, of
   ``SHA-256(seed || b"telegive-draw-v1" || i as 8 bytes big-endian)``.
5. Uniform choice in [0, m): take numbers x from the stream, rejecting x >= 2^64 - (2^64 mod m);
   the choice is x mod m (rejection removes modulo bias).
6. Candidate order. A Fisher-Yates shuffle of positions 0..n-1 of the eligible list, run lazily:
   step k (k = 0, 1, ...) chooses j uniformly in [k, n), takes position j as the k-th candidate and
   moves position k into slot j.
7. Winners. Candidates in that order become winners, except those listed in ``skipped`` (found
   no longer subscribed at draw time), until ``requested_count`` winners are found or the
   candidates run out (``unclaimed_count`` prizes stay unclaimed). Positions: the first draw's
   winners are 1, 2, ...; a reroll either replaces one current winner (``replaced_user_id``, one
   winner requested), whose successor takes its position, or adds winners after the highest
   current position.
8. Chain. The first record (sequence 1) is the draw; rerolls follow it, sequence 2, 3, ... Each
   record carries the SHA-256 of the previous record of its giveaway (``previous_hash``; 64 zeros
   for the first) and its own ``record_hash``: the SHA-256 of the
   record's canonical JSON (keys sorted, no spaces, UTF-8) without ``record_hash``. A reroll uses
   the seed committed as ``next_commitment`` by the record before it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Sequence

ALGORITHM = "telegive-draw"
ALGORITHM_VERSION = 1
_DOMAIN = b"telegive-draw-v1"
_TWO_64 = 1 << 64
GENESIS_HASH = "0" * 64
INCOMPLETE_CHAIN = "incomplete chain"


def new_seed() -> str:
    """32 fresh bytes from ``secrets``, as hex."""
    return secrets.token_bytes(32).hex()


def commitment_of(seed_hex: str) -> str:
    """SHA-256 of the seed's bytes, as hex: what is published before the draw."""
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def entrants_digest(sorted_user_ids: Iterable[int]) -> str:
    """SHA-256 of the canonical entrant list (ascending decimal ids, one per line)."""
    digest = hashlib.sha256()
    batch: list[str] = []
    for user_id in sorted_user_ids:
        batch.append(f"{user_id}\n")
        if len(batch) >= 65536:
            digest.update("".join(batch).encode("ascii"))
            batch.clear()
    digest.update("".join(batch).encode("ascii"))
    return digest.hexdigest()


class RandomStream:
    """The deterministic stream of 64-bit numbers derived from a seed (step 4)."""

    def __init__(self, seed_hex: str) -> None:
        self._prefix = bytes.fromhex(seed_hex) + _DOMAIN
        self._counter = 0

    def next_u64(self) -> int:
        block = hashlib.sha256(self._prefix + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        return int.from_bytes(block[:8], "big")

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound) (step 5)."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        limit = _TWO_64 - (_TWO_64 % bound)
        while True:
            value = self.next_u64()
            if value < limit:
                return value % bound


def candidate_order(seed_hex: str, count: int) -> Iterator[int]:
    """Positions 0..count-1 in the seed's shuffled order, produced lazily (step 6)."""
    stream = RandomStream(seed_hex)
    moved: dict[int, int] = {}
    for step in range(count):
        chosen = step + stream.below(count - step)
        yield moved.get(chosen, chosen)
        moved[chosen] = moved.get(step, step)
        moved.pop(step, None)


def eligible_list(sorted_entrants: Sequence[int], exclusions: Iterable[int]) -> list[int]:
    """The canonical list without the excluded users (step 3)."""
    excluded = set(exclusions)
    if not excluded:
        return list(sorted_entrants)
    return [user_id for user_id in sorted_entrants if user_id not in excluded]


def select_winners(
    seed_hex: str, eligible: Sequence[int], count: int, skipped: Iterable[int] = ()
) -> tuple[list[int], list[int]]:
    """The winners (in position order) and the skipped users actually reached (step 7)."""
    skip = set(skipped)
    winners: list[int] = []
    reached: list[int] = []
    if count <= 0:
        return winners, reached
    for position in candidate_order(seed_hex, len(eligible)):
        user_id = eligible[position]
        if user_id in skip:
            reached.append(user_id)
            continue
        winners.append(user_id)
        if len(winners) == count:
            break
    return winners, reached


def record_digest(record: dict) -> str:
    """SHA-256 of a record's canonical JSON, ``record_hash`` left out (step 8)."""
    body = {key: value for key, value in record.items() if key != "record_hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_record(record: dict, sorted_entrants: Sequence[int]) -> list[str]:
    """Every reason the record alone does not follow from the entrants and its own exclusions;
    empty when it does (``verify_draw`` also derives the exclusions from the chain)."""
    problems = _shape_problems(record)
    if problems:
        return problems
    if commitment_of(record["seed"]) != record["commitment"]:
        problems.append("the seed does not match the published commitment")
    if record_digest(record) != record.get("record_hash"):
        problems.append("record_hash does not match the record's content")
    return problems + _outcome_problems(record, sorted_entrants)


def verify_chain(records: Sequence[dict]) -> list[str]:
    """Every break in a giveaway's chain of records (ordered by sequence, from the first draw),
    each rule derived from the records before, never read from the record that claims it."""
    if not records:
        return [f"{INCOMPLETE_CHAIN}: no record"]
    gaps = []
    for expected, record in enumerate(records, start=1):
        sequence = record.get("sequence") if isinstance(record, dict) else None
        if type(sequence) is not int or sequence != expected:
            where = "the first draw (sequence 1)" if expected == 1 else f"record {expected}"
            gaps.append(f"{INCOMPLETE_CHAIN}: record {sequence!r} stands where {where} should be")
    if gaps:
        return gaps
    problems: list[str] = []
    history = _History()
    for record in records:
        label = f"record {record['sequence']}"
        shape = _shape_problems(record)
        if shape:
            problems += [f"{label}: {p}" for p in shape]
            break  # what follows cannot be derived from a malformed record
        problems += [f"{label}: {p}" for p in history.check(record)]
        history.apply(record)
    return problems


def verify_draw(records: Sequence[dict], sorted_entrants: Sequence[int]) -> list[str]:
    """Every reason a giveaway's whole chain does not follow from its seeds and entrant list."""
    problems = verify_chain(records)
    if any(problem.startswith(INCOMPLETE_CHAIN) for problem in problems):
        return problems
    for record in records:
        if not _shape_problems(record):
            problems += [
                f"record {record['sequence']}: {p}"
                for p in _outcome_problems(record, sorted_entrants)
            ]
    return problems


def winners_after(records: Sequence[dict]) -> dict[int, int]:
    """The current winners (user id: position) once every record is applied, rerolls included
    (a malformed record, which the verifier reports, is left out)."""
    history = _History()
    for record in records:
        if not _shape_problems(record):
            history.apply(record)
    return dict(history.current)


class _History:
    """What the records so far establish: the chain's tip and who won."""

    def __init__(self) -> None:
        self.first = True
        self.previous_hash = GENESIS_HASH
        self.next_commitment: str | None = None
        self.ever_won: set[int] = set()
        self.current: dict[int, int] = {}  # user id: position

    def check(self, record: dict) -> list[str]:
        """Every rule of the chain the record breaks, given the records before it."""
        problems: list[str] = []
        first = self.first
        if record_digest(record) != record.get("record_hash"):
            problems.append("record_hash does not match its content")
        if record["previous_hash"] != self.previous_hash:
            problems.append("previous_hash does not link to the record before it")
        if commitment_of(record["seed"]) != record["commitment"]:
            problems.append("the seed does not match its commitment")
        if not first and record["commitment"] != self.next_commitment:
            problems.append("commitment is not the one the previous record announced")
        kind = "draw" if first else "reroll"
        if record["kind"] != kind:
            problems.append(f"kind should be {kind!r}: only the first record is a draw")
        problems += self._check_exclusions(record["exclusions"], first)
        replaced = record["replaced_user_id"]
        if replaced is not None and first:
            problems.append("a first draw replaces no one")
        elif replaced is not None and replaced not in self.current:
            problems.append(f"replaced user {replaced} is not a current winner")
        elif replaced is not None and record["requested_count"] != 1:
            problems.append("a replacement draws exactly one winner (requested_count 1)")
        winners = [winner["user_id"] for winner in record["winners"]]
        if len(set(winners)) != len(winners):
            problems.append("a user wins twice in the record")
        repeated = [user_id for user_id in winners if user_id in self.ever_won]
        if repeated:
            problems.append(f"winners {_some(repeated)} have won before")
        positions = [winner["position"] for winner in record["winners"]]
        expected = self._positions(replaced, len(winners))
        if positions != expected:
            problems.append(f"winner positions should be {expected}, the record says {positions}")
        if len(winners) + record["unclaimed_count"] != record["requested_count"] or not (
            0 <= len(winners) <= record["requested_count"]
        ):
            problems.append("winners and unclaimed prizes do not add up to requested_count")
        skipped = [entry["user_id"] for entry in record["skipped"]]
        if set(skipped) & set(winners) or len(set(skipped)) != len(skipped):
            problems.append("a skipped user is listed twice or also as a winner")
        if skipped and record.get("recheck_subscription") is False:
            problems.append("entries are skipped although no subscription re-check was made")
        return problems

    def _check_exclusions(self, claimed: list[int], first: bool) -> list[str]:
        expected = [] if first else sorted(self.ever_won)
        if claimed == expected:
            return []
        if first:
            return [f"a first draw excludes no one, the record excludes {_some(claimed)}"]
        missing = sorted(self.ever_won - set(claimed))
        extra = sorted(set(claimed) - self.ever_won)
        return [
            "exclusions should be everyone who won in an earlier record (sorted): "
            f"{len(missing)} earlier winner(s) missing {_some(missing)}, "
            f"{len(extra)} user(s) who never won {_some(extra)}"
        ]

    def _positions(self, replaced: int | None, count: int) -> list[int]:
        if self.first:
            return list(range(1, count + 1))
        if replaced is not None and replaced in self.current:
            return [self.current[replaced]] * count
        start = max(self.current.values(), default=0) + 1
        return list(range(start, start + count))

    def apply(self, record: dict) -> None:
        """Take the record's winners (and its replacement) as established."""
        if record.get("replaced_user_id") is not None:
            self.current.pop(record["replaced_user_id"], None)
        for winner in record["winners"]:
            self.ever_won.add(winner["user_id"])
            self.current[winner["user_id"]] = winner["position"]
        self.first = False
        self.previous_hash = record.get("record_hash", "")
        self.next_commitment = record.get("next_commitment")


def _outcome_problems(record: dict, sorted_entrants: Sequence[int]) -> list[str]:
    """Whether the record's winners, skips and counts follow from its seed, entrant list and
    exclusions (a well-formed record of a known algorithm)."""
    problems: list[str] = []
    if entrants_digest(sorted_entrants) != record["entrants_hash"]:
        problems.append("the entrant list is not the one the draw used (entrants_hash differs)")
    if len(sorted_entrants) != record["entrant_count"]:
        problems.append(
            f"entrant_count is {record['entrant_count']}, the list has {len(sorted_entrants)}"
        )
    eligible = eligible_list(sorted_entrants, record["exclusions"])
    skipped = [entry["user_id"] for entry in record["skipped"]]
    expected, reached = select_winners(record["seed"], eligible, record["requested_count"], skipped)
    actual = [winner["user_id"] for winner in record["winners"]]
    if actual != expected:
        problems.append(f"winners should be {expected}, the record says {actual}")
    if reached != skipped:
        problems.append(
            "the skipped users are not exactly those reached before the last winner, in order"
        )
    unclaimed = record["requested_count"] - len(expected)
    if record["unclaimed_count"] != unclaimed:
        problems.append(f"unclaimed_count should be {unclaimed}")
    return problems


_HEX64 = re.compile("[0-9a-f]{64}")
_HEX_FIELDS = ("seed", "commitment", "next_commitment", "previous_hash", "entrants_hash")
_INT_FIELDS = ("sequence", "entrant_count", "requested_count", "unclaimed_count")


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not float: JSON's true and 1.0 are other records


def _shape_problems(record: object) -> list[str]:
    """Why the record is not a well-formed record of this algorithm; empty when it is."""
    if not isinstance(record, dict):
        return ["malformed record: not a JSON object"]
    version = record.get("algorithm_version")
    if record.get("algorithm") != ALGORITHM or not _is_int(version) or version != ALGORITHM_VERSION:
        return [
            f"unknown algorithm {record.get('algorithm')!r} v{record.get('algorithm_version')!r}"
        ]
    wrong = [f for f in _HEX_FIELDS if not isinstance(record.get(f), str)]
    wrong += [f for f in _HEX_FIELDS if f not in wrong and not _HEX64.fullmatch(record[f])]
    wrong += [f for f in _INT_FIELDS if not _is_int(record.get(f))]
    if record.get("kind") not in ("draw", "reroll"):
        wrong.append("kind")
    replaced = record.get("replaced_user_id")
    if "replaced_user_id" not in record or (replaced is not None and not _is_int(replaced)):
        wrong.append("replaced_user_id")
    exclusions = record.get("exclusions")
    if not isinstance(exclusions, list) or not all(map(_is_int, exclusions)):
        wrong.append("exclusions")
    for field, keys in (("winners", ("position", "user_id")), ("skipped", ("user_id",))):
        entries = record.get(field)
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and all(_is_int(entry.get(key)) for key in keys)
            for entry in entries
        ):
            wrong.append(field)
    return [f"malformed record: {', '.join(wrong)}"] if wrong else []


def _some(user_ids: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(map(str, user_ids[:limit]))
    return f"[{shown}{', ...' if len(user_ids) > limit else ''}]"


def _read_entrants(path: str) -> list[int]:
    with open(path, encoding="ascii") as handle:
        ids = [int(line) for line in handle if line.strip()]
    return sorted(set(ids))


def _load_records(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        return document["records"]
    if isinstance(document, dict) and isinstance(document.get("draw"), dict):
        return [document["draw"]]
    if isinstance(document, list):
        return document
    return [document]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Telegive draw record.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check a draw record against its entrant list")
    verify.add_argument("--record", required=True, help="the published draw record (JSON)")
    verify.add_argument("--entrants", required=True, help="the entrant list, one user id per line")
    arguments = parser.parse_args(argv)

    records = _load_records(arguments.record)
    entrants = _read_entrants(arguments.entrants)
    problems = verify_draw(records, entrants)
    for record in records:
        if not _shape_problems(record):
            winners = ", ".join(str(w["user_id"]) for w in record["winners"]) or "none"
            print(f"record {record['sequence']} ({record['kind']}): winners {winners}")
    if problems:
        incomplete = any(problem.startswith(INCOMPLETE_CHAIN) for problem in problems)
        print(f"NOT VERIFIED: {INCOMPLETE_CHAIN}" if incomplete else "NOT VERIFIED:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"VERIFIED: {len(records)} record(s) follow from the seed(s) and {len(entrants)} entrants."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
