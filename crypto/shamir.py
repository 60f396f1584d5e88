"""k-of-n custody of a P-256 private key (the tender opening key) with Shamir secret sharing.

``Cryptodome.Protocol.SecretSharing.Shamir`` shares exactly 16 bytes over GF(2^128), so the 32-byte
scalar is split as two 16-byte halves with the same (k, n); custodian ``i`` gets ``(i, hi_i || lo_i)``.
Shamir has no integrity: combining a wrong or too few shares silently yields another number. So
:func:`combine` always checks the result against the published public key and never returns a key
that does not match it; with more than k shares it searches for a consistent subset and names the
shares that do not fit (reliably while at most (m + 1 - k) // 2 of the m supplied shares are wrong,
see :func:`combine_detailed`).

Share encoding (82 bytes)::

    magic "EBIDSHR" (7) || version 0x01 (1) || key_id (32) || k (2) || n (2) || index (2)
    || value (32: share of the high half || share of the low half) || check (4)

``key_id`` is SHA-256 of the public key's SubjectPublicKeyInfo DER (the same key id as envelopes),
``check`` is the first 4 bytes of SHA-256 of everything before it (catches transcription damage;
it is no defence against a custodian who lies, the public-key check is).

Encrypted share (to a custodian's P-256 key, HPKE base mode, AES-256-GCM)::

    magic "EBIDSHE" (7) || version 0x01 (1) || recipient key_id (32) || enc (65) || ciphertext (82 + 16)

with ``info = b"ebid/shamir/v1 share"`` and the caller's ``context`` (e.g. the tender id) as AAD.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from Cryptodome.Protocol.SecretSharing import Shamir
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import hpke
from crypto.errors import (
    HpkeError,
    ShareFormatError,
    ShareKeyMismatch,
    SharesInsufficient,
    SharesInvalid,
)
from crypto.suites import SUITE_P256

SHARE_MAGIC = b"EBIDSHR"
SEALED_MAGIC = b"EBIDSHE"
VERSION = 1
SHARE_INFO = b"ebid/shamir/v1 share"
MAX_SHARES = 255
MAX_SUBSETS = 5000  # combinations tried when looking for the wrong share among more than k
_BODY = struct.Struct(">7sB32sHHH32s")
SHARE_SIZE = _BODY.size + 4
SEALED_SIZE = 7 + 1 + 32 + hpke.N_ENC + SHARE_SIZE + hpke.N_T
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class Share:
    """One custodian's share of a private key."""

    key_id: bytes
    threshold: int
    count: int
    index: int
    value: bytes  # 32 bytes

    def to_bytes(self) -> bytes:
        body = _BODY.pack(SHARE_MAGIC, VERSION, self.key_id, self.threshold, self.count, self.index, self.value)
        return body + hashlib.sha256(body).digest()[:4]

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        data = bytes(data)
        if len(data) != SHARE_SIZE or not data.startswith(SHARE_MAGIC):
            raise ShareFormatError("Not an ebid key share (wrong length or magic bytes)")
        magic, version, key_id, k, n, index, value = _BODY.unpack(data[:-4])
        if version != VERSION:
            raise ShareFormatError(f"Unsupported share version {version}")
        if hashlib.sha256(data[:-4]).digest()[:4] != data[-4:]:
            raise ShareFormatError(f"Share {index} is damaged (its checksum does not match)")
        if not (2 <= k <= n <= MAX_SHARES and 1 <= index <= n):
            raise ShareFormatError(f"Share {index} has impossible parameters (k={k}, n={n})")
        return cls(key_id, k, n, index, value)


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return SUITE_P256.key_id(public_key)


def split_private_key(private_key: ec.EllipticCurvePrivateKey, threshold: int, count: int) -> list[Share]:
    """Split a P-256 private key into ``count`` shares, any ``threshold`` of which rebuild it."""
    SUITE_P256.check_private_key(private_key)
    if not 2 <= threshold <= count <= MAX_SHARES:
        raise ValueError(f"Need 2 <= k <= n <= {MAX_SHARES}; got k={threshold}, n={count}")
    scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
    high = Shamir.split(threshold, count, scalar[:16])
    low = Shamir.split(threshold, count, scalar[16:])
    kid = key_id(private_key.public_key())
    return [Share(kid, threshold, count, i, h + lo)
            for (i, h), (j, lo) in zip(high, low, strict=True) if i == j]


def _as_share(item: Share | bytes) -> Share:
    return item if isinstance(item, Share) else Share.from_bytes(item)


def _interpolate(shares: list[Share]) -> ec.EllipticCurvePrivateKey | None:
    high = Shamir.combine([(s.index, s.value[:16]) for s in shares])
    low = Shamir.combine([(s.index, s.value[16:]) for s in shares])
    scalar = int.from_bytes(high + low, "big")
    if not 0 < scalar < _P256_ORDER:
        return None
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _matches(key: ec.EllipticCurvePrivateKey | None, public_key: ec.EllipticCurvePublicKey) -> bool:
    return key is not None and key.public_key().public_numbers() == public_key.public_numbers()


@dataclass(frozen=True)
class CombineResult:
    private_key: ec.EllipticCurvePrivateKey
    used: tuple[int, ...]  # indexes of the k shares that rebuilt the key
    inconsistent: tuple[int, ...]  # supplied shares that do not lie on the rebuilt polynomial
    attributed: bool  # False when too many shares disagree to say reliably which ones are wrong


def combine_detailed(shares: Iterable[Share | bytes], public_key: ec.EllipticCurvePublicKey) -> CombineResult:
    """Rebuild the private key of ``public_key`` and report which supplied shares do not fit.

    The key is always checked against ``public_key``. With m shares supplied and threshold k, the
    inconsistent shares are named reliably when at most (m + 1 - k) // 2 of them are wrong (the
    public key acts as one more point, Reed-Solomon unique decoding); beyond that ``attributed`` is
    False and nobody is blamed. Raises :class:`SharesInsufficient` (fewer than k distinct shares),
    :class:`ShareKeyMismatch` (a share of another key or split) or :class:`SharesInvalid` (no k of
    them rebuild the key).
    """
    SUITE_P256.check_public_key(public_key)
    by_index: dict[int, Share] = {}
    for share in map(_as_share, shares):
        if share.key_id != key_id(public_key):
            raise ShareKeyMismatch(f"Share {share.index} belongs to another key "
                                   f"({share.key_id[:8].hex()}, not {key_id(public_key)[:8].hex()})")
        previous = by_index.setdefault(share.index, share)
        if previous.value != share.value:
            raise SharesInvalid(f"Two different shares carry index {share.index}; at least one is wrong")
    if not by_index:
        raise SharesInsufficient("No shares were supplied")
    params = {(s.threshold, s.count) for s in by_index.values()}
    if len(params) != 1:
        raise ShareKeyMismatch(f"The shares come from different splits (k, n = {sorted(params)})")
    k, _n = params.pop()
    ordered = [by_index[i] for i in sorted(by_index)]
    m = len(ordered)
    if m < k:
        raise SharesInsufficient(f"{k} shares are needed to rebuild the key, only {m} were supplied "
                                 f"(indexes {', '.join(str(s.index) for s in ordered)})")
    radius = (m + 1 - k) // 2
    best: tuple[set[int], tuple[Share, ...], ec.EllipticCurvePrivateKey] | None = None
    for tried, subset in enumerate(itertools.combinations(ordered, k)):
        if tried >= MAX_SUBSETS:
            break
        candidate = _interpolate(list(subset))
        if candidate is None or not _matches(candidate, public_key):
            continue
        # A share lies on this subset's polynomial iff swapping it in keeps the constant term.
        consistent = {s.index for s in subset} | {
            s.index for s in ordered if s not in subset and _matches(_interpolate([*subset[1:], s]), public_key)}
        if best is None or len(consistent) > len(best[0]):
            best = (consistent, subset, candidate)
        if m - len(consistent) <= radius:
            break  # within the unique-decoding radius: no other polynomial can fit as well
    if best is None:
        given = ", ".join(str(s.index) for s in ordered)
        if m == k:
            raise SharesInvalid(f"The {k} shares supplied (indexes {given}) do not rebuild the published key: "
                                f"at least one of them is wrong. Supply more shares to find out which.")
        raise SharesInvalid(f"No {k} of the {m} shares supplied (indexes {given}) rebuild the published key: "
                            f"too many of them are wrong")
    consistent, subset, private_key = best
    attributed = m - len(consistent) <= radius
    inconsistent = tuple(s.index for s in ordered if s.index not in consistent) if attributed else ()
    return CombineResult(private_key, tuple(s.index for s in subset), inconsistent, attributed)


def combine(shares: Iterable[Share | bytes], public_key: ec.EllipticCurvePublicKey) -> ec.EllipticCurvePrivateKey:
    """Rebuild the private key; checked against ``public_key``, never a wrong key."""
    return combine_detailed(shares, public_key).private_key


def encrypt_share(share: Share | bytes, custodian_public_key: ec.EllipticCurvePublicKey, *,
                  context: bytes = b"") -> bytes:
    """Encrypt a share to its custodian's P-256 key (HPKE); ``context`` is bound as AAD."""
    data = _as_share(share).to_bytes()
    rid = key_id(custodian_public_key)
    enc, ct = hpke.seal(custodian_public_key, data, info=SHARE_INFO, aad=context)
    return SEALED_MAGIC + bytes([VERSION]) + rid + enc + ct


def decrypt_share(sealed: bytes, custodian_private_key: ec.EllipticCurvePrivateKey, *,
                  context: bytes = b"") -> Share:
    """Decrypt a share with the custodian's private key (raises :class:`ShareFormatError`)."""
    sealed = bytes(sealed)
    if len(sealed) != SEALED_SIZE or not sealed.startswith(SEALED_MAGIC) or sealed[7] != VERSION:
        raise ShareFormatError("Not an encrypted ebid key share")
    rid, enc, ct = sealed[8:40], sealed[40:40 + hpke.N_ENC], sealed[40 + hpke.N_ENC:]
    mine = key_id(custodian_private_key.public_key())
    if rid != mine:
        raise ShareKeyMismatch(f"This share is encrypted to key {rid[:8].hex()}, not to {mine[:8].hex()}")
    try:
        data = hpke.unseal(custodian_private_key, enc, ct, info=SHARE_INFO, aad=context)
    except HpkeError as exc:
        raise ShareFormatError("The encrypted share does not decrypt: it was altered, or it is for another "
                               "context (tender)") from exc
    return Share.from_bytes(data)
