"""RFC 9162 / RFC 6962 Merkle tree: known answers, and every proof up to n = 64 against a second,
naive implementation written straight from the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.queue import merkle

# the RFC 6962 test leaves used by certificate-transparency and its ports
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# --- the naive implementation: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, literally ----------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def _data(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


def _tree(d: list[bytes]) -> merkle.MerkleTree:
    return merkle.MerkleTree(merkle.leaf_hash(x) for x in d)


# --- known answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(9))
def test_known_roots(n: int) -> None:
    tree = _tree(LEAVES[:n])
    assert tree.root().hex() == ROOTS[n]
    assert naive_mth(LEAVES[:n]).hex() == ROOTS[n]


def test_known_inclusion_and_consistency_vectors() -> None:
    """RFC 6962 reference vectors (certificate-transparency's merkle_tree_test)."""
    tree = _tree(LEAVES)
    assert [h.hex() for h in tree.inclusion_proof(0, 1)] == []
    assert [h.hex() for h in tree.inclusion_proof(0, 8)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in tree.consistency_proof(1, 8)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in tree.consistency_proof(6, 8)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in tree.consistency_proof(2, 5)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


# --- every proof up to n = 64 ------------------------------------------------------------------------


def test_every_inclusion_proof_up_to_64() -> None:
    d = _data(64)
    tree = _tree(d)
    for n in range(1, 65):
        root = tree.root(n)
        assert root == naive_mth(d[:n])
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == naive_path(m, d[:n]), (m, n)
            leaf = merkle.leaf_hash(d[m])
            assert merkle.verify_inclusion(leaf, m, n, proof, root)
            assert not merkle.verify_inclusion(leaf, m, m, proof, root)
            if n > 1:
                assert not merkle.verify_inclusion(leaf, (m + 1) % n, n, proof, root)
                assert not merkle.verify_inclusion(leaf, m, n, proof[:-1], root)
            assert not merkle.verify_inclusion(merkle.leaf_hash(b"x"), m, n, proof, root)


def test_every_consistency_proof_up_to_64() -> None:
    d = _data(64)
    tree = _tree(d)
    for n in range(1, 65):
        new_root = tree.root(n)
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == (naive_subproof(m, d[:n], True) if m < n else []), (m, n)
            old_root = tree.root(m)
            assert merkle.verify_consistency(m, n, old_root, new_root, proof), (m, n)
            if m < n:
                bad = _tree([*d[: m - 1], b"rewritten"]).root()
                assert not merkle.verify_consistency(m, n, bad, new_root, proof)
                assert not merkle.verify_consistency(m, n, old_root, tree.root(n - 1), proof)
                assert not merkle.verify_consistency(n, m, new_root, old_root, proof)
                if proof:
                    assert not merkle.verify_consistency(m, n, old_root, new_root, proof[1:])


def test_stored_node_getter_matches_memory() -> None:
    tree = _tree(_data(37))
    store: dict[tuple[int, int], bytes] = {(lv, i): h for lv, i, h in tree.nodes()}
    assert len(store) == 37 + 18 + 9 + 4 + 2 + 1  # only complete subtrees are kept
    get = lambda lv, i: store[(lv, i)]  # noqa: E731
    for n in range(38):
        assert merkle.root_hash(get, n) == naive_mth(_data(37)[:n])


def test_append_reports_completed_nodes() -> None:
    tree = merkle.MerkleTree()
    made = [tree.append(merkle.leaf_hash(x)) for x in _data(8)]
    assert [len(m) for m in made] == [1, 2, 1, 3, 1, 2, 1, 4]


def test_bad_arguments() -> None:
    tree = _tree(_data(4))
    with pytest.raises(ValueError):
        tree.inclusion_proof(4, 4)
    with pytest.raises(ValueError):
        tree.consistency_proof(5, 4)
    assert merkle.verify_consistency(0, 4, merkle.EMPTY_ROOT, tree.root(), [])
    assert not merkle.verify_inclusion(b"", 0, 0, [], merkle.EMPTY_ROOT)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=5),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_random_checkpoints_are_consistent_and_any_flip_fails(sizes: list[int], flip: int) -> None:
    """Random appends, random checkpoints: every consistency proof between them verifies, and a
    single flipped byte in the proof or either root makes it fail."""
    total = sum(sizes)
    d = [f"r{i}".encode() for i in range(total)]
    tree = merkle.MerkleTree()
    heads: list[tuple[int, bytes]] = []
    for size in sizes:
        for x in d[tree.size : tree.size + size]:
            tree.append(merkle.leaf_hash(x))
        heads.append((tree.size, tree.root()))
    for i, (m, rm) in enumerate(heads):
        for n, rn in heads[i:]:
            proof = tree.consistency_proof(m, n)
            assert merkle.verify_consistency(m, n, rm, rn, proof)
            if m == n:
                continue
            blob = bytearray(b"".join([rm, rn, *proof]))
            pos = flip % len(blob)
            blob[pos] ^= 1 << (flip % 8)
            parts = [bytes(blob[j : j + 32]) for j in range(0, len(blob), 32)]
            assert not merkle.verify_consistency(m, n, parts[0], parts[1], parts[2:])
