"""The forgeries of issue 13, each applied to a genuine chain (a draw and two rerolls over 300
entrants) and re-hashed with the project's own digest: the standalone verifier must refuse each
one, naming the rule it breaks, although every record still agrees with itself."""

from __future__ import annotations

import hashlib
import json
from itertools import combinations

import pytest

from tests.utils.chains import build_chain, edited, redraw, rehash, tree_of
from utils import draw

ENTRANTS = sorted(
    {int(hashlib.sha256(f"user-{i}".encode()).hexdigest()[:12], 16) for i in range(300)}
)
REFUSED = set(ENTRANTS[::37])  # the re-check turns these away, so the records carry skips


SEED_LABEL = "forgery-v2-0"  # seeds under which forgery (A) re-picks earlier winners


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


# --- version 2: the committed list -----------------------------------------------------------------


def verify_from_root(tmp_path, capsys, document, *extra: str) -> tuple[int, str]:
    """The standalone verifier without the entrant list: from the records' proofs alone."""
    (tmp_path / "draw.json").write_text(json.dumps(document))
    code = draw.main(["verify", "--record", str(tmp_path / "draw.json"), *extra])
    return code, capsys.readouterr().out


def test_the_genuine_chain_verifies_from_its_root_alone(genuine, tmp_path, capsys):
    code, out = verify_from_root(tmp_path, capsys, {"records": genuine})
    assert code == 0, out
    assert "VERIFIED: 3 record(s) follow from the seed(s) and the committed entrant root" in out
    assert "note: record 1: no public randomness was used" in out


def test_a_winner_who_never_entered_is_refused(genuine, tmp_path, capsys):
    """(E) An id that is not in the committed list put in a winner's place, with the proof of the
    winner it replaces: the proof no longer leads to the root."""
    forged = edited(genuine)
    outsider = max(ENTRANTS) + 1
    winner = forged[0]["winners"][0]
    winner["user_id"] = outsider
    rehash(forged)
    code, out = verify_from_root(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert f"record 1: the proof of winner {outsider} at leaf {winner['leaf_index']}" in out


def test_a_skip_dropped_from_a_record_is_refused(genuine, tmp_path, capsys):
    """(F) A user the re-check turned away removed from the record, so that the record hides
    that a candidate before the last winner was passed over."""
    forged = edited(genuine)
    record = next(r for r in forged if r["skipped"])
    dropped = record["skipped"].pop(0)
    rehash(forged)
    code, out = verify_from_root(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert (
        f"the candidate at leaf {dropped['leaf_index']} is neither a winner nor a skipped entry"
        in out
    )


def test_a_list_re_committed_after_the_draw_is_refused_by_a_witness(genuine, tmp_path, capsys):
    """(G) The operator adds an entrant after the fact and rebuilds the whole chain over the new
    list (root, winners, proofs, hashes): it agrees with itself, and with the root alone it would
    verify; the published entrant list, or the root a witness kept from the close, refuses it."""
    padded = sorted([*ENTRANTS, max(ENTRANTS) + 7])
    forged = build_chain(padded, [("draw", 20)], refused=REFUSED, seed_label=SEED_LABEL)
    assert forged[0]["entrant_root"] != genuine[0]["entrant_root"]
    assert verify_from_root(tmp_path, capsys, {"records": forged})[0] == 0

    code, out = verify(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert "entrants_hash differs" in out
    code, out = verify_from_root(
        tmp_path, capsys, {"records": forged}, "--root", genuine[0]["entrant_root"]
    )
    assert code == 1
    assert "record 1: entrant_root is not the root published when entries closed" in out


def test_a_record_with_another_root_than_the_first_is_refused(genuine, tmp_path, capsys):
    forged = edited(genuine)
    forged[2]["entrant_root"] = "ab" * 32
    rehash(forged)
    code, out = verify_from_root(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert "record 3: entrant_root differs from the first draw's: the list was fixed" in out


def test_randomness_fixed_before_the_list_was_committed_is_refused(genuine, tmp_path, capsys):
    forged = edited(genuine)
    forged[0]["randomness_fixed_at"] = "2025-12-31T23:00:00+00:00"
    rehash(forged)
    code, out = verify_from_root(tmp_path, capsys, {"records": forged})
    assert code == 1
    assert "a first draw's randomness is fixed when the list is committed" in out
    assert "the randomness was fixed before the seed was committed to" in out


def test_a_participant_checks_their_own_proof(genuine, tmp_path, capsys):
    """verify-proof: an entrant's proof holds against the draw's root; another id with that
    proof, or a proof against another draw's root, does not."""
    tree = tree_of(tuple(ENTRANTS))
    index = 123
    proof = tree.proof(index)
    document = {
        "user_id": ENTRANTS[index],
        "entrant_root": tree.root,
        "entrant_count": len(ENTRANTS),
        "leaf_index": proof.leaf_index,
        "salt": proof.salt,
        "proof": proof.path,
    }
    (tmp_path / "draw.json").write_text(json.dumps({"records": genuine}))

    def check(doc) -> tuple[int, str]:
        (tmp_path / "proof.json").write_text(json.dumps(doc))
        args = ["verify-proof", "--proof", str(tmp_path / "proof.json")]
        code = draw.main([*args, "--record", str(tmp_path / "draw.json")])
        return code, capsys.readouterr().out

    code, out = check(document)
    assert code == 0, out
    assert f"VERIFIED: user {ENTRANTS[index]} was counted" in out
    code, out = check({**document, "user_id": ENTRANTS[index] + 1})
    assert code == 1
    assert "the proof does not lead from the user's leaf to entrant_root" in out
    other = tree_of(tuple(ENTRANTS[:-1]))
    code, out = check({**document, "entrant_root": other.root, "entrant_count": len(ENTRANTS) - 1})
    assert code == 1
    assert "record 1 commits to another root" in out
