"""The forgeries of issue 13, each applied to a genuine chain (a draw and two rerolls over 300
entrants) and re-hashed with the project's own digest: the standalone verifier must refuse each
one, naming the rule it breaks, although every record still agrees with itself."""

from __future__ import annotations

import hashlib
import json
from itertools import combinations

import pytest

from tests.utils.chains import build_chain, edited, redraw, rehash
from utils import draw

ENTRANTS = sorted(
    {int(hashlib.sha256(f"user-{i}".encode()).hexdigest()[:12], 16) for i in range(300)}
)
REFUSED = set(ENTRANTS[::37])  # the re-check turns these away, so the records carry skips


SEED_LABEL = "forgery-3"  # seeds under which forgery (A) re-picks three earlier winners


@pytest.fixture(scope="module")
def genuine() -> list[dict]:
    first = build_chain(ENTRANTS, [("draw", 20)], refused=REFUSED, seed_label=SEED_LABEL)
    replaced = first[0]["winners"][1]["user_id"]
    steps = [("draw", 20), ("replace", replaced), ("add", 15)]
    return build_chain(ENTRANTS, steps, refused=REFUSED, seed_label=SEED_LABEL)


def verify(tmp_path, capsys, document) -> tuple[int, str]:
    """Run the standalone verifier's command on a published document and the entrant list."""
    (tmp_path / "draw.json").write_text(json.dumps(document))
    (tmp_path / "entrants.txt").write_text("".join(f"{u}\n" for u in ENTRANTS))
    code = draw.main(
        [
            "verify",
            "--record",
            str(tmp_path / "draw.json"),
            "--entrants",
            str(tmp_path / "entrants.txt"),
        ]
    )
    return code, capsys.readouterr().out


def winners(record: dict) -> list[int]:
    return [w["user_id"] for w in record["winners"]]


def test_the_genuine_chain_verifies(genuine, tmp_path, capsys):
    assert [record["kind"] for record in genuine] == ["draw", "reroll", "reroll"]
    assert any(record["skipped"] for record in genuine)
    code, out = verify(tmp_path, capsys, {"records": genuine})
    assert code == 0, out
    assert "VERIFIED: 3 record(s)" in out


def test_a_reroll_that_forgets_its_exclusions_is_refused(genuine, tmp_path, capsys):
    """(A) The last reroll with its exclusions emptied re-picks earlier winners."""
    forged = edited(genuine)
    forged[2]["exclusions"] = []
    redraw(forged[2], ENTRANTS, REFUSED)
    rehash(forged)
    earlier = set(winners(genuine[0])) | set(winners(genuine[1]))
    assert set(winners(forged[2])) & earlier  # the forgery re-picks earlier winners
    assert draw.verify_record(forged[2], ENTRANTS) == []  # and agrees with itself

    code, out = verify(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert "record 3: exclusions should be everyone who won in an earlier record" in out
    assert "have won before" in out


def test_a_first_draw_that_hides_an_entrant_is_refused(genuine, tmp_path, capsys):
    """(B) The first draw silently excludes the user the next reroll replaces, which changes its
    winners; the reroll then "replaces" a user who is no longer a winner."""
    replaced = genuine[1]["replaced_user_id"]
    forged = edited(genuine)
    forged[0]["exclusions"] = [replaced]
    redraw(forged[0], ENTRANTS, REFUSED)
    rehash(forged)
    assert winners(forged[0]) != winners(genuine[0])
    assert all(draw.verify_record(record, ENTRANTS) == [] for record in forged)

    code, out = verify(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert f"record 1: a first draw excludes no one, the record excludes [{replaced}]" in out
    assert f"record 2: replaced user {replaced} is not a current winner" in out


def test_a_lone_reroll_with_a_seed_chosen_by_hand_is_refused(genuine, tmp_path, capsys):
    """(C) A reroll record alone, its seed chosen by hand and its SHA-256 as the commitment."""
    forged = edited(genuine[1])
    forged["seed"] = "42" * 32
    forged["commitment"] = hashlib.sha256(bytes.fromhex(forged["seed"])).hexdigest()
    redraw(forged, ENTRANTS, REFUSED)
    forged["record_hash"] = draw.record_digest(forged)
    assert draw.verify_record(forged, ENTRANTS) == []

    code, out = verify(tmp_path, capsys, forged)
    assert code == 1
    assert "NOT VERIFIED: incomplete chain" in out


def test_a_chain_with_a_gap_is_refused(genuine, tmp_path, capsys):
    code, out = verify(tmp_path, capsys, {"records": [genuine[0], genuine[2]]})
    assert code == 1
    assert "NOT VERIFIED: incomplete chain" in out
    assert "record 3 stands where record 2 should be" in out


def test_a_first_draw_steered_to_a_chosen_winner_is_refused(genuine, tmp_path, capsys):
    """(D) Two entrants excluded from the first draw, chosen so that a chosen non-winner wins."""
    forged = edited(genuine)
    target = steer(forged[0], genuine[0])
    assert target not in winners(genuine[0]) and target in winners(forged[0])
    rehash(forged)
    assert draw.verify_record(forged[0], ENTRANTS) == []

    code, out = verify(tmp_path, capsys, {"records": forged})
    assert code == 1
    a, b = forged[0]["exclusions"]
    assert f"record 1: a first draw excludes no one, the record excludes [{a}, {b}]" in out


def steer(record: dict, genuine_draw: dict) -> int:
    """Exclude the two entrants (searched among the first twelve) that make the first non-winner
    possible win the draw, as a forger would; return that user."""
    non_winners = [u for u in ENTRANTS if u not in winners(genuine_draw) and u not in REFUSED]
    for friend in non_winners:
        for pair in combinations(ENTRANTS[:12], 2):
            if friend in pair:
                continue
            record["exclusions"] = list(pair)
            redraw(record, ENTRANTS, REFUSED)
            if friend in winners(record):
                return friend
    raise AssertionError("no pair of exclusions steers the draw")
