"""Letter verification (保函验真): every check named, with the reason it passed or failed.

A letter is found by its file (SHA-256 on record), or by its number and verification code (验真码).
The checks, DOMAIN.md §4:

* ``record``: the letter is on record here (number and code match, or the file's hash is known);
* ``signature``: the PDF's last PAdES signature (ETSI.CAdES.detached) is intact, valid and covers the
  whole file, and its signer chains to the issuer's trust root in force when the letter was issued
  (pyHanko, no fetching; :mod:`guarantees.issuer_certs` keeps the versions);
* ``issuer_admitted``: that issuer is admitted on the platform;
* ``hash``: the file's SHA-256 equals the one on record;
* ``status``: the letter is in force (not cancelled, released, claimed or paid; not expired);
* ``registry`` (optional): the issuer's public registry (``GET /letters/{no}``) confirms hash and status;

and for a bid (``expected``): ``principal`` (bidder USCC), ``beneficiary`` (the tenderer), ``lot`` (tender and
lot codes), ``amount`` (≥ the bond), ``issued_before_deadline``, ``validity`` (until ≥ deadline + bid
validity + extra days). The facts compared are the order's: the letter's hash binds it to that order.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import or_, select

from bidding.models import Lot, Tender
from core.clock import as_utc, now
from core.db import db
from core.identity.models import Organisation
from core.storage import default_store
from guarantees import issuer_certs, protocol, rates
from guarantees.lifecycle import LETTER_IN_FORCE
from guarantees.models import GuaranteeOrder, Issuer
from guarantees.requirements import bond_requirement

PADES_SUBFILTER = "/ETSI.CAdES.detached"
REGISTRY_TIMEOUT = 5


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: not run (nothing to compare with)
    reason: str

    @property
    def text(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass(frozen=True)
class Expectation:
    """What a letter must match to back a bid: the tender, the lot and the bidder."""

    tender: Tender
    lot: Lot
    bidder: Organisation


@dataclass
class VerificationReport:
    checks: list[Check] = field(default_factory=list)
    order: GuaranteeOrder | None = None
    issuer: Issuer | None = None
    sha256: str | None = None

    def add(self, name: str, passed: bool | None, reason: Any) -> None:
        self.checks.append(Check(name, passed, str(reason)))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def ok(self) -> bool:
        ran = {c.name for c in self.checks if c.passed}
        return not self.failures and {"record", "signature"} <= ran

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        order = self.order
        out: dict[str, Any] = {"valid": self.ok, "sha256": self.sha256,
                               "checks": [{"name": c.name, "passed": c.passed, "reason": c.reason}
                                          for c in self.checks]}
        if order is not None:
            out["letter"] = {"guarantee_no": order.guarantee_no, "issuer": order.issuer.name,
                             "issuer_code": order.issuer.code, "state": order.state.value,
                             "amount": str(order.amount), "valid_from": iso(order.valid_from),
                             "valid_until": iso(order.valid_until), "issued_at": iso(order.issued_at),
                             "guarantee_type": order.guarantee_type.value}
            if order.guarantee_type.value == "plain" or order.revealed_at is not None:
                out["letter"].update({"tender_code": order.tender.code, "lot_code": order.lot.code,
                                      "beneficiary": order.tender.tenderer.name, "principal": order.bidder.name,
                                      "principal_uscc": order.bidder.uscc})
        return out


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


# -- the signature ---------------------------------------------------------------------------------

def _root(pem: str) -> asn1_x509.Certificate:
    _, _, der = asn1_pem.unarmor(pem.encode())
    return asn1_x509.Certificate.load(der)


def signature_verdict(pdf_bytes: bytes, trust_root_pem: str, moment: datetime | None = None) -> tuple[bool, Any]:
    """Check the PDF's last signature against one trust root, at ``moment`` (default now): (passed, reason)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
        signatures = reader.embedded_signatures
    except Exception:  # noqa: BLE001 - any parse failure means "not a readable signed PDF"
        return False, _l("the file is not a readable PDF.")
    if not signatures:
        return False, _l("the PDF carries no signature.")
    sig = signatures[-1]
    if str(sig.sig_object.get("/SubFilter")) != PADES_SUBFILTER:
        return False, _l("the signature is not a PAdES signature (ETSI.CAdES.detached).")
    context = ValidationContext(trust_roots=[_root(trust_root_pem)], allow_fetching=False,
                                moment=as_utc(moment) if moment is not None else now())
    try:
        status = validate_pdf_signature(sig, context)
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many types for a malformed signature
        return False, _l("the signature cannot be validated (%(error)s).", error=type(exc).__name__)
    if not status.intact:
        return False, _l("the document was changed after it was signed.")
    if not status.valid:
        return False, _l("the signature value is not valid.")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return False, _l("content was added after the signature.")
    if not status.trusted:
        return False, _l("the signer's certificate does not chain to the issuer's trust root.")
    return True, _l("PAdES signature intact and valid; signer %(signer)s chains to the issuer's CA.",
                    signer=status.signing_cert.subject.human_friendly)


def _issuer_of_signature(pdf_bytes: bytes) -> tuple[Issuer | None, Any]:
    """Find the issuer whose trust root the signature chains to (for a file not on record)."""
    last_reason: Any = _l("no issuer's trust root matches the signer.")
    for issuer in db.session.scalars(select(Issuer).order_by(Issuer.id)):
        for root in issuer_certs.trust_roots(issuer):
            passed, reason = signature_verdict(pdf_bytes, root)
            if passed:
                return issuer, reason
            last_reason = reason
    return None, last_reason


def order_signature_verdict(pdf_bytes: bytes, order: GuaranteeOrder) -> tuple[bool, Any]:
    """Check a letter's signature against the issuer's trust root in force when it was issued.

    A root since replaced is checked at the issue time (the old CA may have expired since); a letter
    that only chains to a root not in force at its issue time fails, saying which one it chains to.
    """
    issuer = order.issuer
    version = issuer_certs.trust_root_at(issuer, order.issued_at)
    if version is None:  # no certificate history: the current root
        return signature_verdict(pdf_bytes, issuer.letter_trust_root_pem)
    moment = None if version.valid_until is None or order.issued_at is None else order.issued_at
    passed, reason = signature_verdict(pdf_bytes, version.letter_trust_root_pem, moment)
    if passed:
        return passed, reason
    for other in issuer.certificates:
        if other.letter_trust_root_pem == version.letter_trust_root_pem:
            continue
        if signature_verdict(pdf_bytes, other.letter_trust_root_pem, order.issued_at)[0]:
            return False, _l("the letter was issued at %(issued)s but is sealed under %(issuer)s's trust root of "
                             "version %(version)s, in force from %(start)s to %(end)s.", issued=iso(order.issued_at),
                             issuer=issuer.name, version=other.version, start=iso(other.valid_from),
                             end=iso(other.valid_until) or "-")
    return passed, reason


# -- finding the letter ----------------------------------------------------------------------------

def _by_number(guarantee_no: str, code: str | None) -> GuaranteeOrder | None:
    orders = db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.guarantee_no == guarantee_no.strip(),
                                                             GuaranteeOrder.letter_sha256.is_not(None))).all()
    wanted = (code or "").strip().upper()
    return next((o for o in orders if o.verification_code and o.verification_code.upper() == wanted), None)


def _by_hash(sha256: str) -> GuaranteeOrder | None:
    return db.session.scalar(select(GuaranteeOrder).where(or_(GuaranteeOrder.letter_sha256 == sha256,
                                                              GuaranteeOrder.superseded_sha256 == sha256))
                             .order_by(GuaranteeOrder.id.desc()).limit(1))


def verify_letter(pdf_bytes: bytes | None = None, guarantee_no: str | None = None, code: str | None = None, *,
                  expected: Expectation | None = None, confirm_with_issuer: bool = False) -> VerificationReport:
    """Verify a letter given as a file, or as its number and verification code; see the module docstring."""
    report = VerificationReport()
    order: GuaranteeOrder | None = None
    if pdf_bytes is not None:
        report.sha256 = hashlib.sha256(pdf_bytes).hexdigest()
        order = _by_hash(report.sha256)
        if order is None and guarantee_no:
            order = _by_number(guarantee_no, code)
    elif guarantee_no:
        order = _by_number(guarantee_no, code)
    if order is None:
        report.add("record", False, _l("no letter with this number and verification code, or with this file's "
                                       "SHA-256, is on record."))
    else:
        report.add("record", True, _l("letter %(no)s of order %(order)s is on record.", no=order.guarantee_no,
                                      order=order.order_no))
    report.order = order
    if pdf_bytes is None and order is not None:
        try:
            pdf_bytes = default_store().read_bytes(order.letter_file_sha256)
        except (OSError, ValueError, TypeError):
            report.add("hash", False, _l("the stored letter file is missing."))
        if pdf_bytes is not None:
            report.sha256 = hashlib.sha256(pdf_bytes).hexdigest()
    _file_checks(report, order, pdf_bytes)
    if order is not None:
        _status_check(report, order)
        if confirm_with_issuer:
            _registry_check(report, order)
        if expected is not None:
            bid_checks(report, order, expected)
    return report


def verify_stored_letter(order: GuaranteeOrder, expected: Expectation | None = None) -> VerificationReport:
    """Verify the letter stored for ``order`` (used when binding and at the opening)."""
    pdf_bytes = None
    if order.letter_file_sha256:
        try:
            pdf_bytes = default_store().read_bytes(order.letter_file_sha256)
        except OSError:
            pdf_bytes = None
    if pdf_bytes is None:
        report = VerificationReport(order=order)
        report.add("record", False, _l("no letter file has been received for order %(order)s.",
                                       order=order.order_no))
        return report
    report = verify_letter(pdf_bytes, expected=expected)
    if report.order is not None and report.order.id != order.id:
        report.add("record", False, _l("the stored file belongs to another order."))
    return report


def _file_checks(report: VerificationReport, order: GuaranteeOrder | None, pdf_bytes: bytes | None) -> None:
    if pdf_bytes is None:
        if report.check("hash") is None:
            report.add("signature", False, _l("there is no file to check."))
        return
    if order is not None:
        issuer = order.issuer
        passed, reason = order_signature_verdict(pdf_bytes, order)
    else:
        issuer, reason = _issuer_of_signature(pdf_bytes)
        passed = issuer is not None
    report.issuer = issuer
    report.add("signature", passed, reason)
    if issuer is not None:
        report.add("issuer_admitted", issuer.is_admitted,
                   _l("%(issuer)s is admitted.", issuer=issuer.name) if issuer.is_admitted
                   else _l("%(issuer)s is not (or no longer) admitted on this platform.", issuer=issuer.name))
    if order is not None and report.check("hash") is None:
        if order.superseded_sha256 and report.sha256 == order.superseded_sha256:
            report.add("hash", True, _l("the file is the sealed revision on record, since revealed by the issuer."))
            return
        same = report.sha256 == order.letter_sha256
        report.add("hash", same, _l("the file's SHA-256 equals the one on record.") if same else
                   _l("the file's SHA-256 %(got)s differs from the one on record %(want)s: this is not the "
                      "issued file.", got=report.sha256, want=order.letter_sha256))


def _status_check(report: VerificationReport, order: GuaranteeOrder) -> None:
    if order.state not in LETTER_IN_FORCE:
        report.add("status", False, _l("the letter is %(state)s.", state=order.state.value))
    elif order.valid_until is not None and as_utc(order.valid_until) < now():
        report.add("status", False, _l("the letter expired at %(at)s.", at=iso(order.valid_until)))
    else:
        report.add("status", True, _l("the letter is in force (%(state)s).", state=order.state.value))


def _registry_check(report: VerificationReport, order: GuaranteeOrder) -> None:
    try:
        answer = registry_status(order)
    except (protocol.ProtocolError, OSError, ValueError) as exc:
        report.add("registry", False, _l("the issuer's registry could not confirm the letter (%(error)s).",
                                         error=getattr(exc, "code", type(exc).__name__)))
        return
    same = answer.get("sha256") == order.letter_sha256 and answer.get("status") == "valid"
    report.add("registry", same, _l("the issuer's registry confirms the hash and status valid.") if same else
               _l("the issuer's registry says %(status)s with hash %(sha)s.", status=answer.get("status"),
                  sha=answer.get("sha256")))


def registry_status(order: GuaranteeOrder) -> dict[str, Any]:
    """Ask the issuer's public registry about the letter; the answer must be a signed ``LetterStatus``."""
    issuer = order.issuer
    url = issuer.api_base_url + protocol.LETTER_STATUS_PATH.format(guarantee_no=order.guarantee_no)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=REGISTRY_TIMEOUT) as response:
        body = response.read(1 << 20)
    key = protocol.public_key_from_pem(issuer.message_cert_pem)
    received = protocol.open_message(body, key_for_sender=lambda s: key if s == issuer.code else None,
                                     nonces=protocol.MemoryNonceStore(), now=now(),
                                     allowed_types=(protocol.LETTER_STATUS,))
    if received.data.get("guarantee_no") != order.guarantee_no:
        raise protocol.MalformedMessage("the answer is about another letter")
    return received.data


def bid_checks(report: VerificationReport, order: GuaranteeOrder, expected: Expectation) -> None:
    """The letter against the bid it backs (DOMAIN.md §4 list)."""
    tender, lot, bidder = expected.tender, expected.lot, expected.bidder
    requirement = bond_requirement(tender, lot, bidder)
    ok = order.bidder.uscc == bidder.uscc
    report.add("principal", ok, _l("the principal is %(uscc)s.", uscc=bidder.uscc) if ok else
               _l("the principal is %(got)s, not the bidder %(want)s.", got=order.bidder.uscc, want=bidder.uscc))
    ok = order.tender.tenderer.uscc == tender.tenderer.uscc
    report.add("beneficiary", ok, _l("the beneficiary is the tenderer %(name)s.", name=tender.tenderer.name) if ok
               else _l("the beneficiary is %(got)s, not the tenderer %(want)s.", got=order.tender.tenderer.name,
                       want=tender.tenderer.name))
    ok = order.tender.code == tender.code and order.lot.code == lot.code
    report.add("lot", ok, _l("tender %(tender)s, lot %(lot)s.", tender=tender.code, lot=lot.code) if ok else
               _l("the letter is for tender %(got_t)s lot %(got_l)s, not tender %(want_t)s lot %(want_l)s.",
                  got_t=order.tender.code, got_l=order.lot.code, want_t=tender.code, want_l=lot.code))
    needed = requirement.amount
    ok = needed is None or order.amount >= needed
    report.add("amount", ok, _l("%(amount)s CNY covers the bond.", amount=rates.money_text(order.amount)) if ok else
               _l("%(amount)s CNY is less than the required bond of %(needed)s CNY.",
                  amount=rates.money_text(order.amount), needed=rates.money_text(needed)))
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    issued = as_utc(order.issued_at) if order.issued_at else None
    ok = issued is not None and deadline is not None and issued <= deadline
    report.add("issued_before_deadline", ok, _l("issued %(at)s, before the deadline.", at=iso(issued)) if ok else
               _l("issued %(at)s, after the bid deadline %(deadline)s.", at=iso(issued), deadline=iso(deadline)))
    until = as_utc(order.valid_until) if order.valid_until else None
    needed_until = requirement.valid_until
    ok = until is not None and needed_until is not None and until >= needed_until
    report.add("validity", ok, _l("valid until %(until)s, as required.", until=iso(until)) if ok else
               _l("valid until %(until)s, but it must stay valid until at least %(needed)s (deadline + %(days)s "
                  "days of bid validity + %(extra)s extra days).", until=iso(until), needed=iso(needed_until),
                  days=requirement.bid_validity_days, extra=requirement.extra_validity_days))
