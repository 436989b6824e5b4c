"""Compare BLS12-381 packages on what the drand beacon needs (bench/findings.md, "BLS12-381").

Run it with the Python of a scratch virtualenv holding one candidate (never the repo's .venv):

    python3 -m venv /tmp/bls/v-NAME && /tmp/bls/v-NAME/bin/pip install NAME
    /tmp/bls/v-NAME/bin/python bench/bls_candidates.py MODULE [ITERATIONS]

MODULE is py_arkworks_bls12381, pyblst, blspy, drand_verify or py_ecc. It checks quicknet's two
real rounds, a flipped bit, a wrong round, a point outside the prime-order subgroup and a test
chain's key pair (where the package can sign), then prints one JSON line with the mean time of a
verification (decompress both points, hash to G1, pairing check) and of a signature.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
PUBLIC_KEY = bytes.fromhex(
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d"
    "1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8"
    "991ef5ece45a"
)
ROUNDS = [
    (
        1000,
        bytes.fromhex(
            "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125"
            "e342b73a8dd2bacbe47e4b6b63ed5e39"
        ),
    ),
    (
        657413,
        bytes.fromhex(
            "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be"
            "41076862b98fad56e91a6b85b89cd97b"
        ),
    ),
]
# Round 657413's signature plus a point of the cofactor's torsion: on the curve, not in G1.
TORSION = bytes.fromhex(
    "87f804c3f36e34a1998e27974cc619bb84376a15010713609878da25b185ff4f"
    "713e5ac5c8652ba166b019bdf6fd75dc"
)
G2_GENERATOR = bytes.fromhex(
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d05"
    "5d042b7e024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbef"
    "d48056c8c121bdb8"
)
ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
SECRET = int.from_bytes(hashlib.sha256(b"bench test chain").digest(), "big") % ORDER


def message(round_number):
    return hashlib.sha256(round_number.to_bytes(8, "big")).digest()


def arkworks():
    from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

    def verify(key, round_number, signature):
        try:
            point, public = (
                G1Point.from_compressed_bytes(signature),
                G2Point.from_compressed_bytes(key),
            )
        except ValueError:
            return False
        hashed = G1Point.hash_to_curve(message(round_number), DST)
        return GT.pairing_check([point, -hashed], [G2Point(), public])

    def public_key():
        return (G2Point() * Scalar(SECRET)).to_compressed_bytes()

    def sign(round_number):
        hashed = G1Point.hash_to_curve(message(round_number), DST)
        return (hashed * Scalar(SECRET)).to_compressed_bytes()

    return verify, sign, public_key


def blst():
    from pyblst import BlstP1Element as P1
    from pyblst import BlstP2Element as P2
    from pyblst import final_verify, miller_loop

    generator = P2.uncompress(G2_GENERATOR)

    def verify(key, round_number, signature):
        try:
            point, public = P1.uncompress(signature), P2.uncompress(key)
        except Exception:  # noqa: BLE001 - pyblst raises its own untyped errors
            return False
        hashed = P1.hash_to_group(message(round_number), DST)
        return final_verify(miller_loop(point, generator), miller_loop(hashed, public))

    def public_key():
        return generator.scalar_mul(SECRET).compress()

    def sign(round_number):
        return P1.hash_to_group(message(round_number), DST).scalar_mul(SECRET).compress()

    return verify, sign, public_key


def chia_blspy():
    from blspy import G1Element, G2Element

    def verify(key, round_number, signature):
        try:
            point, public = G1Element.from_bytes(signature), G2Element.from_bytes(key)
        except Exception:  # noqa: BLE001 - pybind11 raises plain RuntimeError/ValueError
            return False
        hashed = G1Element.from_message(message(round_number), DST)
        return point.pair(G2Element.generator()) == hashed.pair(public)

    return verify, None, None  # no scalar multiple of an arbitrary G1 point: cannot sign on G1


def drand_verify():
    import drand_verify as package

    def verify(key, round_number, signature):
        try:
            randomness = package.verify_bls_unchained_g1_rfc9380(
                round_number, signature.hex(), key.hex()
            )
        except Exception:  # noqa: BLE001 - raises on a bad signature
            return False
        return randomness == hashlib.sha256(signature).hexdigest()

    return verify, None, None  # verification only


def pure_python():
    from py_ecc.bls.g2_primitives import subgroup_check
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.bls.point_compression import (
        compress_G1,
        compress_G2,
        decompress_G1,
        decompress_G2,
    )
    from py_ecc.optimized_bls12_381 import FQ12, G2, final_exponentiate, multiply, neg
    from py_ecc.optimized_bls12_381.optimized_pairing import miller_loop

    def verify(key, round_number, signature):
        try:
            point = decompress_G1(int.from_bytes(signature, "big"))
            public = decompress_G2(
                (int.from_bytes(key[:48], "big"), int.from_bytes(key[48:], "big"))
            )
        except ValueError:
            return False
        if not (subgroup_check(point) and subgroup_check(public)):  # not done by decompression
            return False
        hashed = hash_to_G1(message(round_number), DST, hashlib.sha256)
        product = miller_loop(G2, point) * miller_loop(public, neg(hashed))
        return final_exponentiate(product) == FQ12.one()

    def public_key():
        first, second = compress_G2(multiply(G2, SECRET))
        return first.to_bytes(48, "big") + second.to_bytes(48, "big")

    def sign(round_number):
        hashed = hash_to_G1(message(round_number), DST, hashlib.sha256)
        return compress_G1(multiply(hashed, SECRET)).to_bytes(48, "big")

    return verify, sign, public_key


CANDIDATES = {
    "py_arkworks_bls12381": arkworks,
    "pyblst": blst,
    "blspy": chia_blspy,
    "drand_verify": drand_verify,
    "py_ecc": pure_python,
}


def mean_ms(call, iterations):
    call()
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    return round((time.perf_counter() - started) / iterations * 1000, 2)


def main() -> None:
    name, iterations = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    started = time.perf_counter()
    verify, sign, public_key = CANDIDATES[name]()
    figures = {"package": name, "import_ms": round((time.perf_counter() - started) * 1000, 1)}
    last_round, last_signature = ROUNDS[-1]
    flipped = bytearray(last_signature)
    flipped[20] ^= 0x01
    figures["real_rounds_verify"] = all(verify(PUBLIC_KEY, r, s) for r, s in ROUNDS)
    figures["flipped_bit_refused"] = not verify(PUBLIC_KEY, last_round, bytes(flipped))
    figures["wrong_round_refused"] = not verify(PUBLIC_KEY, last_round + 1, last_signature)
    figures["outside_subgroup_refused"] = not verify(PUBLIC_KEY, last_round, TORSION)
    figures["verify_ms"] = mean_ms(
        lambda: verify(PUBLIC_KEY, last_round, last_signature), iterations
    )
    if sign is not None:
        test_key = public_key()
        figures["test_chain_ok"] = (
            verify(test_key, 7, sign(7))
            and not verify(PUBLIC_KEY, 7, sign(7))
            and not verify(test_key, last_round, last_signature)
        )
        figures["sign_ms"] = mean_ms(lambda: sign(7), iterations)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
