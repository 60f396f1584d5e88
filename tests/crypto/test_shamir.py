"""Shamir k-of-n custody of the tender opening key."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import shamir
from crypto.errors import ShareFormatError, ShareKeyMismatch, SharesInsufficient, SharesInvalid


@pytest.fixture(scope="module")
def tender_key():
    return ec.generate_private_key(ec.SECP256R1())


def _same(a: ec.EllipticCurvePrivateKey, b: ec.EllipticCurvePrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


def _corrupt(share: shamir.Share, byte: int = 0) -> shamir.Share:
    value = bytearray(share.value)
    value[byte] ^= 0x40
    return shamir.Share(share.key_id, share.threshold, share.count, share.index, bytes(value))


def test_any_k_shares_rebuild_the_key(tender_key):
    shares = shamir.split_private_key(tender_key, 3, 5)
    assert [s.index for s in shares] == [1, 2, 3, 4, 5]
    for subset in itertools.combinations(shares, 3):
        assert _same(shamir.combine(subset, tender_key.public_key()), tender_key)
    encoded = [s.to_bytes() for s in shares[1:4]]
    assert all(len(e) == shamir.SHARE_SIZE == 82 for e in encoded)
    assert _same(shamir.combine(encoded, tender_key.public_key()), tender_key)
    assert _same(shamir.combine(shares, tender_key.public_key()), tender_key)  # all five is fine too


def test_no_single_share_is_the_key(tender_key):
    scalar = tender_key.private_numbers().private_value.to_bytes(32, "big")
    for share in shamir.split_private_key(tender_key, 2, 3):
        assert share.value != scalar and scalar[:16] not in share.to_bytes() and scalar[16:] not in share.to_bytes()


def test_k_minus_one_shares_are_refused_by_name(tender_key):
    shares = shamir.split_private_key(tender_key, 3, 5)
    with pytest.raises(SharesInsufficient, match="3 shares are needed.*only 2"):
        shamir.combine(shares[:2], tender_key.public_key())
    with pytest.raises(SharesInsufficient):  # a duplicate does not count twice
        shamir.combine([shares[0], shares[0], shares[1]], tender_key.public_key())
    with pytest.raises(SharesInsufficient, match="No shares"):
        shamir.combine([], tender_key.public_key())


def test_one_corrupted_share_among_k_is_refused_never_a_wrong_key(tender_key):
    shares = shamir.split_private_key(tender_key, 3, 5)
    for position in range(3):
        for byte in (0, 15, 16, 31):  # each half of the value
            subset = list(shares[:3])
            subset[position] = _corrupt(subset[position], byte)
            with pytest.raises(SharesInvalid, match="do not rebuild the published key"):
                shamir.combine(subset, tender_key.public_key())


def test_with_spare_shares_the_wrong_one_is_named(tender_key):
    shares = shamir.split_private_key(tender_key, 3, 5)
    supplied = [shares[0], _corrupt(shares[1]), shares[2], shares[3]]
    result = shamir.combine_detailed(supplied, tender_key.public_key())
    assert _same(result.private_key, tender_key)
    assert result.inconsistent == (2,) and 2 not in result.used and result.attributed
    all_good = shamir.combine_detailed(shares, tender_key.public_key())
    assert all_good.inconsistent == () and all_good.attributed and all_good.used == (1, 2, 3)
    with pytest.raises(SharesInvalid, match="too many of them are wrong"):
        shamir.combine([shares[0], _corrupt(shares[1], 0), _corrupt(shares[2], 5), shares[3]],
                       tender_key.public_key())


def test_colluding_shares_never_yield_a_wrong_key(tender_key):
    """Shares 2 and 3 carrying the same error cancel out in the subset {1, 2, 3} (both Lagrange
    coefficients are 1 there). The key is still right: it is checked against the public key. Which
    shares are wrong can only be said while at most (m + 1 - k) // 2 of m supplied shares are wrong:
    two colluders among four shares (bound 1) make honest share 4 look like the odd one out, which is
    why the library reports "inconsistent", never "guilty"; with six shares (bound 2) they are named."""
    shares = shamir.split_private_key(tender_key, 3, 7)
    supplied = [shares[0], _corrupt(shares[1]), _corrupt(shares[2]), shares[3]]
    result = shamir.combine_detailed(supplied, tender_key.public_key())
    assert _same(result.private_key, tender_key) and result.used == (1, 2, 3)
    assert result.inconsistent == (4,)  # the documented limit: beyond the bound, attribution can mislead
    result = shamir.combine_detailed([*supplied, shares[4], shares[5]], tender_key.public_key())
    assert _same(result.private_key, tender_key) and result.attributed and result.inconsistent == (2, 3)


def test_shares_of_another_key_or_split_are_refused(tender_key):
    other = ec.generate_private_key(ec.SECP256R1())
    mine, theirs = shamir.split_private_key(tender_key, 2, 3), shamir.split_private_key(other, 2, 3)
    with pytest.raises(ShareKeyMismatch, match="another key"):
        shamir.combine([mine[0], theirs[1]], tender_key.public_key())
    second_split = shamir.split_private_key(tender_key, 2, 3)
    with pytest.raises(SharesInvalid):  # same key, same k: but shares of two splits do not mix
        shamir.combine([mine[0], second_split[1]], tender_key.public_key())
    with pytest.raises(ShareKeyMismatch, match="different splits"):
        shamir.combine([mine[0], shamir.split_private_key(tender_key, 3, 4)[1]], tender_key.public_key())
    with pytest.raises(SharesInvalid, match="index 1"):
        shamir.combine([mine[0], second_split[0], mine[1]], tender_key.public_key())


def test_share_encoding_is_checked(tender_key):
    share = shamir.split_private_key(tender_key, 2, 2)[0]
    data = share.to_bytes()
    assert shamir.Share.from_bytes(data) == share
    damaged = bytearray(data)
    damaged[50] ^= 1
    with pytest.raises(ShareFormatError, match="checksum"):
        shamir.Share.from_bytes(bytes(damaged))
    for bad in (data[:-1], b"X" + data[1:], data[:7] + b"\x02" + data[8:]):
        with pytest.raises(ShareFormatError):
            shamir.Share.from_bytes(bad)
    with pytest.raises(ValueError):
        shamir.split_private_key(tender_key, 1, 3)
    with pytest.raises(ValueError):
        shamir.split_private_key(tender_key, 4, 3)


def test_shares_encrypted_to_custodians(tender_key):
    custodians = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    shares = shamir.split_private_key(tender_key, 2, 3)
    sealed = [shamir.encrypt_share(s, c.public_key(), context=b"T-1") for s, c in zip(shares, custodians, strict=True)]
    assert all(len(x) == shamir.SEALED_SIZE for x in sealed)
    assert all(s.value not in x for s, x in zip(shares, sealed, strict=True))
    opened = [shamir.decrypt_share(x, c, context=b"T-1") for x, c in zip(sealed, custodians, strict=True)]
    assert opened == shares
    assert _same(shamir.combine(opened[1:], tender_key.public_key()), tender_key)
    with pytest.raises(ShareKeyMismatch, match="encrypted to key"):
        shamir.decrypt_share(sealed[0], custodians[1], context=b"T-1")
    with pytest.raises(ShareFormatError, match="another context"):
        shamir.decrypt_share(sealed[0], custodians[0], context=b"T-2")
    altered = bytearray(sealed[0])
    altered[-20] ^= 1
    with pytest.raises(ShareFormatError):
        shamir.decrypt_share(bytes(altered), custodians[0], context=b"T-1")
