"""Append-only Merkle tree in the style of RFC 6962 / RFC 9162 §2.1, over SHA-256.

* leaf hash ``H(0x00 || entry)``, node hash ``H(0x01 || left || right)``, empty tree ``H()``;
* the tree head of n leaves splits at the largest power of two smaller than n (MTH, §2.1.1);
* inclusion proofs (PATH, §2.1.3.1) and consistency proofs (PROOF/SUBPROOF, §2.1.4.1) are generated
  from those recursive definitions, and verified with the iterative algorithms of §2.1.3.2 and
  §2.1.4.2, so generation and verification are independent code paths;
* :func:`root_hash` computes a tree head a third way, from a compact range (frontier) that
  :func:`frontier_append` extends leaf by leaf, so a log can sign heads without rereading its leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from crypto.errors import ConsistencyProofInvalid, InclusionProofInvalid, MerkleError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def frontier_append(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The compact range of ``size + 1`` leaves from that of ``size`` leaves and the new leaf hash.

    A compact range (frontier) holds the roots of the perfect subtrees a tree of n leaves splits into,
    largest first: one hash per set bit of n. Appending is O(log n) and needs no earlier leaf.
    """
    if len(frontier) != size.bit_count():
        raise MerkleError(f"a frontier of {size} leaves has {size.bit_count()} hashes, not {len(frontier)}")
    hashes, node, n = list(frontier), bytes(leaf), size
    while n & 1:
        node = node_hash(hashes.pop(), node)
        n >>= 1
    hashes.append(node)
    return hashes


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The tree head (MTH) of the tree whose compact range is ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    node = frontier[-1]
    for left in reversed(frontier[:-1]):
        node = node_hash(left, node)
    return node


def last_leaf_inclusion_proof(frontier: Sequence[bytes]) -> list[bytes]:
    """The audit path (leaf to root) of a leaf appended to the tree whose compact range is ``frontier``.

    In the tree of ``n + 1`` leaves, the path of leaf ``n`` is exactly the roots of the perfect subtrees
    of the first ``n`` leaves, smallest first (RFC 6962 §2.1.1 with ``m = n``): no earlier leaf is read.
    """
    return [bytes(h) for h in reversed(frontier)]


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """Tree head of the given leaf hashes, by a compact range built in one pass."""
    frontier: list[bytes] = []
    for size, h in enumerate(leaf_hashes):
        frontier = frontier_append(frontier, size, h)
    return frontier_root(frontier)


class MerkleTree:
    """An in-memory log: append entries, get tree heads and proofs for any past size."""

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._leaves: list[bytes] = []
        self._perfect: dict[tuple[int, int], bytes] = {}
        for entry in entries:
            self.append(entry)

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        tree = cls()
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise MerkleError("A leaf hash has 32 bytes")
            tree._leaves.append(bytes(h))
        return tree

    @property
    def size(self) -> int:
        return len(self._leaves)

    def append(self, entry: bytes) -> int:
        """Add an entry; return its leaf index."""
        self._leaves.append(leaf_hash(entry))
        return len(self._leaves) - 1

    def leaf_hash(self, index: int) -> bytes:
        return self._leaves[index]

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 1:
            return self._leaves[lo]
        perfect = n & (n - 1) == 0
        if perfect and (lo, n) in self._perfect:
            return self._perfect[(lo, n)]
        k = _split(n)
        result = node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))
        if perfect:
            self._perfect[(lo, n)] = result
        return result

    def _size(self, size: int | None) -> int:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise MerkleError(f"The log has {self.size} entries; there is no tree of size {size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        size = self._size(size)
        return EMPTY_ROOT if size == 0 else self._mth(0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return self._path(m, lo, lo + k) + [self._mth(lo + k, hi)]
        return self._path(m - k, lo + k, hi) + [self._mth(lo, lo + k)]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]): the audit path of leaf ``index`` in the tree of ``size`` leaves."""
        size = self._size(size)
        if not 0 <= index < size:
            raise MerkleError(f"Leaf {index} is not in a tree of {size} leaves")
        return self._path(index, 0, size)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self._mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return self._subproof(m, lo, lo + k, whole) + [self._mth(lo + k, hi)]
        return self._subproof(m - k, lo + k, hi, False) + [self._mth(lo, lo + k)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]): shows the old tree is a prefix of the new one."""
        new_size = self._size(new_size)
        if not 0 <= old_size <= new_size:
            raise MerkleError(f"No consistency proof from size {old_size} to size {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)


def _check_hashes(proof: Sequence[bytes], error: type[Exception]) -> list[bytes]:
    if any(not isinstance(p, (bytes, bytearray)) or len(p) != HASH_SIZE for p in proof):
        raise error("Every proof element is a 32-byte hash")
    return [bytes(p) for p in proof]


def root_from_inclusion_proof(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, steps 1-4: the root the proof leads to (raises if the shape is wrong)."""
    proof = _check_hashes(proof, InclusionProofInvalid)
    if not 0 <= index < tree_size:
        raise InclusionProofInvalid(f"Leaf index {index} is outside a tree of {tree_size} leaves")
    fn, sn, r = index, tree_size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InclusionProofInvalid("The inclusion proof is longer than the tree is deep")
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
    if sn != 0:
        raise InclusionProofInvalid("The inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is entry ``index`` of the tree with head ``root``."""
    if root_from_inclusion_proof(leaf, index, tree_size, proof) != bytes(root):
        raise InclusionProofInvalid(f"The inclusion proof for leaf {index} does not lead to the tree head "
                                    f"of size {tree_size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: check that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""
    proof = _check_hashes(proof, ConsistencyProofInvalid)
    if not 0 <= old_size <= new_size:
        raise ConsistencyProofInvalid(f"A log cannot shrink from {old_size} to {new_size} entries")
    if old_size == new_size:
        if proof or bytes(old_root) != bytes(new_root):
            raise ConsistencyProofInvalid("Two tree heads of the same size must be identical, with an empty proof")
        return
    if old_size == 0:
        if proof or bytes(old_root) != EMPTY_ROOT:
            raise ConsistencyProofInvalid("The empty tree's proof is empty and its head is H()")
        return
    if not proof:
        raise ConsistencyProofInvalid("The consistency proof is empty")
    if old_size & (old_size - 1) == 0:
        proof = [bytes(old_root), *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ConsistencyProofInvalid("The consistency proof is longer than the tree is deep")
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
    if sn != 0:
        raise ConsistencyProofInvalid("The consistency proof is shorter than the tree is deep")
    if fr != bytes(old_root):
        raise ConsistencyProofInvalid(f"The proof does not lead to the old tree head (size {old_size}): the "
                                      f"log's history was changed")
    if sr != bytes(new_root):
        raise ConsistencyProofInvalid(f"The proof does not lead to the new tree head (size {new_size})")
