"""Letter verification: each check named with its reason; binding; the opening check; the public API."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from pyhanko.sign import fields
from sqlalchemy import select

from core.clock import clock
from core.db import db
from guarantees import (
    Expectation,
    OrderState,
    apply_for_guarantee,
    bind_to_bid,
    check_for_opening,
    protocol,
    use_waiver,
    verify_letter,
)
from guarantees.errors import LetterRefused
from guarantees.models import GuaranteeOrder, OpeningCheck
from guarantees.opening import OpeningTooEarly
from guarantees.services import set_issuer_admission
from tests.guarantees.conftest import ADMIN, IssuerKeys, issue, letter_pdf, signed, staff


def fresh(order):
    db.session.expire_all()
    return db.session.get(GuaranteeOrder, order.id)


@pytest.fixture
def issued(app, client, market, tender, bidder):
    """An issued plain letter for the tender's lot: (order, pdf bytes)."""
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    pdf = issue(client, market[2], order, guarantee_no="GN-100", code="VERFYC2345")
    return fresh(order), pdf


def failed(report) -> dict[str, str]:
    return {c.name: c.reason for c in report.checks if c.passed is False}


def test_a_good_letter_passes_every_check(issued, tender, bidder):
    order, pdf = issued
    report = verify_letter(pdf, expected=Expectation(tender, tender.lots[0], bidder[0]))
    assert report.ok, failed(report)
    assert [c.name for c in report.checks] == ["record", "signature", "issuer_admitted", "hash", "status",
                                               "principal", "beneficiary", "lot", "amount",
                                               "issued_before_deadline", "validity"]
    by_code = verify_letter(guarantee_no="GN-100", code="verfyc2345")  # codes are read case-insensitively
    assert by_code.ok and by_code.order.id == order.id
    assert by_code.to_dict()["letter"]["principal_uscc"] == bidder[0].uscc


def test_wrong_code_is_not_found(issued):
    report = verify_letter(guarantee_no="GN-100", code="WRONG23456")
    assert not report.ok and "record" in failed(report)


def test_tampered_letter_fails_signature_and_hash(issued):
    _, pdf = issued
    at = pdf.index(b"stream\n", pdf.index(b"/FontFile2")) + 200  # a byte inside the embedded font
    tampered = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]
    report = verify_letter(tampered, guarantee_no="GN-100", code="VERFYC2345")
    reasons = failed(report)
    assert reasons["signature"] == "the document was changed after it was signed."
    assert reasons["hash"].startswith("the file's SHA-256") and "this is not the issued file" in reasons["hash"]
    appended = pdf + b"\n% appended after signing\n"
    assert "signature" in failed(verify_letter(appended, guarantee_no="GN-100", code="VERFYC2345"))


def test_letter_from_an_unknown_ca_or_not_pades(issued, market):
    stranger = IssuerKeys.make("FORGER")
    forged = letter_pdf(stranger, ["GN-100"])
    reasons = failed(verify_letter(forged))
    assert "record" in reasons and "does not chain" in reasons["signature"]
    cms = letter_pdf(market[2], ["GN-100"], subfilter=fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED)
    assert "not a PAdES signature" in failed(verify_letter(cms))["signature"]
    assert "not a readable PDF" in failed(verify_letter(b"%PDF-1.7 garbage"))["signature"]


def test_issuer_no_longer_admitted(issued, market):
    _, pdf = issued
    set_issuer_admission(ADMIN, market[0], False, "licence withdrawn")
    reasons = failed(verify_letter(pdf))
    assert reasons == {"issuer_admitted": "BANK1 Guarantee Co. is not (or no longer) admitted on this platform."}


def test_letter_for_another_lot_bidder_or_tenderer(issued, create_tender, create_bidder, tender):
    _, pdf = issued
    other_org, _, _ = create_bidder()
    reasons = failed(verify_letter(pdf, expected=Expectation(tender, tender.lots[0], other_org)))
    assert list(reasons) == ["principal"] and other_org.uscc in reasons["principal"]

    two_lots = create_tender(publish=True, lots=[
        {"title": "Lot 1", "estimated_price": D("500000.00"), "bond_amount": D("10000.00")},
        {"title": "Lot 2", "estimated_price": D("500000.00"), "bond_amount": D("10000.00")}])
    db.session.commit()
    reasons = failed(verify_letter(pdf, expected=Expectation(two_lots, two_lots.lots[1], issued[0].bidder)))
    assert set(reasons) == {"beneficiary", "lot"}
    assert f"not tender {two_lots.code} lot {two_lots.lots[1].code}" in reasons["lot"]
    assert two_lots.tenderer.name in reasons["beneficiary"]


def test_under_amount_expired_and_late_letters(app, client, market, tender, bidder):
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    deadline = tender.bid_deadline_at
    short = deadline + timedelta(days=30)
    pdf = issue(client, market[2], order, guarantee_no="GN-200", valid_until=short,
                issued_at=deadline + timedelta(hours=1))
    tender.lots[0].bond_amount = D("20000.00")
    order = fresh(order)
    order.amount = D("15000.00")  # as if the bond had been raised by an amendment after the letter
    db.session.commit()
    reasons = failed(verify_letter(pdf, expected=Expectation(tender, tender.lots[0], bidder[0])))
    assert set(reasons) == {"amount", "issued_before_deadline", "validity"}
    assert reasons["amount"] == "15,000.00 CNY is less than the required bond of 20,000.00 CNY."
    assert "after the bid deadline" in reasons["issued_before_deadline"]
    assert "90 days of bid validity" in reasons["validity"]
    clock.freeze(short + timedelta(seconds=1))
    assert "expired" in failed(verify_letter(pdf))["status"]


def test_registry_confirmation(issued, market, stub_issuer):
    order, pdf = issued
    stub_issuer.get_body = json.dumps(signed(market[2], protocol.LETTER_STATUS, order.order_no, {
        "guarantee_no": "GN-100", "sha256": order.letter_sha256, "status": "valid"})).encode()
    report = verify_letter(pdf, confirm_with_issuer=True)
    assert report.check("registry").passed and stub_issuer.gets == ["/api/letters/GN-100"]
    stub_issuer.get_body = json.dumps(signed(market[2], protocol.LETTER_STATUS, order.order_no, {
        "guarantee_no": "GN-100", "sha256": order.letter_sha256, "status": "released"})).encode()
    assert "says released" in failed(verify_letter(pdf, confirm_with_issuer=True))["registry"]
    forged = IssuerKeys.make("BANK1")
    stub_issuer.get_body = json.dumps(signed(forged, protocol.LETTER_STATUS, order.order_no, {
        "guarantee_no": "GN-100", "sha256": order.letter_sha256, "status": "valid"})).encode()
    assert "bad_signature" in failed(verify_letter(pdf, confirm_with_issuer=True))["registry"]


def test_bind_verifies_first(app, client, market, tender, bidder):
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, market[2], order, guarantee_no="GN-300", valid_until=tender.bid_deadline_at + timedelta(days=10))
    with pytest.raises(LetterRefused) as refused:
        bind_to_bid(bidder[2], fresh(order))
    assert "validity: valid until" in refused.value.to_dict()["message"]
    assert fresh(order).state == OrderState.ISSUED


def test_opening_check(app, client, market, create_tender, create_bidder, stub_issuer):
    tender = create_tender(publish=True, guarantee_policy={"mode": "waived_sme"})
    db.session.commit()
    lot = tender.lots[0]
    good_org, _, good = create_bidder()
    sealed_org, _, sealed = create_bidder()
    sme_org, _, sme = create_bidder(is_sme=True)
    a = apply_for_guarantee(good, tender, lot, market[1], "plain")
    b = apply_for_guarantee(sealed, tender, lot, market[1], "sealed")
    use_waiver(sme, tender, lot, "waived_sme", "We are an SME and commit to our bid.")
    db.session.commit()
    issue(client, market[2], a, guarantee_no="GN-A")
    issue(client, market[2], b, guarantee_no="GN-B", code="SEAXED2345")
    bind_to_bid(good, fresh(a))
    bind_to_bid(sealed, fresh(b))
    db.session.commit()
    with pytest.raises(OpeningTooEarly):
        check_for_opening(staff(tender), tender)
    clock.freeze(tender.bid_deadline_at + timedelta(minutes=1))
    results = check_for_opening(staff(tender), tender)
    db.session.commit()
    assert sorted((r.bidder_id, r.passed) for r in results) == sorted(
        [(good_org.id, True), (sealed_org.id, True), (sme_org.id, True)])
    assert fresh(a).state == fresh(b).state == OrderState.VERIFIED_AT_OPENING
    assert stub_issuer.types()[-1] == "DecryptionNotice"  # the sealed letter is revealed to its issuer
    assert stub_issuer.received[-1][1]["order_no"] == b.order_no
    again = check_for_opening(staff(tender), tender)  # re-run replaces, does not duplicate
    db.session.commit()
    assert len(again) == 3 and db.session.query(OpeningCheck).count() == 3
    assert stub_issuer.types().count("DecryptionNotice") == 1


def test_public_verification_api(issued, client, tender):
    order, pdf = issued
    body = client.get("/api/guarantees/verify", query_string={"no": "GN-100", "code": "VERFYC2345"}).get_json()
    assert body["valid"] is True and body["letter"]["guarantee_no"] == "GN-100"
    body = client.post("/api/guarantees/verify", data={"file": (io.BytesIO(pdf), "letter.pdf")},
                       content_type="multipart/form-data").get_json()
    assert body["valid"] is True and body["sha256"] == order.letter_sha256
    body = client.get("/api/guarantees/verify", query_string={"no": "GN-100", "code": "NOPE234567"}).get_json()
    assert body["valid"] is False and body["checks"][0]["name"] == "record"
    assert client.get("/api/guarantees/verify").status_code == 422


def test_sealed_letters_hide_details_until_revealed(app, client, market, tender, bidder):
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "sealed")
    db.session.commit()
    issue(client, market[2], order, guarantee_no="GN-S", code="SEAXED2345")
    body = client.get("/api/guarantees/verify", query_string={"no": "GN-S", "code": "SEAXED2345"}).get_json()
    assert body["valid"] and "principal" not in body["letter"] and "tender_code" not in body["letter"]


def test_opening_only_for_staff(issued, tender, bidder):
    clock.freeze(tender.bid_deadline_at + timedelta(minutes=1))
    with pytest.raises(Exception) as refused:
        check_for_opening(bidder[2], tender)
    assert refused.value.to_dict()["code"] == "not_tender_manager"
    assert db.session.scalar(select(OpeningCheck.id)) is None
