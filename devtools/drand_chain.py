#!/usr/bin/env python3
"""DEVELOPMENT TOOL — a local drand chain for work without the network: quicknet's scheme
(``bls-unchained-g1-rfc9380``, period 3 s) under a key pair of its own, derived from a fixed
development seed. Its secret key is therefore public: a draw on this chain can be steered by
anyone, which is why production refuses any chain but quicknet (config.py).

The stand-in (devtools/standin.py) serves it as a drand relay does; the tests sign rounds with it;
``make run``, ``make demo``, ``make load``, ``make chaos`` and the benchmarks point the service at
it. Run ``python devtools/drand_chain.py env http://127.0.0.1:8090`` for the shell ``export``
lines of the service's DRAND_* settings with that relay, and ``python devtools/drand_chain.py info``
for the chain's info document (what ``draw.py verify --chain`` reads for a chain not quicknet).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.drand import DST, SCHEME, Chain, randomness_of, round_message

DEVELOPMENT_SEED = b"telegive development drand chain: its secret key is public, never draw on it"
BEACON_ID = "telegive-dev"
# The order of BLS12-381's prime-order groups.
GROUP_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

# Derived from DEVELOPMENT_SEED by derive_public_key() and derive_chain_hash() (a test checks
# that they still are); written out so that reading the chain needs no BLS package.
DEV_CHAIN = Chain(
    hash="0cfd730d3384e9415700b25fb6286a2c57a348856e6c1997cf74a47400ce0bf7",
    public_key=(
        "a4082de3d725bc889bb4a5915ac318980e44865daa88bb38180cd315ea71e3847bb43b886e97fa7f84d1d50c56c98d22"
        "0086d8787523c27d7ace8d764bb634445bb7c19ac21ea1bada3e7cf791d46aec632b79d4c107771c9ecc4c53c958ce36"
    ),
    genesis_time=1_700_000_000,
    period=3,
)


def secret_key() -> int:
    """The chain's secret key: the development seed's SHA-256, reduced to the group order."""
    return int.from_bytes(hashlib.sha256(DEVELOPMENT_SEED).digest(), "big") % GROUP_ORDER


def derive_public_key() -> str:
    """The public key (G2, compressed, hex) of ``secret_key()``."""
    from py_arkworks_bls12381 import G2Point, Scalar

    return (G2Point() * Scalar(secret_key())).to_compressed_bytes().hex()


def derive_chain_hash(public_key: str) -> str:
    """The chain's hash: SHA-256 of its facts as canonical JSON (our own packing, not drand's)."""
    facts = {
        "beacon_id": BEACON_ID,
        "genesis_time": DEV_CHAIN.genesis_time,
        "period": DEV_CHAIN.period,
        "public_key": public_key,
        "scheme": SCHEME,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=4096)
def sign(round: int) -> str:
    """The chain's signature of ``round`` (G1, compressed, hex): secret key × H(message)."""
    from py_arkworks_bls12381 import G1Point, Scalar

    hashed = G1Point.hash_to_curve(round_message(round), DST)
    return (hashed * Scalar(secret_key())).to_compressed_bytes().hex()


def beacon(round: int) -> dict:
    """A relay's answer for ``round``: ``{round, randomness, signature}``."""
    signature = sign(round)
    return {"round": round, "randomness": randomness_of(signature), "signature": signature}


def info() -> dict:
    """A relay's ``/{chain_hash}/info`` answer for this chain."""
    return {
        "public_key": DEV_CHAIN.public_key,
        "period": DEV_CHAIN.period,
        "genesis_time": DEV_CHAIN.genesis_time,
        "hash": DEV_CHAIN.hash,
        "schemeID": SCHEME,
        "metadata": {"beaconID": BEACON_ID},
    }


def env(relays: str) -> dict[str, str]:
    """The service's DRAND_* settings for this chain, served by ``relays`` (comma-separated)."""
    return {
        "DRAND_URLS": relays,
        "DRAND_CHAIN_HASH": DEV_CHAIN.hash,
        "DRAND_PUBLIC_KEY": DEV_CHAIN.public_key,
        "DRAND_GENESIS_TIME": str(DEV_CHAIN.genesis_time),
        "DRAND_PERIOD_SECONDS": str(DEV_CHAIN.period),
    }


def main() -> None:
    if sys.argv[1:2] == ["info"] and len(sys.argv) == 2:
        print(json.dumps(info(), indent=2))
        return
    if sys.argv[1:2] != ["env"] or len(sys.argv) != 3:
        raise SystemExit("usage: drand_chain.py env RELAY_URL[,RELAY_URL...] | drand_chain.py info")
    for name, value in env(sys.argv[2]).items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
