"""Merkle tree (RFC 6962 / RFC 9162): reference vectors, and properties over random sizes."""

from __future__ import annotations

import base64
import random

import pytest

from crypto import merkle
from crypto.errors import ConsistencyProofInvalid, InclusionProofInvalid, MerkleError

H = bytes.fromhex

# The RFC 6962 test data of the certificate-transparency reference implementation
# (cpp/merkletree/merkle_tree_test.cc), also used by trillian and transparency-dev/merkle.
CT_LEAVES = [H(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                            "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
# transparency-dev/merkle compact/range_test.go TestGetRootHashGolden: leaf i is bytes(i & 0xff, i >> 8 & 0xff).
GOLDEN_ROOTS = {
    10: "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4=", 15: "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI=",
    16: "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE=", 100: "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY=",
    255: "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0=", 256: "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA=",
    1000: "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ=", 4095: "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w=",
    4096: "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M=", 10000: "VZcav65F9haHVRk3wre2axFoBXRNeUh/1d9d5FQfxIg=",
}


def naive_mth(entries: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, literally (the test's own independent definition)."""
    if not entries:
        return merkle.EMPTY_ROOT
    if len(entries) == 1:
        return merkle.leaf_hash(entries[0])
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return merkle.node_hash(naive_mth(entries[:k]), naive_mth(entries[k:]))


def test_hashes_are_domain_separated():
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == CT_ROOTS[0]
    assert merkle.leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert merkle.node_hash(b"N123", b"N456").hex() == \
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"


def test_reference_roots_three_ways():
    tree = merkle.MerkleTree(CT_LEAVES)
    assert tree.root(0) == merkle.EMPTY_ROOT == merkle.root_hash([])
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert tree.root(n).hex() == expected
        assert merkle.root_hash([merkle.leaf_hash(e) for e in CT_LEAVES[:n]]).hex() == expected
        assert naive_mth(CT_LEAVES[:n]).hex() == expected


@pytest.mark.parametrize("size", sorted(GOLDEN_ROOTS))
def test_golden_roots_of_larger_trees(size):
    hashes = [merkle.leaf_hash(bytes([i & 0xFF, (i >> 8) & 0xFF])) for i in range(size)]
    expected = base64.b64decode(GOLDEN_ROOTS[size])
    assert merkle.root_hash(hashes) == expected
    assert merkle.MerkleTree.from_leaf_hashes(hashes).root() == expected


def test_reference_inclusion_proofs():
    tree = merkle.MerkleTree(CT_LEAVES)
    for index, size, path in CT_INCLUSION:
        assert [p.hex() for p in tree.inclusion_proof(index, size)] == path
        merkle.verify_inclusion(tree.leaf_hash(index), index, size, [H(p) for p in path], H(CT_ROOTS[size - 1]))


def test_reference_consistency_proofs():
    tree = merkle.MerkleTree(CT_LEAVES)
    for old, new, proof in CT_CONSISTENCY:
        assert [p.hex() for p in tree.consistency_proof(old, new)] == proof
        merkle.verify_consistency(old, new, H(CT_ROOTS[old - 1]), H(CT_ROOTS[new - 1]), [H(p) for p in proof])


def _tampered(proof: list[bytes]) -> list[list[bytes]]:
    """Every single-element change, truncation, extension and reordering of a proof."""
    variants = []
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[i % 32] ^= 1
        variants.append(proof[:i] + [bytes(flipped)] + proof[i + 1:])
        variants.append(proof[:i] + proof[i + 1:])
    variants.append(proof + [bytes(32)])
    variants.append([bytes(32)] + proof)
    if len(proof) > 1:
        variants.append(proof[::-1])
    return [v for v in variants if v != proof]


def test_random_sizes_every_proof_verifies_and_every_tampered_proof_fails():
    rng = random.Random(6962)
    for size in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33] + [rng.randrange(34, 300) for _ in range(4)]:
        entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(size)]
        tree = merkle.MerkleTree(entries)
        assert tree.root() == naive_mth(entries) == merkle.root_hash(tree.leaf_hash(i) for i in range(size))
        indexes = range(size) if size <= 40 else rng.sample(range(size), 25)
        for i in indexes:
            proof, root = tree.inclusion_proof(i), tree.root()
            merkle.verify_inclusion(tree.leaf_hash(i), i, size, proof, root)
            for bad in _tampered(proof):
                with pytest.raises(InclusionProofInvalid):
                    merkle.verify_inclusion(tree.leaf_hash(i), i, size, bad, root)
            for wrong_index in {i - 1, i + 1, i ^ 2} - {i}:
                if 0 <= wrong_index < size:
                    with pytest.raises(InclusionProofInvalid):
                        merkle.verify_inclusion(tree.leaf_hash(i), wrong_index, size, proof, root)
            with pytest.raises(InclusionProofInvalid):
                merkle.verify_inclusion(merkle.leaf_hash(b"not the entry"), i, size, proof, root)
        olds = range(0, size + 1) if size <= 40 else rng.sample(range(size + 1), 25)
        for old in olds:
            proof = tree.consistency_proof(old)
            merkle.verify_consistency(old, size, tree.root(old), tree.root(), proof)
            if 0 < old < size:
                for bad in _tampered(proof):
                    with pytest.raises(ConsistencyProofInvalid):
                        merkle.verify_consistency(old, size, tree.root(old), tree.root(), bad)
                with pytest.raises(ConsistencyProofInvalid):
                    merkle.verify_consistency(old, size, merkle.leaf_hash(b"rewritten history"), tree.root(), proof)
                with pytest.raises(ConsistencyProofInvalid):
                    merkle.verify_consistency(old, size, tree.root(old), merkle.leaf_hash(b"forked"), proof)


def test_a_rewritten_history_is_not_consistent():
    honest = merkle.MerkleTree(CT_LEAVES)
    rewritten = merkle.MerkleTree([*CT_LEAVES[:3], b"backdated bid", *CT_LEAVES[4:]])
    for old in range(4, 8):
        proof = rewritten.consistency_proof(old, 8)
        with pytest.raises(ConsistencyProofInvalid, match="does not lead to the (old|new) tree head"):
            merkle.verify_consistency(old, 8, honest.root(old), rewritten.root(8), proof)


def test_impossible_arguments():
    tree = merkle.MerkleTree(CT_LEAVES[:3])
    with pytest.raises(MerkleError):
        tree.inclusion_proof(3)
    with pytest.raises(MerkleError):
        tree.root(4)
    with pytest.raises(MerkleError):
        tree.consistency_proof(3, 2)
    with pytest.raises(InclusionProofInvalid):
        merkle.verify_inclusion(tree.leaf_hash(0), 0, 0, [], merkle.EMPTY_ROOT)
    with pytest.raises(InclusionProofInvalid, match="32-byte"):
        merkle.verify_inclusion(tree.leaf_hash(0), 0, 3, [b"short"], tree.root())
    with pytest.raises(ConsistencyProofInvalid, match="shrink"):
        merkle.verify_consistency(3, 2, tree.root(3), tree.root(2), [])
    with pytest.raises(ConsistencyProofInvalid, match="empty"):
        merkle.verify_consistency(1, 3, tree.root(1), tree.root(3), [])
    with pytest.raises(ConsistencyProofInvalid):
        merkle.verify_consistency(3, 3, tree.root(3), tree.root(2), [])


def test_frontier_matches_the_tree_at_every_size():
    tree, frontier = merkle.MerkleTree(), []
    for size in range(70):
        assert len(frontier) == size.bit_count()
        assert merkle.frontier_root(frontier) == tree.root()
        entry = f"entry {size}".encode()
        tree.append(entry)
        frontier = merkle.frontier_append(frontier, size, merkle.leaf_hash(entry))


def test_frontier_of_the_wrong_size_is_refused():
    with pytest.raises(MerkleError, match="3 leaves has 2 hashes, not 1"):
        merkle.frontier_append([b"\x00" * 32], 3, b"\x01" * 32)


def test_the_last_leaf_path_comes_from_the_frontier_before_it():
    tree, frontier = merkle.MerkleTree(), []
    for size in range(300):
        entry = f"entry {size}".encode()
        path = merkle.last_leaf_inclusion_proof(frontier)
        leaf = merkle.leaf_hash(entry)
        tree.append(entry)
        assert path == tree.inclusion_proof(size, size + 1)
        merkle.verify_inclusion(leaf, size, size + 1, path, tree.root())  # raises when wrong
        frontier = merkle.frontier_append(frontier, size, leaf)
