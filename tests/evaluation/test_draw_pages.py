"""The pool, draw, invitation and sign-in pages: who sees what, names sealed, forms and refusals."""

from __future__ import annotations

import hashlib
import io
import json

from core.db import db
from evaluation import drawing, experts, recusal
from evaluation.pool_models import DrawStatus, MemberStatus
from tests.evaluation.draw_support import (  # noqa: F401  (fixtures)
    committee_fixture,
    draw_tender_fixture,
    expert_actor,
    make_expert_fixture,
    make_request_fixture,
    members_of,
    open_bids_fixture,
    pool_fixture,
    staff_actor,
    start_room_fixture,
)
from tests.factories import PASSWORD

HEADER = "code,name,email,specialties,region,employer_uscc,employer_name,title,avoidance_usccs,available\n"


def login(client, person):
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return client


def test_pool_page_is_for_administrators(app, client, create_person, make_expert):
    make_expert(code="E777", name="赵六", employer_name="青岛设计院")
    expert_person = create_person(roles=("expert",))
    db.session.commit()
    assert login(app.test_client(), expert_person).get("/evaluation/pool").status_code == 403
    admin = create_person(roles=("admin",))
    db.session.commit()
    login(client, admin)
    page = client.get("/evaluation/pool?q=设计院").get_data(as_text=True)
    assert 'data-expert="E777"' in page and "赵六" in page
    assert "E777" in client.get("/evaluation/pool/E777").get_data(as_text=True)


def test_pool_upload_imports_or_lists_every_bad_line(app, client, create_person):
    admin = create_person(roles=("admin",))
    db.session.commit()
    login(client, admin)
    bad = HEADER + "E001,张三,,A010101,370202,,,,,1\nE002,,,A010101,370202,,,,,1\n"
    response = client.post("/evaluation/pool", data={"file": (io.BytesIO(bad.encode()), "pool.csv")},
                           content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-line="3"' in page and "name must have" in page
    assert experts.expert_by_code("E001") is None
    good = HEADER + "E001,张三,zhang@example.test,A010101,370202,,,,,1\n"
    response = client.post("/evaluation/pool", data={"file": (io.BytesIO(good.encode()), "pool.csv")},
                           content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200 and "1 new" in response.get_data(as_text=True)
    assert experts.expert_by_code("E001").person.email == "zhang@example.test"


def test_manager_requests_draws_and_sees_statuses_without_names(app, client, pool, draw_tender, create_person):
    people = pool(9)
    tender = draw_tender()
    login(client, tender.created_by)
    response = client.post(f"/tenders/{tender.id}/draw", data={"specialties": "A010101:4", "committee_size": "5"})
    assert response.status_code == 422 and "add up to 4" in response.get_data(as_text=True)
    assert drawing.request_of(tender.id) is None
    response = client.post(f"/tenders/{tender.id}/draw", data={
        "specialties": "A010101:5", "committee_size": "5", "alternates": "2", "is_remote": "1",
        "check_in_at": "2026-12-01T09:00", "venues": "主场 A\n副场 B"})
    assert response.status_code == 302
    saved = drawing.request_of(tender.id)
    assert saved.check_in_at.isoformat().startswith("2026-12-01T01:00") and saved.venues == ["主场 A", "副场 B"]
    assert 'value="2026-12-01T09:00"' in client.get(f"/tenders/{tender.id}/draw").get_data(as_text=True)
    assert client.post(f"/tenders/{tender.id}/draw/run").status_code == 302
    page = client.get(f"/tenders/{tender.id}/draw").get_data(as_text=True)
    assert "data-sealed" in page and 'data-status="invited"' in page
    for e in people:
        assert e.name not in page and e.code not in page
    rnd = drawing.request_of(tender.id).rounds[0]
    assert rnd.seed_commitment in page and rnd.seed in page
    verdict = client.post(f"/tenders/{tender.id}/draw/verify").get_data(as_text=True)
    assert 'data-verdict="ok"' in verdict
    export = client.get(f"/tenders/{tender.id}/draw/export")
    assert export.status_code == 200 and json.loads(export.data)["tender"] == tender.code
    assert drawing.verify_document(export.data)[1][0].ok
    outsider = create_person(roles=("bidder",))
    db.session.commit()
    assert login(app.test_client(), outsider).get(f"/tenders/{tender.id}/draw").status_code == 403


def test_names_show_once_the_evaluation_starts(client, committee, start_room):
    c = committee()
    login(client, c.tender.created_by)
    assert c.members[0].expert.name not in client.get(f"/tenders/{c.tender.id}/draw").get_data(as_text=True)
    evaluation = start_room(c.tender)
    page = client.get(f"/tenders/{c.tender.id}/draw").get_data(as_text=True)
    assert c.members[0].expert.name in page and f'data-evaluation="{evaluation.status.value}"' in page


def test_expert_accepts_and_declines_from_the_invitations_page(app, pool, draw_tender, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawing.draw(staff_actor(tender), tender.id)
    db.session.commit()
    first, second = members_of(tender, MemberStatus.INVITED)[:2]
    c1 = login(app.test_client(), first.expert.person)
    page = c1.get("/my/invitations").get_data(as_text=True)
    assert f'data-invitation="{first.id}"' in page and tender.code in page
    assert f'data-invitation="{second.id}"' not in page
    c1.post(f"/my/invitations/{first.id}/accept")
    db.session.expire_all()
    assert first.status == MemberStatus.ACCEPTED
    c2 = login(app.test_client(), second.expert.person)
    response = c2.post(f"/my/invitations/{second.id}/decline", data={"reason": ""}, follow_redirects=True)
    assert "Give the reason for declining" in response.get_data(as_text=True)
    c2.post(f"/my/invitations/{second.id}/decline", data={"reason": "Travelling"})
    db.session.expire_all()
    assert second.status == MemberStatus.DECLINED and len(members_of(tender, MemberStatus.INVITED)) == 4
    assert c2.post(f"/my/invitations/{first.id}/accept").status_code == 404  # not theirs


def test_sign_in_page_shows_the_declaration_and_links_the_room(app, committee, start_room):
    c = committee()
    member = c.members[0]
    client = login(app.test_client(), member.expert.person)
    assert "data-not-started" in client.get(f"/my/invitations/{member.id}/sign-in").get_data(as_text=True)
    evaluation = start_room(c.tender)
    page = client.get(f"/my/invitations/{member.id}/sign-in").get_data(as_text=True)
    text = recusal.declaration_text(member)
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert sha in page and c.bidders[0].uscc in page and 'name="typed_name"' in page
    response = client.post(f"/my/invitations/{member.id}/sign-in", data={"text_sha256": sha, "typed_name": "x"})
    assert response.status_code == 422 and "Type your name exactly" in response.get_data(as_text=True)
    response = client.post(f"/my/invitations/{member.id}/sign-in",
                           data={"text_sha256": sha, "typed_name": member.expert.name}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "data-signed-in" in page and f"/evaluations/{evaluation.id}/room" in page
    db.session.expire_all()
    assert member.status == MemberStatus.SIGNED_IN


def test_short_request_offers_a_top_up(app, client, pool, draw_tender, make_request):
    pool(5)
    tender = draw_tender()
    make_request(tender, alternates=0)
    drawing.draw(staff_actor(tender), tender.id)
    db.session.commit()
    member = members_of(tender, MemberStatus.INVITED)[0]
    recusal.decline(expert_actor(member.expert), member.id, "No")
    db.session.commit()
    login(client, tender.created_by)
    assert 'data-form="top-up"' in client.get(f"/tenders/{tender.id}/draw").get_data(as_text=True)
    response = client.post(f"/tenders/{tender.id}/draw/top-up")
    assert response.status_code == 422 and "Only 0 eligible experts" in response.get_data(as_text=True)
    pool(1)
    db.session.commit()
    assert client.post(f"/tenders/{tender.id}/draw/top-up").status_code == 302
    db.session.expire_all()
    assert drawing.request_of(tender.id).status == DrawStatus.DRAWN
