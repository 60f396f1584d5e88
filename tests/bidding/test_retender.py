"""Re-tender (重新招标): failed lots are told to the tenderer and agency, listed on the manage page, and
re-tendered as a new draft with the same lots, settings and documents."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bidding import lifecycle
from bidding.models import Tender, TenderStatus
from bidding.retender import Retender, RetenderRefused, failed_lots, next_code, retender, retender_of
from bidding.sealed_models import TenderLog
from bidding.tasks import close_due_tenders
from core.audit import AuditEvent
from core.db import db
from core.errors import Conflict, Forbidden
from core.identity.access import actor_for
from core.identity.models import OrganisationKind
from core.notifications import Notification
from tests.bidding.sealed_support import kit_fixture, lot_of, past_deadline, submit  # noqa: F401
from tests.bidding.test_pages import login


@pytest.fixture(name="closed")
def closed_fixture(kit, frozen, create_org, create_person):
    """A two-lot tender with an agency; ``bids`` sealed bids on lot L1 only; closed at its deadline."""
    def close(bids: int) -> Tender:
        agency = create_org(kind=OrganisationKind.AGENCY)
        agent = create_person(roles=("agency",), organisation=agency, locale="en")
        tender = kit.tender(lots=2, agency_id=agency.id)
        tender.agent = agent
        lot = lot_of(tender)
        for _ in range(bids):
            bidder = kit.bidder()
            assert submit(bidder.client, tender, lot, kit.seal(tender, lot, bidder)).status_code == 201
        past_deadline(tender, frozen)
        close_due_tenders()
        db.session.commit()
        db.session.expire_all()  # the task closed it in its own session
        fresh = db.session.get(Tender, tender.id)
        fresh.agent = agent
        return fresh
    return close


def staff(tender: Tender):
    return actor_for(tender.created_by, "tenderer", tender.tenderer_id)


def notifications() -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.kind == "tender_failed")
                                   .order_by(Notification.person_id)))


def test_a_failed_lot_is_told_to_tenderer_and_agency_and_re_tendered_alone(closed):
    tender = closed(3)
    assert tender.status == TenderStatus.OPENING
    assert [(lot["code"], lot["bids"]) for lot in failed_lots(tender)] == [("L2", 0)]
    assert "at least 3 are needed" in str(failed_lots(tender)[0]["reason"])
    sent = notifications()
    assert {n.person_id for n in sent} == {tender.created_by.id, tender.agent.id}
    english = next(n for n in sent if n.person_id == tender.agent.id)
    assert english.subject == f"Lots L2 of tender {tender.code} failed (流标): re-tender them"
    assert "choose Re-tender" in english.body and english.object_id == tender.id

    new = retender(actor_for(tender.agent, "agency", tender.agency_id), tender)  # the agency acts for the tenderer
    db.session.commit()
    assert new.status == TenderStatus.DRAFT and new.code == f"{tender.code}-R1"
    assert [(lot.code, lot.title, lot.estimated_price, lot.bond_amount) for lot in new.lots] == \
        [(lot.code, lot.title, lot.estimated_price, lot.bond_amount) for lot in tender.lots if lot.code == "L2"]
    assert new.estimated_price == tender.lots[1].estimated_price  # only the failed lot is procured again
    for name in ("title", "regime", "category", "region", "decryption_mode", "custodian_threshold",
                 "bid_validity_days", "tenderer_id", "agency_id"):
        assert getattr(new, name) == getattr(tender, name), name
    assert [c.person_id for c in new.custodians] == [c.person_id for c in tender.custodians]
    assert new.bid_deadline_at is None and new.published_at is None
    issued = [(d.filename, d.sha256, d.kind) for d in tender.documents if d.published_at and not d.is_withdrawn]
    assert issued and [(d.filename, d.sha256, d.kind) for d in new.documents] == issued
    assert all(d.published_at is None for d in new.documents)  # issued when the new tender is published
    link = retender_of(tender)
    assert (link.new_id, link.lot_codes) == (new.id, ["L2"])
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "tender.retender"))
    assert event.object_id == str(tender.id) and event.summary["new_code"] == new.code


def test_a_failed_tender_is_re_tendered_whole_once(closed):
    tender = closed(2)
    assert tender.status == TenderStatus.FAILED
    assert [(lot["code"], lot["bids"]) for lot in failed_lots(tender)] == [("L1", 2), ("L2", 0)]
    english = next(n for n in notifications() if n.person_id == tender.agent.id)
    assert english.subject == f"Tender {tender.code} failed (流标): re-tender it" and "L1, L2" in english.body
    new = retender(staff(tender), tender)
    db.session.commit()
    assert [lot.code for lot in new.lots] == ["L1", "L2"]
    assert (new.estimated_price, new.ceiling_price) == (tender.estimated_price, tender.ceiling_price)
    with pytest.raises(Conflict) as info:
        retender(staff(tender), tender)
    assert f"already re-tendered as {new.code}; continue with that draft" in info.value.to_dict()["message"]
    db.session.rollback()
    lifecycle.transition(new, TenderStatus.CANCELLED)  # the draft was dropped: a new re-tender is allowed
    db.session.commit()
    again = retender(staff(tender), tender)
    db.session.commit()
    assert again.code == f"{tender.code}-R2"
    assert len(db.session.scalars(select(Retender)).all()) == 2


def test_nothing_to_re_tender_and_only_the_tenders_staff_may(closed, create_person, create_org):
    tender = closed(3)
    outsider_org = create_org(kind=OrganisationKind.TENDERER)
    outsider = create_person(roles=("tenderer",), organisation=outsider_org)
    with pytest.raises(Forbidden):
        retender(actor_for(outsider, "tenderer", outsider_org.id), tender)
    db.session.rollback()
    log = db.session.get(TenderLog, tender.id)  # as if every lot had opened: nothing to re-tender
    log.closing = {**log.closing, "lots": {code: {**v, "opened": True} for code, v in log.closing["lots"].items()}}
    db.session.commit()
    with pytest.raises(RetenderRefused) as info:
        retender(staff(tender), tender)
    assert f"Tender {tender.code} has no failed lot" in info.value.to_dict()["message"]


@pytest.mark.parametrize(("code", "taken", "expected"), [
    ("ZB-2026-001", (), "ZB-2026-001-R1"),
    ("ZB-2026-001-R1", (), "ZB-2026-001-R2"),
    ("ZB-2026-001", ("ZB-2026-001-R1",), "ZB-2026-001-R2"),
    ("A" * 40, (), "A" * 37 + "-R1"),
])
def test_next_code(app, create_tender, code, taken, expected):
    for other in taken:
        create_tender(code=other)
    assert next_code(code) == expected and len(expected) <= 40


def test_the_manage_page_shows_the_reason_and_re_tenders(closed, app):
    tender = closed(3)
    client = login(app.test_client(), tender.created_by)
    page = client.get(f"/tenders/{tender.id}/manage").get_data(as_text=True)
    section = re.search(r'data-section="retender".*?</section>', page, re.S).group(0)
    assert 'data-lot="L2"' in section and 'data-lot="L1"' not in section
    assert "0 bid(s) at the bid deadline; at least 3 are needed" in section and "Re-tender" in section
    response = client.post(f"/tenders/{tender.id}/retender")
    assert response.status_code == 302
    new = db.session.scalar(select(Tender).where(Tender.code == f"{tender.code}-R1"))
    assert response.headers["Location"].endswith(f"/tenders/{new.id}/manage")
    page = client.get(f"/tenders/{tender.id}/manage").get_data(as_text=True)
    assert "Re-tendered as" in page and new.code in page
    refused = client.post(f"/tenders/{tender.id}/retender")
    assert refused.status_code == 409 and "already re-tendered" in refused.get_data(as_text=True)
