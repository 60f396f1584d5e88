"""JSON API of tenders (flask-smorest): thin views — parse, build the actor, call the service, commit.

Authentication is Flask-Login's ``current_user`` (session cookie or ``Authorization: Bearer`` API token);
CSRF for cookie requests is checked once for the whole app by ``core.identity.web``. A request may name the
``organisation_id`` it acts for; :func:`core.identity.access.current_actor` refuses non-members.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request, send_file
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from bidding import clarifications, queries, services
from bidding.models import Tender
from bidding.policy import require_manager
from bidding.schemas import (
    ActingSchema,
    AmendmentInSchema,
    AmendmentSchema,
    AnswerSchema,
    CancelSchema,
    DocumentSchema,
    ObjectionSchema,
    QuestionQuerySchema,
    QuestionSchema,
    TenderCreateSchema,
    TenderPageSchema,
    TenderQuerySchema,
    TenderSchema,
    TenderUpdateSchema,
    TextSchema,
    UploadFormSchema,
    UploadSchema,
    VersionSchema,
)
from bidding.transactions import commit_guarded
from core.actor import Actor
from core.db import db
from core.errors import NotAuthenticated, ValidationFailed
from core.identity.access import current_actor
from core.identity.models import Person, Role
from core.storage import default_store

blp = Blueprint("tenders", __name__, url_prefix="/api",
                description="Tenders (招标项目): drafts, publication, amendments, questions, objections")
R = TypeVar("R")
MANAGERS = (Role.TENDERER, Role.AGENCY)


@blp.before_request
def _authenticated_writes() -> None:
    """Say "log in" before "your input is invalid": changes need a logged-in person."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _person()


def _person() -> Person:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user._get_current_object()


def _viewer_orgs() -> frozenset[int]:
    return queries.managed_organisation_ids(current_user if current_user else None)


def _acting(roles: tuple[Role, ...], organisation_id: int | None) -> Actor:
    """The actor in the first of ``roles`` the person holds (for ``organisation_id`` when given)."""
    person = _person()
    held = [r for r in roles if person.has_role(r, organisation_id)]
    return current_actor(held[0] if held else roles[0], organisation_id)


def _manager(tender: Tender, organisation_id: int | None) -> Actor:
    """Act as the tender's tenderer or agency staff (the one the person belongs to unless named)."""
    if organisation_id is None:
        person = _person()
        for role, org_id in ((Role.TENDERER, tender.tenderer_id), (Role.AGENCY, tender.agency_id)):
            if org_id is not None and person.has_role(role, org_id):
                return current_actor(role, org_id)
        return current_actor(Role.TENDERER, tender.tenderer_id)  # refuses, saying why
    return _acting(MANAGERS, organisation_id)


def _staff_or_bidder(tender: Tender, organisation_id: int | None) -> Actor:
    """Staff of the tender when acting for (or, unnamed, belonging to) its tenderer or agency, else a bidder."""
    if organisation_id is None:
        own = _viewer_orgs() & {tender.tenderer_id, tender.agency_id}
        return _manager(tender, None) if own else _acting((Role.BIDDER,), None)
    return _manager(tender, organisation_id) if tender.is_managed_by(organisation_id) \
        else _acting((Role.BIDDER,), organisation_id)


def _version(sent: int | None) -> int:
    """The version the client edited: from the body, else the If-Match header."""
    if sent is not None:
        return sent
    tag = (request.headers.get("If-Match") or "").strip().removeprefix("W/").strip('"')
    if tag.isdigit():
        return int(tag)
    raise ValidationFailed(fields={"version": [_l("Send the tender version you last saw, in the body or in an "
                                                  "If-Match header.")]})


class TenderOut:
    """A tender as shown to one viewer: staged documents only for its staff."""

    def __init__(self, tender: Tender, viewer_orgs: frozenset[int]):
        self._tender = tender
        self.documents = queries.visible_documents(tender, viewer_orgs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tender, name)


def _out(tender: Tender) -> TenderOut:
    return TenderOut(tender, _viewer_orgs())


def _tender(tender_id: int) -> Tender:
    return queries.get_tender(tender_id, _viewer_orgs())


@blp.route("/tenders")
class Tenders(MethodView):
    @blp.arguments(TenderQuerySchema, location="query")
    @blp.response(200, TenderPageSchema)
    def get(self, args: dict):
        """Search tenders (newest published first); drafts only for their own staff."""
        page = queries.search_tenders(text=args.get("q"), status=args.get("status"), regime=args.get("regime"),
                                      category=args.get("category"), region=args.get("region"),
                                      tenderer_id=args.get("tenderer_id"), deadline_after=args.get("deadline_after"),
                                      deadline_before=args.get("deadline_before"), viewer_org_ids=_viewer_orgs(),
                                      page=args["page"], per_page=args["per_page"])
        return {"items": page.items, "total": page.total, "page": page.page, "per_page": page.per_page,
                "pages": page.pages}

    @blp.arguments(TenderCreateSchema)
    @blp.response(201, TenderSchema)
    def post(self, data: dict):
        """Create a draft tender (as tenderer staff, or as an agency for a tenderer)."""
        actor = _acting(MANAGERS, data.pop("organisation_id", None))
        tender = services.create_tender(actor, data)
        db.session.commit()
        return _out(tender)


@blp.route("/tenders/<int:tender_id>")
class TenderItem(MethodView):
    @blp.response(200, TenderSchema)
    def get(self, tender_id: int):
        """One tender with its lots, documents and amendments."""
        return _out(_tender(tender_id))

    @blp.arguments(TenderUpdateSchema)
    @blp.response(200, TenderSchema)
    def patch(self, data: dict, tender_id: int):
        """Edit a draft (send the version you edited); a published tender changes only by amendment."""
        tender = _tender(tender_id)
        actor = _manager(tender, data.pop("organisation_id", None))
        version = data.pop("version")
        commit_guarded(actor, "tender.update", tender_id, version,
                 lambda: services.update_tender(actor, tender, data, expected_version=version))
        return _out(tender)


@blp.route("/tenders/<int:tender_id>/publish")
class Publish(MethodView):
    @blp.arguments(VersionSchema)
    @blp.response(200, TenderSchema)
    def post(self, data: dict, tender_id: int):
        """Publish a draft after checking every statutory rule (version in the body or If-Match)."""
        tender = _tender(tender_id)
        actor = _manager(tender, data.get("organisation_id"))
        version = _version(data.get("version"))
        commit_guarded(actor, "tender.publish", tender_id, version,
                 lambda: services.publish_tender(actor, tender, expected_version=version))
        return _out(tender)


@blp.route("/tenders/<int:tender_id>/amendments")
class Amendments(MethodView):
    @blp.response(200, AmendmentSchema(many=True))
    def get(self, tender_id: int):
        """The published amendments, in order."""
        return queries.amendments_of(_tender(tender_id))

    @blp.arguments(AmendmentInSchema)
    @blp.response(201, AmendmentSchema)
    def post(self, data: dict, tender_id: int):
        """Publish an amendment (澄清/修改); downloaders are notified."""
        tender = _tender(tender_id)
        actor = _manager(tender, data.get("organisation_id"))
        version = _version(data.get("version"))
        changes = {k: data[k] for k in clarifications.AMENDABLE if k in data}
        return commit_guarded(actor, "tender.amend", tender_id, version, lambda: clarifications.amend_tender(
            actor, tender, summary=data["summary"], affects_bids=data["affects_bids"], changes=changes,
            document_ids=data["document_ids"], withdraw_document_ids=data["withdraw_document_ids"],
            expected_version=version))


@blp.route("/tenders/<int:tender_id>/cancel")
class Cancel(MethodView):
    @blp.arguments(CancelSchema)
    @blp.response(200, TenderSchema)
    def post(self, data: dict, tender_id: int):
        """Cancel (终止) the tender with a reason."""
        tender = _tender(tender_id)
        actor = _manager(tender, data.get("organisation_id"))
        version = data.get("version")
        commit_guarded(actor, "tender.cancel", tender_id, version,
                 lambda: services.cancel_tender(actor, tender, data["reason"], expected_version=version))
        return _out(tender)


@blp.route("/tenders/<int:tender_id>/documents")
class Documents(MethodView):
    @blp.arguments(UploadSchema, location="files")
    @blp.arguments(UploadFormSchema, location="form")
    @blp.response(201, DocumentSchema)
    def post(self, files: dict, form: dict, tender_id: int):
        """Upload a document (multipart ``file``); staged until publication or an amendment issues it."""
        tender = _tender(tender_id)
        actor = _manager(tender, form.get("organisation_id"))
        upload = files["file"]
        doc = services.add_document(actor, tender, stream=upload.stream, filename=upload.filename or "",
                                    content_type=upload.mimetype, kind=form["kind"])
        db.session.commit()
        return doc


@blp.route("/documents/<int:document_id>")
class DocumentFile(MethodView):
    @blp.arguments(ActingSchema, location="query")
    @blp.response(200, content_type="application/octet-stream", description="The file")
    def get(self, args: dict, document_id: int):
        """Download an issued document as a bidder (recorded: amendments are notified to downloaders)."""
        doc = queries.get_document(document_id)
        services.record_download(_staff_or_bidder(doc.tender, args.get("organisation_id")), doc)
        db.session.commit()
        response = send_file(default_store().open(doc.sha256), mimetype=doc.content_type, as_attachment=True,
                             download_name=doc.filename, etag=doc.sha256)
        response.headers["X-Content-SHA256"] = doc.sha256
        return response


@blp.route("/tenders/<int:tender_id>/questions")
class Questions(MethodView):
    @blp.arguments(QuestionQuerySchema, location="query")
    @blp.response(200, QuestionSchema(many=True))
    def get(self, args: dict, tender_id: int):
        """Published answers (asker anonymous); staff may ask for the pending questions."""
        tender = _tender(tender_id)
        if args["pending"]:
            require_manager(_manager(tender, args.get("organisation_id")), tender)
            return queries.pending_questions(tender)
        return queries.published_answers(tender)

    @blp.arguments(TextSchema)
    @blp.response(201, QuestionSchema)
    def post(self, data: dict, tender_id: int):
        """Ask a question (bidders, before the question deadline)."""
        tender = _tender(tender_id)
        actor = _acting((Role.BIDDER,), data.get("organisation_id"))
        question = clarifications.ask_question(actor, tender, data["text"])
        db.session.commit()
        return question


@blp.route("/questions/<int:question_id>/answer")
class AnswerQuestion(MethodView):
    @blp.arguments(AnswerSchema)
    @blp.response(200, QuestionSchema)
    def post(self, data: dict, question_id: int):
        """Answer a question; the answer is published to all and downloaders are notified."""
        question = queries.get_question(question_id)
        actor = _manager(question.tender, data.get("organisation_id"))
        clarifications.answer_question(actor, question, data["answer"])
        db.session.commit()
        return question


@blp.route("/tenders/<int:tender_id>/objections")
class Objections(MethodView):
    @blp.arguments(ActingSchema, location="query")
    @blp.response(200, ObjectionSchema(many=True))
    def get(self, args: dict, tender_id: int):
        """Objections: all of them for the tender's staff, a bidder's own otherwise."""
        tender = _tender(tender_id)
        actor = _staff_or_bidder(tender, args.get("organisation_id"))
        if actor.role == Role.BIDDER:
            return queries.objections_of(tender, actor.organisation_id)
        require_manager(actor, tender)
        return queries.objections_of(tender)

    @blp.arguments(TextSchema)
    @blp.response(201, ObjectionSchema)
    def post(self, data: dict, tender_id: int):
        """Object (异议) to the tender documents; the procedure is suspended until answered."""
        tender = _tender(tender_id)
        actor = _acting((Role.BIDDER,), data.get("organisation_id"))
        objection = clarifications.raise_objection(actor, tender, data["text"])
        db.session.commit()
        return objection


@blp.route("/objections/<int:objection_id>/answer")
class AnswerObjection(MethodView):
    @blp.arguments(AnswerSchema)
    @blp.response(200, ObjectionSchema)
    def post(self, data: dict, objection_id: int):
        """Answer an objection; the suspension ends when none remain pending."""
        objection = queries.get_objection(objection_id)
        actor = _manager(objection.tender, data.get("organisation_id"))
        clarifications.answer_objection(actor, objection, data["answer"])
        db.session.commit()
        return objection
