"""A Merkle tree over a checkpoint's account leaves, as RFC 6962 (Certificate Transparency,
section 2.1) builds it: leaves and inner nodes are hashed with different one-byte
prefixes, so no leaf can pass for a node and no subtree for a leaf.

An audit path lets one account holder check that their leaf is in a signed root while
seeing nothing of the other leaves but hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head over these leaf hashes; an empty tree's is SHA-256 of nothing."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # bottom-up, carrying an odd node up a level: the same tree as RFC 6962's recursive
    # split, without recursion (a chart of accounts can be large)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def audit_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The sibling hashes from leaf `index` up to the root (RFC 6962 2.1.1), leaf first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    path: list[bytes] = []
    level = list(leaves)
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        paired = [node_hash(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        i //= 2
    return path


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root that leaf `index` of a tree of `size` leaves and its audit path lead to
    (RFC 9162 2.1.3.2); None when the path cannot belong to such a tree."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = node_hash(sibling, r)
            if fn % 2 == 0:
                # a right-most node carried up: climb until it is a right child
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, sibling)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


__all__ = ["audit_path", "leaf_hash", "node_hash", "root", "root_from_path"]
