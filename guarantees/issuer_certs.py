"""Issuer certificate versions (出函机构证书轮换): which certificate verifies what was signed when.

An issuer signs protocol messages with its message key and seals letters under its own CA (the letter
trust root). Both change over time; every change is a new :class:`IssuerCertificate` row (a version)
with ``valid_from`` and ``valid_until``, and ``Issuer`` keeps a copy of the current one. The rules:

* a message is checked against the current version and the version in force at its timestamp, so a
  message signed just before a rotation (within the 300 s clock window) still passes; one dated after
  the rotation but signed with the replaced key is refused as :class:`RetiredCertificate`, saying so;
  a version retired as compromised (``revoked``) verifies nothing any more;
* a letter is checked against the trust root in force at its issue time, so letters issued before a
  rotation stay verifiable after it.

Pure rule (:func:`version_at`) plus thin database reads; the verb that rotates is
:func:`guarantees.services.update_issuer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask_babel import lazy_gettext as _l

from core.clock import as_utc, now
from core.errors import ValidationFailed
from guarantees import protocol
from guarantees.models import Issuer, IssuerCertificate


def _refuse(field: str, message: Any) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


# -- checking certificates ------------------------------------------------------------------------

def fingerprint(pem: str) -> str:
    """SHA-256 fingerprint (hex) of a PEM certificate."""
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class CertificateSummary:
    """What a person checks of a certificate: whose it is, who issued it, its fingerprint and validity."""

    subject: str
    issuer: str
    sha256: str
    not_before: datetime
    not_after: datetime

    def expired_at(self, at: datetime) -> bool:
        return as_utc(self.not_after) <= as_utc(at)


def describe_certificate(pem: str) -> CertificateSummary | None:
    """Subject, issuer, SHA-256 fingerprint and validity of a PEM certificate (None if it cannot be read)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return CertificateSummary(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                              sha256=cert.fingerprint(hashes.SHA256()).hex(),
                              not_before=as_utc(cert.not_valid_before_utc), not_after=as_utc(cert.not_valid_after_utc))


def _certificate(pem: str | bytes, field: str) -> x509.Certificate:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise _refuse(field, _l("This is not a PEM certificate (-----BEGIN CERTIFICATE-----).")) from None


def check_message_certificate(pem: str) -> str:
    """The normalised PEM of a usable message certificate (P-256, not expired), else a refusal."""
    cert = _certificate(pem, "message_cert_pem")
    try:
        protocol.public_key_from_pem(pem)
    except ValueError:
        raise _refuse("message_cert_pem", _l("Protocol messages are signed with ECDSA P-256; the certificate "
                                             "must hold a P-256 public key.")) from None
    if as_utc(cert.not_valid_after_utc) <= now():
        raise _refuse("message_cert_pem", _l("The certificate expired on %(date)s.",
                                             date=cert.not_valid_after_utc.date().isoformat()))
    return pem.strip() + "\n"


def check_trust_root(pem: str) -> str:
    """The normalised PEM of a CA certificate (basic constraints CA=true), else a refusal."""
    cert = _certificate(pem, "letter_trust_root_pem")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise _refuse("letter_trust_root_pem", _l("The letter trust root must be the issuer's CA certificate "
                                                  "(basic constraints CA=true)."))
    return pem.strip() + "\n"


# -- which version when ---------------------------------------------------------------------------

def version_at(versions: Sequence[IssuerCertificate], at: datetime) -> IssuerCertificate | None:
    """The version in force at ``at``: ``valid_from <= at < valid_until``; before the first, the first."""
    at = as_utc(at)
    ordered = sorted(versions, key=lambda v: v.version)
    for version in ordered:
        starts = as_utc(version.valid_from)
        ends = as_utc(version.valid_until) if version.valid_until is not None else None
        if starts <= at and (ends is None or at < ends):
            return version
    return ordered[0] if ordered and at < as_utc(ordered[0].valid_from) else None


def current_version(issuer: Issuer) -> IssuerCertificate | None:
    return next((v for v in reversed(issuer.certificates) if v.valid_until is None), None)


def message_keys(issuer: Issuer, timestamp: datetime) -> list[ec.EllipticCurvePublicKey]:
    """The keys a message from ``issuer`` dated ``timestamp`` may be signed with (never a revoked one)."""
    if not issuer.certificates:  # admitted before versions were kept: only the current certificate
        return [protocol.public_key_from_pem(issuer.message_cert_pem)]
    chosen = [v for v in (current_version(issuer), version_at(issuer.certificates, timestamp))
              if v is not None and not v.revoked]
    pems = list(dict.fromkeys(v.message_cert_pem for v in chosen))
    return [protocol.public_key_from_pem(pem) for pem in pems]


def retired_signer(issuer: Issuer, msg: dict) -> protocol.RetiredCertificate | None:
    """The refusal to give when ``msg`` verifies under one of the issuer's replaced certificates only."""
    current = current_version(issuer)
    if current is None:
        return None
    for version in reversed(issuer.certificates):
        if version.valid_until is None or version.message_cert_pem == current.message_cert_pem:
            continue
        if protocol.signed_by(msg, protocol.public_key_from_pem(version.message_cert_pem)):
            return protocol.RetiredCertificate(issuer.code, version.message_cert_sha256[:16],
                                               protocol.format_timestamp(as_utc(version.valid_until)),
                                               current.message_cert_sha256[:16], revoked=version.revoked)
    return None


def trust_root_at(issuer: Issuer, issued_at: datetime | None) -> IssuerCertificate | None:
    """The version whose letter trust root verifies a letter issued at ``issued_at`` (None: no history)."""
    if issued_at is None:
        return current_version(issuer)
    return version_at(issuer.certificates, issued_at)


def trust_roots(issuer: Issuer) -> list[str]:
    """Every letter trust root the issuer has had, the current one first, without repeats."""
    pems = [v.letter_trust_root_pem for v in reversed(issuer.certificates)] or [issuer.letter_trust_root_pem]
    return list(dict.fromkeys([issuer.letter_trust_root_pem, *pems]))
