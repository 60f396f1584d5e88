"""The reference issuer's keys: its own CA (出函机构CA), a message-signing key and a letter-signing key.

All three are EC P-256 and live in ``<data dir>/keys/`` (private keys as PKCS#8 PEM, mode 0600; this
is a simulator, not an HSM). They are made on first start and never overwritten. The platform admits
the issuer with ``message.cert.pem`` (to check message signatures) and ``ca.cert.pem`` (the trust
root of the letters' PAdES seals). The full name goes in O (up to 64 characters), a CN of at most 64 UTF-8
bytes is derived from it (:func:`bounded`); the letters themselves print the full name.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAME_MAX = 64  # X.520 upper bound of CN and O
ELLIPSIS = "…"
CA_DAYS = 3650
LEAF_DAYS = 1095
BACKDATE = timedelta(minutes=10)  # tolerate a verifier whose clock is a little behind
FILES = {
    "ca_key": "ca.key.pem", "ca_cert": "ca.cert.pem",
    "message_key": "message.key.pem", "message_cert": "message.cert.pem",
    "letter_key": "letter.key.pem", "letter_cert": "letter.cert.pem",
}


class KeysIncomplete(RuntimeError):
    """Some key files exist and others are missing: refuse to guess, never overwrite."""


@dataclass(frozen=True)
class IssuerKeys:
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    message_key: ec.EllipticCurvePrivateKey
    message_cert: x509.Certificate
    letter_key: ec.EllipticCurvePrivateKey
    letter_cert: x509.Certificate
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / FILES[name]


def keys_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "keys"


def _usage(*, sign: bool = False, commit: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=commit, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def bounded(text: str, limit: int = NAME_MAX, suffix: str = "", *, size: Callable[[str], int] = _utf8_size) -> str:
    """``text`` + ``suffix`` within ``limit`` (UTF-8 bytes by default), ``text`` cut with "…" if it must be.

    X.520 bounds CN and O at 64 (RFC 5280 ub-common-name, ub-organization-name, in characters);
    cryptography refuses a CN over 64 UTF-8 bytes, so 21 Chinese characters and a suffix such as
    " Guarantee CA (CODE)" overflow. The cut is between code points (a UTF-8 sequence is never split)
    and never parts a base character from its combining marks; the suffix is kept whole.
    """
    room = limit - size(suffix)
    text = text.strip()
    if size(text) <= room:
        return text + suffix
    room -= size(ELLIPSIS)
    if room < 1:
        raise ValueError(f"the suffix {suffix!r} leaves no room within {limit}")
    used, end = 0, 0
    for char in text:
        if used + size(char) > room:
            break
        used, end = used + size(char), end + 1
    cut = text[:end]
    if unicodedata.combining(text[end]):  # the next character is a mark of the last one: drop that cluster
        while cut and unicodedata.combining(cut[-1]):
            cut = cut[:-1]
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS + suffix


def _name(name: str, common_name: str, uscc: str | None) -> x509.Name:
    """The full name in O (up to 64 characters, the X.520 bound), the short ``common_name`` in CN."""
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, bounded(name, size=len))]
    if uscc:  # ETSI EN 319 412-1 semantics identifier: national trade register, China
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{uscc}"))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 issuer_key: ec.EllipticCurvePrivateKey, *, now: datetime, days: int,
                 usage: x509.KeyUsage, ca: bool) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def create_keys(data_dir: Path, *, code: str, name: str, now: datetime, uscc: str | None = None) -> IssuerKeys:
    """Make the CA, the message certificate and the letter-signing certificate in ``<data_dir>/keys``."""
    directory = keys_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    existing = [f for f in FILES.values() if (directory / f).exists()]
    if existing:
        raise KeysIncomplete(f"{directory} already holds {', '.join(existing)}; keys are never overwritten")
    ca_key, message_key, letter_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_cert = _certificate(_name(name, bounded(name, suffix=f" Guarantee CA ({code})"), uscc), ca_key, None, ca_key,
                           now=now, days=CA_DAYS, usage=_usage(sign=True, ca=True), ca=True)
    message_cert = _certificate(_name(name, bounded(code, suffix=" message signing"), uscc), message_key, ca_cert,
                                ca_key, now=now, days=LEAF_DAYS, usage=_usage(sign=True), ca=False)
    letter_cert = _certificate(_name(name, bounded(name), uscc), letter_key, ca_cert, ca_key, now=now,
                               days=LEAF_DAYS, usage=_usage(sign=True, commit=True), ca=False)
    for field_name, value in (("ca_key", ca_key), ("message_key", message_key), ("letter_key", letter_key)):
        _write_new(directory / FILES[field_name], _pem_key(value), 0o600)
    for field_name, cert in (("ca_cert", ca_cert), ("message_cert", message_cert), ("letter_cert", letter_cert)):
        _write_new(directory / FILES[field_name], cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return IssuerKeys(ca_key, ca_cert, message_key, message_cert, letter_key, letter_cert, directory)


def load_keys(data_dir: Path) -> IssuerKeys:
    """Read the six key files (``FileNotFoundError`` if there are none, ``KeysIncomplete`` if some)."""
    directory = keys_dir(data_dir)
    missing = [f for f in FILES.values() if not (directory / f).exists()]
    if len(missing) == len(FILES):
        raise FileNotFoundError(f"no issuer keys in {directory}")
    if missing:
        raise KeysIncomplete(f"{directory} lacks {', '.join(missing)}; restore them or start with an empty folder")
    loaded = {}
    for field_name, file_name in FILES.items():
        data = (directory / file_name).read_bytes()
        loaded[field_name] = (serialization.load_pem_private_key(data, password=None) if field_name.endswith("_key")
                              else x509.load_pem_x509_certificate(data))
    return IssuerKeys(directory=directory, **loaded)


def load_or_create_keys(data_dir: Path, *, code: str, name: str, now: datetime,
                        uscc: str | None = None) -> tuple[IssuerKeys, bool]:
    """The issuer's keys, made on first use; returns (keys, created)."""
    try:
        return load_keys(data_dir), False
    except FileNotFoundError:
        return create_keys(data_dir, code=code, name=name, now=now, uscc=uscc), True
