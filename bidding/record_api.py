"""JSON API of the opening record (开标记录), blueprint ``record_api`` under ``/api/opening``.

Thin views: build the actor (session cookie or bearer token, as the bids API), call the service, commit.
Reading the record also closes a confirmation window that is due. The contract is docs/opening-record.md.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from bidding import record_service
from bidding.queries import get_tender, managed_organisation_ids
from bidding.record_models import RecordStatus
from core.db import db
from core.errors import NotAuthenticated, NotFound, ValidationFailed
from core.identity.access import current_actor
from core.identity.models import Role

blp = Blueprint("record_api", __name__, url_prefix="/api/opening",
                description="The opening record (开标记录): confirmations, objections, answers, signed PDF")


def _person() -> Any:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user


def _tender(tender_id: int):
    viewer = current_user if current_user and current_user.is_authenticated else None
    return get_tender(tender_id, managed_organisation_ids(viewer))


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed(_l("Send a JSON object."), code="json_required")
    return data


def _bidder():
    _person()
    return current_actor(Role.BIDDER, request.args.get("organisation_id", type=int))


def _staff():
    """The host or a supervisor: the service checks the person's part in the opening."""
    _person()
    return current_actor()


def _view(tender_id: int) -> dict[str, Any]:
    record = record_service.tick(_tender(tender_id).id)
    db.session.commit()
    person_id = current_user.id if current_user and current_user.is_authenticated else None
    return record_service.record_view(record, person_id)


@blp.route("/tenders/<int:tender_id>/opening-record")
class Record(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The record: rows, responses, objections and answers, status, signatures, ``my_field``."""
        return _view(tender_id)

    @blp.response(201)
    def post(self, tender_id: int):
        """Build the record and open the confirmation window (host; ``{"window_minutes": 15}`` optional)."""
        body = request.get_json(silent=True) or {}
        record_service.build_record(_staff(), _tender(tender_id).id, window_minutes=body.get("window_minutes"))
        db.session.commit()
        return _view(tender_id)


@blp.route("/tenders/<int:tender_id>/opening-record/confirm")
class Confirm(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """A bidder confirms the record (无异议)."""
        record_service.confirm(_bidder(), _tender(tender_id).id)
        db.session.commit()
        return _view(tender_id)


@blp.route("/tenders/<int:tender_id>/opening-record/objections")
class Objections(MethodView):
    @blp.response(201)
    def post(self, tender_id: int):
        """A bidder objects (异议): ``{"text": ..., "attachment": {"name": ..., "content": base64}}``."""
        body = _body()
        attachment = None
        if body.get("attachment"):
            item = body["attachment"]
            try:
                attachment = (str(item.get("name") or "attachment"),
                              base64.b64decode(str(item.get("content") or ""), validate=True))
            except (binascii.Error, ValueError, AttributeError):
                raise ValidationFailed(_l("The attachment must be {\"name\": ..., \"content\": base64}."),
                                       code="invalid_attachment") from None
        row = record_service.raise_objection(_bidder(), _tender(tender_id).id, str(body.get("text") or ""), attachment)
        db.session.commit()
        return record_service.objection_payload(row)


@blp.route("/tenders/<int:tender_id>/opening-record/objections/<int:objection_id>/answer")
class Answer(MethodView):
    @blp.response(200)
    def post(self, tender_id: int, objection_id: int):
        """The host answers an objection: ``{"text": ...}``."""
        row = record_service.answer_objection(_staff(), _tender(tender_id).id, objection_id,
                                              str(_body().get("text") or ""))
        db.session.commit()
        return record_service.objection_payload(row)


@blp.route("/tenders/<int:tender_id>/opening-record/revision")
class Revision(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The current revision to sign: ``{"sha256", "size", "pdf" (base64), "my_field"}``."""
        view = _view(tender_id)
        pdf = record_service.current_pdf(record_service.require_record(tender_id))
        return {"sha256": view["pdf_sha256"], "size": len(pdf), "pdf": base64.b64encode(pdf).decode(),
                "my_field": view["my_field"], "status": view["status"]}

    @blp.response(200)
    def post(self, tender_id: int):
        """Upload a signed revision: ``{"pdf": base64}`` (host or supervisor, own field only)."""
        try:
            pdf = base64.b64decode(str(_body().get("pdf") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(_l("pdf must be base64."), code="invalid_base64") from None
        record_service.accept_signature(_staff(), _tender(tender_id).id, pdf)
        db.session.commit()
        return _view(tender_id)


@blp.route("/tenders/<int:tender_id>/opening-record.pdf")
class Download(MethodView):
    def get(self, tender_id: int):
        """The published, signed record as a PDF (anyone, once both signatures are in)."""
        record = record_service.require_record(_tender(tender_id).id)
        if record.status != RecordStatus.PUBLISHED:
            raise NotFound(_l("The signed record is published once the host and the supervisor have signed it."),
                           code="record_not_published")
        pdf = record_service.current_pdf(record)
        return Response(pdf, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="opening-record-{record.tender.code}.pdf"'})
