"""Tender services: drafts, documents, publication, cancellation, downloads; every refusal changes nothing."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

import bidding
from bidding.errors import DeadlinePassed, NotEditable, RulesViolated, TransitionRefused
from bidding.models import DocumentDownload, TenderStatus
from bidding.policy import RULEBOOK_KEY
from bidding.rules import CN_2019_1, RuleBook, RuleSet
from core.audit import AuditEvent
from core.db import db
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.identity.access import actor_for
from core.identity.models import OrganisationKind
from core.storage import default_store
from tests.bidding.conftest import T0, last_event, refused, staff

DAY = timedelta(days=1)


def test_create_draft_as_tenderer(frozen, create_tender):
    tender = create_tender()
    assert tender.status == TenderStatus.DRAFT and tender.version == 1
    assert tender.code.startswith("ZB20260302")
    assert [(lot.number, lot.code, lot.estimated_price) for lot in tender.lots] == [(1, "01", Decimal("1000000.00"))]
    event = last_event("tender.create")
    assert event.object_id == str(tender.id) and event.summary["title"] == "Road reconstruction works"
    assert event.actor_role == "tenderer" and event.organisation_id == tender.tenderer_id


def test_agency_creates_for_a_tenderer(frozen, create_org, create_person):
    client, agency = create_org(kind=OrganisationKind.TENDERER), create_org(kind=OrganisationKind.AGENCY)
    agent = actor_for(create_person(roles=("agency",), organisation=agency), "agency", agency.id)
    data = {"title": "Lighting", "regime": "works", "category": "works", "estimated_price": Decimal("500000")}
    refused(ValidationFailed, bidding.create_tender, agent, data)
    tender = bidding.create_tender(agent, {**data, "tenderer_id": client.id, "code": "ZB-LIGHT-1"})
    assert (tender.tenderer_id, tender.agency_id, tender.code) == (client.id, agency.id, "ZB-LIGHT-1")
    err = refused(Conflict, bidding.create_tender, agent, {**data, "tenderer_id": client.id, "code": "ZB-LIGHT-1"})
    assert err.code == "duplicate_code"


def test_only_tenderer_or_agency_staff_create(frozen, create_org, create_bidder):
    _, bidder = create_bidder()
    data = {"title": "X", "regime": "works", "category": "works", "estimated_price": Decimal("1")}
    assert refused(Forbidden, bidding.create_tender, bidder, data).code == "not_tender_manager"


def test_tenderer_cannot_create_for_another_organisation(frozen, create_org, create_person):
    own, other = create_org(kind=OrganisationKind.TENDERER), create_org(kind=OrganisationKind.TENDERER)
    actor = actor_for(create_person(roles=("tenderer",), organisation=own), "tenderer", own.id)
    refused(Forbidden, bidding.create_tender, actor, {"title": "X", "regime": "works", "category": "works",
                                                      "estimated_price": Decimal("1"), "tenderer_id": other.id})


@pytest.mark.parametrize(("overrides", "field"), [
    ({"estimated_price": Decimal("0")}, "estimated_price"),
    ({"lots": [{"title": "L", "estimated_price": Decimal("100"), "bond_amount": Decimal("2.01")}]},
     "lots.0.bond_amount"),
    ({"bid_validity_days": 400}, "bid_validity_days"),
    ({"question_deadline_at": T0 + 30 * DAY}, "question_deadline_at"),
])
def test_create_refuses_values_no_publication_could_accept(frozen, create_org, create_person, overrides, field):
    org = create_org(kind=OrganisationKind.TENDERER)
    actor = actor_for(create_person(roles=("tenderer",), organisation=org), "tenderer", org.id)
    data = {"title": "X", "regime": "works", "category": "works", "estimated_price": Decimal("100"),
            "bid_deadline_at": T0 + 25 * DAY, **overrides}
    err = refused(RulesViolated, bidding.create_tender, actor, data)
    assert list(err.to_dict()["fields"]) == [field]


def test_update_draft_records_old_and_new(frozen, create_tender):
    tender = create_tender()
    bidding.update_tender(staff(tender), tender, {"title": "New title", "estimated_price": Decimal("900000")},
                          expected_version=1)
    assert tender.title == "New title" and tender.version == 2
    changes = last_event("tender.update").summary["changes"]
    assert changes == {"title": ["Road reconstruction works", "New title"],
                       "estimated_price": ["1000000.00", "900000"]}


def test_update_replaces_lots(frozen, create_tender):
    tender = create_tender()
    lots = [{"title": "A", "estimated_price": Decimal("600000")}, {"title": "B", "estimated_price": Decimal("400000")}]
    bidding.update_tender(staff(tender), tender, {"lots": lots}, expected_version=1)
    db.session.expire_all()
    assert [(lot.number, lot.title) for lot in tender.lots] == [(1, "A"), (2, "B")]
    assert len(last_event("tender.update").summary["changes"]["lots"][1]) == 2


def test_update_refusals_change_nothing(frozen, create_tender, create_bidder, create_org, create_person):
    tender = create_tender()
    actor = staff(tender)
    assert refused(Conflict, bidding.update_tender, actor, tender, {"title": "Y"}, expected_version=7).code == \
        "conflict"
    refused(ValidationFailed, bidding.update_tender, actor, tender, {"status": "published"}, expected_version=1)
    refused(ValidationFailed, bidding.update_tender, actor, tender, {"title": "   "}, expected_version=1)
    refused(RulesViolated, bidding.update_tender, actor, tender, {"ceiling_price": Decimal("-1")}, expected_version=1)
    _, bidder = create_bidder()
    refused(Forbidden, bidding.update_tender, bidder, tender, {"title": "Y"}, expected_version=1)
    other = create_org(kind=OrganisationKind.TENDERER)
    stranger = actor_for(create_person(roles=("tenderer",), organisation=other), "tenderer", other.id)
    refused(Forbidden, bidding.update_tender, stranger, tender, {"title": "Y"}, expected_version=1)


def test_published_tender_is_edited_only_by_amendment(frozen, create_tender):
    tender = create_tender(publish=True)
    err = refused(NotEditable, bidding.update_tender, staff(tender), tender, {"title": "Y"},
                  expected_version=tender.version)
    assert err.code == "use_amendment" and "amendment" in err.to_dict()["message"]


def test_publish_fixes_rules_version_and_issues_documents(frozen, create_tender):
    tender = create_tender(documents=2)
    assert all(d.published_at is None for d in tender.documents)
    bidding.publish_tender(staff(tender), tender, expected_version=tender.version)
    assert tender.status == TenderStatus.PUBLISHED and tender.published_at == T0
    assert tender.rules_version == "cn-2019.1"
    assert all(d.published_at == T0 for d in tender.documents)
    event = last_event("tender.publish")
    assert event.summary["rules_version"] == "cn-2019.1"
    assert [d["sha256"] for d in event.summary["documents"]] == [d.sha256 for d in tender.documents]


def test_publish_refused_when_deadline_too_close(frozen, create_tender):
    tender = create_tender(bid_deadline_at=T0 + 20 * DAY - timedelta(seconds=1))
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    body = err.to_dict()
    assert body["code"] == "bid_period_too_short"
    assert body["fields"]["bid_deadline_at"] == [
        "The bid deadline must be at least 20 days after the documents are issued "
        "(on or after 2026-03-22 09:00 (UTC+08:00))."]


def test_publish_runs_the_rules_against_now(frozen, create_tender):
    tender = create_tender()  # valid at T0: deadline in 25 days
    frozen.travel(6 * DAY)     # 19 days left when the publish button is finally pressed
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert "bid_deadline_at" in err.to_dict()["fields"]


def test_publish_without_documents_or_lots_is_refused(frozen, create_tender):
    tender = create_tender(documents=0, lots=[])
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert set(err.to_dict()["fields"]) == {"documents", "lots"}


def test_publish_twice_or_stale_is_refused(frozen, create_tender):
    tender = create_tender(publish=True)
    refused(Conflict, bidding.publish_tender, staff(tender), tender, expected_version=1)
    err = refused(TransitionRefused, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert "cannot become published" in err.to_dict()["message"]


def test_regional_override_applies_at_publication(app, frozen, create_tender):
    app.extensions[RULEBOOK_KEY] = RuleBook(region_overrides={"37": {"bid_period_min_days": 30}})
    tender = create_tender(region="370200")
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert "at least 30 days" in err.to_dict()["fields"]["bid_deadline_at"][0]
    elsewhere = create_tender(region="440300")
    bidding.publish_tender(staff(elsewhere), elsewhere, expected_version=elsewhere.version)
    assert elsewhere.status == TenderStatus.PUBLISHED


def test_later_checks_use_the_version_fixed_at_publication(app, frozen, create_tender):
    tender = create_tender(publish=True)
    stricter = RuleSet(version="cn-2030.1", amendment_min_days=30)
    app.extensions[RULEBOOK_KEY] = RuleBook(rulesets=(CN_2019_1, stricter), current="cn-2030.1")
    assert bidding.rules_for(tender).version == "cn-2019.1"
    # 25 days left: fine under the 15-day rule of cn-2019.1, though the current version would want 30
    bidding.amend_tender(staff(tender), tender, summary="Bill of quantities corrected", affects_bids=True,
                         expected_version=tender.version)
    assert tender.rules_version == "cn-2019.1"


def test_cancel_needs_a_reason(frozen, create_tender):
    tender = create_tender(publish=True)
    refused(ValidationFailed, bidding.cancel_tender, staff(tender), tender, "  ")
    bidding.cancel_tender(staff(tender), tender, "Project funding withdrawn", expected_version=tender.version)
    assert tender.status == TenderStatus.CANCELLED and tender.cancelled_at == T0
    assert last_event("tender.cancel").summary["status"] == ["published", "cancelled"]
    refused(TransitionRefused, bidding.cancel_tender, staff(tender), tender, "again")


def test_documents_are_stored_by_hash_and_staged(frozen, create_tender):
    tender = create_tender(documents=0)
    doc = bidding.add_document(staff(tender), tender, stream=io.BytesIO(b"%PDF-1.7 hello"), filename="C:\\a\\b.pdf",
                               content_type="application/pdf")
    assert doc.filename == "b.pdf" and doc.size == 14 and doc.published_at is None
    assert doc.sha256 == hashlib.sha256(b"%PDF-1.7 hello").hexdigest()
    assert default_store().read_bytes(doc.sha256) == b"%PDF-1.7 hello"
    refused(ValidationFailed, bidding.add_document, staff(tender), tender, stream=io.BytesIO(b""), filename="x.pdf")


def test_bidder_download_is_recorded_once(frozen, create_tender, create_bidder):
    tender = create_tender(publish=True)
    person, bidder = create_bidder()
    doc = tender.documents[0]
    bidding.record_download(bidder, doc)
    bidding.record_download(bidder, doc)
    downloads = db.session.scalars(select(DocumentDownload)).all()
    assert [(d.organisation_id, d.person_id) for d in downloads] == [(bidder.organisation_id, person.id)]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "tender.document.download")
                                .order_by(AuditEvent.seq)).all()
    assert [e.summary["first"] for e in events] == [True, False]


def test_download_window_and_visibility(frozen, create_tender, create_bidder):
    draft = create_tender()
    _, bidder = create_bidder()
    refused(NotFound, bidding.record_download, bidder, draft.documents[0])  # staged file of a draft
    tender = create_tender(publish=True)
    _, early = create_bidder()
    bidding.record_download(early, tender.documents[0])
    frozen.travel(10 * DAY + timedelta(seconds=1))  # documents were available for 10 days
    _, late = create_bidder()
    err = refused(DeadlinePassed, bidding.record_download, late, tender.documents[0])
    assert err.code == "documents_closed"
    bidding.record_download(early, tender.documents[0])  # an earlier downloader may fetch again


def test_the_tenderer_cannot_act_as_bidder_on_its_own_tender(frozen, create_tender, create_person):
    tender = create_tender(publish=True)
    insider = create_person(roles=("bidder",), organisation=tender.tenderer)
    err = refused(Forbidden, bidding.record_download, actor_for(insider, "bidder", tender.tenderer_id),
                  tender.documents[0])
    assert err.code == "own_tender"


def test_custodians_for_the_opening_key(frozen, create_tender, create_person, create_custodian):
    keepers = [create_custodian()[0] for _ in range(3)]
    plain = create_person(roles=("expert",))
    tender = create_tender(decryption_mode="bidder_then_custodians", custodian_threshold=2,
                           custodian_ids=[k.id for k in keepers])
    assert [c.person_id for c in tender.custodians] == [k.id for k in keepers]
    actor = staff(tender)
    err = refused(ValidationFailed, bidding.update_tender, actor, tender, {"custodian_ids": [plain.id]},
                  expected_version=1)
    assert "custodian_ids" in err.to_dict()["fields"]
    refused(ValidationFailed, bidding.update_tender, actor, tender, {"custodian_threshold": 4}, expected_version=1)
    refused(ValidationFailed, bidding.update_tender, actor, tender, {"custodian_ids": [keepers[0].id]},
            expected_version=1)  # one custodian cannot meet a threshold of two
    bidding.update_tender(actor, tender, {"custodian_ids": []}, expected_version=1)  # a draft may name them later
    assert last_event("tender.update").summary["changes"]["custodian_ids"] == [[k.id for k in keepers], []]
    err = refused(RulesViolated, bidding.publish_tender, actor, tender, expected_version=tender.version)
    assert err.code == "custodians_required"
    bidding.update_tender(actor, tender, {"custodian_ids": [k.id for k in keepers]}, expected_version=tender.version)
    bidding.publish_tender(actor, tender, expected_version=tender.version)
    assert tender.status == TenderStatus.PUBLISHED


def test_agency_staff_manage_the_tender_they_run(frozen, create_org, create_person, create_bidder):
    client, agency = create_org(kind=OrganisationKind.TENDERER), create_org(kind=OrganisationKind.AGENCY)
    agent = actor_for(create_person(roles=("agency",), organisation=agency), "agency", agency.id)
    tender = bidding.create_tender(agent, {
        "title": "Agency run", "regime": "gp", "category": "goods", "is_mandatory": False,
        "estimated_price": Decimal("300000"), "bid_deadline_at": T0 + 20 * DAY, "documents_until_at": T0 + 5 * DAY,
        "question_deadline_at": T0 + 10 * DAY, "tenderer_id": client.id,
        "lots": [{"title": "Computers", "estimated_price": Decimal("300000")}]})
    bidding.add_document(agent, tender, stream=io.BytesIO(b"docs"), filename="docs.pdf")
    bidding.publish_tender(agent, tender, expected_version=tender.version)
    assert tender.status == TenderStatus.PUBLISHED and last_event("tender.publish").actor_role == "agency"
    other_agency = create_org(kind=OrganisationKind.AGENCY)
    outsider = actor_for(create_person(roles=("agency",), organisation=other_agency), "agency", other_agency.id)
    refused(Forbidden, bidding.cancel_tender, outsider, tender, "not ours")


def test_documents_not_yet_available(frozen, create_tender, create_bidder):
    tender = create_tender(documents_from_at=T0 + DAY, bid_deadline_at=T0 + 26 * DAY,
                           documents_until_at=T0 + 10 * DAY, publish=True)
    _, bidder = create_bidder()
    err = refused(DeadlinePassed, bidding.record_download, bidder, tender.documents[0])
    assert err.code == "documents_not_yet_available"
    frozen.travel(DAY)
    bidding.record_download(bidder, tender.documents[0])
