"""The draw algorithm (utils/draw.py): fixed vectors, uniformity, exclusions, chain, verifier."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from itertools import permutations
from pathlib import Path

import pytest

from utils import draw

SEED = "00" * 31 + "01"
SEED2 = "ab" * 32


def test_the_random_stream_follows_its_written_definition():
    # Step 4 of the documented algorithm, recomputed here independently of the implementation.
    prefix = bytes.fromhex(SEED) + b"telegive-draw-v1"
    expected = [
        int.from_bytes(hashlib.sha256(prefix + i.to_bytes(8, "big")).digest()[:8], "big")
        for i in range(3)
    ]
    stream = draw.RandomStream(SEED)
    assert [stream.next_u64() for _ in range(3)] == expected
    assert expected == [6930443254828759972, 1945588315631388243, 589428930765621261]


def test_fixed_vectors_do_not_change():
    assert list(draw.candidate_order(SEED, 10)) == [2, 7, 1, 6, 8, 3, 0, 5, 9, 4]
    assert list(draw.candidate_order(SEED2, 12))[:5] == [11, 4, 0, 8, 5]
    assert draw.select_winners(SEED2, list(range(100, 112)), 3) == ([111, 104, 100], [])
    assert (
        draw.commitment_of(SEED2)
        == "9a2db2e23f1504cd056606553ac049c5e718e8f9ce9233876df1a7a1821af885"
    )
    # The entrant hash is the SHA-256 of "1\n2\n3\n", what `sha256sum` prints for that text.
    assert draw.entrants_digest([1, 2, 3]) == hashlib.sha256(b"1\n2\n3\n").hexdigest()


@pytest.mark.parametrize("count", [0, 1, 2, 7, 100, 1000])
def test_the_candidate_order_is_a_permutation(count):
    assert sorted(draw.candidate_order(SEED2, count)) == list(range(count))


def test_rejection_sampling_discards_the_biased_tail():
    class Scripted(draw.RandomStream):
        def __init__(self, values):
            self.values = iter(values)

        def next_u64(self):
            return next(self.values)

    bound = 3  # 2^64 mod 3 == 1, so 2^64 - 1 is the one value that must be rejected
    stream = Scripted([2**64 - 1, 2**64 - 2, 5])
    assert stream.below(bound) == (2**64 - 2) % 3
    assert stream.below(bound) == 5 % 3


def _seeds(count: int):
    return (hashlib.sha256(f"uniformity-{i}".encode()).hexdigest() for i in range(count))


def _chi_square(observed: Counter, categories: list, total: int) -> float:
    expected = total / len(categories)
    return sum((observed[c] - expected) ** 2 / expected for c in categories)


def test_every_entrant_is_equally_likely_to_win():
    # 20,000 fixed seeds, 10 entrants, 1 winner. Chi-square with 9 degrees of freedom: the
    # 99.99th percentile is 33.72, so a fair draw fails this with probability 1e-4 at most, and
    # the seeds are fixed, so the test is deterministic.
    total = 20_000
    wins = Counter(next(draw.candidate_order(seed, 10)) for seed in _seeds(total))
    assert _chi_square(wins, list(range(10)), total) < 33.72


def test_every_order_of_winners_is_equally_likely():
    # The whole shuffle, not only the first pick: all 24 orders of 4 entrants, 24,000 seeds.
    # Chi-square with 23 degrees of freedom, 99.99th percentile 55.0.
    total = 24_000
    orders = Counter(tuple(draw.candidate_order(seed, 4)) for seed in _seeds(total))
    assert _chi_square(orders, list(permutations(range(4))), total) < 55.0


def test_a_large_entrant_count_is_not_biased_towards_low_positions():
    # With n close to 2^63 plain modulo would favour low positions by up to 2x; rejection keeps
    # the first pick's mean at n/2 (the bound is 4.5 standard errors for 4,000 picks).
    n = 3 * 2**61
    picks = [next(draw.candidate_order(seed, n)) for seed in _seeds(4000)]
    mean = sum(picks) / len(picks)
    standard_error = (n / math.sqrt(12)) / math.sqrt(len(picks))
    assert abs(mean - n / 2) < 4.5 * standard_error


def test_exclusions_and_skips():
    entrants = list(range(1, 21))
    eligible = draw.eligible_list(entrants, exclusions=[3, 5, 7])
    assert 3 not in eligible and len(eligible) == 17
    winners, reached = draw.select_winners(SEED, eligible, 3)
    skipped_first = winners[0]
    again, reached = draw.select_winners(SEED, eligible, 3, skipped=[skipped_first])
    assert again[:2] == winners[1:]
    assert reached == [skipped_first]
    assert skipped_first not in again


def test_fewer_entrants_than_prizes_all_win():
    winners, _ = draw.select_winners(SEED, [10, 20], 5)
    assert sorted(winners) == [10, 20]


def _record(entrants: list[int], count: int = 2, **changes) -> dict:
    winners, _ = draw.select_winners(SEED2, entrants, count)
    record = {
        "giveaway_id": 1,
        "sequence": 1,
        "kind": "draw",
        "algorithm": draw.ALGORITHM,
        "algorithm_version": 1,  # version 1 records still verify
        "commitment": draw.commitment_of(SEED2),
        "seed": SEED2,
        "entrants_hash": draw.entrants_digest(entrants),
        "entrant_count": len(entrants),
        "exclusions": [],
        "requested_count": count,
        "winners": [{"position": i, "user_id": u} for i, u in enumerate(winners, start=1)],
        "skipped": [],
        "unclaimed_count": 0,
        "replaced_user_id": None,
        "previous_hash": draw.GENESIS_HASH,
        "next_commitment": draw.commitment_of("cd" * 32),
    }
    record.update(changes)
    record["record_hash"] = draw.record_digest(record)
    return record


def test_a_correct_record_verifies_and_any_change_is_caught():
    entrants = list(range(100, 130))
    record = _record(entrants)
    assert draw.verify_record(record, entrants) == []
    assert draw.verify_chain([record]) == []

    swapped = dict(
        record, winners=[{"position": 1, "user_id": 101}, {"position": 2, "user_id": 102}]
    )
    swapped["record_hash"] = draw.record_digest(swapped)  # even a consistent hash cannot help
    assert any("winners should be" in p for p in draw.verify_record(swapped, entrants))

    tampered = dict(record, reason="edited")
    assert any("record_hash" in p for p in draw.verify_record(tampered, entrants))
    assert any("record_hash" in p for p in draw.verify_chain([tampered]))

    assert any("entrant list" in p for p in draw.verify_record(record, [*entrants, 999]))

    other_seed = dict(record, seed="ef" * 32)
    assert any("commitment" in p for p in draw.verify_record(other_seed, entrants))


def test_the_chain_links_records_and_commitments():
    entrants = list(range(1, 11))
    first = _record(entrants)
    second = _record(entrants, sequence=2, kind="reroll", previous_hash=first["record_hash"])
    assert any("commitment is not the one" in p for p in draw.verify_chain([first, second]))
    unlinked = _record(
        entrants, sequence=2, previous_hash="0" * 64, commitment=first["next_commitment"]
    )
    assert any("previous_hash" in p for p in draw.verify_chain([first, unlinked]))


def test_the_verifier_runs_alone_with_the_standard_library_only(tmp_path):
    entrants = list(range(500, 540))
    record = _record(entrants, count=4)
    (tmp_path / "draw.json").write_text(json.dumps({"records": [record]}))
    (tmp_path / "entrants.txt").write_text("".join(f"{u}\n" for u in entrants))
    script = tmp_path / "draw.py"
    shutil.copy(Path(draw.__file__), script)  # the file alone, away from the repository

    def run(entrants_file: str):
        # -I: isolated mode, no site-packages, no current directory on the path.
        return subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                str(script),
                "verify",
                "--record",
                "draw.json",
                "--entrants",
                entrants_file,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = run("entrants.txt")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout
    (tmp_path / "other.txt").write_text("".join(f"{u}\n" for u in entrants[:-1]))
    bad = run("other.txt")
    assert bad.returncode == 1
    assert "NOT VERIFIED" in bad.stdout
