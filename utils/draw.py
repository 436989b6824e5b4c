#!/usr/bin/env python3
"""Telegive's winner draw: the reference implementation and a standalone verifier.

This file needs nothing but Python's standard library (3.9+): copy it (with ``drand.py`` beside
it, for the beacon's signature) and run

    python3 draw.py verify --record draw.json [--entrants entrants.txt] [--root ROOT]
    python3 draw.py verify-proof --proof proof.json [--record draw.json]

where ``draw.json`` is the published draw document (``GET /api/participants/{id}/draw``: every
record of the giveaway, from its first draw), ``entrants.txt`` the published entrant list
(``GET /api/participants/{id}/draw/entrants``, one user id per line; version 2 records verify
without it, from the Merkle proofs they carry) and ``proof.json`` one participant's inclusion proof
(``GET /api/participants/{id}/draw/proof/{user_id}``); ``--root`` is the ``entrant_root`` a witness
kept from the draw document while entries were closed and the draw not yet made, ``--chain`` a
drand chain's info document for a chain other than quicknet. It prints whether the winners
follow, and exits 0 only if everything was checked and holds (3 when every rule holds but the
beacon's signature could not be checked here). Nothing a record says about its own rules is
trusted: the exclusions, the replaced winner, the positions, the counts and the beacon round are
derived from the records before it, so a chain that does not start at its first draw, or has a
gap, is refused ("NOT VERIFIED: incomplete chain").

The algorithm, ``telegive-draw`` version 2 (version 1, without steps 2b and 3b, still verifies):

1. Commitment. A 32-byte seed comes from ``secrets``; its SHA-256 (hex) is published before the
   draw. The draw reveals the seed; ``sha256(seed) == commitment`` must hold.
2. Entrants. The canonical list is every entrant's Telegram user id, unique, sorted ascending;
   ``entrants_hash`` is the SHA-256 of the ids written in decimal, each followed by ``\\n``.
2b. Entrant commitment (v2). When entries close, the list is committed as a Merkle tree of
   arity 4 over salted leaves, in list order: leaf = SHA-256(0x00 || salt || user id in decimal
   ASCII), with a 16-byte salt per entry kept by the service (so a proof shows no one else's id);
   a node = SHA-256(0x01 || its children, in order), where the last group of a level may hold 1 to
   3 children and a lone child is carried up unchanged; ``entrant_root`` = SHA-256(0x02 || the
   entrant count as 8 bytes big-endian || the top node) (32 zero bytes stand for the top of an
   empty list). An inclusion proof is the list of the other children of each group on the way up
   (hex, level by level, in order); where the path sits in a group follows from the leaf's index
   and the count. ``entrants_committed_at`` is when the list and its salts were fixed (entries
   closed): from then on the root is determined, whenever it is computed.
3. Eligible list. The canonical list without the record's ``exclusions``, order kept. The first
   draw excludes no one; a reroll excludes every user who won in any earlier record (replaced
   winners included), ascending.
3b. Randomness (v2). The record names a drand beacon round (``beacon``): the first round of the
   chain published after ``randomness_fixed_at`` (the draw: ``entrants_committed_at``; a reroll:
   when it was requested), its BLS signature checked against the chain's public key, randomness =
   SHA-256(signature). The draw's seed is then SHA-256(b"telegive-draw-v2" || seed || randomness ||
   entrant_root), all as bytes (no randomness bytes when ``beacon`` is null: DRAW_BEACON=off).
4. Random stream. The i-th 64-bit number (i = 0, 1, 2, ...) is the first 8 bytes, big-endian, of
   ``SHA-256(seed || b"telegive-draw-v1" || i as 8 bytes big-endian)`` (v2: its mixed seed and
   ``b"telegive-draw-v2"``).
5. Uniform choice in [0, m): take numbers x from the stream, rejecting x >= 2^64 - (2^64 mod m);
   the choice is x mod m (rejection removes modulo bias).
6. Candidate order. A Fisher-Yates shuffle of positions 0..n-1 of the eligible list, run lazily:
   step k (k = 0, 1, ...) chooses j uniformly in [k, n), takes position j as the k-th candidate and
   moves position k into slot j. (v2: a position in the eligible list is the leaf index in the
   committed list once the excluded users' leaf indices are stepped over; every winner and skipped
   user in a v2 record carries ``leaf_index``, ``salt`` and ``proof``, so the record checks against
   the root alone.)
7. Winners. Candidates in that order become winners, except those listed in ``skipped``: found
   no longer subscribed at draw time (``reason`` ``not_subscribed``; only with the re-check on,
   unless the entrant was still pending verification, then asked whatever the setting and marked
   ``pending: true``) or excluded before the draw by that verification (``excluded``), until
   ``requested_count`` winners are found or the candidates run out (``unclaimed_count`` prizes
   stay unclaimed). Positions: the first draw's winners are 1, 2, ...; a reroll either replaces
   one current winner (``replaced_user_id``, one winner requested), whose successor takes its
   position, or adds winners after the highest current position.
8. Chain. The first record (sequence 1) is the draw; rerolls follow it, sequence 2, 3, ... Each
   record carries the SHA-256 of the previous record of its giveaway (``previous_hash``; 64 zeros
   for the first) and its own ``record_hash``: the SHA-256 of the
   record's canonical JSON (keys sorted, no spaces, UTF-8) without ``record_hash``. A reroll uses
   the seed committed as ``next_commitment`` by the record before it; every record of a chain has
   the first one's version and (v2) its entrant commitment.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

try:  # CPython's own SHA-256: the same function, without OpenSSL's context setup on every call,
    from _sha2 import sha256 as _sha256  # which dominates on 30-byte leaves (3.12+)
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256 as _sha256  # 3.9-3.11
    except ImportError:
        _sha256 = hashlib.sha256


def _load_drand():  # pragma: no cover - depends on how the file is run
    """drand.py: in the service's package, or beside this file when both were copied (even under
    ``python -I``, which leaves this file's folder off ``sys.path``); None when it is absent."""
    with contextlib.suppress(ImportError):
        from utils import drand as module

        return module
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "drand.py")
    if not os.path.exists(beside):
        return None
    spec = importlib.util.spec_from_file_location("drand", beside)
    module = importlib.util.module_from_spec(spec)
    sys.modules["drand"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


drand = _load_drand()

ALGORITHM = "telegive-draw"
ALGORITHM_VERSION = 2  # what new draws use
KNOWN_VERSIONS = (1, 2)
_DOMAINS = {1: b"telegive-draw-v1", 2: b"telegive-draw-v2"}
_TWO_64 = 1 << 64
GENESIS_HASH = "0" * 64
INCOMPLETE_CHAIN = "incomplete chain"

ARITY = 4  # children per node of the entrant tree
_LEAF, _NODE, _ROOT = b"\x00", b"\x01", b"\x02"
EMPTY_TOP = bytes(32)
SALT_BYTES = 16


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


# --- the entrant tree (step 2b) -------------------------------------------------------------------


def leaf_hash(salt: bytes, user_id: int) -> bytes:
    """A committed entry: SHA-256(0x00 || salt || user id in decimal)."""
    return _sha256(b"\x00%b%d" % (salt, user_id)).digest()


def leaves(salts: bytes, user_ids: Sequence[int]) -> bytes:
    """The concatenated leaves of consecutive entries, their 16-byte salts concatenated: the
    service's bulk form of ``leaf_hash``."""
    view = memoryview(salts)
    return b"".join(
        [
            _sha256(
                b"\x00%b%d" % (view[SALT_BYTES * i : SALT_BYTES * i + SALT_BYTES], user_id)
            ).digest()
            for i, user_id in enumerate(user_ids)
        ]
    )


def next_level(level: bytes) -> bytes:
    """The level above a level of 32-byte nodes: each group of up to ``ARITY`` hashed, a lone
    last node carried up unchanged."""
    count = len(level) // 32
    width = 32 * ARITY
    view = memoryview(level)
    full = count // ARITY
    nodes = [_sha256(_NODE + view[width * j : width * j + width]).digest() for j in range(full)]
    rest = view[width * full :]
    if len(rest) > 32:
        nodes.append(_sha256(_NODE + rest).digest())
    elif rest:
        nodes.append(bytes(rest))
    return b"".join(nodes)


def tree_levels(leaves: bytes) -> list[bytes]:
    """Every level of the tree over concatenated 32-byte leaves, the leaves first, the top last."""
    levels = [bytes(leaves)]
    while len(levels[-1]) > 32:
        levels.append(next_level(levels[-1]))
    return levels


def path_in(levels: Sequence[bytes], index: int) -> list[str]:
    """The inclusion proof of the node at ``index`` of ``levels[0]``: the other children of each
    group on the way up, hex, level by level."""
    proof: list[str] = []
    for level in levels[:-1]:
        count = len(level) // 32
        start = index - index % ARITY
        for other in range(start, min(start + ARITY, count)):
            if other != index:
                proof.append(level[32 * other : 32 * other + 32].hex())
        index //= ARITY
    return proof


def top_from_proof(leaf: bytes, index: int, count: int, proof: Sequence[str]) -> bytes | None:
    """The top node a proof leads to from a leaf at ``index`` of ``count``; None when the proof
    has the wrong number of hashes for that place."""
    if not 0 <= index < count:
        return None
    node, width, used = leaf, count, 0
    while width > 1:
        start = index - index % ARITY
        group = min(ARITY, width - start)
        if group > 1:
            others = proof[used : used + group - 1]
            if len(others) != group - 1:
                return None
            used += group - 1
            at = index - start
            children = [bytes.fromhex(h) for h in others[:at]] + [node]
            children += [bytes.fromhex(h) for h in others[at:]]
            node = _sha256(_NODE + b"".join(children)).digest()
        index //= ARITY
        width = -(-width // ARITY)
    return node if used == len(proof) else None


def entrant_root(count: int, top: bytes) -> str:
    """The published commitment to the list: SHA-256(0x02 || count || top node), hex."""
    return hashlib.sha256(_ROOT + count.to_bytes(8, "big") + top).hexdigest()


def proof_holds(
    root: str, count: int, user_id: int, salt_hex: str, index: int, proof: Sequence[str]
) -> bool:
    """Whether a user's salted leaf at ``index`` leads to ``root``."""
    top = top_from_proof(leaf_hash(bytes.fromhex(salt_hex), user_id), index, count, proof)
    return top is not None and entrant_root(count, top) == root


def mixed_seed(seed_hex: str, randomness_hex: str | None, root_hex: str) -> str:
    """A v2 draw's seed: our revealed seed, the beacon's randomness and the entrant root (3b)."""
    randomness = bytes.fromhex(randomness_hex) if randomness_hex else b""
    material = _DOMAINS[2] + bytes.fromhex(seed_hex) + randomness + bytes.fromhex(root_hex)
    return hashlib.sha256(material).hexdigest()


# --- the draw (steps 3-7) -------------------------------------------------------------------------


class RandomStream:
    """The deterministic stream of 64-bit numbers derived from a seed (step 4)."""

    def __init__(self, seed_hex: str, version: int = 1) -> None:
        self._prefix = bytes.fromhex(seed_hex) + _DOMAINS[version]
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


def candidate_order(seed_hex: str, count: int, version: int = 1) -> Iterator[int]:
    """Positions 0..count-1 in the seed's shuffled order, produced lazily (step 6)."""
    stream = RandomStream(seed_hex, version)
    moved: dict[int, int] = {}
    for step in range(count):
        chosen = step + stream.below(count - step)
        yield moved.get(chosen, chosen)
        moved[chosen] = moved.get(step, step)
        moved.pop(step, None)


def leaf_index(position: int, excluded_leaves: Sequence[int]) -> int:
    """The committed list's index of a position in the eligible list, stepping over the excluded
    users' indices (ascending)."""
    index = position
    for excluded in excluded_leaves:
        if excluded > index:
            break
        index += 1
    return index


def eligible_list(sorted_entrants: Sequence[int], exclusions: Iterable[int]) -> list[int]:
    """The canonical list without the excluded users (step 3)."""
    excluded = set(exclusions)
    if not excluded:
        return list(sorted_entrants)
    return [user_id for user_id in sorted_entrants if user_id not in excluded]


def select_winners(
    seed_hex: str,
    eligible: Sequence[int],
    count: int,
    skipped: Iterable[int] = (),
    version: int = 1,
) -> tuple[list[int], list[int]]:
    """The winners (in position order) and the skipped users actually reached (step 7)."""
    skip = set(skipped)
    winners: list[int] = []
    reached: list[int] = []
    if count <= 0:
        return winners, reached
    for position in candidate_order(seed_hex, len(eligible), version):
        user_id = eligible[position]
        if user_id in skip:
            reached.append(user_id)
            continue
        winners.append(user_id)
        if len(winners) == count:
            break
    return winners, reached


def draw_seed(record: dict) -> str:
    """The seed the record's candidate order comes from: the revealed seed (v1), or it mixed with
    the beacon's randomness and the entrant root (v2)."""
    if record["algorithm_version"] == 1:
        return record["seed"]
    beacon = record.get("beacon")
    randomness = beacon["randomness"] if beacon else None
    return mixed_seed(record["seed"], randomness, record["entrant_root"])


def record_digest(record: dict) -> str:
    """SHA-256 of a record's canonical JSON, ``record_hash`` left out (step 8)."""
    body = {key: value for key, value in record.items() if key != "record_hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- the verifier ---------------------------------------------------------------------------------


class Verdict:
    """What a verification found: broken rules, checks it could not make, and notes."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.unchecked: list[str] = []
        self.notes: list[str] = []

    @property
    def incomplete(self) -> bool:
        return any(problem.startswith(INCOMPLETE_CHAIN) for problem in self.problems)


def verify_record(record: dict, sorted_entrants: Sequence[int]) -> list[str]:
    """Every reason the record alone does not follow from the entrant list and its own
    exclusions; empty when it does (``verify_draw`` also derives the exclusions from the chain)."""
    problems = _shape_problems(record)
    if problems:
        return problems
    if commitment_of(record["seed"]) != record["commitment"]:
        problems.append("the seed does not match the published commitment")
    if record_digest(record) != record.get("record_hash"):
        problems.append("record_hash does not match the record's content")
    if record["algorithm_version"] == 2:
        problems += [
            f"the proof of user {entry['user_id']} does not lead to entrant_root"
            for entry in record["winners"] + record["skipped"]
            if not proof_holds(
                record["entrant_root"],
                record["entrant_count"],
                entry["user_id"],
                entry["salt"],
                entry["leaf_index"],
                entry["proof"],
            )
        ]
    return problems + _History(sorted_entrants, (), Verdict())._list_outcome_problems(
        record, sorted_entrants
    )


def verify_chain(records: Sequence[dict], chains: Sequence[object] = ()) -> list[str]:
    """Every break in a giveaway's chain of records (ordered by sequence, from the first draw),
    each rule derived from the records before it, never read from the record that claims it."""
    return check_draw(records, None, chains).problems


def verify_draw(
    records: Sequence[dict], sorted_entrants: Sequence[int] | None, chains: Sequence[object] = ()
) -> list[str]:
    """Every reason a giveaway's whole chain does not follow from its seeds, its randomness and
    its entrant commitment (and the entrant list, when given)."""
    return check_draw(records, sorted_entrants, chains).problems


def check_draw(
    records: Sequence[dict],
    sorted_entrants: Sequence[int] | None,
    chains: Sequence[object] = (),
    witnessed_root: str | None = None,
) -> Verdict:
    """The whole verification: the chain's rules, each record's outcome, the beacons; and, when
    someone kept the entrant root published at the close, that the records commit to it."""
    verdict = Verdict()
    if not records:
        verdict.problems.append(f"{INCOMPLETE_CHAIN}: no record")
        return verdict
    for expected, record in enumerate(records, start=1):
        sequence = record.get("sequence") if isinstance(record, dict) else None
        if type(sequence) is not int or sequence != expected:
            where = "the first draw (sequence 1)" if expected == 1 else f"record {expected}"
            verdict.problems.append(
                f"{INCOMPLETE_CHAIN}: record {sequence!r} stands where {where} should be"
            )
    if verdict.problems:
        return verdict
    history = _History(sorted_entrants, chains, verdict)
    for record in records:
        label = f"record {record['sequence']}"
        shape = _shape_problems(record)
        if shape:
            verdict.problems += [f"{label}: {p}" for p in shape]
            break  # what follows cannot be derived from a malformed record
        verdict.problems += [f"{label}: {p}" for p in history.check(record)]
        if witnessed_root is not None and record.get("entrant_root") != witnessed_root:
            verdict.problems.append(
                f"{label}: entrant_root is not the root published when entries closed"
            )
        history.apply(record)
    return verdict


def winners_after(records: Sequence[dict]) -> dict[int, int]:
    """The current winners (user id: position) once every record is applied, rerolls included
    (a malformed record, which the verifier reports, is left out)."""
    history = _History(None, (), Verdict())
    for record in records:
        if not _shape_problems(record):
            history.apply(record)
    return dict(history.current)


class _History:
    """What the records so far establish: the chain's tip, who won and where they stand in the
    committed list."""

    def __init__(
        self, sorted_entrants: Sequence[int] | None, chains: Sequence[object], verdict: Verdict
    ) -> None:
        self.entrants = sorted_entrants
        self.chains = {getattr(chain, "hash", None): chain for chain in chains}
        if drand is not None:
            self.chains.setdefault(drand.QUICKNET.hash, drand.QUICKNET)
        self.verdict = verdict
        self.first: dict | None = None
        self.previous: dict | None = None
        self.ever_won: set[int] = set()
        self.current: dict[int, int] = {}  # user id: position
        self.leaf_of: dict[int, int] = {}  # user id: leaf index (v2)

    def check(self, record: dict) -> list[str]:
        """Every rule the record breaks, given the records before it."""
        problems = self._chain_problems(record)
        if record["algorithm_version"] == 2:
            problems += self._commitment_problems(record)
            problems += self._beacon_problems(record)
            problems += self._proof_outcome_problems(record)
        if self.entrants is not None:
            problems += self._list_outcome_problems(record, self.entrants)
        elif record["algorithm_version"] == 1:
            self.verdict.unchecked.append(
                f"record {record['sequence']}: a version 1 record needs the entrant list"
            )
        return problems

    def _chain_problems(self, record: dict) -> list[str]:
        problems: list[str] = []
        first = self.first is None
        previous_hash = GENESIS_HASH if first else self.previous.get("record_hash")
        if record_digest(record) != record.get("record_hash"):
            problems.append("record_hash does not match its content")
        if record["previous_hash"] != previous_hash:
            problems.append("previous_hash does not link to the record before it")
        if commitment_of(record["seed"]) != record["commitment"]:
            problems.append("the seed does not match its commitment")
        if not first and record["commitment"] != self.previous.get("next_commitment"):
            problems.append("commitment is not the one the previous record announced")
        if not first and record["algorithm_version"] != self.first["algorithm_version"]:
            problems.append("a chain keeps its first record's algorithm version")
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
        expected = self._positions(replaced, len(winners), first)
        if positions != expected:
            problems.append(f"winner positions should be {expected}, the record says {positions}")
        if len(winners) + record["unclaimed_count"] != record["requested_count"] or not (
            0 <= len(winners) <= record["requested_count"]
        ):
            problems.append("winners and unclaimed prizes do not add up to requested_count")
        skipped = [entry["user_id"] for entry in record["skipped"]]
        if set(skipped) & set(winners) or len(set(skipped)) != len(skipped):
            problems.append("a skipped user is listed twice or also as a winner")
        rechecked = [  # skips that only a re-check of every candidate could have made
            entry
            for entry in record["skipped"]
            if entry.get("reason") != "excluded" and entry.get("pending") is not True
        ]
        if rechecked and record.get("recheck_subscription") is False:
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

    def _positions(self, replaced: int | None, count: int, first: bool) -> list[int]:
        if first:
            return list(range(1, count + 1))
        if replaced is not None and replaced in self.current:
            return [self.current[replaced]] * count
        start = max(self.current.values(), default=0) + 1
        return list(range(start, start + count))

    def _commitment_problems(self, record: dict) -> list[str]:
        """v2: the list was committed once, before the randomness was fixed."""
        problems: list[str] = []
        if self.first is not None:
            for field in _COMMITTED_FIELDS:
                if record[field] != self.first[field]:
                    problems.append(f"{field} differs from the first draw's: the list was fixed")
        fixed_at = _moment(record["randomness_fixed_at"])
        if self.first is None:
            if record["randomness_fixed_at"] != record["entrants_committed_at"]:
                problems.append("a first draw's randomness is fixed when the list is committed")
        elif fixed_at < _moment(self.previous["drawn_at"]):
            problems.append("a reroll's randomness is fixed after the record before it")
        if fixed_at < _moment(record["committed_at"]):
            problems.append("the randomness was fixed before the seed was committed to")
        return problems

    def _beacon_problems(self, record: dict) -> list[str]:
        beacon = record["beacon"]
        label = f"record {record['sequence']}"
        if beacon is None:
            self.verdict.notes.append(
                f"{label}: no public randomness was used (DRAW_BEACON=off): the operator knew "
                "this seed before the draw"
            )
            return []
        problems: list[str] = []
        if hashlib.sha256(bytes.fromhex(beacon["signature"])).hexdigest() != beacon["randomness"]:
            problems.append("the beacon's randomness is not the SHA-256 of its signature")
        chain = self.chains.get(beacon["chain_hash"])
        if chain is None:
            self.verdict.unchecked.append(
                f"{label}: beacon chain {beacon['chain_hash'][:16]}... is unknown here (give its "
                "public facts with --chain): its round and signature were not checked"
            )
            return problems
        expected = chain.first_round_after(_moment(record["randomness_fixed_at"]).timestamp())
        if beacon["round"] != expected:
            problems.append(
                f"the beacon round should be {expected}, the first published after "
                f"randomness_fixed_at; the record uses {beacon['round']}"
            )
        try:
            drand.verify_round(chain, beacon["round"], beacon["signature"])
        except drand.VerifierMissing as missing:
            self.verdict.unchecked.append(f"{label}: the beacon's signature: {missing}")
        except drand.BeaconInvalid as invalid:
            problems.append(f"the beacon's signature does not verify: {invalid}")
        return problems

    def _proof_outcome_problems(self, record: dict) -> list[str]:
        """v2, from the root alone: every reached candidate is proven at its place in the list,
        and the winners and skips follow from the mixed seed."""
        problems: list[str] = []
        root, count = record["entrant_root"], record["entrant_count"]
        entries = [("winner", e) for e in record["winners"]] + [
            ("skipped", e) for e in record["skipped"]
        ]
        by_leaf: dict[int, tuple[str, int]] = {}
        for role, entry in entries:
            if not proof_holds(
                root, count, entry["user_id"], entry["salt"], entry["leaf_index"], entry["proof"]
            ):
                problems.append(
                    f"the proof of {role} {entry['user_id']} at leaf {entry['leaf_index']} does "
                    "not lead to entrant_root"
                )
            by_leaf[entry["leaf_index"]] = (role, entry["user_id"])
        if problems:
            return problems
        excluded = sorted(self.leaf_of[u] for u in record["exclusions"] if u in self.leaf_of)
        if len(excluded) != len(record["exclusions"]):
            return problems  # the exclusions are already refused above
        winners: list[int] = []
        reached: list[int] = []
        if record["requested_count"] > 0:
            order = candidate_order(draw_seed(record), count - len(excluded), version=2)
            for position in order:
                index = leaf_index(position, excluded)
                role, user_id = by_leaf.get(index, (None, None))
                if role is None:
                    problems.append(
                        f"the candidate at leaf {index} is neither a winner nor a skipped entry"
                    )
                    return problems
                (winners if role == "winner" else reached).append(user_id)
                if len(winners) == record["requested_count"]:
                    break
        actual = [winner["user_id"] for winner in record["winners"]]
        if winners != actual:
            problems.append(f"winners should be {winners}, the record says {actual}")
        if reached != [entry["user_id"] for entry in record["skipped"]]:
            problems.append(
                "the skipped users are not exactly those reached before the last winner, in order"
            )
        return problems

    def _list_outcome_problems(self, record: dict, sorted_entrants: Sequence[int]) -> list[str]:
        """Whether the record's winners, skips and counts follow from its seed, the published
        entrant list and its exclusions."""
        problems: list[str] = []
        if entrants_digest(sorted_entrants) != record["entrants_hash"]:
            problems.append("the entrant list is not the one the draw used (entrants_hash differs)")
        if len(sorted_entrants) != record["entrant_count"]:
            problems.append(
                f"entrant_count is {record['entrant_count']}, the list has {len(sorted_entrants)}"
            )
        version = record["algorithm_version"]
        if version == 2:
            for entry in record["winners"] + record["skipped"]:
                at = bisect.bisect_left(sorted_entrants, entry["user_id"])
                if at != entry["leaf_index"]:
                    problems.append(
                        f"user {entry['user_id']} stands at {at} in the list, not at leaf "
                        f"{entry['leaf_index']}"
                    )
        eligible = eligible_list(sorted_entrants, record["exclusions"])
        skipped = [entry["user_id"] for entry in record["skipped"]]
        expected, reached = select_winners(
            draw_seed(record), eligible, record["requested_count"], skipped, version
        )
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

    def apply(self, record: dict) -> None:
        """Take the record's winners (and its replacement) as established."""
        if record.get("replaced_user_id") is not None:
            self.current.pop(record["replaced_user_id"], None)
        for winner in record["winners"]:
            self.ever_won.add(winner["user_id"])
            self.current[winner["user_id"]] = winner["position"]
            if "leaf_index" in winner:
                self.leaf_of[winner["user_id"]] = winner["leaf_index"]
        if self.first is None:
            self.first = record
        self.previous = record


def check_proof(proof: dict, records: Sequence[dict] = ()) -> list[str]:
    """Why one participant's inclusion proof does not hold (empty when it does); against the
    draw's records too when given (the same root and count)."""
    problems = _proof_shape_problems(proof)
    if problems:
        return problems
    if not proof_holds(
        proof["entrant_root"],
        proof["entrant_count"],
        proof["user_id"],
        proof["salt"],
        proof["leaf_index"],
        proof["proof"],
    ):
        problems.append("the proof does not lead from the user's leaf to entrant_root")
    for record in records:
        if isinstance(record, dict) and record.get("algorithm_version") == 2:
            if record.get("entrant_root") != proof["entrant_root"]:
                problems.append(f"record {record.get('sequence')} commits to another root")
            elif record.get("entrant_count") != proof["entrant_count"]:
                problems.append(f"record {record.get('sequence')} commits to another count")
    return problems


_COMMITTED_FIELDS = ("entrant_root", "entrant_count", "entrants_hash", "entrants_committed_at")
_HEX64 = re.compile("[0-9a-f]{64}")
_HEX_SALT = re.compile(f"[0-9a-f]{{{2 * SALT_BYTES}}}")
_HEX_FIELDS = ("seed", "commitment", "next_commitment", "previous_hash", "entrants_hash")
_INT_FIELDS = ("sequence", "entrant_count", "requested_count", "unclaimed_count")


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not float: JSON's true and 1.0 are other records


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _is_moment(value: object) -> bool:
    try:
        return isinstance(value, str) and _moment(value).tzinfo is not None
    except ValueError:
        return False


def _proven(entry: dict) -> bool:
    """A v2 winner or skipped entry carries its place, salt and proof."""
    return (
        _is_int(entry.get("leaf_index"))
        and isinstance(entry.get("salt"), str)
        and _HEX_SALT.fullmatch(entry["salt"]) is not None
        and isinstance(entry.get("proof"), list)
        and all(map(_is_hex64, entry["proof"]))
    )


def _shape_problems(record: object) -> list[str]:
    """Why the record is not a well-formed record of a known version; empty when it is."""
    if not isinstance(record, dict):
        return ["malformed record: not a JSON object"]
    version = record.get("algorithm_version")
    if record.get("algorithm") != ALGORITHM or not _is_int(version) or version not in _DOMAINS:
        return [
            f"unknown algorithm {record.get('algorithm')!r} v{record.get('algorithm_version')!r}"
        ]
    wrong = [f for f in _HEX_FIELDS if not _is_hex64(record.get(f))]
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
            isinstance(entry, dict)
            and all(_is_int(entry.get(key)) for key in keys)
            and (version == 1 or _proven(entry))
            for entry in entries
        ):
            wrong.append(field)
    if version == 2:
        wrong += _v2_shape_problems(record)
    return [f"malformed record: {', '.join(wrong)}"] if wrong else []


def _v2_shape_problems(record: dict) -> list[str]:
    wrong = [] if _is_hex64(record.get("entrant_root")) else ["entrant_root"]
    wrong += [
        field
        for field in ("entrants_committed_at", "randomness_fixed_at", "committed_at", "drawn_at")
        if not _is_moment(record.get(field))
    ]
    beacon = record.get("beacon", "missing")
    if beacon is not None and not (
        isinstance(beacon, dict)
        and _is_hex64(beacon.get("chain_hash"))
        and _is_int(beacon.get("round"))
        and _is_hex64(beacon.get("randomness"))
        and isinstance(beacon.get("signature"), str)
        and re.fullmatch("(?:[0-9a-f]{2})+", beacon["signature"]) is not None
    ):
        wrong.append("beacon")
    return wrong


def _proof_shape_problems(proof: object) -> list[str]:
    if not isinstance(proof, dict):
        return ["malformed proof: not a JSON object"]
    wrong = [] if _is_hex64(proof.get("entrant_root")) else ["entrant_root"]
    wrong += [f for f in ("entrant_count", "user_id") if not _is_int(proof.get(f))]
    if not _proven(proof):
        wrong.append("leaf_index, salt or proof")
    return [f"malformed proof: {', '.join(wrong)}"] if wrong else []


def _some(user_ids: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(map(str, user_ids[:limit]))
    return f"[{shown}{', ...' if len(user_ids) > limit else ''}]"


def _read_entrants(path: str) -> list[int]:
    with open(path, encoding="ascii") as handle:
        ids = [int(line) for line in handle if line.strip()]
    return sorted(set(ids))


def _load_json(path: str) -> object:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _load_records(path: str) -> list[dict]:
    document = _load_json(path)
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        return document["records"]
    if isinstance(document, dict) and isinstance(document.get("draw"), dict):
        return [document["draw"]]
    if isinstance(document, list):
        return document
    return [document]


def _load_chain(path: str) -> object:
    """A drand chain's public facts (its ``/info`` document) for a chain other than quicknet."""
    if drand is None:
        raise SystemExit("--chain needs drand.py beside this file")
    info = _load_json(path)
    return drand.Chain(
        hash=info["hash"],
        public_key=info["public_key"],
        genesis_time=int(info["genesis_time"]),
        period=int(info["period"]),
    )


def _report(verdict: Verdict, what: str) -> int:
    for note in verdict.notes:
        print(f"note: {note}")
    if verdict.problems:
        header = f"NOT VERIFIED: {INCOMPLETE_CHAIN}" if verdict.incomplete else "NOT VERIFIED:"
        print(header)
        for problem in verdict.problems:
            print(f"  - {problem}")
        return 1
    if verdict.unchecked:
        print(f"NOT FULLY VERIFIED: every rule checked holds for {what}, but not checked:")
        for unchecked in verdict.unchecked:
            print(f"  - {unchecked}")
        return 3
    print(f"VERIFIED: {what}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Telegive draw record.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check a giveaway's draw records")
    verify.add_argument("--record", required=True, help="the published draw document (JSON)")
    verify.add_argument("--entrants", help="the entrant list, one user id per line (optional, v2)")
    verify.add_argument("--chain", action="append", default=[], help="a drand chain's info JSON")
    verify.add_argument(
        "--root", help="the entrant_root you saw published when entries closed, before the draw"
    )
    proof = commands.add_parser("verify-proof", help="check one participant's inclusion proof")
    proof.add_argument("--proof", required=True, help="the proof document (JSON)")
    proof.add_argument("--record", help="the draw document, to match its root")
    arguments = parser.parse_args(argv)

    if arguments.command == "verify-proof":
        document = _load_json(arguments.proof)
        records = _load_records(arguments.record) if arguments.record else []
        verdict = Verdict()
        verdict.problems = check_proof(document, records)
        user = document.get("user_id") if isinstance(document, dict) else None
        return _report(verdict, f"user {user} was counted among the committed entrants")

    records = _load_records(arguments.record)
    entrants = _read_entrants(arguments.entrants) if arguments.entrants else None
    chains = [_load_chain(path) for path in arguments.chain]
    verdict = check_draw(records, entrants, chains, arguments.root)
    for record in records:
        if not _shape_problems(record):
            winners = ", ".join(str(w["user_id"]) for w in record["winners"]) or "none"
            print(f"record {record['sequence']} ({record['kind']}): winners {winners}")
    source = f"{len(entrants)} entrants" if entrants is not None else "the committed entrant root"
    return _report(verdict, f"{len(records)} record(s) follow from the seed(s) and {source}")


if __name__ == "__main__":
    sys.exit(main())
