"""The platform CA (平台CA): an EC P-256 root that certifies persons and organisations (by USCC).

Files in ``settings.keys_dir``: ``ca.cert.pem`` (public) and ``ca.key.enc`` (the private key, only ever
stored encrypted under the CA passphrase, see :mod:`crypto.keys`). Holders make their own key pair and
send a CSR; the platform never sees their private key. The CA passphrase comes from the operator (a file,
``EBID_CA_PASSPHRASE`` or a prompt) and is never stored, logged or audited.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.actor import Actor
from core.audit import record
from core.clock import as_utc, now
from core.db import db
from core.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from core.identity import uscc as uscc_mod
from core.identity.access import require_admin
from core.identity.models import Certificate, CertificateSubject, Organisation, Person
from crypto import keys

CA_KEY_FILE = "ca.key.enc"
CA_CERT_FILE = "ca.cert.pem"
MIN_PASSPHRASE_LENGTH = 12
DEFAULT_CA_DAYS = 3650
DEFAULT_CERT_DAYS = 730
USCC_PREFIX = "NTRCN-"  # ETSI EN 319 412-1 semantics identifier form: national trade register, China
REASONS = {flag.name: flag for flag in x509.ReasonFlags
           if flag not in (x509.ReasonFlags.remove_from_crl,)}


def _key_usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


@dataclass(frozen=True)
class PlatformCA:
    """The unlocked CA: its certificate and private key (kept in memory only)."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey


def keys_dir() -> Path:
    """The running app's key folder (``EBID_DATA_DIR/keys``)."""
    return current_app.extensions["ebid.settings"].keys_dir


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def init_ca(actor: Actor, directory: Path, passphrase: str, *, common_name: str = "ebid Platform Root CA",
            organisation_name: str = "ebid", validity_days: int = DEFAULT_CA_DAYS,
            kdf_log2_n: int = keys.DEFAULT_SCRYPT_LOG2_N) -> PlatformCA:
    """Create the root CA in ``directory``; an existing CA is never overwritten."""
    require_admin(actor)
    directory = Path(directory)
    key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
    if key_path.exists() or cert_path.exists():
        raise Conflict(_l("A platform CA already exists in %(path)s; it is never overwritten.", path=str(directory)),
                       code="ca_exists")
    if len(passphrase or "") < MIN_PASSPHRASE_LENGTH:
        raise ValidationFailed(_l("The CA passphrase must have at least %(count)s characters.",
                                  count=MIN_PASSPHRASE_LENGTH), code="weak_passphrase")
    key = keys.generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation_name),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = now().replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    _write_new(key_path, keys.encrypt_private_key(key, passphrase, log2_n=kdf_log2_n), 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    record(actor, "ca_initialised", "certificate_authority", fingerprint(cert)[:16],
           {"subject": cert.subject.rfc4514_string(), "fingerprint_sha256": fingerprint(cert),
            "not_after": as_utc(cert.not_valid_after_utc).isoformat()})
    return PlatformCA(cert, key)


def load_ca_certificate(directory: Path | None = None) -> x509.Certificate:
    """Return the platform CA's certificate (no passphrase needed)."""
    path = Path(directory or keys_dir()) / CA_CERT_FILE
    if not path.exists():
        raise RuleViolation(_l("The platform CA has not been set up; run 'ebid ca init' first."),
                            code="ca_missing")
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_ca(directory: Path | None, passphrase: str) -> PlatformCA:
    """Unlock the platform CA with its passphrase."""
    directory = Path(directory or keys_dir())
    cert = load_ca_certificate(directory)
    try:
        key = keys.decrypt_private_key((directory / CA_KEY_FILE).read_bytes(), passphrase)
    except keys.WrongPassphrase:
        raise ValidationFailed(_l("The CA passphrase is wrong."), code="wrong_passphrase") from None
    return PlatformCA(cert, key)


def default_ca() -> PlatformCA:
    """The app's CA, unlocked once with ``EBID_CA_PASSPHRASE`` (for services called without a CA)."""
    cached = current_app.extensions.get("ebid.ca")
    if cached is None:
        passphrase = os.environ.get("EBID_CA_PASSPHRASE")
        if not passphrase:
            raise RuleViolation(_l("The platform CA is locked; give its passphrase (EBID_CA_PASSPHRASE)."),
                                code="ca_locked")
        cached = current_app.extensions["ebid.ca"] = load_ca(None, passphrase)
    return cached


def _csr_usccs(csr: x509.CertificateSigningRequest) -> list[str]:
    values = [a.value for oid in (NameOID.ORGANIZATION_IDENTIFIER, NameOID.SERIAL_NUMBER)
              for a in csr.subject.get_attributes_for_oid(oid)]
    return [uscc_mod.normalize(v[len(USCC_PREFIX):] if v.upper().startswith(USCC_PREFIX) else v) for v in values]


def _csr_emails(csr: x509.CertificateSigningRequest) -> list[str]:
    emails = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails += san.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        pass
    return [e.strip().lower() for e in emails]


def _refuse(message) -> ValidationFailed:
    return ValidationFailed(message, code="csr_refused", fields={"csr": [message]})


def _load_csr(csr_pem: bytes | str) -> x509.CertificateSigningRequest:
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise _refuse(_l("This is not a PEM certificate signing request (CSR).")) from None
    if not csr.is_signature_valid:
        raise _refuse(_l("The CSR's signature does not verify; make the request again with the key it names."))
    public = csr.public_key()
    if not (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in ("secp256r1", "secp384r1")
            or isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048):
        raise _refuse(_l("The CSR's key must be EC P-256, EC P-384 or RSA of at least 2048 bits."))
    return csr


def _check_subject(csr: x509.CertificateSigningRequest, person: Person | None,
                   organisation: Organisation | None) -> None:
    usccs = _csr_usccs(csr)
    if organisation is not None:
        if not usccs:
            raise _refuse(_l("An organisation's CSR must carry its unified social credit code in the subject "
                             "(organizationIdentifier or serialNumber)."))
        wrong = [u for u in usccs if u != organisation.uscc]
        if wrong:
            raise _refuse(_l("The CSR names the unified social credit code %(csr_uscc)s, but %(organisation)s "
                             "has %(uscc)s.", csr_uscc=wrong[0], organisation=organisation.name,
                             uscc=organisation.uscc))
        if person is not None and not any(g.organisation_id == organisation.id for g in person.grants):
            raise _refuse(_l("%(person)s is not a member of %(organisation)s and cannot hold its certificate.",
                             person=person.name, organisation=organisation.name))
    elif usccs:
        raise _refuse(_l("A person's CSR must not carry an organisation identifier; issue an organisation "
                         "certificate instead."))
    if person is not None and any(e != person.email.lower() for e in _csr_emails(csr)):
        raise _refuse(_l("The CSR's e-mail address is not %(email)s.", email=person.email))


def _subject_for(person: Person | None, organisation: Organisation | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if organisation is not None:
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation.name),
                       x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, USCC_PREFIX + organisation.uscc)]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, person.name if person else organisation.name))
    return x509.Name(attributes)


def issue_certificate(actor: Actor, csr_pem: bytes | str, person: Person | None = None,
                      organisation: Organisation | None = None, *, ca: PlatformCA | None = None,
                      validity_days: int | None = None) -> Certificate:
    """Certify the key of a CSR for ``person`` or ``organisation`` (optionally held by ``person``).

    The CSR's signature is checked; an organisation's CSR must carry exactly its USCC. The subject is
    built from the platform's records, not copied from the CSR. KeyUsage: digitalSignature and
    nonRepudiation (for login and for signing). Validity: ``validity_days``, else the app's
    ``EBID_CERT_VALIDITY_DAYS``, else 730 days, never past the CA's own expiry.
    """
    require_admin(actor)
    if person is None and organisation is None:
        raise ValidationFailed(_l("Name the person or the organisation the certificate is for."))
    csr = _load_csr(csr_pem)
    _check_subject(csr, person, organisation)
    ca = ca or default_ca()
    days = validity_days or int(current_app.config.get("EBID_CERT_VALIDITY_DAYS", DEFAULT_CERT_DAYS))
    start = now().replace(microsecond=0)
    end = min(start + timedelta(days=days), as_utc(ca.certificate.not_valid_after_utc))
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateBuilder().subject_name(_subject_for(person, organisation))
               .issuer_name(ca.certificate.subject).public_key(csr.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                              critical=False))
    if person is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(person.email)]),
                                        critical=False)
    cert = builder.sign(ca.private_key, hashes.SHA256())
    row = Certificate(serial=format(cert.serial_number, "x"),
                      subject_kind=CertificateSubject.ORGANISATION if organisation else CertificateSubject.PERSON,
                      person=person, organisation=organisation, subject=cert.subject.rfc4514_string(),
                      pem=cert.public_bytes(serialization.Encoding.PEM).decode(), fingerprint_sha256=fingerprint(cert),
                      not_before=as_utc(cert.not_valid_before_utc), not_after=as_utc(cert.not_valid_after_utc))
    db.session.add(row)
    db.session.flush()
    record(actor, "certificate_issued", "certificate", row.serial,
           {"subject": row.subject, "subject_kind": row.subject_kind.value, "person_id": row.person_id,
            "organisation_id": row.organisation_id, "fingerprint_sha256": row.fingerprint_sha256,
            "not_after": row.not_after.isoformat()})
    return row


def certificate_by_serial(serial: str) -> Certificate:
    value = serial.strip().lower().removeprefix("0x").replace(":", "").lstrip("0") or "0"
    row = db.session.execute(select(Certificate).where(Certificate.serial == value)).scalar()
    if row is None:
        raise NotFound(_l("No certificate with serial %(serial)s was issued by the platform CA.", serial=serial))
    return row


def reason_flag(reason: str) -> x509.ReasonFlags:
    """Map a reason given as ``key_compromise`` or ``keyCompromise`` to the X.509 flag."""
    wanted = (reason or "unspecified").strip()
    for name, flag in REASONS.items():
        if wanted in (name, flag.value):
            return flag
    raise ValidationFailed(_l("Unknown revocation reason '%(reason)s'; use one of: %(reasons)s.",
                              reason=wanted, reasons=", ".join(REASONS)), code="unknown_reason")


def revoke_certificate(actor: Actor, certificate: Certificate, reason: str = "unspecified") -> Certificate:
    """Revoke ``certificate``: it stops working for login at once and appears on the next CRL."""
    require_admin(actor)
    flag = reason_flag(reason)
    if certificate.revoked_at is not None:
        raise Conflict(_l("The certificate %(serial)s was already revoked.", serial=certificate.serial),
                       code="already_revoked")
    certificate.revoked_at = now()
    certificate.revocation_reason = flag.name
    db.session.flush()
    record(actor, "certificate_revoked", "certificate", certificate.serial,
           {"reason": flag.name, "fingerprint_sha256": certificate.fingerprint_sha256})
    return certificate


def build_crl(ca: PlatformCA, *, next_update_days: int = 7) -> bytes:
    """Return a PEM CRL, signed by the CA, listing every certificate it has revoked.

    The CRL number is the Unix time of issue, so it grows from one CRL to the next without state.
    """
    at = now().replace(microsecond=0)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
               .last_update(at).next_update(at + timedelta(days=next_update_days))
               .add_extension(x509.CRLNumber(int(at.timestamp())), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                              critical=False))
    revoked = db.session.execute(select(Certificate).where(Certificate.revoked_at.is_not(None))
                                 .order_by(Certificate.id)).scalars()
    for row in revoked:
        entry = (x509.RevokedCertificateBuilder().serial_number(int(row.serial, 16))
                 .revocation_date(as_utc(row.revoked_at).replace(microsecond=0)))
        flag = REASONS.get(row.revocation_reason or "unspecified", x509.ReasonFlags.unspecified)
        if flag is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class CertificateRefused(ValidationFailed):
    """A presented certificate that the platform does not accept (foreign, expired, revoked, unknown)."""

    status = 401
    code = "certificate_refused"


def verify_certificate(cert_pem: bytes | str, *, ca_certificate: x509.Certificate | None = None,
                       at: datetime | None = None, record: Certificate | None = None) -> Certificate:
    """Check a presented certificate and return its platform record; raise :class:`CertificateRefused`.

    Checks: the chain to the platform CA (signature, CA constraints), validity at ``at`` (default now),
    KeyUsage digitalSignature, that the platform issued it (its record exists) and that it is not revoked.
    ``record``: the certificate's row as the caller just read it (used when its fingerprint matches,
    instead of reading it again).
    """
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertificateRefused(_l("This is not a PEM certificate.")) from None
    ca_cert = ca_certificate or load_ca_certificate()
    at = at or now()
    if not as_utc(cert.not_valid_before_utc) <= at <= as_utc(cert.not_valid_after_utc):
        raise CertificateRefused(_l("The certificate is not valid now (valid from %(start)s to %(end)s).",
                                    start=cert.not_valid_before_utc.isoformat(),
                                    end=cert.not_valid_after_utc.isoformat()), code="certificate_expired")
    ee_policy = verification.ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_digital_signature)
    verifier = (verification.PolicyBuilder().store(verification.Store([ca_cert])).time(at)
                .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
                .build_client_verifier())
    try:
        verifier.verify(cert, [])
    except verification.VerificationError:
        raise CertificateRefused(_l("The certificate was not issued by this platform's CA, or is not fit for "
                                    "signing."), code="certificate_untrusted") from None
    print_ = fingerprint(cert)
    row = record if record is not None and record.fingerprint_sha256 == print_ else None
    if row is None:
        row = db.session.execute(select(Certificate).where(Certificate.fingerprint_sha256 == print_)).scalar()
    if row is None:
        raise CertificateRefused(_l("The platform has no record of this certificate."), code="certificate_unknown")
    if row.revoked_at is not None:
        raise CertificateRefused(_l("The certificate %(serial)s was revoked; ask for a new one.", serial=row.serial),
                                 code="certificate_revoked")
    return row


def _require_digital_signature(policy, cert, key_usage) -> None:
    if not key_usage.digital_signature:
        raise ValueError("KeyUsage lacks digitalSignature")
