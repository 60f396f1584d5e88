"""Key pairs, certificate signing requests and passphrase-encrypted private keys.

Pure library: bytes and keys in, bytes and verdicts out (no Flask, no SQLAlchemy). Private keys are made
on the holder's side and leave it only encrypted under the holder's passphrase.

Encrypted private key format, version 1 (``EBIDKEY`` v1)
--------------------------------------------------------

PEM-style armour around one binary blob::

    -----BEGIN EBID ENCRYPTED PRIVATE KEY-----
    <base64 of the blob, 64 characters a line>
    -----END EBID ENCRYPTED PRIVATE KEY-----

    blob   = header || AES-256-GCM(key, nonce, plaintext, aad=header)   (ciphertext then 16-byte tag)
    header = b"EBIDKEY"    7 bytes, magic
             version       1 byte, 0x01
             kdf           1 byte, 0x01 = scrypt (RFC 7914)
             log2(N)       1 byte, scrypt cost (14..22; default 17, i.e. 128 MiB with r = 8)
             r             1 byte, scrypt block size (default 8)
             p             1 byte, scrypt parallelism (default 1)
             salt          16 bytes, random
             nonce         12 bytes, random
    key       = scrypt(NFC-normalised UTF-8 passphrase, salt, N, r, p, 32 bytes)
    plaintext = the private key as unencrypted PKCS#8 DER

The header is authenticated as additional data, so a changed cost parameter or salt fails like a wrong
passphrase. Loading refuses costs outside the documented range (a crafted file cannot make the loader
allocate gigabytes).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import unicodedata
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey

MAGIC = b"EBIDKEY"
VERSION = 1
KDF_SCRYPT = 1
DEFAULT_SCRYPT_LOG2_N = 17
MIN_SCRYPT_LOG2_N = 14
MAX_SCRYPT_LOG2_N = 22
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
_HEADER = struct.Struct(f">{len(MAGIC)}sBBBBB{SALT_BYTES}s{NONCE_BYTES}s")
PEM_BEGIN = "-----BEGIN EBID ENCRYPTED PRIVATE KEY-----"
PEM_END = "-----END EBID ENCRYPTED PRIVATE KEY-----"


class KeyFileError(ValueError):
    """The data is not an encrypted private key this module can read."""


class WrongPassphrase(ValueError):
    """The passphrase does not open the key (or the key file was altered)."""

    def __init__(self, message: str = "The passphrase is wrong, or the key file was altered.") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class KeyFileInfo:
    """The public parameters of an encrypted key file."""

    version: int
    kdf: str
    log2_n: int
    r: int
    p: int


def generate_private_key() -> PrivateKey:
    """Generate an EC P-256 (secp256r1) private key."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: PrivateKey, common_name: str, *, uscc: str | None = None,
             organisation_name: str | None = None, email: str | None = None, country: str = "CN") -> bytes:
    """Return a PEM certificate signing request for ``key``.

    ``uscc`` goes into the subject's organizationIdentifier (2.5.4.97), as organisation certificates
    carry the unified social credit code there.
    """
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    if organisation_name:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation_name))
    if uscc:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, uscc))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` with ECDSA over SHA-256 (DER-encoded signature)."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Return True when ``signature`` is a valid ECDSA/SHA-256 signature of ``data``."""
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _derive(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode()
    return Scrypt(salt=salt, length=32, n=2 ** log2_n, r=r, p=p).derive(secret)


def encrypt_private_key(key: PrivateKey, passphrase: str, *, log2_n: int = DEFAULT_SCRYPT_LOG2_N) -> bytes:
    """Return ``key`` encrypted under ``passphrase`` in the armoured EBIDKEY v1 format."""
    if not passphrase:
        raise ValueError("An empty passphrase cannot protect a private key.")
    if not MIN_SCRYPT_LOG2_N <= log2_n <= MAX_SCRYPT_LOG2_N:
        raise ValueError(f"scrypt log2(N) must be between {MIN_SCRYPT_LOG2_N} and {MAX_SCRYPT_LOG2_N}")
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    header = _HEADER.pack(MAGIC, VERSION, KDF_SCRYPT, log2_n, SCRYPT_R, SCRYPT_P, salt, nonce)
    plaintext = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    sealed = AESGCM(_derive(passphrase, salt, log2_n, SCRYPT_R, SCRYPT_P)).encrypt(nonce, plaintext, header)
    body = base64.b64encode(header + sealed).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join([PEM_BEGIN, *lines, PEM_END, ""]).encode()


def _unarmour(data: bytes | str) -> bytes:
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if not (text.startswith(PEM_BEGIN) and text.endswith(PEM_END)):
        raise KeyFileError("Not an ebid encrypted private key (the BEGIN/END lines are missing).")
    try:
        return base64.b64decode("".join(text[len(PEM_BEGIN):-len(PEM_END)].split()), validate=True)
    except binascii.Error as exc:
        raise KeyFileError("The encrypted private key is damaged (invalid base64).") from exc


def _parse(blob: bytes) -> tuple[bytes, KeyFileInfo, bytes, bytes, bytes]:
    if len(blob) < _HEADER.size + 16:
        raise KeyFileError("The encrypted private key is truncated.")
    header = blob[:_HEADER.size]
    magic, version, kdf, log2_n, r, p, salt, nonce = _HEADER.unpack(header)
    if magic != MAGIC:
        raise KeyFileError("Not an ebid encrypted private key (wrong magic bytes).")
    if version != VERSION:
        raise KeyFileError(f"Unsupported encrypted key version {version}; this program reads version {VERSION}.")
    if kdf != KDF_SCRYPT:
        raise KeyFileError(f"Unsupported key derivation function {kdf}.")
    if not (MIN_SCRYPT_LOG2_N <= log2_n <= MAX_SCRYPT_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise KeyFileError("The key file's scrypt parameters are outside the accepted range.")
    return header, KeyFileInfo(version, "scrypt", log2_n, r, p), salt, nonce, blob[_HEADER.size:]


def key_file_info(data: bytes | str) -> KeyFileInfo:
    """Return the version and KDF parameters of an encrypted key without decrypting it."""
    return _parse(_unarmour(data))[1]


def decrypt_private_key(data: bytes | str, passphrase: str) -> PrivateKey:
    """Open an EBIDKEY v1 key; raises :class:`WrongPassphrase` or :class:`KeyFileError`."""
    header, info, salt, nonce, sealed = _parse(_unarmour(data))
    try:
        plaintext = AESGCM(_derive(passphrase, salt, info.log2_n, info.r, info.p)).decrypt(nonce, sealed, header)
    except InvalidTag as exc:
        raise WrongPassphrase() from exc
    key = serialization.load_der_private_key(plaintext, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError("The key file holds a key type this program does not use.")
    return key


def public_key_pem(key: PrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """Return the SubjectPublicKeyInfo PEM of a key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
