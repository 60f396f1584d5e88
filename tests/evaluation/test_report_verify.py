"""Signing the evaluation report by every member and judging the signed file: final, incomplete, invalid."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from core.errors import ValidationFailed
from core.pdf import to_asn1
from evaluation.report_pdf import build_report
from evaluation.report_verify import FINAL, INCOMPLETE, INVALID, MISSING, VALID, sign_report, verify_report
from tests.evaluation.report_certs import TestCA
from tests.evaluation.test_report_pdf import report_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture(scope="module")
def members(ca):
    return ca.members(3, prefix="委员")


@pytest.fixture(scope="module")
def blank(members):
    data = report_dict(members=3)
    assert [m["name"] for m in data["members"]] == [m.name for m in members]
    return build_report(data)


def _expected(members):
    return [(m.field, m.name) for m in members]


def _sign(pdf, ca, signers):
    for m in signers:
        pdf = sign_report(pdf, m.field, m.key, m.cert, [ca.cert], m.field)
    return pdf


@pytest.fixture(scope="module")
def signed(blank, ca, members):
    return _sign(blank, ca, members)


def test_all_members_signed_is_final(signed, ca, members):
    verdict = verify_report(signed, ca.cert, _expected(members))
    assert verdict.status == FINAL and verdict.problems == ()
    assert [(v.field, v.member, v.state) for v in verdict.signatures] == [(m.field, m.name, VALID) for m in members]
    for v, m in zip(verdict.signatures, members, strict=True):
        assert m.name in v.signer_subject and v.signed_at is not None and v.reason is None
    # an independent look with plain pyHanko: every signature holds, the last covers the whole file
    context = ValidationContext(trust_roots=[to_asn1(ca.cert)], allow_fetching=False)
    sigs = PdfFileReader(io.BytesIO(signed)).embedded_signatures
    assert [s.field_name for s in sigs] == [m.field for m in members]
    assert all(validate_pdf_signature(s, context).bottom_line for s in sigs)


def test_each_signature_is_an_incremental_update(blank, ca, members):
    pdf = blank
    for m in members:
        after = sign_report(pdf, m.field, m.key, m.cert, [ca.cert], m.field)
        assert after.startswith(pdf) and len(after) > len(pdf)
        pdf = after


def test_two_of_three_is_incomplete_naming_the_missing_member(blank, ca, members):
    pdf = _sign(blank, ca, members[:2])
    verdict = verify_report(pdf, ca.cert, _expected(members))
    assert verdict.status == INCOMPLETE
    assert verdict.missing_members == (members[2].name,)
    assert [v.state for v in verdict.signatures] == [VALID, VALID, MISSING]
    assert verify_report(blank, ca.cert, _expected(members)).status == INCOMPLETE


def _content_stream_offset(pdf: bytes) -> int:
    """An offset inside the first page's content stream, in the report's first revision."""
    page = PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Kids"][0].get_object()
    ref = page.raw_get("/Contents")
    start = pdf.index(b"\n%d 0 obj" % ref.idnum)
    return pdf.index(b"stream", start) + len(b"stream\n") + 20


def test_a_flipped_byte_in_the_content_names_every_signer(signed, ca, members):
    at = _content_stream_offset(signed)
    assert at < signed.index(b"%%EOF")  # inside the first revision
    tampered = bytearray(signed)
    tampered[at] ^= 0x01
    verdict = verify_report(bytes(tampered), ca.cert, _expected(members))
    assert verdict.status == INVALID
    assert verdict.failing_members == tuple(m.name for m in members)
    assert all(m.name in " ".join(verdict.problems) for m in members)


def test_any_flipped_byte_of_the_first_revision_is_invalid_never_an_exception(signed, ca, members):
    end = signed.index(b"%%EOF")
    for at in range(0, end, max(end // 25, 1)):
        tampered = bytearray(signed)
        tampered[at] ^= 0x20
        verdict = verify_report(bytes(tampered), ca.cert, _expected(members))
        assert verdict.status == INVALID, at
        assert verdict.failing_members == tuple(m.name for m in members), at


def test_data_after_the_last_signature_is_not_final(signed, ca, members):
    verdict = verify_report(signed + b"\n% appended\n", ca.cert, _expected(members))
    assert verdict.status == INVALID
    assert any("after the last signature" in p for p in verdict.problems)


def test_a_later_revision_that_changes_content_breaks_the_earlier_signatures(blank, ca, members):
    pdf = _sign(blank, ca, members[:2])
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    ref = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 12 Tf 100 100 Td (changed) Tj ET"))
    writer.add_stream_to_page(0, ref)
    out = io.BytesIO()
    writer.write(out)
    pdf = _sign(out.getvalue(), ca, members[2:])  # the last member signs the changed file
    verdict = verify_report(pdf, ca.cert, _expected(members))
    assert verdict.status == INVALID
    assert verdict.failing_members == (members[0].name, members[1].name)
    assert verdict.signatures[2].state == VALID


def test_signatures_from_another_ca_are_invalid(signed, members):
    verdict = verify_report(signed, TestCA(name="another CA").cert, _expected(members))
    assert verdict.status == INVALID
    assert verdict.failing_members == tuple(m.name for m in members)
    assert all("CA" in v.reason for v in verdict.signatures)


def test_a_member_signing_with_someone_elses_certificate_is_named(blank, ca, members):
    first, second, third = members
    pdf = sign_report(blank, first.field, second.key, second.cert, [ca.cert], first.field)
    pdf = _sign(pdf, ca, [second, third])
    verdict = verify_report(pdf, ca.cert, _expected(members))
    assert verdict.status == INVALID
    assert verdict.failing_members == (first.name,)
    assert second.name in verdict.signatures[0].reason


@pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<<"])
def test_an_unreadable_file_is_invalid_without_raising(data, ca, members):
    verdict = verify_report(data, ca.cert, _expected(members))
    assert verdict.status == INVALID and verdict.problems
    assert verdict.failing_members == tuple(m.name for m in members)


def test_a_truncated_report_is_not_final(signed, ca, members):
    verdict = verify_report(signed[: len(signed) - 400], ca.cert, _expected(members))
    assert verdict.status != FINAL


def test_fields_the_committee_does_not_have(signed, ca, members):
    verdict = verify_report(signed, ca.cert, [*_expected(members), ("Member9", "委员09")])
    assert verdict.status == INVALID
    assert verdict.signatures[-1].state == INVALID
    verdict = verify_report(signed, ca.cert, _expected(members[:2]))  # Member3 signed but not expected
    assert verdict.status == INVALID
    assert any("Member3" in p for p in verdict.problems)


def test_sign_report_refusals(blank, signed, ca, members):
    m = members[0]
    with pytest.raises(ValidationFailed) as info:
        sign_report(blank, "Member7", m.key, m.cert, [ca.cert], "Member7")
    assert info.value.code == "no_field"
    with pytest.raises(ValidationFailed) as info:
        sign_report(signed, m.field, m.key, m.cert, [ca.cert], m.field)
    assert info.value.code == "field_signed"
    with pytest.raises(ValidationFailed) as info:
        sign_report(blank, m.field, m.key, m.cert, [ca.cert], "委员01")
    assert info.value.code == "stamp_label"


def test_the_stamp_uses_no_embedded_font(blank, ca, members):
    m = members[0]
    pdf = sign_report(blank, m.field, m.key, m.cert, [ca.cert], m.field)
    added = pdf[len(blank):]
    assert b"/FontFile" not in added  # the plain stamp: pyHanko's built-in Courier, nothing subset


# ------------------------------------------------------------------------------- an independent validator

@pytest.mark.skipif(not (shutil.which("pdfsig") and shutil.which("certutil")),
                    reason="pdfsig (poppler-utils) and certutil (libnss3-tools) are needed; "
                           "apt-get install poppler-utils libnss3-tools")
def test_pdfsig_validates_every_member_signature(signed, ca, members, tmp_path):
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "report-ca", "-t", "CT,C,C", "-i",
                    str(tmp_path / "ca.pem")], check=True, capture_output=True)
    (tmp_path / "report.pdf").write_bytes(signed)
    done = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(tmp_path / "report.pdf")], capture_output=True,
                          text=True, timeout=60)
    out = done.stdout + done.stderr
    for m in members:
        assert f"Signature Field Name: {m.field}" in out
    assert out.count("Signature is Valid.") == len(members)
    assert out.count("Certificate is Trusted.") == len(members)
    assert "Total document signed" in out


# ------------------------------------------------------------------------------- the benchmark still runs

def _benchmark():
    spec = importlib.util.spec_from_file_location("report_sign_bench", ROOT / "benchmarks" / "report_sign.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_once_with_three_members_and_the_smallest_report():
    bench = _benchmark()
    ca = TestCA()
    committee = ca.members(3)
    data = bench.sized_report_data(committee, bench.MIN_PAGES)
    ebid = bench.run_ebid(data, ca, committee)
    assert ebid["pages"] == bench.MIN_PAGES and len(ebid["sign_each"]) == 3 and ebid["bytes"] > 0
    base = bench.run_baseline(ca, committee)
    assert base["pages"] == 1 and len(base["sign_each"]) == 3
