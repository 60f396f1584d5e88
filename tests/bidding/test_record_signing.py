"""Signing the opening record: the host and the supervisor each add one PAdES signature; every refusal."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from bidding import opening, record_service
from bidding.opening_models import OpeningPhase
from bidding.record_models import RecordStatus
from bidding.record_signing import SignatureRefused
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import Forbidden
from core.identity.ca import CertificateRefused, load_ca_certificate, revoke_certificate
from core.pdf import to_asn1
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.record_support import decrypted_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


@pytest.fixture
def signing(decrypted):
    """The record with every bidder confirmed: the PDF waits for the two signatures."""
    d = decrypted
    record_service.build_record(d.o.host_actor, d.tender_id)
    db.session.commit()
    for b in d.o.bidders:
        record_service.confirm(b.actor, d.tender_id)
        db.session.commit()
    return d


def _current(d) -> bytes:
    return record_service.current_pdf(record_service.get_record(d.tender_id))


def _refused(d, actor, pdf, exc=SignatureRefused) -> str:
    with pytest.raises(exc) as info:
        record_service.accept_signature(actor, d.tender_id, pdf)
    db.session.rollback()
    return info.value.code


def test_host_then_supervisor_sign_and_the_record_is_published(signing):
    d = signing
    held = _current(d)
    by_host = d.sign(held, "Host", d.host)
    record_service.accept_signature(d.o.host_actor, d.tender_id, by_host)
    db.session.commit()
    assert _current(d) == by_host
    by_both = d.sign(by_host, "Supervisor", d.supervisor)
    record = record_service.accept_signature(d.o.supervisor_actor, d.tender_id, by_both)
    db.session.commit()
    assert record.status == RecordStatus.PUBLISHED and record.published_at is not None
    assert record.host_certificate_id == d.host.cert_row.id
    assert record.supervisor_certificate_id == d.supervisor.cert_row.id
    assert opening.get_session(d.tender_id).phase == OpeningPhase.CLOSED
    context = ValidationContext(trust_roots=[to_asn1(load_ca_certificate())], allow_fetching=False)
    sigs = PdfFileReader(io.BytesIO(by_both)).embedded_signatures
    assert [s.field_name for s in sigs] == ["Host", "Supervisor"]
    for sig in sigs:
        assert validate_pdf_signature(sig, context).bottom_line
    assert _refused(d, d.o.host_actor, by_both, record_service.RecordRefused) == "not_signing"


def test_refusals_leave_the_record_unsigned(signing, create_person, kit):
    d = signing
    held = _current(d)
    # the supervisor's own field, signed by the host
    assert _refused(d, d.o.host_actor, d.sign(held, "Supervisor", d.host)) == "wrong_field"
    # the host's field signed with the supervisor's certificate, uploaded by the host: wrong person
    assert _refused(d, d.o.host_actor, d.sign(held, "Host", d.supervisor), Forbidden) == "not_your_certificate"
    # an earlier revision altered before signing
    assert b"Opening record" in held
    altered = held.replace(b"Opening record", b"Opening recorX", 1)
    assert _refused(d, d.o.host_actor, d.sign(altered, "Host", d.host)) == "revision_altered"
    # the signed bytes changed after signing (the signer's name in the new revision)
    signed = d.sign(held, "Host", d.host)
    name = d.host.person.name.encode()
    assert signed.count(name, len(held)) >= 1
    tampered = signed[:len(held)] + signed[len(held):].replace(name, name[:-1] + b"X", 1)
    assert _refused(d, d.o.host_actor, tampered) == "signature_invalid"
    # something appended after the signature
    assert _refused(d, d.o.host_actor, d.sign(held, "Host", d.host) + b"\n% more\n") == "not_whole_file"
    # the unchanged file, or nothing new
    assert _refused(d, d.o.host_actor, held) == "revision_altered"
    # someone who is neither host nor supervisor
    outsider = create_person(roles=("supervisor",))
    db.session.commit()
    from core.identity.access import actor_for
    assert _refused(d, actor_for(outsider, "supervisor"), d.sign(held, "Host", d.host), Forbidden) == "not_a_signer"
    assert record_service.get_record(d.tender_id).host_signed_at is None
    assert _current(d) == held


def test_a_revoked_certificate_is_refused(signing):
    d = signing
    revoke_certificate(Actor.system(source="test"), d.host.cert_row, "key_compromise")
    db.session.commit()
    pdf = d.sign(_current(d), "Host", d.host)
    assert _refused(d, d.o.host_actor, pdf, CertificateRefused) == "certificate_revoked"


def test_a_certificate_from_another_ca_is_refused(signing, tmp_path):
    d = signing
    from cryptography import x509

    from guarantees.issuer_sim.keys import create_keys
    other = create_keys(tmp_path / "other", code="other", name="Other CA Ltd", now=now())
    from core.pdf import sign_field
    pdf = sign_field(_current(d), "Host", other.letter_key, other.letter_cert, [other.ca_cert], stamp_text="x",
                     reason="x", signer_name="x")
    assert isinstance(other.ca_cert, x509.Certificate)
    assert _refused(d, d.o.host_actor, pdf) == "not_platform_ca"


# ------------------------------------------------------------------ an independent validator: poppler's pdfsig

needs_pdfsig = pytest.mark.skipif(not (shutil.which("pdfsig") and shutil.which("certutil")),
                                  reason="pdfsig (poppler-utils) and certutil (libnss3-tools) are needed; "
                                         "apt-get install poppler-utils libnss3-tools")


def _pdfsig(pdf: bytes, tmp_path: Path, ca=None) -> str:
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    if ca is not None:
        path = tmp_path / "platform-ca.pem"
        path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "platform-ca", "-t", "CT,C,C", "-i", str(path)],
                       check=True, capture_output=True)
    (tmp_path / "record.pdf").write_bytes(pdf)
    result = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(tmp_path / "record.pdf")], capture_output=True,
                            text=True, timeout=60)
    return result.stdout + result.stderr


@needs_pdfsig
def test_pdfsig_validates_both_signatures_with_the_platform_ca(signing, tmp_path):
    d = signing
    by_host = d.sign(_current(d), "Host", d.host)
    record_service.accept_signature(d.o.host_actor, d.tender_id, by_host)
    db.session.commit()
    by_both = d.sign(by_host, "Supervisor", d.supervisor)
    record_service.accept_signature(d.o.supervisor_actor, d.tender_id, by_both)
    db.session.commit()
    out = _pdfsig(by_both, tmp_path, load_ca_certificate())
    assert "Signature Field Name: Host" in out and "Signature Field Name: Supervisor" in out
    assert out.count("Signature is Valid.") == 2
    assert out.count("Certificate is Trusted.") == 2
    assert "Total document signed" in out
    (tmp_path / "no-ca").mkdir()
    out = _pdfsig(by_both, tmp_path / "no-ca")
    assert "Certificate is Trusted." not in out


@needs_pdfsig
def test_the_record_pdf_embeds_its_cjk_font(signing, tmp_path):
    path = tmp_path / "record.pdf"
    path.write_bytes(_current(signing))
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    assert "WQYZenHeiGB2312" in fonts and " no " not in fonts.split("\n", 2)[2]
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert "开标记录" in text and "唱标" in text
    for b in signing.o.bidders:
        assert b.org.uscc in text
