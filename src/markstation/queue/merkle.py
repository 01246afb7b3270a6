"""RFC 9162 Merkle trees: hashing, an incremental in-memory tree, inclusion and consistency proofs.

Pure (no I/O). Hashing is RFC 9162 §2.1.1 with SHA-256: a leaf is ``SHA-256(0x00 ‖ data)``, an
interior node ``SHA-256(0x01 ‖ left ‖ right)``, the empty tree ``SHA-256()``. A tree of ``n``
leaves splits at ``k``, the largest power of two below ``n``.

Nodes are addressed as ``(level, index)``: the root of the *complete* subtree over leaves
``[index·2^level, (index+1)·2^level)``. Those are the only nodes a journal ever stores (each append
adds its leaf plus one node per level it completes, about two rows on average, and never rewrites
one), and every hash a proof needs is a combination of them, so proofs cost O(log² n) lookups at
most and the whole journal is never rehashed. :class:`MerkleTree` keeps them in memory (for the
registry side and for full verification); a store serves them from its tables through a
:data:`NodeGetter`.

Proofs are generated as in RFC 9162 §2.1.3.1 (``PATH``) and §2.1.4.1 (``PROOF``/``SUBPROOF``) and
verified with the algorithms of §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

#: (level, index) -> hash of that complete, aligned subtree
NodeGetter = Callable[[int, int], bytes]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(get: NodeGetter, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC recursion produces (start aligned to its split)."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return get(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(subtree_hash(get, start, start + k), subtree_hash(get, start + k, end))


def root_hash(get: NodeGetter, size: int) -> bytes:
    return subtree_hash(get, 0, size)


def inclusion_proof(get: NodeGetter, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]), RFC 9162 §2.1.3.1, nearest sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            path.append(subtree_hash(get, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(get, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_proof(get: NodeGetter, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]), RFC 9162 §2.1.4.1; empty when old_size is 0 or equal."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree_hash(get, start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree_hash(get, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(get, start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` place the leaf hash ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does the tree (new_size, new_root) extend (old_size, old_root)?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class MerkleTree:
    """An append-only tree held in memory: every complete subtree, built incrementally."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        #: levels[l][i] = hash of the complete subtree (l, i)
        self.levels: list[list[bytes]] = [[]]
        for h in leaves:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf *hash*; return the nodes it completed, ``(level, index, hash)``, leaf first."""
        index = len(self.levels[0])
        self.levels[0].append(leaf)
        made = [(0, index, leaf)]
        level, h = 0, leaf
        while index & 1:
            h = node_hash(self.levels[level][index - 1], h)
            level += 1
            index >>= 1
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(h)
            made.append((level, index, h))
        return made

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def nodes(self) -> Iterable[tuple[int, int, bytes]]:
        for level, row in enumerate(self.levels):
            for index, h in enumerate(row):
                yield level, index, h

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.node, self.size if size is None else self._check(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.node, index, self.size if size is None else self._check(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        n = self.size if new_size is None else self._check(new_size)
        return consistency_proof(self.node, old_size, n)

    def _check(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")
        return size
