"""Honest draw chains built as ``services/draws.py`` builds them (``_plan_reroll``, ``_document``),
from ``utils/draw.py``'s own functions, and the forger's re-hashing of an edited chain. Version 2
chains (the default) commit the list with a fixed salt key and use no beacon unless given one
(``beacon``: round number -> the record's ``beacon`` object); the forger holds the whole tree, as
the operator does."""

from __future__ import annotations

import bisect
import copy
import functools
import hashlib
from collections.abc import Callable, Collection, Sequence

from utils import draw
from utils.entrant_tree import EntrantTree, build_tree

COMMITTED_AT = "2026-01-01T00:00:00+00:00"
ENTRANTS_COMMITTED_AT = "2026-01-01T00:01:00+00:00"
SALT_KEY = bytes(range(32))


def drawn_at(sequence: int) -> str:
    """When record ``sequence`` was drawn; a reroll's randomness is fixed a second before."""
    return f"2026-01-01T00:{1 + sequence:02d}:00+00:00"


def fixed_at(sequence: int) -> str:
    return ENTRANTS_COMMITTED_AT if sequence == 1 else f"2026-01-01T00:{sequence:02d}:59+00:00"


@functools.lru_cache(maxsize=64)
def tree_of(entrants: tuple[int, ...]) -> EntrantTree:
    return build_tree(entrants, SALT_KEY)


def prove(entry: dict, entrants: Sequence[int]) -> dict:
    """The entry with its leaf index, salt and proof in the committed list."""
    proof = tree_of(tuple(entrants)).proof(bisect.bisect_left(entrants, entry["user_id"]))
    return {**entry, "leaf_index": proof.leaf_index, "salt": proof.salt, "proof": proof.path}


def seed_of(label: object) -> str:
    """A fixed 32-byte seed (hex) for a label, so every chain is reproducible."""
    return hashlib.sha256(f"seed-{label}".encode()).hexdigest()


def build_chain(
    entrants: Sequence[int],
    steps: Sequence[tuple[str, int]],
    *,
    refused: Collection[int] = (),
    seed_label: object = "chain",
    version: int = draw.ALGORITHM_VERSION,
    beacon: Callable[[int], dict] | None = None,
) -> list[dict]:
    """Records for ``steps``: ``("draw", count)`` first, then ``("replace", user_id)`` or
    ``("add", count)``; ``refused`` are the entrants the subscription re-check turns away."""
    records: list[dict] = []
    current: dict[int, int] = {}  # user id: position, what the participants' winner flags hold
    seeds = [seed_of(f"{seed_label}-{i}") for i in range(len(steps) + 1)]
    for index, (kind, value) in enumerate(steps):
        ever_won = {w["user_id"] for record in records for w in record["winners"]}
        replaced = value if kind == "replace" else None
        count = 1 if kind == "replace" else value
        exclusions = sorted(ever_won | set(current))
        record = {
            "sequence": index + 1,
            "algorithm_version": version,
            "seed": seeds[index],
            "entrant_root": tree_of(tuple(entrants)).root,
            "beacon": beacon(index + 1) if beacon else None,
        }
        eligible = draw.eligible_list(entrants, exclusions)
        order_seed = draw.draw_seed(record)
        winners, reached = draw.select_winners(order_seed, eligible, count, refused, version)
        if kind == "draw":
            positions = range(1, len(winners) + 1)
        elif replaced is not None:
            positions = [current[replaced]] * len(winners)
        else:
            start = max(current.values(), default=0) + 1
            positions = range(start, start + len(winners))
        record = {
            "giveaway_id": 7,
            "sequence": index + 1,
            "kind": "draw" if kind == "draw" else "reroll",
            "algorithm": draw.ALGORITHM,
            "algorithm_version": version,
            "commitment": draw.commitment_of(seeds[index]),
            "committed_at": COMMITTED_AT,
            "seed": seeds[index],
            "entrants_hash": draw.entrants_digest(entrants),
            "entrant_count": len(entrants),
            "exclusions": exclusions,
            "requested_count": count,
            "winners": [
                {"position": p, "user_id": u} for p, u in zip(positions, winners, strict=True)
            ],
            "skipped": [
                {"user_id": u, "reason": "not_subscribed", "status": "left"} for u in reached
            ],
            "unclaimed_count": count - len(winners),
            "replaced_user_id": replaced,
            "reason": None if kind == "draw" else "did not claim the prize",
            "recheck_subscription": True,
            "next_commitment": draw.commitment_of(seeds[index + 1]),
            "previous_hash": records[-1]["record_hash"] if records else draw.GENESIS_HASH,
            "drawn_at": drawn_at(index + 1) if version == 2 else COMMITTED_AT,
        }
        if version == 2:
            record.update(
                committed_at=COMMITTED_AT if index == 0 else drawn_at(index),
                entrant_root=tree_of(tuple(entrants)).root,
                entrants_committed_at=ENTRANTS_COMMITTED_AT,
                randomness_fixed_at=fixed_at(index + 1),
                beacon=beacon(index + 1) if beacon else None,
                winners=[prove(entry, entrants) for entry in record["winners"]],
                skipped=[prove(entry, entrants) for entry in record["skipped"]],
            )
        record["record_hash"] = draw.record_digest(record)
        records.append(record)
        current.pop(replaced, None)
        current.update((w["user_id"], w["position"]) for w in record["winners"])
    return records


def redraw(record: dict, entrants: Sequence[int], refused: Collection[int] = ()) -> None:
    """Recompute a record's winners, skips and counts from its (edited) seed and exclusions, as a
    forger would so that the record agrees with itself; positions from 1 for a first draw."""
    eligible = draw.eligible_list(entrants, record["exclusions"])
    version = record["algorithm_version"]
    winners, reached = draw.select_winners(
        draw.draw_seed(record), eligible, record["requested_count"], refused, version
    )
    positions = [w["position"] for w in record["winners"]]
    if record["kind"] == "draw" or len(positions) != len(winners):
        start = positions[0] if positions else 1
        positions = list(range(start, start + len(winners)))
    record["winners"] = [
        {"position": p, "user_id": u} for p, u in zip(positions, winners, strict=True)
    ]
    record["skipped"] = [
        {"user_id": u, "reason": "not_subscribed", "status": "left"} for u in reached
    ]
    if version == 2:
        record["winners"] = [prove(entry, entrants) for entry in record["winners"]]
        record["skipped"] = [prove(entry, entrants) for entry in record["skipped"]]
    record["unclaimed_count"] = record["requested_count"] - len(winners)


def rehash(records: list[dict], start: int = 0) -> list[dict]:
    """Recompute ``record_hash`` from record ``start`` on with the project's digest, linking each
    later record's ``previous_hash`` to it: an edited chain as consistent as a forger can make it."""
    for index in range(start, len(records)):
        if index > start:
            records[index]["previous_hash"] = records[index - 1]["record_hash"]
        records[index]["record_hash"] = draw.record_digest(records[index])
    return records


def edited(records: list[dict]) -> list[dict]:
    """A deep copy to edit."""
    return copy.deepcopy(records)
