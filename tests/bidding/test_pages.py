"""The tender pages as a person uses them: public list and detail, tenderer forms, bidder actions, languages."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bidding.models import DocumentDownload, Question, Tender, TenderStatus
from core.clock import beijing, now
from core.db import db
from core.identity.models import OrganisationKind, Role, RoleGrant
from core.notifications import Notification
from ebid.app_paths import TRANSLATIONS_DIR
from tests.bidding.conftest import T0, snapshot
from tests.factories import PASSWORD


def login(client, person):
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def draft_form(**overrides) -> dict:
    """A valid draft form as the browser posts it (Beijing time in the datetime-local inputs)."""
    start = beijing(now()).replace(second=0, microsecond=0)
    form = {"title": "Harbour dredging phase II", "description": "Dredging of the inner harbour.",
            "regime": "works", "category": "works", "is_mandatory": "1", "region": "370200",
            "decryption_mode": "bidder", "estimated_price": "2,000,000.00", "ceiling_price": "1950000",
            "documents_from_at": "", "documents_until_at": f"{start + timedelta(days=10):%Y-%m-%dT%H:%M}",
            "question_deadline_at": f"{start + timedelta(days=15):%Y-%m-%dT%H:%M}",
            "bid_deadline_at": f"{start + timedelta(days=30):%Y-%m-%dT%H:%M}", "bid_validity_days": "90",
            "lots.0.title": "Inner harbour", "lots.0.estimated_price": "1200000", "lots.0.bond_amount": "20000",
            "lots.1.title": "Outer basin", "lots.1.estimated_price": "800000", "lots.1.bond_amount": "",
            "lots.2.title": "", "lots.2.estimated_price": ""}
    form.update(overrides)
    return form


def text_of(response) -> str:
    return response.get_data(as_text=True)


# --- public pages -------------------------------------------------------------------------------------


def test_list_searches_filters_and_paginates(client, create_tender, create_org):
    for i in range(21):
        create_tender(publish=True, title=f"Road section {i:02d}")
    special = create_tender(publish=True, title="Harbour dredging", regime="gp", category="services",
                            region="370211")
    draft = create_tender(title="Secret draft harbour")
    db.session.commit()

    first = text_of(client.get("/tenders?lang=en"))
    assert 'data-total="22"' in first
    assert first.count('data-tender-id="') == 20
    assert 'rel="next"' in first and "Page 1 of 2" in first
    second = text_of(client.get("/tenders?page=2&lang=en"))
    assert second.count('data-tender-id="') == 2

    found = text_of(client.get("/tenders?q=harbour&lang=en"))
    assert f'data-tender-id="{special.id}"' in found and 'data-total="1"' in found
    assert draft.title not in found and special.tenderer.name in found
    assert 'data-status="published"' in found
    assert f"{beijing(special.bid_deadline_at):%Y-%m-%d %H:%M}" in found

    by_regime = text_of(client.get("/tenders?regime=gp"))
    assert 'data-total="1"' in by_regime and f'data-tender-id="{special.id}"' in by_regime
    by_region = text_of(client.get("/tenders?region=370211"))
    assert 'data-total="1"' in by_region
    assert 'data-total="0"' in text_of(client.get("/tenders?status=cancelled"))
    # pagination links keep the filters
    assert 'href="/tenders?status=published&amp;page=2"' in text_of(client.get("/tenders?status=published"))


def test_home_shows_latest_published_tenders(client, create_tender):
    published = create_tender(publish=True, title="Street lighting renewal")
    draft = create_tender(title="Unpublished bridge")
    db.session.commit()
    page = text_of(client.get("/"))
    assert published.title in page and draft.title not in page
    assert f'href="/tenders/{published.id}"' in page


def test_detail_shows_beijing_time_countdown_and_hashes(client, create_tender, frozen):
    tender = create_tender(publish=True)
    db.session.commit()
    doc = tender.documents[0]
    page = text_of(client.get(f"/tenders/{tender.id}?lang=en"))
    deadline_bj = beijing(tender.bid_deadline_at)
    assert deadline_bj.utcoffset() == timedelta(hours=8)
    assert f"{deadline_bj:%Y-%m-%d %H:%M}" in page
    assert "Beijing time" in page and "北京时间" in page
    assert f'data-deadline="{int(tender.bid_deadline_at.timestamp() * 1000)}"' in page
    assert f'data-server-now="{int(T0.timestamp() * 1000)}"' in page
    assert "25d 00:00:00" in page  # the countdown's text before the script runs, from the server clock
    assert doc.sha256 in page and doc.filename in page and "SHA-256" in page
    assert tender.lots[0].title in page and "1,000,000.00" in page
    # the page in Chinese labels the time zone too
    assert "北京时间" in text_of(client.get(f"/tenders/{tender.id}"))


def test_drafts_are_invisible_to_the_public_but_not_to_their_staff(app, client, create_tender):
    draft = create_tender(title="Quiet draft")
    db.session.commit()
    assert client.get(f"/tenders/{draft.id}").status_code == 404
    assert draft.title not in text_of(client.get("/tenders?q=Quiet"))
    staff = login(app.test_client(), draft.created_by)
    assert staff.get(f"/tenders/{draft.id}").status_code == 200
    assert draft.title in text_of(staff.get("/my/tenders"))


# --- tenderer pages ------------------------------------------------------------------------------------


def test_tenderer_creates_uploads_and_publishes_through_the_forms(client, create_person, create_org):
    org = create_org(kind=OrganisationKind.TENDERER, region="370200")
    person = create_person(roles=("tenderer",), organisation=org)
    db.session.commit()
    login(client, person)
    assert client.get("/tenders/new").status_code == 200

    response = client.post("/tenders/new", data=draft_form())
    assert response.status_code == 302, text_of(response)
    tender = db.session.scalar(select(Tender).where(Tender.title == "Harbour dredging phase II"))
    assert tender.tenderer_id == org.id and tender.status == TenderStatus.DRAFT
    assert [(lot.title, lot.estimated_price) for lot in tender.lots] == [
        ("Inner harbour", Decimal("1200000.00")), ("Outer basin", Decimal("800000.00"))]
    assert tender.estimated_price == Decimal("2000000.00")
    typed = draft_form()["bid_deadline_at"]
    assert f"{beijing(tender.bid_deadline_at):%Y-%m-%dT%H:%M}" == typed  # stored UTC, typed Beijing time
    assert tender.bid_deadline_at.utcoffset() == timedelta(0)

    content = b"%PDF-1.4 tender documents"
    response = client.post(f"/tenders/{tender.id}/documents", content_type="multipart/form-data",
                           data={"kind": "biddingDocuments", "files": (io.BytesIO(content), "zbwj.pdf")})
    assert response.status_code == 302
    manage = text_of(client.get(f"/tenders/{tender.id}/manage?lang=en"))
    assert hashlib.sha256(content).hexdigest() in manage and "Not yet issued" in manage

    db.session.refresh(tender)
    response = client.post(f"/tenders/{tender.id}/publish", data={"version": tender.version})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tenders/{tender.id}")
    db.session.expire_all()
    assert db.session.get(Tender, tender.id).status == TenderStatus.PUBLISHED
    assert f'data-tender-id="{tender.id}"' in text_of(client.get("/tenders?q=dredging"))


def test_person_in_several_organisations_picks_the_one_to_act_for(client, create_person, create_org):
    first, second = create_org(kind=OrganisationKind.TENDERER), create_org(kind=OrganisationKind.TENDERER)
    person = create_person(roles=("tenderer",), organisation=first)
    person.grants.append(RoleGrant(role=Role.TENDERER, organisation=second))
    db.session.commit()
    login(client, person)
    form_page = text_of(client.get("/tenders/new"))
    assert f'<option value="{second.id}"' in form_page and second.name in form_page
    assert client.post("/tenders/new", data=draft_form(organisation_id=str(second.id))).status_code == 302
    assert db.session.scalar(select(Tender.tenderer_id)) == second.id


def test_agency_drafts_for_a_client_named_by_its_uscc(client, create_person, create_org):
    agency = create_org(kind=OrganisationKind.AGENCY)
    client_org = create_org(kind=OrganisationKind.TENDERER, name="Qingdao Port Authority")
    person = create_person(roles=("agency",), organisation=agency)
    db.session.commit()
    login(client, person)
    unknown = client.post("/tenders/new?lang=en", data=draft_form(tenderer_uscc="91370200MA00000000"))
    assert unknown.status_code == 422 and 'data-field="tenderer_uscc"' in text_of(unknown)
    assert client.post("/tenders/new", data=draft_form(tenderer_uscc=client_org.uscc)).status_code == 302
    tender = db.session.scalar(select(Tender))
    assert (tender.tenderer_id, tender.agency_id) == (client_org.id, agency.id)
    assert "Qingdao Port Authority" in text_of(client.get("/my/tenders"))


def test_non_member_cannot_act_for_another_organisation(client, create_person, create_org, create_tender):
    mine, other = create_org(kind=OrganisationKind.TENDERER), create_org(name="Other Works Bureau")
    person = create_person(roles=("tenderer",), organisation=mine)
    others_tender = create_tender(publish=True)
    db.session.commit()
    login(client, person)
    response = client.post("/tenders/new?lang=en", data=draft_form(organisation_id=str(other.id)))
    assert response.status_code == 403
    assert "You are not a member of Other Works Bureau and cannot act for it." in text_of(response)
    assert db.session.scalar(select(func.count()).select_from(Tender)) == 1
    assert client.get(f"/tenders/{others_tender.id}/manage").status_code == 403
    before = snapshot()
    refused = client.post(f"/tenders/{others_tender.id}/cancel?lang=en", data={"reason": "mine now"})
    assert refused.status_code == 403 and "tenderer or agency" in text_of(refused)
    assert snapshot() == before


def test_post_without_csrf_token_is_refused(csrf_app, create_person, create_org):
    org = create_org(kind=OrganisationKind.TENDERER)
    person = create_person(roles=("tenderer",), organisation=org)
    db.session.commit()
    client = csrf_app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(person.id)
        session["_fresh"] = True
    refused = client.post("/tenders/new?lang=en", data=draft_form())
    assert refused.status_code == 400 and "reload the page" in text_of(refused)
    assert db.session.scalar(select(func.count()).select_from(Tender)) == 0
    token = re.search(r'name="csrf_token" value="([^"]+)"', text_of(client.get("/tenders/new"))).group(1)
    assert client.post("/tenders/new", data=draft_form(csrf_token=token)).status_code == 302


def test_form_errors_are_shown_next_to_the_fields_and_nothing_is_stored(client, create_person, create_org):
    person = create_person(roles=("tenderer",), organisation=create_org(kind=OrganisationKind.TENDERER))
    db.session.commit()
    login(client, person)
    bad = draft_form(**{"estimated_price": "lots", "lots.1.estimated_price": "-5", "bid_deadline_at": "soon"})
    response = client.post("/tenders/new?lang=en", data=bad)
    page = text_of(response)
    assert response.status_code == 422
    assert "Enter an amount in yuan" in page and "Enter a date and time (Beijing time)." in page
    assert 'value="Harbour dredging phase II"' in page  # what was typed is kept
    assert db.session.scalar(select(func.count()).select_from(Tender)) == 0
    # a rule of the domain (a lot price below zero) is reported on that lot's row
    response = client.post("/tenders/new?lang=en", data=draft_form(**{"lots.1.estimated_price": "-5"}))
    assert response.status_code == 422
    assert 'data-field="lots.1.estimated_price"' in text_of(response)
    assert db.session.scalar(select(func.count()).select_from(Tender)) == 0


def test_publishing_against_the_rules_shows_the_violations_and_changes_nothing(client, create_tender):
    start = now()
    tender = create_tender(documents_until_at=start + timedelta(days=6), question_deadline_at=start + timedelta(days=7),
                           bid_deadline_at=start + timedelta(days=10))
    db.session.commit()
    login(client, tender.created_by)
    before = snapshot()
    response = client.post(f"/tenders/{tender.id}/publish?lang=en", data={"version": tender.version})
    page = text_of(response)
    assert response.status_code == 422
    assert "The bid deadline must be at least 20 days after the documents are issued" in page
    assert 'data-field="bid_deadline_at"' in page and "Bid deadline and opening" in page
    assert snapshot() == before
    assert db.session.get(Tender, tender.id).status == TenderStatus.DRAFT


def test_amendment_and_cancellation_through_the_forms(client, create_tender):
    tender = create_tender(publish=True)
    db.session.commit()
    login(client, tender.created_by)
    before = snapshot()
    earlier = beijing(tender.bid_deadline_at - timedelta(days=1))
    refused = client.post(f"/tenders/{tender.id}/amendments?lang=en", content_type="multipart/form-data", data={
        "version": tender.version, "summary": "Deadline earlier.", "affects_bids": "1",
        "new_deadline_at": f"{earlier:%Y-%m-%dT%H:%M}", "files": (io.BytesIO(b"refused file"), "refused.pdf")})
    assert refused.status_code == 422 and "not bring it forward" in text_of(refused)
    assert "refused.pdf" not in text_of(refused)  # the upload of a refused amendment is not kept
    assert snapshot() == before

    new_deadline = beijing(tender.bid_deadline_at + timedelta(days=5))
    response = client.post(f"/tenders/{tender.id}/amendments", content_type="multipart/form-data", data={
        "version": tender.version, "summary": "Drawings updated.", "affects_bids": "1",
        "new_deadline_at": f"{new_deadline:%Y-%m-%dT%H:%M}",
        "files": (io.BytesIO(b"revised drawings"), "drawings-v2.pdf")})
    assert response.status_code == 302, text_of(response)
    detail = text_of(client.get(f"/tenders/{tender.id}?lang=en"))
    assert "Amendment No. 1" in detail and "Drawings updated." in detail and "drawings-v2.pdf" in detail
    assert f"{new_deadline:%Y-%m-%d %H:%M}" in detail

    db.session.expire_all()
    version = db.session.get(Tender, tender.id).version
    refused = client.post(f"/tenders/{tender.id}/cancel?lang=en", data={"version": version, "reason": " "})
    assert refused.status_code == 422 and 'data-field="reason"' in text_of(refused)
    response = client.post(f"/tenders/{tender.id}/cancel", data={"version": version, "reason": "Funding withdrawn."})
    assert response.status_code == 302
    detail = text_of(client.get(f"/tenders/{tender.id}?lang=en"))
    assert "Funding withdrawn." in detail and 'data-status="cancelled"' in detail and "data-countdown" not in detail


# --- bidder pages --------------------------------------------------------------------------------------


def test_bidder_downloads_asks_and_is_notified_of_the_answer(app, client, create_tender, create_bidder):
    tender = create_tender(publish=True)
    bidder, _ = create_bidder(name="Zhang Wei")
    db.session.commit()
    doc = tender.documents[0]
    assert client.get(f"/tenders/{tender.id}/documents/{doc.id}").status_code == 302  # to the login page
    login(client, bidder)
    response = client.get(f"/tenders/{tender.id}/documents/{doc.id}")
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == doc.sha256
    assert doc.filename in response.headers["Content-Disposition"]
    assert db.session.scalar(select(func.count()).select_from(DocumentDownload)) == 1

    response = client.post(f"/tenders/{tender.id}/questions", data={"text": "Is night work allowed?"})
    assert response.status_code == 302
    question = db.session.scalar(select(Question))
    assert question.asker_id == bidder.id

    staff = login(app.test_client(), tender.created_by)
    assert "Is night work allowed?" in text_of(staff.get(f"/tenders/{tender.id}/manage"))
    response = staff.post(f"/tenders/{tender.id}/questions/{question.id}/answer",
                          data={"answer": "Only between 22:00 and 06:00 with a permit."})
    assert response.status_code == 302
    public = text_of(app.test_client().get(f"/tenders/{tender.id}"))
    assert "Is night work allowed?" in public and "Only between 22:00 and 06:00" in public
    assert "Zhang Wei" not in public and bidder.email not in public
    assert db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.person_id == bidder.id)) >= 1
    notifications = text_of(client.get("/my/notifications"))
    assert tender.code in notifications and f'href="/tenders/{tender.id}"' in notifications


def test_objection_is_answered_and_a_late_question_is_refused_on_the_page(app, client, create_tender,
                                                                           create_bidder, frozen):
    tender = create_tender(publish=True)
    bidder, _ = create_bidder()
    db.session.commit()
    login(client, bidder)
    assert client.post(f"/tenders/{tender.id}/objections", data={"text": "Lot 1 excludes SMEs."}).status_code == 302
    page = text_of(client.get(f"/tenders/{tender.id}?lang=en"))
    assert "Awaiting answer" in page and "Lot 1 excludes SMEs." in page and "badge-suspended" in page

    db.session.expire_all()
    objection = db.session.get(Tender, tender.id).objections[0]
    staff = login(app.test_client(), tender.created_by)
    assert "Lot 1 excludes SMEs." in text_of(staff.get(f"/tenders/{tender.id}/manage"))
    response = staff.post(f"/tenders/{tender.id}/objections/{objection.id}/answer",
                          data={"answer": "Lot 1 is reserved for SMEs; see section 3."})
    assert response.status_code == 302
    page = text_of(client.get(f"/tenders/{tender.id}?lang=en"))
    assert "Lot 1 is reserved for SMEs" in page and "badge-suspended" not in page
    assert 'class="badge badge-answered"' in page

    frozen.travel(timedelta(days=16))  # past the question deadline (15 days)
    before = snapshot()
    response = client.post(f"/tenders/{tender.id}/questions?lang=en", data={"text": "Too late?"})
    assert response.status_code == 422 and "Questions closed at" in text_of(response)
    assert snapshot() == before


# --- languages -----------------------------------------------------------------------------------------


def test_language_switch_sets_a_cookie_and_default_is_chinese(client, create_tender):
    tender = create_tender(publish=True)
    db.session.commit()
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")  # no language preference at all: the default applies
    assert '<html lang="zh-CN">' in text_of(client.get("/tenders"))
    response = client.get(f"/tenders/{tender.id}?lang=en")
    assert '<html lang="en">' in text_of(response)
    assert "lang=en" in response.headers["Set-Cookie"]
    assert '<html lang="en">' in text_of(client.get("/"))  # the cookie keeps the choice
    switch = text_of(client.get("/tenders?q=road&status=published"))
    assert 'href="/tenders?q=road&amp;status=published&amp;lang=zh_CN"' in switch
    if (TRANSLATIONS_DIR / "zh_CN" / "LC_MESSAGES" / "messages.mo").exists():
        chinese = text_of(client.get("/tenders?lang=zh_CN"))
        assert "Tender notices" not in chinese and "Tenders found" not in chinese
