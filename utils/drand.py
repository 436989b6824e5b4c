"""drand beacon rounds: a chain's schedule, and a round's signature checked against its key.

Shipped beside ``draw.py``, the standalone verifier: it needs nothing but Python's standard library
(3.9+), except to check a signature, which needs the BLS12-381 package ``py-arkworks-bls12381``
(Python 3.11+). When that package is missing, ``verify_round`` raises ``VerifierMissing`` naming
it, so a verifier can say exactly which check it could not make.

The scheme is drand's ``bls-unchained-g1-rfc9380`` (League of Entropy's "quicknet"): the chain's
public key is a point of G2 (96 bytes compressed), a round's signature a point of G1 (48 bytes
compressed) over the message SHA-256(round as 8 bytes big-endian), hashed to G1 as RFC 9380 says
(SSWU, the DST below). A signature holds when e(signature, g2) == e(H(message), public key). Its
randomness is SHA-256(signature). Round r is published at genesis_time + (r - 1) * period.

Because the randomness is a hash of the signature's bytes, only the one canonical encoding of a
point in the prime-order subgroup is accepted: a point outside the subgroup (which the pairing
alone can let through) or another encoding of the same point would change the randomness without
the chain's key.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

SCHEME = "bls-unchained-g1-rfc9380"
DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
BLS_MODULE = "py_arkworks_bls12381"
BLS_REQUIREMENT = "py-arkworks-bls12381==0.5.0"
SIGNATURE_BYTES = 48
PUBLIC_KEY_BYTES = 96


class BeaconInvalid(Exception):
    """A round's signature does not hold for the chain's key; the message says why."""


class VerifierMissing(Exception):
    """The BLS12-381 package is not installed, so a signature could not be checked."""


@dataclass(frozen=True)
class Chain:
    """A drand chain: its hash, its public key (G2, hex) and its schedule (unix seconds)."""

    hash: str
    public_key: str
    genesis_time: int
    period: int

    def round_at(self, t: float) -> int:
        """The latest round published at unix time ``t`` (0 before the first round)."""
        if t < self.genesis_time:
            return 0
        return math.floor((t - self.genesis_time) / self.period) + 1

    def time_of(self, round: int) -> float:
        """The unix time at which ``round`` (1 or more) is published."""
        if round < 1:
            raise ValueError(f"drand rounds start at 1, got {round}")
        return float(self.genesis_time + (round - 1) * self.period)

    def first_round_after(self, t: float) -> int:
        """The first round published strictly after unix time ``t``."""
        return self.round_at(t) + 1


# League of Entropy's quicknet: public facts (https://api.drand.sh/{hash}/info).
QUICKNET = Chain(
    hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d"
        "1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8"
        "991ef5ece45a"
    ),
    genesis_time=1692803367,
    period=3,
)


def round_message(round: int) -> bytes:
    """What the chain signs for ``round``: SHA-256 of the round as 8 bytes big-endian."""
    return hashlib.sha256(round.to_bytes(8, "big")).digest()


def randomness_of(signature_hex: str) -> str:
    """A round's randomness: SHA-256 of its signature's bytes, in hex."""
    return hashlib.sha256(bytes.fromhex(signature_hex)).hexdigest()


def bls_available() -> bool:
    """Whether signatures can be checked here (the BLS12-381 package imports)."""
    try:
        _bls()
    except VerifierMissing:
        return False
    return True


def verify_round(chain: Chain, round: int, signature_hex: str) -> None:
    """Check that ``signature_hex`` is ``chain``'s signature of ``round``.

    Raises BeaconInvalid (saying why) when it is not, VerifierMissing when it cannot be checked.
    """
    if isinstance(round, bool) or not isinstance(round, int) or not 1 <= round < 2**64:
        raise BeaconInvalid(f"round {round!r} is not a drand round number")
    signature = _hex_bytes(signature_hex, SIGNATURE_BYTES, f"the signature of round {round}")
    public_key = _hex_bytes(chain.public_key, PUBLIC_KEY_BYTES, "the chain's public key")
    bls = _bls()
    point = _signature_point(bls, signature, round)
    key = _public_key_point(bls, public_key)
    hashed = bls.G1Point.hash_to_curve(round_message(round), DST)
    if not bls.GT.pairing_check([point, -hashed], [bls.G2Point(), key]):
        raise BeaconInvalid(
            f"the signature of round {round} does not verify against the public key of chain "
            f"{chain.hash}"
        )


def _bls():
    """The BLS12-381 package, imported when first needed (it is optional for draw.py)."""
    try:
        import py_arkworks_bls12381
    except ImportError:
        raise VerifierMissing(
            f"the BLS12-381 package is not installed, so the drand signature could not be "
            f"checked: pip install {BLS_REQUIREMENT} (Python 3.11+)"
        ) from None
    return py_arkworks_bls12381


def _hex_bytes(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise BeaconInvalid(f"{what} is not a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise BeaconInvalid(f"{what} is not hex") from None
    if len(data) != length:
        raise BeaconInvalid(f"{what} is {len(data)} bytes, not {length}")
    return data


def _signature_point(bls, signature: bytes, round: int):
    """The signature as a point of G1's prime-order subgroup, in its one canonical encoding."""
    try:
        point = bls.G1Point.from_compressed_bytes(signature)  # checks the curve and the subgroup
    except (ValueError, TypeError):
        raise BeaconInvalid(
            f"the signature of round {round} is not a point of the BLS12-381 group G1"
        ) from None
    if point == bls.G1Point.identity() or point.to_compressed_bytes() != signature:
        raise BeaconInvalid(f"the signature of round {round} is not a canonical G1 point")
    return point


def _public_key_point(bls, public_key: bytes):
    """The chain's public key as a point of G2's prime-order subgroup."""
    try:
        point = bls.G2Point.from_compressed_bytes(public_key)
    except (ValueError, TypeError):
        raise BeaconInvalid(
            "the chain's public key is not a point of the BLS12-381 group G2"
        ) from None
    if point == bls.G2Point.identity():
        raise BeaconInvalid("the chain's public key is the identity point")
    return point
