"""The committed entrant list as the service builds it (``telegive-draw`` v2, step 2b of
``utils/draw.py``): salted leaves, the tree, and inclusion proofs.

Salts come from a secret key per giveaway: the salts of chunk ``c`` (leaves ``c * CHUNK`` onwards)
are the SHAKE-256 output of ``key || c`` (8 bytes, big-endian), 16 bytes a leaf, in list order. A
chunk is the subtree of ``CHUNK = ARITY ** CHUNK_LEVEL`` leaves under one node, so a proof needs the
user ids of one chunk and the chunk roots, never the whole list.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from utils.draw import (
    ARITY,
    EMPTY_TOP,
    SALT_BYTES,
    entrant_root,
    leaves,
    path_in,
    tree_levels,
)

CHUNK_LEVEL = 6
CHUNK = ARITY**CHUNK_LEVEL  # 4,096 leaves


def chunk_salts(salt_key: bytes, chunk: int, size: int) -> bytes:
    """The salts of a chunk's ``size`` leaves, concatenated."""
    return hashlib.shake_256(salt_key + chunk.to_bytes(8, "big")).digest(SALT_BYTES * size)


def chunk_leaves(salt_key: bytes, chunk: int, user_ids: Sequence[int]) -> bytes:
    """The concatenated leaves of one chunk of the sorted list."""
    return leaves(chunk_salts(salt_key, chunk, len(user_ids)), user_ids)


@dataclass(frozen=True)
class Proof:
    """One entry's place in the committed list, its salt and its path to the root."""

    leaf_index: int
    salt: str
    path: list[str]


@dataclass(frozen=True)
class EntrantTree:
    """The whole tree of a sorted entrant list, kept while a draw needs proofs."""

    count: int
    root: str
    levels: list[bytes]
    salt_key: bytes
    chunk_first_ids: list[int]

    @property
    def chunk_roots(self) -> list[str]:
        """The node over each chunk (the top itself when the list fits in one chunk)."""
        if not self.count:
            return []
        level = self.levels[min(CHUNK_LEVEL, len(self.levels) - 1)]
        return [level[i : i + 32].hex() for i in range(0, len(level), 32)]

    def proof(self, index: int) -> Proof:
        """The proof of the entry at ``index``."""
        chunk, offset = divmod(index, CHUNK)
        salt = chunk_salts(self.salt_key, chunk, offset + 1)[SALT_BYTES * offset :]
        return Proof(leaf_index=index, salt=salt.hex(), path=path_in(self.levels, index))


def build_tree(user_ids: Sequence[int], salt_key: bytes) -> EntrantTree:
    """The tree over an ascending list of user ids."""
    leaves = b"".join(
        chunk_leaves(salt_key, chunk, user_ids[start : start + CHUNK])
        for chunk, start in enumerate(range(0, len(user_ids), CHUNK))
    )
    levels = tree_levels(leaves) if user_ids else [b""]
    top = levels[-1] if user_ids else EMPTY_TOP
    return EntrantTree(
        count=len(user_ids),
        root=entrant_root(len(user_ids), top),
        levels=levels,
        salt_key=salt_key,
        chunk_first_ids=[user_ids[start] for start in range(0, len(user_ids), CHUNK)],
    )


def chunk_of(chunk_first_ids: Sequence[int], user_id: int) -> int:
    """The chunk that holds ``user_id`` if it is an entrant (-1 before the first)."""
    return bisect.bisect_right(chunk_first_ids, user_id) - 1


def proof_in_chunk(
    salt_key: bytes,
    chunk: int,
    chunk_user_ids: Sequence[int],
    chunk_roots: Sequence[str],
    user_id: int,
) -> Proof | None:
    """A user's proof from their chunk's user ids and the chunk roots alone; None when the user
    is not in that chunk."""
    offset = bisect.bisect_left(chunk_user_ids, user_id)
    if offset == len(chunk_user_ids) or chunk_user_ids[offset] != user_id:
        return None
    inner = tree_levels(chunk_leaves(salt_key, chunk, chunk_user_ids))
    outer = tree_levels(b"".join(bytes.fromhex(root) for root in chunk_roots))
    salt = chunk_salts(salt_key, chunk, offset + 1)[SALT_BYTES * offset :]
    return Proof(
        leaf_index=chunk * CHUNK + offset,
        salt=salt.hex(),
        path=path_in(inner, offset) + path_in(outer, chunk),
    )
