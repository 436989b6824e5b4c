"""drand rounds (utils/drand.py): real quicknet rounds verify, anything else is refused, the
schedule, and the plain sentence when the BLS package is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools import drand_chain
from utils import drand

UTILS = Path(drand.__file__).resolve().parent
# Two real published rounds of quicknet (public facts, as any relay serves them).
ROUND_1000 = (
    1000,
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125"
    "e342b73a8dd2bacbe47e4b6b63ed5e39",
    "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
)
ROUND_657413 = (
    657413,
    "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be"
    "41076862b98fad56e91a6b85b89cd97b",
    "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587",
)
# Round 657413's signature plus a point of order dividing G1's cofactor: on the curve, outside the
# prime-order subgroup. A pairing check alone lets it through (checked with py_ecc when this was
# written), and its randomness differs: it must be refused.
TORSION_FORGERY = (
    "87f804c3f36e34a1998e27974cc619bb84376a15010713609878da25b185ff4f"
    "713e5ac5c8652ba166b019bdf6fd75dc"
)


@pytest.mark.parametrize(("round", "signature", "randomness"), [ROUND_1000, ROUND_657413])
def test_real_quicknet_rounds_verify_and_give_their_published_randomness(
    round, signature, randomness
):
    drand.verify_round(drand.QUICKNET, round, signature)
    drand.verify_round(drand.QUICKNET, round, signature.upper())  # hex is hex
    assert drand.randomness_of(signature) == randomness


@pytest.mark.parametrize("position", [0, 1, 24, 47])
def test_a_signature_with_one_bit_flipped_is_refused(position):
    round, signature, _ = ROUND_657413
    flipped = bytearray.fromhex(signature)
    flipped[position] ^= 0x01
    with pytest.raises(drand.BeaconInvalid, match="round 657413"):
        drand.verify_round(drand.QUICKNET, round, flipped.hex())


def test_a_signature_given_for_another_round_is_refused():
    _, signature, _ = ROUND_657413
    with pytest.raises(drand.BeaconInvalid, match="does not verify"):
        drand.verify_round(drand.QUICKNET, 657414, signature)
    with pytest.raises(drand.BeaconInvalid, match="does not verify"):
        drand.verify_round(drand.QUICKNET, 1000, signature)


def test_a_point_outside_the_prime_order_subgroup_is_refused():
    with pytest.raises(drand.BeaconInvalid, match="not a point of the BLS12-381 group G1"):
        drand.verify_round(drand.QUICKNET, 657413, TORSION_FORGERY)


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        ("c0" + "00" * 47, "not a canonical G1 point"),  # the identity
        ("zz" * 48, "not hex"),
        ("b7" * 47, "47 bytes, not 48"),
        ("", "0 bytes, not 48"),
        (None, "not a hex string"),
    ],
)
def test_what_is_not_a_signature_is_refused_saying_why(signature, why):
    with pytest.raises(drand.BeaconInvalid, match=why):
        drand.verify_round(drand.QUICKNET, 657413, signature)


@pytest.mark.parametrize("round", [0, -1, 2**64, True, "657413", 657413.0])
def test_what_is_not_a_round_number_is_refused(round):
    with pytest.raises(drand.BeaconInvalid, match="not a drand round number"):
        drand.verify_round(drand.QUICKNET, round, ROUND_657413[1])


def test_the_test_chain_signs_rounds_that_verify_under_its_key_only():
    signature = drand_chain.sign(657413)
    drand.verify_round(drand_chain.DEV_CHAIN, 657413, signature)
    with pytest.raises(drand.BeaconInvalid):
        drand.verify_round(drand.QUICKNET, 657413, signature)  # not quicknet's signature
    with pytest.raises(drand.BeaconInvalid):  # quicknet's real round, under the test chain's key
        drand.verify_round(drand_chain.DEV_CHAIN, 657413, ROUND_657413[1])
    with pytest.raises(drand.BeaconInvalid):
        drand.verify_round(drand_chain.DEV_CHAIN, 657414, signature)


def test_the_test_chain_is_what_its_development_seed_derives():
    assert drand_chain.derive_public_key() == drand_chain.DEV_CHAIN.public_key
    assert drand_chain.derive_chain_hash(drand_chain.DEV_CHAIN.public_key) == (
        drand_chain.DEV_CHAIN.hash
    )
    assert drand_chain.DEV_CHAIN.period == drand.QUICKNET.period == 3
    answer = drand_chain.beacon(7)
    assert answer["randomness"] == drand.randomness_of(answer["signature"])


def test_the_schedule_of_a_chain():
    chain = drand.QUICKNET
    genesis = chain.genesis_time
    assert chain.time_of(1) == genesis
    assert chain.time_of(657413) == genesis + 657412 * 3
    assert chain.round_at(genesis - 0.5) == 0
    assert chain.round_at(genesis) == 1
    assert chain.round_at(genesis + 2.999) == 1
    assert chain.round_at(genesis + 3) == 2
    for round in (1, 2, 1000, 657413):
        published = chain.time_of(round)
        assert chain.round_at(published) == round
        assert chain.round_at(published - 0.001) == round - 1
        assert chain.first_round_after(published) == round + 1  # strictly after
        assert chain.first_round_after(published - 0.001) == round
    assert chain.first_round_after(genesis - 100) == 1
    with pytest.raises(ValueError, match="start at 1"):
        chain.time_of(0)


def test_without_the_bls_package_the_check_is_refused_naming_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, drand.BLS_MODULE, None)  # makes its import fail
    assert not drand.bls_available()
    with pytest.raises(drand.VerifierMissing, match=r"pip install py-arkworks-bls12381==0\.5\.0"):
        drand.verify_round(drand.QUICKNET, *ROUND_657413[:2])
    # A malformed signature is still called malformed: no package is needed to see that.
    with pytest.raises(drand.BeaconInvalid, match="not hex"):
        drand.verify_round(drand.QUICKNET, 657413, "zz")
    assert drand.bls_available() is False
    monkeypatch.undo()
    assert drand.bls_available()


def test_the_module_runs_on_the_standard_library_alone():
    # -S: no site-packages at all, only the standard library; the module is loaded by path, as
    # draw.py loads it beside itself.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import drand\n"
        "assert drand.QUICKNET.round_at(drand.QUICKNET.genesis_time) == 1\n"
        "assert not drand.bls_available()\n"
        "try:\n"
        "    drand.verify_round(drand.QUICKNET, 1000, sys.argv[2])\n"
        "except drand.VerifierMissing as missing:\n"
        "    print(missing)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(UTILS), ROUND_1000[1]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "could not be checked" in result.stdout and "py-arkworks-bls12381" in result.stdout
