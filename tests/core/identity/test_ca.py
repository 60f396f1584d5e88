"""The platform CA: init, issue from CSRs (USCC checked), revoke, CRL; verified with cryptography and openssl."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from core.clock import now
from core.db import db
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.identity import actor_for
from core.identity import ca as platform_ca
from core.identity.models import CertificateSubject
from crypto import keys
from tests.core.identity.conftest import CA_PASSPHRASE, FAST_KDF, SYSTEM, audit_dump


def chain_ok(ca, pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(pem.encode())
    verifier = (verification.PolicyBuilder().store(verification.Store([ca.certificate])).time(now())
                .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=verification.ExtensionPolicy.permit_all())
                .build_client_verifier())
    try:
        verifier.verify(cert, [])
    except verification.VerificationError:
        return False
    return True


def test_init_writes_the_key_only_encrypted(app, settings, ca):
    key_file = settings.keys_dir / platform_ca.CA_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    data = key_file.read_bytes()
    assert data.startswith(b"-----BEGIN EBID ENCRYPTED PRIVATE KEY-----")
    assert keys.key_file_info(data).kdf == "scrypt"
    cert = ca.certificate
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
    assert platform_ca.load_ca(settings.keys_dir, CA_PASSPHRASE).certificate == cert
    assert CA_PASSPHRASE not in audit_dump()


def test_init_refuses_to_overwrite(app, settings, ca):
    before = (settings.keys_dir / platform_ca.CA_KEY_FILE).read_bytes()
    with pytest.raises(Conflict, match="never overwritten"):
        platform_ca.init_ca(SYSTEM, settings.keys_dir, CA_PASSPHRASE, kdf_log2_n=FAST_KDF)
    assert (settings.keys_dir / platform_ca.CA_KEY_FILE).read_bytes() == before


def test_wrong_passphrase_and_weak_passphrase(app, settings, ca, tmp_path):
    with pytest.raises(ValidationFailed, match="passphrase is wrong"):
        platform_ca.load_ca(settings.keys_dir, "not the passphrase")
    with pytest.raises(ValidationFailed, match="at least 12"):
        platform_ca.init_ca(SYSTEM, tmp_path / "other", "short", kdf_log2_n=FAST_KDF)


def test_person_certificate(app, ca, create_person, holder):
    person = create_person(name="张伟", email="zw@example.test")
    alice = holder()
    row = platform_ca.issue_certificate(SYSTEM, alice.csr("anything", email="zw@example.test"), person, ca=ca)
    db.session.commit()
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    assert chain_ok(ca, row.pem)
    assert row.subject_kind == CertificateSubject.PERSON and row.person_id == person.id
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "张伟"  # from the records
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert cert.public_key().public_numbers() == alice.key.public_key().public_numbers()
    assert row.serial == format(cert.serial_number, "x") and len(row.fingerprint_sha256) == 64
    assert row.not_after - row.not_before == timedelta(days=platform_ca.DEFAULT_CERT_DAYS)
    assert "BEGIN EBID ENCRYPTED" not in audit_dump() and "PRIVATE KEY" not in audit_dump()


def test_organisation_certificate_carries_the_uscc(app, ca, create_org, create_person, holder):
    org = create_org(name="福州示例有限公司")
    member = create_person(roles=("bidder",), organisation=org)
    row = platform_ca.issue_certificate(SYSTEM, holder().csr("seal", uscc=org.uscc), member, org, ca=ca,
                                        validity_days=30)
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == "NTRCN-" + org.uscc
    assert row.subject_kind == CertificateSubject.ORGANISATION and row.organisation_id == org.id
    assert row.not_after - row.not_before == timedelta(days=30)
    assert chain_ok(ca, row.pem)


def csr_with(key, *attributes) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x"), *attributes])
    return (x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))


def test_uscc_in_serial_number_and_prefixed_form_are_accepted(app, ca, create_org, holder):
    org = create_org()
    csr = csr_with(holder().key, x509.NameAttribute(NameOID.SERIAL_NUMBER, "NTRCN-" + org.uscc))
    assert platform_ca.issue_certificate(SYSTEM, csr, None, org, ca=ca).organisation_id == org.id


@pytest.mark.parametrize(("case", "message"), [
    ("other_uscc", "names the unified social credit code"),
    ("no_uscc", "must carry its unified social credit code"),
    ("two_usccs", "names the unified social credit code"),
])
def test_csr_with_mismatched_uscc_is_refused(app, ca, create_org, holder, case, message):
    org, other = create_org(name="Right Co."), create_org(name="Other Co.")
    key = holder().key
    attributes = {
        "other_uscc": [x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, other.uscc)],
        "no_uscc": [],
        "two_usccs": [x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org.uscc),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, other.uscc)],
    }[case]
    with pytest.raises(ValidationFailed) as err:
        platform_ca.issue_certificate(SYSTEM, csr_with(key, *attributes), None, org, ca=ca)
    assert err.value.code == "csr_refused" and message in err.value.to_dict()["message"]
    if case == "other_uscc":
        assert other.uscc in err.value.to_dict()["message"] and "Right Co." in err.value.to_dict()["message"]


def test_csr_refusals(app, ca, create_person, create_org, holder):
    person, org = create_person(email="p@example.test"), create_org(name="Not Theirs Ltd")
    h = holder()
    with pytest.raises(ValidationFailed, match="not a PEM"):
        platform_ca.issue_certificate(SYSTEM, b"hello", person, ca=ca)
    with pytest.raises(ValidationFailed, match="e-mail address is not p@example.test"):
        platform_ca.issue_certificate(SYSTEM, h.csr("x", email="q@example.test"), person, ca=ca)
    with pytest.raises(ValidationFailed, match="must not carry an organisation identifier"):
        platform_ca.issue_certificate(SYSTEM, h.csr("x", uscc=org.uscc), person, ca=ca)
    with pytest.raises(ValidationFailed, match="is not a member of Not Theirs Ltd"):
        platform_ca.issue_certificate(SYSTEM, h.csr("x", uscc=org.uscc), person, org, ca=ca)
    with pytest.raises(ValidationFailed, match="Name the person or the organisation"):
        platform_ca.issue_certificate(SYSTEM, h.csr("x"), ca=ca)


def test_csr_with_a_broken_signature_is_refused(app, ca, create_person, holder):
    pem = holder().csr("x").decode()
    csr = x509.load_pem_x509_csr(pem.encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValidationFailed, match="signature does not verify"):
        platform_ca.issue_certificate(SYSTEM, forged, create_person(), ca=ca)


def test_only_an_administrator_issues_and_revokes(app, ca, create_person, holder):
    expert = create_person(roles=("expert",))
    with pytest.raises(Forbidden):
        platform_ca.issue_certificate(actor_for(expert, "expert"), holder().csr("x"), expert, ca=ca)
    row = platform_ca.issue_certificate(SYSTEM, holder().csr("x"), expert, ca=ca)
    with pytest.raises(Forbidden):
        platform_ca.revoke_certificate(actor_for(expert, "expert"), row, "keyCompromise")


def test_revoke_and_crl(app, ca, create_person, holder):
    person = create_person()
    kept = platform_ca.issue_certificate(SYSTEM, holder().csr("a"), person, ca=ca)
    gone = platform_ca.issue_certificate(SYSTEM, holder().csr("b"), person, ca=ca)
    platform_ca.revoke_certificate(SYSTEM, platform_ca.certificate_by_serial(gone.serial.upper()), "keyCompromise")
    db.session.commit()
    assert gone.revocation_reason == "key_compromise" and gone.revoked_at is not None
    with pytest.raises(Conflict, match="already revoked"):
        platform_ca.revoke_certificate(SYSTEM, gone, "superseded")
    with pytest.raises(ValidationFailed, match="Unknown revocation reason"):
        platform_ca.revoke_certificate(SYSTEM, kept, "bored")
    with pytest.raises(NotFound):
        platform_ca.certificate_by_serial("abc123")
    crl = x509.load_pem_x509_crl(platform_ca.build_crl(ca))
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert crl.issuer == ca.certificate.subject
    entry = crl.get_revoked_certificate_by_serial_number(int(gone.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(int(kept.serial, 16)) is None
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=7)


def test_a_foreign_ca_does_not_chain(app, ca, tmp_path, create_person, holder):
    foreign = platform_ca.init_ca(SYSTEM, tmp_path / "foreign", CA_PASSPHRASE, kdf_log2_n=FAST_KDF)
    row = platform_ca.issue_certificate(SYSTEM, holder().csr("x"), create_person(), ca=foreign)
    assert chain_ok(foreign, row.pem) and not chain_ok(ca, row.pem)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_chain_and_sees_the_revocation(app, ca, tmp_path, create_person, holder):
    person = create_person()
    row = platform_ca.issue_certificate(SYSTEM, holder().csr("x"), person, ca=ca)
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_text(row.pem)

    def openssl_verify(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), *extra,
                               str(tmp_path / "leaf.pem")], capture_output=True, text=True, timeout=30)

    assert openssl_verify().returncode == 0
    (tmp_path / "crl.pem").write_bytes(platform_ca.build_crl(ca))
    assert openssl_verify("-crl_check", "-CRLfile", str(tmp_path / "crl.pem")).returncode == 0
    platform_ca.revoke_certificate(SYSTEM, row, "keyCompromise")
    (tmp_path / "crl.pem").write_bytes(platform_ca.build_crl(ca))
    result = openssl_verify("-crl_check", "-CRLfile", str(tmp_path / "crl.pem"))
    assert result.returncode != 0 and "revoked" in (result.stdout + result.stderr)
