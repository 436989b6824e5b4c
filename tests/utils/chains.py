"""Honest draw chains built as ``services/draws.py`` builds them (``_plan_reroll``, ``_document``),
from ``utils/draw.py``'s own functions, and the forger's re-hashing of an edited chain."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Collection, Sequence

from utils import draw

COMMITTED_AT = "2026-01-01T00:00:00+00:00"


def seed_of(label: object) -> str:
    """A fixed 32-byte seed (hex) for a label, so every chain is reproducible."""
    return hashlib.sha256(f"seed-{label}".encode()).hexdigest()


def build_chain(
    entrants: Sequence[int],
    steps: Sequence[tuple[str, int]],
    *,
    refused: Collection[int] = (),
    seed_label: object = "chain",
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
        eligible = draw.eligible_list(entrants, exclusions)
        winners, reached = draw.select_winners(seeds[index], eligible, count, refused)
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
            "algorithm_version": draw.ALGORITHM_VERSION,
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
            "drawn_at": COMMITTED_AT,
        }
        record["record_hash"] = draw.record_digest(record)
        records.append(record)
        current.pop(replaced, None)
        current.update((w["user_id"], w["position"]) for w in record["winners"])
    return records


def redraw(record: dict, entrants: Sequence[int], refused: Collection[int] = ()) -> None:
    """Recompute a record's winners, skips and counts from its (edited) seed and exclusions, as a
    forger would so that the record agrees with itself; positions from 1 for a first draw."""
    eligible = draw.eligible_list(entrants, record["exclusions"])
    winners, reached = draw.select_winners(
        record["seed"], eligible, record["requested_count"], refused
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
