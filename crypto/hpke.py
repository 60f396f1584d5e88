"""HPKE (RFC 9180), base mode, for DHKEM(P-256, HKDF-SHA256) with HKDF-SHA256 and AES-GCM.

A small, direct transcription of RFC 9180 §4-§5 over ``cryptography`` (ECDH on P-256, AES-GCM) and the
standard library (HMAC-SHA256 for HKDF). Suite ids: KEM 0x0010, KDF 0x0001, AEAD 0x0002 (AES-256-GCM,
what ebid uses) or 0x0001 (AES-128-GCM, only so that the RFC's appendix A.3 vector can be checked).

Why not ``Cryptodome.Protocol.HPKE``: it offers no way to fix the ephemeral key, so neither the
published test vectors nor ebid's own vectors could be reproduced with it. The tests check this
module against the published vectors *and* against Cryptodome's independent implementation.

The ephemeral key is always made by ``DeriveKeyPair(random 32 bytes)`` (RFC 9180 §7.1.3), which is
what ``GenerateKeyPair`` may do; this lets the vector generator fix it through ``crypto._random``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto._random import random_bytes
from crypto.errors import HpkeError

KEM_P256_HKDF_SHA256 = 0x0010
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_128_GCM = 0x0001
AEAD_AES_256_GCM = 0x0002
MODE_BASE = 0x00

N_SECRET = 32  # KEM shared secret
N_ENC = 65  # encapsulated key: uncompressed P-256 point
N_PK = 65
N_SK = 32
N_H = 32  # HKDF-SHA256 output
N_N = 12  # AEAD nonce
N_T = 16  # AEAD tag
_N_K = {AEAD_AES_128_GCM: 16, AEAD_AES_256_GCM: 32}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_KEM_SUITE_ID = b"KEM" + KEM_P256_HKDF_SHA256.to_bytes(2, "big")


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    # RFC 5869: an absent salt is HashLen zero bytes; HMAC pads b"" to the same key.
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    if length > 255 * N_H:
        raise HpkeError("HKDF-Expand output too long")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def labeled_extract(salt: bytes, suite_id: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(prk: bytes, suite_id: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, _i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info, length)


def _hpke_suite_id(aead_id: int) -> bytes:
    if aead_id not in _N_K:
        raise HpkeError(f"Unsupported HPKE AEAD id {aead_id:#06x}")
    return b"HPKE" + _i2osp(KEM_P256_HKDF_SHA256, 2) + _i2osp(KDF_HKDF_SHA256, 2) + _i2osp(aead_id, 2)


# --- DHKEM(P-256, HKDF-SHA256), RFC 9180 §4.1 and §7.1 ---------------------------------------------

def derive_key_pair(ikm: bytes) -> ec.EllipticCurvePrivateKey:
    """RFC 9180 §7.1.3 DeriveKeyPair for P-256 (rejection sampling, bitmask 0xff)."""
    if len(ikm) < N_SK:
        raise HpkeError("DeriveKeyPair needs at least 32 bytes of input keying material")
    dkp_prk = labeled_extract(b"", _KEM_SUITE_ID, b"dkp_prk", ikm)
    for counter in range(256):
        candidate = int.from_bytes(
            labeled_expand(dkp_prk, _KEM_SUITE_ID, b"candidate", bytes([counter]), N_SK), "big")
        if 0 < candidate < _P256_ORDER:
            return ec.derive_private_key(candidate, ec.SECP256R1())
    raise HpkeError("DeriveKeyPair found no valid scalar")  # probability about 2^-8000


def serialize_public_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SerializePublicKey: the 65-byte uncompressed SEC1 point."""
    _require_p256(public_key)
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def deserialize_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """DeserializePublicKey: only the 65-byte uncompressed form; the point must be on the curve."""
    if len(data) != N_PK or data[0] != 0x04:
        raise HpkeError("An HPKE P-256 public key is a 65-byte uncompressed point (04 || x || y)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(data))
    except ValueError as exc:
        raise HpkeError("The HPKE public key is not a point on P-256") from exc


def _require_p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> None:
    if not isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) or \
            not isinstance(key.curve, ec.SECP256R1):
        raise HpkeError("HPKE in ebid uses EC P-256 (secp256r1) keys only")


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = labeled_extract(b"", _KEM_SUITE_ID, b"eae_prk", dh)
    return labeled_expand(eae_prk, _KEM_SUITE_ID, b"shared_secret", kem_context, N_SECRET)


def encap(public_key: ec.EllipticCurvePublicKey, *, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
    """Return ``(shared_secret, enc)``; the ephemeral key is ``DeriveKeyPair(ikm_e or random)``."""
    _require_p256(public_key)
    sk_e = derive_key_pair(ikm_e if ikm_e is not None else random_bytes(N_SK))
    dh = sk_e.exchange(ec.ECDH(), public_key)
    enc = serialize_public_key(sk_e.public_key())
    return _extract_and_expand(dh, enc + serialize_public_key(public_key)), enc


def decap(enc: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the shared secret for ``enc`` (raises :class:`HpkeError` on a malformed ``enc``)."""
    _require_p256(private_key)
    dh = private_key.exchange(ec.ECDH(), deserialize_public_key(enc))
    return _extract_and_expand(dh, bytes(enc) + serialize_public_key(private_key.public_key()))


# --- key schedule and context, RFC 9180 §5 ---------------------------------------------------------

@dataclass
class Context:
    """An HPKE encryption context (one direction, sequence numbers from 0)."""

    aead_id: int
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes
    seq: int = 0

    def _nonce(self) -> bytes:
        if self.seq >= (1 << (8 * N_N)) - 1:
            raise HpkeError("HPKE message limit reached")
        return bytes(a ^ b for a, b in zip(self.base_nonce, _i2osp(self.seq, N_N), strict=True))

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        ct = AESGCM(self.key).encrypt(self._nonce(), plaintext, aad)
        self.seq += 1
        return ct

    def open(self, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            pt = AESGCM(self.key).decrypt(self._nonce(), ciphertext, aad)
        except InvalidTag as exc:
            raise HpkeError("HPKE decryption failed: wrong key, or the ciphertext or its context "
                            "(info, associated data) was altered") from exc
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        suite_id = _hpke_suite_id(self.aead_id)
        return labeled_expand(self.exporter_secret, suite_id, b"sec", exporter_context, length)


def key_schedule(shared_secret: bytes, info: bytes, aead_id: int) -> tuple[Context, bytes]:
    """KeyScheduleS/R for mode_base; returns the context and the key_schedule_context bytes."""
    suite_id = _hpke_suite_id(aead_id)
    psk_id_hash = labeled_extract(b"", suite_id, b"psk_id_hash", b"")
    info_hash = labeled_extract(b"", suite_id, b"info_hash", info)
    ks_context = bytes([MODE_BASE]) + psk_id_hash + info_hash
    secret = labeled_extract(shared_secret, suite_id, b"secret", b"")
    key = labeled_expand(secret, suite_id, b"key", ks_context, _N_K[aead_id])
    base_nonce = labeled_expand(secret, suite_id, b"base_nonce", ks_context, N_N)
    exporter_secret = labeled_expand(secret, suite_id, b"exp", ks_context, N_H)
    return Context(aead_id, key, base_nonce, exporter_secret), ks_context


def setup_base_sender(public_key: ec.EllipticCurvePublicKey, info: bytes, *,
                      aead_id: int = AEAD_AES_256_GCM, ikm_e: bytes | None = None) -> tuple[bytes, Context]:
    """SetupBaseS: return ``(enc, context)``."""
    shared_secret, enc = encap(public_key, ikm_e=ikm_e)
    return enc, key_schedule(shared_secret, info, aead_id)[0]


def setup_base_receiver(enc: bytes, private_key: ec.EllipticCurvePrivateKey, info: bytes, *,
                        aead_id: int = AEAD_AES_256_GCM) -> Context:
    """SetupBaseR: return the receiving context."""
    return key_schedule(decap(enc, private_key), info, aead_id)[0]


def seal(public_key: ec.EllipticCurvePublicKey, plaintext: bytes, *, info: bytes, aad: bytes = b"",
         aead_id: int = AEAD_AES_256_GCM) -> tuple[bytes, bytes]:
    """Single-shot SealBase: return ``(enc, ciphertext)`` (ciphertext includes the 16-byte tag)."""
    enc, ctx = setup_base_sender(public_key, info, aead_id=aead_id)
    return enc, ctx.seal(aad, plaintext)


def unseal(private_key: ec.EllipticCurvePrivateKey, enc: bytes, ciphertext: bytes, *, info: bytes,
           aad: bytes = b"", aead_id: int = AEAD_AES_256_GCM) -> bytes:
    """Single-shot OpenBase; raises :class:`HpkeError` when anything does not match."""
    return setup_base_receiver(enc, private_key, info, aead_id=aead_id).open(aad, ciphertext)
