"""Algorithm suites, keyed by the 16-bit suite id written in every envelope header.

A suite fixes everything algorithm-specific: the content cipher (an AEAD with a 12-byte nonce and a
16-byte tag), the hash for header digests and signatures, how a content key is wrapped for a
recipient, the signature scheme, and how key ids are computed. The envelope format itself does not
change between suites; fixed per-suite sizes keep the header layout computable before wrapping.

Suite 1 (``SUITE_P256``): EC P-256 keys, HPKE (RFC 9180) DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 /
AES-256-GCM for wrapping, AES-256-GCM content encryption, SHA-256, ECDSA P-256 (raw r||s, low s).

Suite 2 (national algorithms, SM2/SM3/SM4-GCM) lives in :mod:`crypto.suite_sm` and registers itself
when ``gmssl-pyx`` is installed; see that module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto import hpke
from crypto._random import deterministic_signatures
from crypto.errors import HpkeError, UnsupportedSuite

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> Hasher: ...


class Aead(Protocol):
    """``cryptography``-style AEAD: ciphertext is ``ct || 16-byte tag``; decrypt raises ``InvalidTag``."""

    def encrypt(self, nonce: bytes, data: Any, associated_data: bytes) -> bytes: ...
    def decrypt(self, nonce: bytes, data: Any, associated_data: bytes) -> bytes: ...


class WrapError(Exception):
    """Internal: a wrapped key does not open (translated into an envelope error by the caller)."""


class Suite:
    """Base class; a concrete suite overrides every method."""

    id: int = 0
    name: str = ""
    content_key_size: int = 32
    enc_size: int = 0  # bytes of a recipient's encapsulation
    wrapped_size: int = 0  # bytes of a wrapped key part (including the tag)
    signature_size: int = 64
    digest_size: int = 32

    def new_hash(self) -> Hasher:
        raise NotImplementedError

    def hash(self, data: bytes) -> bytes:
        h = self.new_hash()
        h.update(data)
        return h.digest()

    def aead(self, key: bytes) -> Aead:
        raise NotImplementedError

    def check_private_key(self, key: Any) -> None:
        raise NotImplementedError

    def check_public_key(self, key: Any) -> None:
        raise NotImplementedError

    def public_key_of(self, private_key: Any) -> Any:
        return private_key.public_key()

    def key_id(self, public_key: Any) -> bytes:
        raise NotImplementedError

    def signed_hash(self, signer_public_key: Any) -> Hasher:
        """A hasher primed for the signature over ``header || segments`` of this signer."""
        return self.new_hash()

    def sign_digest(self, private_key: Any, digest: bytes) -> bytes:
        raise NotImplementedError

    def verify_digest(self, public_key: Any, digest: bytes, signature: bytes) -> bool:
        raise NotImplementedError

    def wrap(self, public_key: Any, secret: bytes, info: bytes, aad: bytes) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def unwrap(self, private_key: Any, enc: bytes, wrapped: bytes, info: bytes, aad: bytes) -> bytes:
        raise NotImplementedError


class _AesGcm:
    """AES-256-GCM through ``cryptography``'s AESGCM (OpenSSL; the fast path)."""

    __slots__ = ("encrypt", "decrypt", "encrypt_into", "decrypt_into")

    def __init__(self, key: bytes) -> None:
        impl = AESGCM(key)
        self.encrypt, self.decrypt = impl.encrypt, impl.decrypt
        self.encrypt_into, self.decrypt_into = impl.encrypt_into, impl.decrypt_into


def spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def ecdsa_sign_raw(private_key: ec.EllipticCurvePrivateKey, digest: bytes) -> bytes:
    """ECDSA P-256 over a SHA-256 digest, encoded raw ``r || s`` (32 + 32 bytes) with s <= n/2."""
    algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=deterministic_signatures())
    r, s = utils.decode_dss_signature(private_key.sign(digest, algorithm))
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdsa_verify_raw(public_key: ec.EllipticCurvePublicKey, digest: bytes, signature: bytes) -> bool:
    """Verify a raw ``r || s`` ECDSA P-256 signature; a high s (non-canonical) is refused."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s <= P256_ORDER // 2):
        return False
    try:
        public_key.verify(utils.encode_dss_signature(r, s), digest,
                          ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


class P256Suite(Suite):
    id = 1
    name = "P256-HPKE-AES256GCM-SHA256"
    content_key_size = 32
    enc_size = hpke.N_ENC
    wrapped_size = 32 + hpke.N_T

    def new_hash(self) -> Hasher:
        return hashlib.sha256()

    def aead(self, key: bytes) -> Aead:
        return _AesGcm(key)

    def check_private_key(self, key: Any) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise TypeError("Suite 1 needs an EC P-256 private key (cryptography EllipticCurvePrivateKey)")

    def check_public_key(self, key: Any) -> None:
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise TypeError("Suite 1 needs an EC P-256 public key (cryptography EllipticCurvePublicKey)")

    def key_id(self, public_key: Any) -> bytes:
        self.check_public_key(public_key)
        return hashlib.sha256(spki_der(public_key)).digest()

    def sign_digest(self, private_key: Any, digest: bytes) -> bytes:
        return ecdsa_sign_raw(private_key, digest)

    def verify_digest(self, public_key: Any, digest: bytes, signature: bytes) -> bool:
        return ecdsa_verify_raw(public_key, digest, signature)

    def wrap(self, public_key: Any, secret: bytes, info: bytes, aad: bytes) -> tuple[bytes, bytes]:
        return hpke.seal(public_key, secret, info=info, aad=aad, aead_id=hpke.AEAD_AES_256_GCM)

    def unwrap(self, private_key: Any, enc: bytes, wrapped: bytes, info: bytes, aad: bytes) -> bytes:
        try:
            return hpke.unseal(private_key, enc, wrapped, info=info, aad=aad, aead_id=hpke.AEAD_AES_256_GCM)
        except HpkeError as exc:
            raise WrapError(str(exc)) from exc


SUITE_P256 = P256Suite()
_REGISTRY: dict[int, Suite] = {SUITE_P256.id: SUITE_P256}
_LAZY: dict[int, Callable[[], Suite]] = {}


def register(suite: Suite) -> None:
    """Add a suite to the registry (ids are unique and never reused)."""
    existing = _REGISTRY.get(suite.id)
    if existing is not None and existing is not suite:
        raise ValueError(f"Suite id {suite.id} is already registered ({existing.name})")
    _REGISTRY[suite.id] = suite


def _load_sm() -> Suite:
    from crypto.suite_sm import SUITE_SM

    return SUITE_SM


_LAZY[2] = _load_sm


def get(suite_id: int) -> Suite:
    """Return the suite for ``suite_id`` or raise :class:`UnsupportedSuite` naming it."""
    suite = _REGISTRY.get(suite_id)
    if suite is None and suite_id in _LAZY:
        try:
            suite = _LAZY[suite_id]()
        except ImportError as exc:
            raise UnsupportedSuite(f"Suite {suite_id} needs an optional library that is not installed "
                                   f"({exc.name})") from exc
        register(suite)
    if suite is None:
        raise UnsupportedSuite(f"Unknown algorithm suite {suite_id}; this program knows suites "
                               f"{', '.join(str(i) for i in sorted({*_REGISTRY, *_LAZY}))}")
    return suite


def decrypt_or_none(aead: Aead, nonce: bytes, data: Any, aad: bytes) -> bytes | None:
    try:
        return aead.decrypt(nonce, data, aad)
    except InvalidTag:
        return None
