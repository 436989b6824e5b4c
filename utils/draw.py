#!/usr/bin/env python3
"""Telegive's winner draw: the reference implementation and a standalone verifier.

This file needs nothing but Python's standard library (3.9+): copy it alone and run

    python3 draw.py verify --record draw.json --entrants entrants.txt

where ``draw.json`` is the published draw record (``GET /api/participants/{id}/draw``) and
``entrants.txt`` the published entrant list (``GET /api/participants/{id}/draw/entrants``, one user
id per line). It prints whether the winners follow from them, and exits 0 only if they do.

The algorithm, ``telegive-draw`` version 1:

1. Commitment. A 32-byte seed comes from ``secrets``; its SHA-256 (hex) is published before the
   draw. The draw reveals the seed; ``sha256(seed) == commitment`` must hold.
2. Entrants. The canonical list is every entrant's Telegram user id, unique, sorted ascending;
   ``entrants_hash`` is the SHA-256 of the ids written in decimal, each followed by ``\\n``.
3. Eligible list. The canonical list without the record's ``exclusions`` (past winners, for a
   reroll), order kept.
4. Random stream. The i-th 64-bit number (i = 0, 1, 2, ...) is the first 8 bytes, big-endian, of
   ``SHA-256(seed || b"telegive-draw-v1" || i as 8 bytes big-endian)``.
5. Uniform choice in [0, m): take numbers x from the stream, rejecting x >= 2^64 - (2^64 mod m);
   the choice is x mod m (rejection removes modulo bias).
6. Candidate order. A Fisher-Yates shuffle of positions 0..n-1 of the eligible list, run lazily:
   step k (k = 0, 1, ...) chooses j uniformly in [k, n), takes position j as the k-th candidate and
   moves position k into slot j.
7. Winners. Candidates in that order become winners, positions 1, 2, ..., except those listed in
   ``skipped`` (found no longer subscribed at draw time), until ``requested_count`` winners are
   found or the candidates run out (``unclaimed_count`` prizes stay unclaimed).
8. Chain. Each record carries the SHA-256 of the previous record of its giveaway
   (``previous_hash``; 64 zeros for the first) and its own ``record_hash``: the SHA-256 of the
   record's canonical JSON (keys sorted, no spaces, UTF-8) without ``record_hash``. A reroll uses
   the seed committed as ``next_commitment`` by the record before it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
from collections.abc import Iterable, Iterator, Sequence

ALGORITHM = "telegive-draw"
ALGORITHM_VERSION = 1
_DOMAIN = b"telegive-draw-v1"
_TWO_64 = 1 << 64
GENESIS_HASH = "0" * 64


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
    """Every reason the record does not follow from the entrants; empty when it does."""
    problems: list[str] = []
    if record.get("algorithm") != ALGORITHM or record.get("algorithm_version") != ALGORITHM_VERSION:
        problems.append(
            f"unknown algorithm {record.get('algorithm')!r} v{record.get('algorithm_version')!r}"
        )
        return problems
    if commitment_of(record["seed"]) != record["commitment"]:
        problems.append("the seed does not match the published commitment")
    if record_digest(record) != record.get("record_hash"):
        problems.append("record_hash does not match the record's content")
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
    if sorted(reached) != sorted(skipped):
        problems.append("the skipped users are not exactly those reached before the last winner")
    unclaimed = record["requested_count"] - len(expected)
    if record.get("unclaimed_count") != unclaimed:
        problems.append(f"unclaimed_count should be {unclaimed}")
    return problems


def verify_chain(records: Sequence[dict]) -> list[str]:
    """Every break in a giveaway's chain of records (ordered by sequence)."""
    problems: list[str] = []
    previous_hash = GENESIS_HASH
    next_commitment: str | None = None
    for expected_sequence, record in enumerate(records, start=1):
        label = f"record {record.get('sequence')}"
        if record.get("sequence") != expected_sequence:
            problems.append(f"{label}: expected sequence {expected_sequence}")
        if record_digest(record) != record.get("record_hash"):
            problems.append(f"{label}: record_hash does not match its content")
        if record.get("previous_hash") != previous_hash:
            problems.append(f"{label}: previous_hash does not link to the record before it")
        if next_commitment is not None and record.get("commitment") != next_commitment:
            problems.append(f"{label}: commitment is not the one the previous record announced")
        if commitment_of(record["seed"]) != record["commitment"]:
            problems.append(f"{label}: the seed does not match its commitment")
        previous_hash = record.get("record_hash", "")
        next_commitment = record.get("next_commitment")
    return problems


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
    problems = verify_chain(records) if len(records) > 1 or records[0].get("sequence") == 1 else []
    for record in records:
        problems += [
            f"record {record.get('sequence')}: {p}" for p in verify_record(record, entrants)
        ]
    for record in records:
        winners = ", ".join(str(w["user_id"]) for w in record["winners"]) or "none"
        print(f"record {record['sequence']} ({record['kind']}): winners {winners}")
    if problems:
        print("NOT VERIFIED:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"VERIFIED: {len(records)} record(s) follow from the seed(s) and {len(entrants)} entrants."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
