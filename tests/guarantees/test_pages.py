"""The guarantee pages as people use them: a lot's offers, applying, waivers, my guarantees, the tender's
guarantees and claims, and public verification (the figures page: test_pages_figures.py).

Tasks are queued in this module (not run eagerly), so a test sees exactly what a request did by itself:
an application must leave its ``OrderApply`` in the outbox, and no request may call an issuer.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from bidding import raise_objection
from core.clock import as_utc, clock, now
from core.db import db
from core.identity.models import OrganisationKind
from guarantees import OrderState, apply_for_guarantee, bind_to_bid
from guarantees.models import (
    BondWaiver,
    GuaranteeClaim,
    GuaranteeOrder,
    OutboundMessage,
    OutboxState,
    WaiverKind,
)
from guarantees.tasks import send_outbox
from tests.factories import PASSWORD
from tests.guarantees.conftest import issue


@pytest.fixture
def settings(settings):
    """Queue tasks instead of running them in the request (memory broker, nobody consuming)."""
    settings.extra["celery_always_eager"] = False
    settings.redis_url = None
    return settings


def login(client, person):
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def offer_ids(html: str) -> list[str]:
    return re.findall(r'data-offer="(\d+)"', html)


def go_to(at: datetime) -> None:
    clock.travel(as_utc(at) - now())


def lot_url(tender) -> str:
    return f"/tenders/{tender.id}/lots/{tender.lots[0].id}/guarantee"


def orders() -> list[GuaranteeOrder]:
    db.session.expire_all()
    return list(db.session.scalars(select(GuaranteeOrder).order_by(GuaranteeOrder.id)))


@pytest.fixture
def two_issuers(make_issuer, stub_issuer, policy):
    bank = make_issuer("BANK1", url=stub_issuer.url, rate="1.0", minimum_fee="10.00")
    insurer = make_issuer("INS2", kind="insurer", url=stub_issuer.url, rate="0.8", minimum_fee="10.00")
    return bank, insurer


# -- the lot's page --------------------------------------------------------------------------------

def test_lot_page_shows_requirement_and_offers_in_both_languages(client, two_issuers, tender, bidder):
    login(client, bidder[1])
    english = text(client.get(lot_url(tender)))
    assert 'lang="en"' in english
    assert "What the tender asks for" in english and "20,000.00 CNY" in english
    assert "the platform recommends no issuer" in english
    assert sorted(offer_ids(english)) == sorted(str(p.id) for _i, p, _k in two_issuers)
    assert 'data-premium="20.00"' in english and 'data-premium="16.00"' in english  # 1.0‰ and 0.8‰ of 20 000
    assert "1‰" in english and "0.8‰" in english
    assert not re.search(r'name="product_id"[^>]*checked', english)  # no issuer preselected

    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    chinese = client.get(lot_url(tender))
    assert chinese.status_code == 200
    page = text(chinese)
    assert 'lang="zh-CN"' in page and len(offer_ids(page)) == 2 and "0.8‰" in page

    detail = text(client.get(f"/tenders/{tender.id}?lang=en"))
    assert f'data-guarantee-link="{tender.lots[0].id}"' in detail


def test_the_choices_appear_in_varying_order_and_none_is_preselected(client, make_issuer, policy, tender, bidder):
    for code in ("BANKA", "BANKB", "BANKC"):
        make_issuer(code)
    login(client, bidder[1])
    seen = set()
    for _ in range(20):
        page = text(client.get(lot_url(tender)))
        seen.add(tuple(offer_ids(page)))
        assert not re.search(r'name="product_id"[^>]*checked', page)
    assert len(seen) > 1  # 20 identical shuffles of 3 would happen with probability 6^-19


def test_apply_through_the_form_queues_the_order_and_never_calls_the_issuer(client, two_issuers, tender, bidder,
                                                                           stub_issuer):
    (_bank, bank_product, _keys), _insurer = two_issuers
    login(client, bidder[1])
    response = client.post(f"{lot_url(tender)}/apply", data={"organisation_id": bidder[0].id,
                                                            "product_id": bank_product.id,
                                                            "guarantee_type": "sealed"})
    assert response.status_code == 302
    (order,) = orders()
    assert order.state == OrderState.DRAFT and order.premium == D("20.00") and order.guarantee_type.value == "sealed"
    message = db.session.scalar(select(OutboundMessage).where(OutboundMessage.order_id == order.id))
    assert message.type == "OrderApply" and message.state == OutboxState.PENDING and message.attempts == 0
    assert stub_issuer.received == []  # the request did not call the issuer

    page = text(client.get(response.headers["Location"]))
    assert order.order_no in page and "Sending to issuer BANK1 Guarantee Co." in page

    send_outbox()  # the worker's job, after the request
    assert stub_issuer.types() == ["OrderApply"]
    assert orders()[0].state == OrderState.APPLIED


def test_refused_applications_show_the_reason_beside_the_form_and_store_nothing(client, two_issuers, tender,
                                                                               bidder):
    (_bank, bank_product, _keys), _insurer = two_issuers
    login(client, bidder[1])
    missing = client.post(f"{lot_url(tender)}/apply", data={"organisation_id": bidder[0].id,
                                                           "guarantee_type": "plain"})
    assert missing.status_code == 422
    page = text(missing)
    assert 'data-field="product_id"' in page and "Choose one of the offers above." in page
    bad_type = client.post(f"{lot_url(tender)}/apply", data={"organisation_id": bidder[0].id,
                                                            "product_id": bank_product.id, "guarantee_type": "x"})
    assert bad_type.status_code == 422 and 'data-field="guarantee_type"' in text(bad_type)
    assert orders() == [] and db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0

    go_to(tender.bid_deadline_at + timedelta(minutes=1))
    late = client.post(f"{lot_url(tender)}/apply", data={"organisation_id": bidder[0].id,
                                                        "product_id": bank_product.id, "guarantee_type": "plain"})
    assert late.status_code == 409 or late.status_code == 422
    assert "has passed" in text(late) and orders() == []


def test_an_sme_uses_the_waiver_and_others_are_told_why_not(client, create_tender, create_bidder, two_issuers):
    tender = create_tender(publish=True, guarantee_policy={"mode": "waived_sme"})
    db.session.commit()
    sme = create_bidder(is_sme=True)
    large = create_bidder()
    login(client, large[1])
    page = text(client.get(lot_url(tender)))
    assert "only small and medium-sized enterprises" in page and 'id="waiver"' not in page
    refused = client.post(f"{lot_url(tender)}/waiver", data={"organisation_id": large[0].id, "kind": "waived_sme",
                                                            "statement": "We are a small enterprise, honestly."})
    assert refused.status_code == 422 and "only small and medium-sized enterprises" in text(refused)
    assert db.session.scalar(select(func.count()).select_from(BondWaiver)) == 0

    client.post("/logout")
    login(client, sme[1])
    assert 'id="waiver"' in text(client.get(lot_url(tender)))
    short = client.post(f"{lot_url(tender)}/waiver", data={"organisation_id": sme[0].id, "kind": "waived_sme",
                                                          "statement": "short"})
    assert short.status_code == 422 and 'data-field="statement"' in text(short)
    done = client.post(f"{lot_url(tender)}/waiver", data={"organisation_id": sme[0].id, "kind": "waived_sme",
                                                         "statement": "本公司为中小企业, 承诺投标截止后不撤回投标。"})
    assert done.status_code == 302
    (waiver,) = db.session.scalars(select(BondWaiver)).all()
    assert waiver.kind == WaiverKind.WAIVED_SME and waiver.bond_amount == D("20000.00")
    assert 'data-section="waiver-used"' in text(client.get(lot_url(tender)))


# -- my guarantees ---------------------------------------------------------------------------------

def test_my_guarantees_shows_waiting_then_the_verified_letter_and_binds_it(client, app, two_issuers, tender, bidder,
                                                                         stub_issuer):
    (_bank, bank_product, bank_keys), _insurer = two_issuers
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], bank_product, "plain")
    db.session.commit()
    stub_issuer.status = 503
    send_outbox()
    login(client, bidder[1])
    page = text(client.get("/my/guarantees"))
    assert order.order_no in page and "waiting for issuer" in page
    assert re.search(r"attempt 1 failed; next try at \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", page)

    stub_issuer.status = 202
    clock.travel(timedelta(seconds=31))
    send_outbox()
    issue(app.test_client(), bank_keys, orders()[0], guarantee_no="BG-2026-0001", code="K7MQ2XW9PA")
    page = text(client.get("/my/guarantees"))
    assert "BG-2026-0001" in page and 'data-verified="true"' in page and "Bind to my bid" in page
    letter = client.get(f"/guarantees/orders/{order.order_no}/letter")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF")

    bound = client.post(f"/my/guarantees/{order.order_no}/bind")
    assert bound.status_code == 302
    assert orders()[0].state == OrderState.BOUND_TO_BID
    assert 'data-state="bound_to_bid"' in text(client.get("/my/guarantees"))


def test_my_guarantees_is_for_bidders_and_orders_of_others_are_refused(client, two_issuers, tender, bidder,
                                                                      create_bidder):
    (_bank, bank_product, _keys), _insurer = two_issuers
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], bank_product, "plain")
    db.session.commit()
    other = create_bidder()
    login(client, other[1])
    assert order.order_no not in text(client.get("/my/guarantees"))
    assert client.post(f"/my/guarantees/{order.order_no}/cancel").status_code == 403
    assert client.get(f"/guarantees/orders/{order.order_no}/letter").status_code == 403
    assert orders()[0].state == OrderState.DRAFT
    client.post("/logout")
    login(client, tender.created_by)
    assert client.get("/my/guarantees").status_code == 403


# -- the tender's staff ----------------------------------------------------------------------------

def _bound_order(app, two_issuers, tender, bidder):
    (_bank, bank_product, bank_keys), _insurer = two_issuers
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], bank_product, "plain")
    db.session.commit()
    issue(app.test_client(), bank_keys, order, guarantee_no="BG-2026-0002")
    order = orders()[0]
    bind_to_bid(bidder[2], order)
    db.session.commit()
    return order


def test_staff_see_no_bidder_before_the_deadline_then_the_released_letters_of_a_failed_tender(client, app,
                                                                                               two_issuers, tender,
                                                                                               bidder):
    order = _bound_order(app, two_issuers, tender, bidder)
    login(client, tender.created_by)
    before = text(client.get(f"/tenders/{tender.id}/guarantees"))
    assert 'data-section="hidden-until-deadline"' in before
    assert bidder[0].name not in before and "data-counts" not in before and order.guarantee_no not in before

    go_to(tender.bid_deadline_at + timedelta(hours=1))
    after = text(client.get(f"/tenders/{tender.id}/guarantees"))  # closing: no lot has 3 bids, the tender fails
    assert 'data-counts="1/0"' in after and bidder[0].name in after and "BG-2026-0002" in after
    assert orders()[0].state == OrderState.RELEASED and 'data-state="released"' in after
    assert "File a claim" not in after  # a released letter cannot be claimed on


def test_staff_run_the_opening_check_and_file_a_claim_with_evidence(client, app, two_issuers, tender, bidder):
    order = _bound_order(app, two_issuers, tender, bidder)
    # no sealed bids exist in this test, and a lot with fewer than 3 bids fails at closing (releasing its
    # guarantees); a pending objection keeps the closed tender published, so the letter stays claimable
    raise_objection(bidder[2], tender, "The qualification requirement of chapter 2 excludes local firms.")
    db.session.commit()
    go_to(tender.bid_deadline_at + timedelta(hours=1))
    login(client, tender.created_by)
    checked = client.post(f"/tenders/{tender.id}/guarantees/check")
    assert checked.status_code == 302
    assert orders()[0].state == OrderState.VERIFIED_AT_OPENING
    page = text(client.get(f"/tenders/{tender.id}/guarantees"))
    assert 'class="check-pass"' in page  # the stored opening check of the bidder's letter
    assert "File a claim" in page and "not run yet" not in page

    claim_url = f"/tenders/{tender.id}/guarantees/{order.order_no}/claim"
    no_evidence = client.post(claim_url, data={"trigger": "refused_contract", "amount": "20000.00",
                                               "reason": "The winner refused to sign the contract on time."})
    assert no_evidence.status_code == 422 and 'data-field="evidence"' in text(no_evidence)
    too_much = client.post(claim_url, content_type="multipart/form-data", data={
        "trigger": "refused_contract", "amount": "20000.01", "reason": "The winner refused to sign the contract.",
        "evidence": (io.BytesIO(b"refusal letter"), "refusal.pdf")})
    assert too_much.status_code == 422 and 'data-field="amount"' in text(too_much)
    assert db.session.scalar(select(func.count()).select_from(GuaranteeClaim)) == 0
    filed = client.post(claim_url, content_type="multipart/form-data", data={
        "trigger": "refused_contract", "amount": "20000.00",
        "reason": "The winner refused to sign the contract on time.",
        "evidence": (io.BytesIO(b"notice of award and refusal letter"), "refusal.pdf")})
    assert filed.status_code == 302
    (claim,) = db.session.scalars(select(GuaranteeClaim)).all()
    assert claim.amount == D("20000.00") and claim.evidence[0]["filename"] == "refusal.pdf"
    assert orders()[0].state == OrderState.CLAIMED
    page = text(client.get(f"/tenders/{tender.id}/guarantees"))
    assert f'data-claim="{claim.claim_no}"' in page and 'data-claim-state="filed"' in page


def test_the_tender_guarantees_page_is_for_its_staff(client, two_issuers, tender, bidder, create_person, create_org):
    login(client, bidder[1])
    assert client.get(f"/tenders/{tender.id}/guarantees").status_code == 403
    client.post("/logout")
    other = create_person(roles=("tenderer",), organisation=create_org(kind=OrganisationKind.TENDERER))
    db.session.commit()
    login(client, other)
    assert client.get(f"/tenders/{tender.id}/guarantees").status_code == 403


# -- public verification ---------------------------------------------------------------------------

def test_public_verification_by_number_and_code_and_a_tampered_pdf_shows_the_reasons(client, app, two_issuers,
                                                                                  tender, bidder):
    order = _bound_order(app, two_issuers, tender, bidder)
    anonymous = app.test_client()
    good = text(anonymous.get(f"/guarantees/verify?no={order.guarantee_no}&code=ABCDEFGH23"))
    assert 'data-valid="true"' in good and 'data-check="signature" data-passed="true"' in good
    assert tender.code in good and bidder[0].name in good  # a plain letter shows its tender and principal

    wrong = text(anonymous.get(f"/guarantees/verify?no={order.guarantee_no}&code=WRONGCODE1"))
    assert 'data-valid="false"' in wrong and 'data-check="record" data-passed="false"' in wrong

    pdf = anonymous.get(f"/guarantees/orders/{order.order_no}/letter")
    assert pdf.status_code in (302, 401)  # downloads need a login; the owner downloads below
    login(client, bidder[1])
    original = client.get(f"/guarantees/orders/{order.order_no}/letter").data
    genuine = anonymous.post("/guarantees/verify", content_type="multipart/form-data",
                             data={"file": (io.BytesIO(original), "letter.pdf")})
    assert 'data-valid="true"' in text(genuine)
    assert b"ReportLab" in original
    tampered = original.replace(b"ReportLab", b"ReportLaX", 1)  # one byte inside the signed revision
    response = anonymous.post("/guarantees/verify", content_type="multipart/form-data",
                              data={"file": (io.BytesIO(tampered), "letter.pdf")})
    page = text(response)
    assert response.status_code == 200 and 'data-valid="false"' in page
    assert 'data-check="signature" data-passed="false"' in page
    assert "the document was changed after it was signed" in page
    assert 'data-check="record" data-passed="false"' in page and "is on record" in page

    empty = anonymous.post("/guarantees/verify", content_type="multipart/form-data", data={})
    assert empty.status_code == 422 and 'data-field="file"' in text(empty)
    half = anonymous.get("/guarantees/verify?no=BG-2026-0002")
    assert half.status_code == 422 and 'data-field="code"' in text(half)


def test_a_visitor_sees_the_requirement_and_offers_without_forms(app, create_tender, two_issuers):
    tender = create_tender(publish=True, guarantee_policy={"mode": "waived_sme"})
    db.session.commit()
    page = text(app.test_client().get(lot_url(tender)))
    assert "20,000.00 CNY" in page and len(offer_ids(page)) == 2
    assert "log in as a bidder to use it" in page and 'name="product_id"' not in page and 'id="waiver"' not in page
    assert "Log in as a bidder to apply for a guarantee." in page
