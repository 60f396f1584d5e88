"""Signing the evaluation report (评标报告签署) and checking its signatures.

Every committee member signs their own empty field of the report (:mod:`evaluation.report_pdf`) as an
incremental PAdES update: :func:`sign_report`. :func:`verify_report` then judges a report file as a
whole: it is *final* only when every expected field holds an intact, valid signature chained to the
platform CA, made with the member's own certificate, when every revision after the first signature
only fills form fields, and when the last signature covers the entire file. A missing signature
makes it *incomplete* (never final); anything broken, untrusted, tampered with or appended makes it
*invalid*, naming the members whose signatures fail. A file that cannot be read is invalid too; the
check never raises for a bad file.

Validation cost: one :class:`ValidationContext` serves all signatures (its certificate path cache is
shared), and the form-filling check runs once from the first signed revision to the end instead of
once per signature; only when that check fails is each signature's own range reviewed, to name the
members whose signatures the later changes break.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel, SuspiciousModification
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from core.errors import ValidationFailed
from core.pdf import simple_signer, to_asn1

FINAL, INCOMPLETE, INVALID = "final", "incomplete", "invalid"
VALID, MISSING = "valid", "missing"
SIGN_REASON = "评标报告 Evaluation report"


@dataclass(frozen=True)
class FieldVerdict:
    """One expected signature field: ``state`` is "valid", "missing" (not signed yet) or "invalid"."""

    field: str
    member: str
    state: Literal["valid", "missing", "invalid"]
    signer_subject: str | None = None
    signed_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ReportVerdict:
    """The report as a whole: "final", "incomplete" or "invalid", each field, and what is wrong."""

    status: Literal["final", "incomplete", "invalid"]
    signatures: tuple[FieldVerdict, ...]
    problems: tuple[str, ...]

    @property
    def failing_members(self) -> tuple[str, ...]:
        """The members whose signature fails (state "invalid")."""
        return tuple(f.member for f in self.signatures if f.state == INVALID)

    @property
    def missing_members(self) -> tuple[str, ...]:
        """The members who have not signed yet."""
        return tuple(f.member for f in self.signatures if f.state == MISSING)


def _text(message: Any, **params: Any) -> str:
    return str(message % params if params else message)


# --------------------------------------------------------------------------------- signing

def sign_report(pdf: bytes, field: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
                cert: x509.Certificate, chain: Sequence[x509.Certificate], member_label: str) -> bytes:
    """Fill the member's empty field ``field`` with a PAdES signature, as an incremental update.

    The visible stamp is plain ASCII (``"<member_label> signed"`` and the time) in pyHanko's built-in
    font: a stamp with CJK glyphs must subset a font for every signature (about 350 ms each), and the
    member's Chinese name is already printed beside the box.
    """
    if not member_label or not member_label.isascii() or not member_label.isprintable():
        raise ValidationFailed(_l("The stamp label %(label)s must be printable ASCII, for example the field "
                                  "name Member3."), code="stamp_label", label=member_label)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    state = {name: value for name, value, _ in fields.enumerate_sig_fields(writer.prev)}
    if field not in state:
        raise ValidationFailed(_l("The report has no signature field %(field)s; sign the field printed beside "
                                  "your name."), code="no_field", field=field)
    if state[field] is not None:
        raise ValidationFailed(_l("The field %(field)s is signed already; download the current report and "
                                  "sign only your own empty field."), code="field_signed", field=field)
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    meta = signers.PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=SIGN_REASON,
                                        name=str(names[0].value) if names else member_label)
    stamp = TextStampStyle(stamp_text=member_label.replace("%", "%%") + " signed\n%(ts)s", border_width=1)
    signer = signers.PdfSigner(meta, simple_signer(key, cert, list(chain)), stamp_style=stamp)
    return signer.sign_pdf(writer, existing_fields_only=True).getvalue()


# --------------------------------------------------------------------------------- checking

def _common_name(status: Any) -> str | None:
    try:
        return status.signing_cert.subject.native.get("common_name")
    except (AttributeError, ValueError):
        return None


def _subject(status: Any) -> str | None:
    try:
        return status.signing_cert.subject.human_friendly
    except (AttributeError, ValueError):
        return None


def _unreadable(expected: Sequence[tuple[str, str]]) -> ReportVerdict:
    reason = _text(_l("The file cannot be read as a PDF."))
    return ReportVerdict(INVALID, tuple(FieldVerdict(f, m, INVALID, reason=reason) for f, m in expected),
                         (_text(_l("The file is not a readable PDF; download the report again from the platform.")),))


def _check_signature(sig: EmbeddedPdfSignature, member: str, context: ValidationContext) -> FieldVerdict:
    """Cryptography, trust, coverage and the signer's name of one signature (no diff analysis)."""
    try:
        status = validate_pdf_signature(sig, context, skip_diff=True)
    except Exception:  # a malformed signature dictionary or CMS blob: pyHanko raises several kinds
        return FieldVerdict(sig.field_name, member, INVALID,
                            reason=_text(_l("The signature cannot be read.")))
    subject, signed_at = _subject(status), status.signer_reported_dt

    def bad(message: Any, **params: Any) -> FieldVerdict:
        return FieldVerdict(sig.field_name, member, INVALID, subject, signed_at, _text(message, **params))

    if not status.intact:
        return bad(_l("The signed content was changed after signing."))
    if not status.valid:
        return bad(_l("The signature value does not match the signing certificate."))
    if not status.trusted:
        return bad(_l("The signing certificate was not issued by the platform CA (or is not valid now)."))
    if status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return bad(_l("The signature does not cover a whole revision of the report."))
    name = _common_name(status)
    if member and name != member:  # an empty member name: the caller does not know who should sign
        return bad(_l("The signature was made with the certificate of %(name)s, not of the member %(member)s."),
                   name=name or "-", member=member)
    return FieldVerdict(sig.field_name, member, VALID, subject, signed_at)


def _modifications_ok(sig: EmbeddedPdfSignature) -> bool:
    try:
        result = sig.evaluate_modifications(DEFAULT_DIFF_POLICY)
    except Exception:
        return False
    return not isinstance(result, SuspiciousModification) and result.modification_level <= \
        ModificationLevel.FORM_FILLING


def verify_report(pdf: bytes, ca_cert: x509.Certificate, expected: Sequence[tuple[str, str]]) -> ReportVerdict:
    """Judge a signed report; ``expected`` lists (field name, member name) of every committee member.

    An empty member name skips the check that the certificate's name is the member's (verifying a file
    without the platform's record of who sits in which field)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        present = {name: value for name, value, _ in fields.enumerate_sig_fields(reader)}
        signatures = {sig.field_name: sig for sig in reader.embedded_signatures}
    except Exception:  # a broken file: pyHanko raises several kinds
        return _unreadable(expected)
    try:
        return _judge(reader, present, signatures, ca_cert, expected)
    except Exception:  # structure pyHanko reads but cannot follow (broken references, odd byte ranges)
        return _unreadable(expected)


def _judge(reader: PdfFileReader, present: dict[str, Any], signatures: dict[str, EmbeddedPdfSignature],
           ca_cert: x509.Certificate, expected: Sequence[tuple[str, str]]) -> ReportVerdict:
    context = ValidationContext(trust_roots=[to_asn1(ca_cert)], allow_fetching=False)
    problems: list[str] = []
    members = dict(expected)
    verdicts: dict[str, FieldVerdict] = {}
    for field, member in expected:
        if field not in present:
            verdicts[field] = FieldVerdict(field, member, INVALID,
                                           reason=_text(_l("The report has no such signature field.")))
            problems.append(_text(_l("The report has no signature field %(field)s for %(member)s: it is not "
                                     "the report built for this committee."), field=field, member=member))
        elif field not in signatures:
            verdicts[field] = FieldVerdict(field, member, MISSING)
        else:
            verdicts[field] = _check_signature(signatures[field], member, context)
    for field in signatures:
        if field not in members:
            problems.append(_text(_l("The field %(field)s is signed but belongs to no committee member."),
                                  field=field))
    if signatures:
        ordered = sorted(signatures.values(), key=lambda s: s.signed_revision)
        if ordered[-1].coverage != SignatureCoverageLevel.ENTIRE_FILE:
            problems.append(_text(_l("Data was added after the last signature (%(field)s); use the file exactly "
                                     "as the last member signed it."), field=ordered[-1].field_name))
        if not _later_revisions_fill_forms(reader, ordered[0]):
            for sig in ordered:
                if sig.field_name in verdicts and verdicts[sig.field_name].state == VALID \
                        and not _modifications_ok(sig):
                    old = verdicts[sig.field_name]
                    verdicts[sig.field_name] = FieldVerdict(
                        old.field, old.member, INVALID, old.signer_subject, old.signed_at,
                        _text(_l("A later revision changes more than signature fields.")))
            problems.append(_text(_l("A revision after the first signature changes the report's content, not "
                                     "only signature fields.")))
    result = tuple(verdicts[field] for field, _ in expected)
    for v in result:
        if v.state == INVALID and v.reason:
            problems.append(f"{v.member} ({v.field}): {v.reason}")
    if problems or any(v.state == INVALID for v in result):
        status = INVALID
    elif any(v.state == MISSING for v in result):
        status = INCOMPLETE
    else:
        status = FINAL
    return ReportVerdict(status, result, tuple(problems))


def _later_revisions_fill_forms(reader: PdfFileReader, first: EmbeddedPdfSignature) -> bool:
    """One review of every revision after the first signature: only form filling (signing) allowed."""
    if first.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return True
    try:
        result = DEFAULT_DIFF_POLICY.review_file(reader, first.signed_revision)
    except Exception:
        return False
    return not isinstance(result, SuspiciousModification) and result.modification_level <= \
        ModificationLevel.FORM_FILLING
