"""E-guarantee letters: amounts in words, the PDF's text and fonts, the PAdES seal (pyHanko and pdfsig)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from core.clock import now
from core.pdf import CJK_FONT_PATH
from guarantees import letters
from guarantees.issuer_sim.keys import create_keys
from guarantees.letters import LetterData, Party, amount_in_words

POPPLER = shutil.which("pdftotext") and shutil.which("pdffonts") and shutil.which("pdfsig")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdffonts, pdfsig) not installed; "
                                                       "apt-get install poppler-utils")

# ------------------------------------------------------------------ amounts in words (大写金额)

AMOUNTS = [
    ("0", "零元整"),
    ("1", "壹元整"),
    ("10", "壹拾元整"),
    ("15", "壹拾伍元整"),
    ("100", "壹佰元整"),
    ("101", "壹佰零壹元整"),
    ("110", "壹佰壹拾元整"),
    ("1001", "壹仟零壹元整"),
    ("1010", "壹仟零壹拾元整"),
    ("10000", "壹万元整"),
    ("100100", "壹拾万零壹佰元整"),
    ("125000", "壹拾贰万伍仟元整"),
    ("800000", "捌拾万元整"),
    ("1000001", "壹佰万零壹元整"),
    ("10010000", "壹仟零壹万元整"),
    ("20000010", "贰仟万零壹拾元整"),
    ("100000000", "壹亿元整"),
    ("100000001", "壹亿零壹元整"),
    ("100000100", "壹亿零壹佰元整"),
    ("100010000", "壹亿零壹万元整"),
    ("1000000000", "壹拾亿元整"),
    ("123456789.99", "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元玖角玖分"),
    ("0.05", "伍分"),
    ("0.50", "伍角整"),
    ("0.55", "伍角伍分"),
    ("1.05", "壹元零伍分"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
    ("325000.10", "叁拾贰万伍仟元壹角整"),
    ("0.005", "壹分"),                 # half a fen rounds up
    ("2.344", "贰元叁角肆分"),
    ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
]


@pytest.mark.parametrize(("amount", "words"), AMOUNTS)
def test_amount_in_words(amount, words):
    assert amount_in_words(Decimal(amount)) == words


@pytest.mark.parametrize(("amount", "error"), [
    (Decimal("-0.01"), ValueError), (Decimal("1000000000000"), ValueError), (1.5, TypeError), (True, TypeError),
])
def test_amount_in_words_refuses(amount, error):
    with pytest.raises(error):
        amount_in_words(amount)


def test_verification_codes_are_unambiguous_and_random():
    codes = {letters.new_verification_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert letters.is_verification_code(code)
        assert not set(code) & set("0O1IL")
    assert not letters.is_verification_code("ABCDEFGHI0")
    assert not letters.is_verification_code("ABCDEFGHJ")


# ------------------------------------------------------------------ the letter

def make_letter(**overrides) -> LetterData:
    fields = dict(
        guarantee_no="BANK1-20250131-000042", issuer_name="示范银行股份有限公司北京分行", issuer_kind="bank",
        beneficiary=Party("北京市交通建设管理中心", "12110000MB0123456X"),
        principal=Party("华北路桥工程有限公司", "91110000MA01234567"),
        tender_code="E1100000001000123001", tender_title="快速路改造工程施工总承包",
        lot_code="E1100000001000123001001", lot_title="第一标段",
        amount=Decimal("125000.00"), valid_from=datetime(2025, 1, 31, 1, 30, tzinfo=UTC),
        valid_until=datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC), issued_at=datetime(2025, 1, 31, 1, 30, tzinfo=UTC),
        verification_code="K7QX2MPR9A", verify_url="http://127.0.0.1:5000/guarantees/verify?no=BANK1-20250131-000042",
    )
    fields.update(overrides)
    return LetterData(**fields)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("issuer_kind", "pawnshop", "issuer_kind"),
    ("amount", Decimal("0"), "amount"),
    ("valid_until", datetime(2025, 1, 1, tzinfo=UTC), "valid_until must be after"),
    ("issued_at", datetime(2025, 1, 31), "aware"),
    ("verification_code", "K7QX2MPR0A", "verification_code"),
    ("lot_code", " ", "lot_code"),
])
def test_letter_data_refuses_bad_fields(field, value, problem):
    with pytest.raises(ValueError, match=problem):
        make_letter(**{field: value})


def test_sealed_letter_needs_a_salt_and_only_sealed_letters_reveal():
    with pytest.raises(ValueError, match="details_salt"):
        make_letter(sealed=True)
    with pytest.raises(ValueError, match="only a sealed letter"):
        letters.reveal(make_letter(), revealed_at=now())


@needs_poppler
def test_plain_letter_prints_every_field(tmp_path):
    pdf = letters.build_letter_pdf(make_letter())
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    for expected in ("投标保函", "BANK1-20250131-000042", "示范银行股份有限公司北京分行",
                     "北京市交通建设管理中心", "12110000MB0123456X", "华北路桥工程有限公司", "91110000MA01234567",
                     "E1100000001000123001", "E1100000001000123001001", "第一标段", "¥125,000.00", "壹拾贰万伍仟元整",
                     "2025-01-31 09:30", "2025-06-30 23:59", "北京时间", "K7QX2MPR9A", "明文保函",
                     "http://127.0.0.1:5000/guarantees/verify?no=BANK1-20250131-000042", "How to verify"):
        assert expected in text, expected
    assert "sealed until the opening" not in text


@needs_poppler
def test_insurer_issues_a_policy(tmp_path):
    text = pdf_text(letters.build_letter_pdf(make_letter(issuer_kind="insurer")), tmp_path)
    assert "电子投标保证保险单" in text and "保单号" in text and "被保险人" in text


@needs_poppler
def test_sealed_letter_hides_who_bids_for_what_until_revealed(tmp_path):
    sealed = make_letter(sealed=True, details_salt=letters.new_details_salt())
    digest = letters.sealed_details_digest(sealed)
    text = pdf_text(letters.build_letter_pdf(sealed), tmp_path)
    assert "sealed until the opening" in text and "密文保函" in text
    for hidden in ("华北路桥", "91110000MA01234567", "北京市交通建设管理中心", "12110000MB0123456X",
                   "E1100000001000123001", "快速路", "第一标段"):
        assert hidden not in text, hidden
    assert digest in text.replace("\n", "")
    assert "BANK1-20250131-000042" in text and "壹拾贰万伍仟元整" in text and "K7QX2MPR9A" in text

    revealed = letters.reveal(sealed, revealed_at=datetime(2025, 3, 1, 2, 0, tzinfo=UTC))
    assert revealed.revision == 2 and letters.sealed_details_digest(revealed) == digest
    text = pdf_text(letters.build_letter_pdf(revealed), tmp_path)
    for shown in ("华北路桥工程有限公司", "91110000MA01234567", "北京市交通建设管理中心", "E1100000001000123001001",
                  sealed.details_salt, "Revision 2", "2025-03-01 10:00"):
        assert shown in text.replace("\n", ""), shown
    assert digest in text.replace("\n", "")
    # anyone can recompute the digest printed on the sealed letter from what the revision prints
    assert letters.sealed_details_digest(replace(sealed, details_salt=sealed.details_salt)) == digest
    assert letters.sealed_details_digest(replace(sealed, principal=Party("别的公司", "91110000MA01234567"))) != digest


def _fonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines()[2:] if line.strip()]


@pytest.fixture(scope="module")
def issuer_keys(tmp_path_factory):
    return create_keys(tmp_path_factory.mktemp("issuer"), code="BANK1", name="示范银行股份有限公司北京分行",
                       uscc="91110000100000000L", now=now())


@pytest.fixture(scope="module")
def sealed_pdf(issuer_keys) -> bytes:
    pdf = letters.build_letter_pdf(make_letter())
    return letters.sign_letter(pdf, issuer_keys.letter_key, issuer_keys.letter_cert, [issuer_keys.ca_cert])


@needs_poppler
def test_every_font_is_embedded_cjk_subset(sealed_pdf, tmp_path):
    rows = _fonts(sealed_pdf, tmp_path)
    assert rows, "the letter names no font"
    for row in rows:
        name, emb, sub = row[0], row[-5], row[-4]
        assert "WQYZenHeiGB2312" in name, row
        assert (emb, sub) == ("yes", "yes"), row
    assert len(sealed_pdf) < 200_000  # subsets, not the 2 MB font


def test_shipped_font_is_a_single_truetype_font_of_reasonable_size():
    data = CJK_FONT_PATH.read_bytes()
    assert data[:4] == b"\x00\x01\x00\x00"  # TrueType outlines, not a .ttc collection ("ttcf") or CFF ("OTTO")
    assert 1_000_000 < len(data) < 4_000_000


def _validate(pdf: bytes, ca_cert):
    trust = asn1_x509.Certificate.load(ca_cert.public_bytes(serialization.Encoding.DER))
    context = ValidationContext(trust_roots=[trust], allow_fetching=False)
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert len(signatures) == 1
    return signatures[0], validate_pdf_signature(signatures[0], context)


def test_seal_is_pades_and_validates_with_the_issuer_ca(sealed_pdf, issuer_keys):
    signature, status = _validate(sealed_pdf, issuer_keys.ca_cert)
    assert signature.field_name == letters.SEAL_FIELD
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.signing_cert.sha256 == hashlib.sha256(
        issuer_keys.letter_cert.public_bytes(serialization.Encoding.DER)).digest()


def test_seal_is_not_trusted_under_another_ca(sealed_pdf, tmp_path):
    other = create_keys(tmp_path, code="BANK2", name="另一家银行", now=now())
    _, status = _validate(sealed_pdf, other.ca_cert)
    assert status.intact and not status.trusted and not status.bottom_line


def test_a_flipped_byte_breaks_the_seal(sealed_pdf, issuer_keys):
    signature, _ = _validate(sealed_pdf, issuer_keys.ca_cert)
    start, length = signature.byte_range[0], signature.byte_range[1]
    position = start + length // 2  # inside the first signed range (the page and font streams)
    tampered = bytearray(sealed_pdf)
    tampered[position] ^= 0x01
    _, status = _validate(bytes(tampered), issuer_keys.ca_cert)
    assert not status.intact and not status.bottom_line


def test_letter_sha256_is_the_file_hash(sealed_pdf):
    assert letters.letter_sha256(sealed_pdf) == hashlib.sha256(sealed_pdf).hexdigest()


def test_a_letter_is_sealed_once(sealed_pdf, issuer_keys):
    with pytest.raises(ValueError, match="already"):
        letters.sign_letter(sealed_pdf, issuer_keys.letter_key, issuer_keys.letter_cert, [issuer_keys.ca_cert])


# ------------------------------------------------------------------ an independent validator: poppler's pdfsig (NSS)

def _nss_db(tmp_path: Path, ca_cert=None) -> str:
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    if ca_cert is not None:
        ca = tmp_path / "issuer-ca.pem"
        ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "issuer-ca", "-t", "CT,C,C", "-i", str(ca)],
                       check=True, capture_output=True)
    return f"sql:{db}"


def _pdfsig(pdf: bytes, nss: str, tmp_path: Path) -> str:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    # no -no-ocsp: poppler 22 then reports "Unknown issue with Certificate"; the certificates carry no OCSP
    # address, so pdfsig contacts nothing anyway
    result = subprocess.run(["pdfsig", "-nssdir", nss, str(path)], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


needs_certutil = pytest.mark.skipif(
    not shutil.which("certutil"), reason="certutil (Debian package libnss3-tools) is not installed, so no NSS "
                                         "database can hold the issuer CA; apt-get install libnss3-tools")


@needs_poppler
@needs_certutil
def test_pdfsig_reports_valid_and_trusted_with_the_issuer_ca(sealed_pdf, issuer_keys, tmp_path):
    out = _pdfsig(sealed_pdf, _nss_db(tmp_path, issuer_keys.ca_cert), tmp_path)
    assert "Signature Field Name: IssuerSeal" in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Signature is Valid." in out
    assert "Certificate is Trusted." in out
    assert "Total document signed" in out


@needs_poppler
@needs_certutil
def test_pdfsig_without_the_ca_does_not_trust_and_a_flipped_byte_is_invalid(sealed_pdf, issuer_keys, tmp_path):
    out = _pdfsig(sealed_pdf, _nss_db(tmp_path), tmp_path)
    assert "Signature is Valid." in out and "Certificate is Trusted." not in out
    tampered = bytearray(sealed_pdf)
    tampered[len(sealed_pdf) // 3] ^= 0x01
    (tmp_path / "ca").mkdir()
    out = _pdfsig(bytes(tampered), _nss_db(tmp_path / "ca", issuer_keys.ca_cert), tmp_path)
    assert "Signature is Valid." not in out
