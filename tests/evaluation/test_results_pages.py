"""Pages of the results: the committee's results page and decisions, the report upload, the tender's result
page for managers, bidders and the public, explanations, and the report API."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from cryptography import x509

from bidding.models import TenderStatus
from core.clock import clock
from core.db import db
from core.identity.ca import load_ca_certificate
from evaluation import award as awards
from evaluation import report as reports
from evaluation.report_verify import sign_report
from tests.bidding.hall_support import login_client
from tests.evaluation.results_support import complete, sign_all, to_summary
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)


@pytest.fixture
def done(make_room):
    r = make_room(experts=5, bidders=4)
    complete(r)
    return r


def test_committee_page_previews_then_shows_the_frozen_result(app, make_room):
    r = make_room(experts=5, bidders=4)
    to_summary(r)
    html = login_client(app, r.experts[1]).get(f"/evaluations/{r.evaluation_id}/results").get_data(as_text=True)
    assert "data-preview" in html and "data-benchmark" in html and "data-form=\"dissent\"" in html
    assert html.count('data-valid="yes"') == 3
    page = login_client(app, r.supervisor).get(f"/evaluations/{r.evaluation_id}/results")
    assert page.status_code == 200 and "data-form=\"dissent\"" not in page.get_data(as_text=True)
    assert login_client(app, r.bidders[0].person).get(f"/evaluations/{r.evaluation_id}/results").status_code == 403
    assert login_client(app, r.host).get(f"/evaluations/{r.evaluation_id}/results").status_code == 403


def test_a_member_writes_a_dissent_and_it_is_in_the_report(app, make_room):
    r = make_room(experts=5, bidders=4)
    to_summary(r)
    client = login_client(app, r.experts[2])
    page = client.get(f"/evaluations/{r.evaluation_id}/results")
    assert page.status_code == 200
    answer = client.post(f"/evaluations/{r.evaluation_id}/results/dissent", data={"text": "我认为技术评分过高。"})
    assert answer.status_code == 303
    from evaluation import room
    room.write_summary(r.member_actor(0), r.evaluation_id, "summary")
    db.session.commit()
    room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    db.session.commit()
    data = reports.require_report(r.tender_id).data
    assert [d["text"] for d in data["dissents"]] == ["我认为技术评分过高。"]


def test_member_uploads_a_signed_revision_on_the_page(app, done, certify):
    r = done
    key, row = certify(person=r.experts[0])
    db.session.commit()
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    client = login_client(app, r.experts[0])
    html = client.get(f"/evaluations/{r.evaluation_id}/results").get_data(as_text=True)
    assert 'data-form="sign-report"' in html and 'data-verdict="incomplete"' in html
    pdf = client.get(f"/evaluations/{r.evaluation_id}/report.pdf").data
    signed = sign_report(pdf, "Member1", key, cert, [load_ca_certificate()], "Member1")
    answer = client.post(f"/evaluations/{r.evaluation_id}/report/sign",
                         data={"pdf": (io.BytesIO(signed), "signed.pdf")}, content_type="multipart/form-data")
    assert answer.status_code == 303
    assert [s.field for s in reports.require_report(r.tender_id).signatures] == ["Member1"]
    # a broken upload: refused with the reason shown, nothing stored
    answer = login_client(app, r.experts[1]).post(
        f"/evaluations/{r.evaluation_id}/report/sign", data={"pdf": (io.BytesIO(b"not a pdf"), "x.pdf")},
        content_type="multipart/form-data", follow_redirects=True)
    assert answer.status_code == 200 and "flash-error" in answer.get_data(as_text=True)
    assert len(reports.require_report(r.tender_id).signatures) == 1


def test_report_api_for_the_client(app, done, certify, api_as):
    r = done
    key, row = certify(person=r.experts[3])
    db.session.commit()
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    api = api_as(r.experts[3])
    revision = api.get(f"/api/evaluation/tenders/{r.tender_id}/report/revision").get_json()
    assert revision["my_field"] == "Member4" and revision["status"] == "signing"
    signed = sign_report(base64.b64decode(revision["pdf"]), "Member4", key, cert, [load_ca_certificate()], "Member4")
    answer = api.post(f"/api/evaluation/tenders/{r.tender_id}/report/revision",
                      json={"pdf": base64.b64encode(signed).decode()})
    assert answer.status_code == 200, answer.get_json()
    verification = api.get(f"/api/evaluation/tenders/{r.tender_id}/report/verification").get_json()
    assert verification["status"] == "incomplete"
    states = {s["field"]: s["state"] for s in verification["signatures"]}
    assert states["Member4"] == "valid" and states["Member1"] == "missing"
    assert api_as(r.bidders[0].person).get(f"/api/evaluation/tenders/{r.tender_id}/report").status_code == 403
    assert api.post(f"/api/evaluation/tenders/{r.tender_id}/report/revision",
                    json={"pdf": "***"}).status_code == 422


def test_tender_results_page_by_viewer(app, done, certify):
    r = done
    url = f"/tenders/{r.tender_id}/results"
    assert app.test_client().get(url).status_code == 404  # nothing public before publicity
    assert login_client(app, r.bidders[0].person).get(url).status_code == 404
    assert login_client(app, r.supervisor).get(url).status_code == 200
    sign_all(r, certify)
    manager = login_client(app, r.host)
    html = manager.get(url).get_data(as_text=True)
    assert 'data-form="publicity"' in html and 'data-verdict="final"' in html
    assert manager.post(f"{url}/publicity").status_code == 303
    db.session.expire_all()
    assert db.session.get(type(r.tender), r.tender_id).status == TenderStatus.PUBLICITY
    public = app.test_client().get(url).get_data(as_text=True)
    assert "data-candidates" in public and 'data-form="objection"' not in public and "data-report" not in public
    bidder = login_client(app, r.bidders[1].person)
    html = bidder.get(url).get_data(as_text=True)
    assert 'data-form="objection"' in html and "data-explanation" in html
    assert bidder.post(f"{url}/objections", data={"text": ""}, follow_redirects=True).status_code == 200
    assert awards.objections_of(r.tender_id) == []  # the empty objection was refused
    assert bidder.post(f"{url}/objections", data={"text": "评分有误"}).status_code == 303
    objection = awards.objections_of(r.tender_id)[0]
    assert manager.post(f"{url}/objections/{objection.id}/answer", data={"answer": "已复核"}).status_code == 303
    assert manager.post(f"{url}/award").status_code == 303  # refused: the publicity runs
    db.session.expire_all()
    assert db.session.get(type(r.tender), r.tender_id).status == TenderStatus.PUBLICITY
    clock.travel(timedelta(days=4))
    assert manager.post(f"{url}/award").status_code == 303
    db.session.expire_all()
    assert db.session.get(type(r.tender), r.tender_id).status == TenderStatus.AWARDED
    assert "data-awarded" in app.test_client().get(url).get_data(as_text=True)
    assert 'data-form="contract"' in manager.get(url).get_data(as_text=True)
    assert manager.post(f"{url}/contract/{r.tender.lots[0].id}").status_code == 303
    assert "data-contract" in app.test_client().get(url).get_data(as_text=True)


def test_explanations_are_for_the_bidder_and_insiders(app, done, certify):
    r = done
    bid = r.bid_ids[0]
    url = f"/tenders/{r.tender_id}/results/bids/{bid}"
    own = r.bidder_of(bid).person
    assert login_client(app, own).get(url).status_code == 403  # not published yet
    assert login_client(app, r.experts[0]).get(url).status_code == 200
    sign_all(r, certify)
    awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    page = login_client(app, own).get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "data-steps" in html and "data-price" in html
    other = next(b.person for b in r.bidders if b.person.id != own.id)
    assert login_client(app, other).get(url).status_code == 403
    pdf = login_client(app, own).get(f"{url}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
