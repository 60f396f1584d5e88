"""The tender manager starts the evaluation from the draw page; a second start is refused and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from bidding.models import TenderStatus
from core.db import db
from evaluation.room_models import Evaluation, EvaluationStatus
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)
from tests.factories import PASSWORD


def _login(app, person):
    client = app.test_client()
    assert client.post("/login", data={"email": person.email, "password": PASSWORD}).status_code == 302
    return client


def test_manager_starts_the_evaluation_from_the_draw_page(app, make_room):
    o, _members = make_room(start=False)
    tender_id = o.tender.id
    client = _login(app, o.host)
    page = client.get(f"/tenders/{tender_id}/draw").get_data(as_text=True)
    assert 'data-form="start-evaluation"' in page

    response = client.post(f"/tenders/{tender_id}/evaluation/start")
    assert response.status_code == 302
    db.session.expire_all()
    evaluation = db.session.scalar(select(Evaluation).where(Evaluation.tender_id == tender_id))
    assert evaluation.status == EvaluationStatus.SIGNING_IN
    assert o.tender.status == TenderStatus.EVALUATION
    page = client.get(f"/tenders/{tender_id}/draw").get_data(as_text=True)
    assert 'data-form="start-evaluation"' not in page and 'data-evaluation="signing_in"' in page

    again = client.post(f"/tenders/{tender_id}/evaluation/start")
    assert again.status_code >= 400
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Evaluation.id)).where(Evaluation.tender_id == tender_id)) == 1


def test_only_the_tenders_managers_start_it(app, make_room, create_person):
    o, _members = make_room(start=False)
    outsider = create_person(roles=("tenderer",))
    db.session.commit()
    response = _login(app, outsider).post(f"/tenders/{o.tender.id}/evaluation/start")
    assert response.status_code in (403, 404)
    assert db.session.scalar(select(func.count(Evaluation.id))) == 0
