"""Tenderer and agency pages (招标人/代理机构): my tenders, draft form, documents, publish, amendments,
answers to questions and objections, cancellation."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required
from sqlalchemy import func, or_, select

from bidding import retender as retenders
from bidding.clarifications import amend_tender, answer_objection, answer_question
from bidding.models import DecryptionMode, ObjectionStatus, ProcurementCategory, Regime, Tender, TenderStatus
from bidding.queries import (
    Page,
    get_objection,
    get_question,
    get_tender,
    pending_questions,
    visible_documents,
)
from bidding.services import add_document, cancel_tender, create_tender, publish_tender, update_tender
from bidding.tender_form import Parsed, fields_on_rows, form_values_of, parse_deadline, parse_tender_form
from bidding.transactions import commit_guarded
from bidding.view_support import (
    DOCUMENT_KINDS,
    MANAGER_ROLES,
    acting_as,
    bp,
    choices_for,
    form_error,
    form_int,
    int_arg,
    managing,
    refusal,
    viewer_orgs,
)
from core.clock import now
from core.db import db
from core.errors import DomainError, Forbidden, NotFound
from core.identity.models import Role
from core.identity.services import organisation_by_uscc

PER_PAGE = 20


def _managed_tenders(org_ids: list[int], page: int) -> Page[Tender]:
    stmt = select(Tender).where(or_(Tender.tenderer_id.in_(org_ids), Tender.agency_id.in_(org_ids)))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = db.session.scalars(stmt.order_by(Tender.updated_at.desc(), Tender.id.desc())
                               .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return Page(items=list(items), total=total, page=page, per_page=PER_PAGE)


@bp.route("/my/tenders")
@login_required
def mine():
    """Tenders of the organisations the person works for as tenderer or agency staff."""
    choices = choices_for(*MANAGER_ROLES)
    if not choices:
        raise Forbidden(_("Only tenderer or agency staff have tenders to manage."), code="not_tender_manager")
    selected = int_arg(request.args.get("org"))
    org_ids = [org.id for _r, org in choices if selected in (None, org.id)]
    if not org_ids:
        acting_as(MANAGER_ROLES, selected)  # refuses with "not a member of ..."
    page = _managed_tenders(org_ids, max(int_arg(request.args.get("page")) or 1, 1))
    return render_template("bidding/mine.html", page=page, choices=choices, selected=selected)


def _form_page(tender: Tender | None, values: dict[str, Any], errors: dict | None = None,
               error: str | None = None, status: int = 200):
    choices = choices_for(*MANAGER_ROLES)
    lot_rows = max(sum(1 for k in values if k.startswith("lots.") and k.endswith(".title")), 1)
    return render_template("bidding/form.html", tender=tender, values=values, errors=errors or {}, error=error,
                           choices=choices, lot_rows=lot_rows,
                           has_agency=any(r == Role.AGENCY for r, _o in choices),
                           regimes=list(Regime), categories=list(ProcurementCategory),
                           decryption_modes=list(DecryptionMode)), status


def _refused(exc: DomainError, tender: Tender | None, parsed: Parsed):
    if refusal(exc):
        raise exc
    db.session.rollback()
    message, fields = form_error(exc)
    return _form_page(tender, request.form.to_dict(), fields_on_rows(fields, parsed.lot_rows), message, exc.status)


@bp.route("/tenders/new", methods=["GET", "POST"])
@login_required
def new():
    """Draft a new tender (起草招标项目)."""
    if request.method == "GET":
        if not choices_for(*MANAGER_ROLES):
            acting_as(MANAGER_ROLES, None)  # 403 with the missing role
        org = choices_for(*MANAGER_ROLES)[0][1]
        return _form_page(None, {"regime": "works", "category": "works", "is_mandatory": True,
                                 "bid_validity_days": 90, "decryption_mode": "bidder", "region": org.region or ""})
    actor = acting_as(MANAGER_ROLES, form_int("organisation_id"))
    parsed = parse_tender_form(request.form)
    data = dict(parsed.values, region=(request.form.get("region") or "").strip() or "CN")
    if actor.role == Role.AGENCY:
        client = organisation_by_uscc(request.form.get("tenderer_uscc") or "")
        if client is None:
            parsed.fail("tenderer_uscc", _("No registered organisation has this unified social credit code."))
        data["tenderer_id"] = client.id if client else None
    if not parsed.ok:
        return _form_page(None, request.form.to_dict(), parsed.errors, _("Correct the fields marked below."), 422)
    try:
        tender = create_tender(actor, data)
        db.session.commit()
    except DomainError as exc:
        return _refused(exc, None, parsed)
    flash(_("Draft %(code)s saved. Upload the tender documents, then publish.", code=tender.code), "success")
    return redirect(url_for("tenders.manage", tender_id=tender.id))


@bp.route("/tenders/<int:tender_id>/edit", methods=["GET", "POST"])
@login_required
def edit(tender_id: int):
    """Edit a draft; a published tender changes only through an amendment."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    if tender.status != TenderStatus.DRAFT:
        flash(_("The tender is already published; change it by publishing an amendment."), "error")
        return redirect(url_for("tenders.manage", tender_id=tender.id))
    if request.method == "GET":
        return _form_page(tender, dict(form_values_of(tender), region=tender.region, version=tender.version))
    parsed = parse_tender_form(request.form)
    if not parsed.ok:
        return _form_page(tender, request.form.to_dict(), parsed.errors, _("Correct the fields marked below."), 422)
    changes = dict(parsed.values, region=(request.form.get("region") or "").strip() or tender.region)
    try:
        version = form_int("version") or 0
        commit_guarded(actor, "tender.update", tender.id, version,
                       lambda: update_tender(actor, tender, changes, expected_version=version))
    except DomainError as exc:
        return _refused(exc, tender, parsed)
    flash(_("Draft saved."), "success")
    return redirect(url_for("tenders.manage", tender_id=tender.id))


def _manage_page(tender: Tender, status: int = 200, **extra: Any):
    context = {"tender": tender, "documents": visible_documents(tender, viewer_orgs()),
               "pending_questions": pending_questions(tender),
               "pending_objections": [o for o in tender.objections if o.status == ObjectionStatus.PENDING],
               "document_kinds": DOCUMENT_KINDS, "server_now": now(), "error_for": None, "error": None,
               "errors": {}, "values": {},
               "failed_lots": retenders.failed_lots(tender), "retender": retenders.retender_of(tender)}
    context.update(extra)
    return render_template("bidding/manage.html", **context), status


def _manage_refused(exc: DomainError, tender_id: int, form: str):
    """Show a refused form's message beside that form; nothing the form did is kept."""
    if refusal(exc):
        raise exc
    db.session.rollback()
    tender = get_tender(tender_id, viewer_orgs())
    message, fields = form_error(exc)
    return _manage_page(tender, exc.status, error_for=form, error=message, errors=fields,
                        values=request.form.to_dict())


@bp.route("/tenders/<int:tender_id>/manage")
@login_required
def manage(tender_id: int):
    """The tenderer's desk for one tender: documents, publication, amendments, Q&A, objections."""
    tender = get_tender(tender_id, viewer_orgs())
    managing(tender, int_arg(request.args.get("org")))
    return _manage_page(tender)


def _uploads(actor, tender: Tender, kind: str) -> list[int]:
    files = [f for f in request.files.getlist("files") if f and f.filename]
    return [add_document(actor, tender, stream=f.stream, filename=f.filename, content_type=f.mimetype,
                         kind=kind).id for f in files]


@bp.route("/tenders/<int:tender_id>/documents", methods=["POST"])
@login_required
def upload(tender_id: int):
    """Upload documents to a draft (issued with it when it is published)."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    kind = request.form.get("kind") if request.form.get("kind") in DOCUMENT_KINDS else "biddingDocuments"
    try:
        if tender.status != TenderStatus.DRAFT:
            raise DomainError(_("Documents of a published tender are issued with an amendment; use the "
                                "amendment form."), code="use_amendment")
        ids = _uploads(actor, tender, kind)
        if not ids:
            raise DomainError(_("Choose at least one file to upload."), fields={"files": [_("No file chosen.")]})
        db.session.commit()
    except DomainError as exc:
        return _manage_refused(exc, tender_id, "upload")
    flash(ngettext("%(num)s file uploaded.", "%(num)s files uploaded.", len(ids)), "success")
    return redirect(url_for("tenders.manage", tender_id=tender.id))


@bp.route("/tenders/<int:tender_id>/publish", methods=["POST"])
@login_required
def publish(tender_id: int):
    """Publish the draft: every legal time and price rule is checked now (北京时间)."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    try:
        version = form_int("version") or 0
        commit_guarded(actor, "tender.publish", tender.id, version,
                       lambda: publish_tender(actor, tender, expected_version=version))
    except DomainError as exc:
        return _manage_refused(exc, tender_id, "publish")
    flash(_("Tender %(code)s is published.", code=tender.code), "success")
    return redirect(url_for("tenders.detail", tender_id=tender.id))


@bp.route("/tenders/<int:tender_id>/amendments", methods=["POST"])
@login_required
def amend(tender_id: int):
    """Publish an amendment (澄清/修改) with optional new deadline and documents."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    parsed = Parsed()
    new_deadline = parse_deadline(request.form, parsed, "new_deadline_at")
    if not parsed.ok:
        return _manage_page(tender, 422, error_for="amend", error=_("Correct the fields marked below."),
                            errors=parsed.errors, values=request.form.to_dict())
    changes = {"bid_deadline_at": new_deadline} if new_deadline else {}
    withdraw = [i for i in (int_arg(v) for v in request.form.getlist("withdraw_document_ids")) if i]
    try:
        added = _uploads(actor, tender, "clarifications")
        version = form_int("version") or 0
        amendment = commit_guarded(actor, "tender.amend", tender.id, version, lambda: amend_tender(
            actor, tender, summary=request.form.get("summary", ""),
            affects_bids=request.form.get("affects_bids") == "1", changes=changes,
            document_ids=added, withdraw_document_ids=withdraw, expected_version=version))
    except DomainError as exc:
        return _manage_refused(exc, tender_id, "amend")
    flash(_("Amendment No. %(number)s is published and every downloader is notified.",
            number=amendment.number), "success")
    return redirect(url_for("tenders.manage", tender_id=tender.id))


@bp.route("/tenders/<int:tender_id>/questions/<int:question_id>/answer", methods=["POST"])
@login_required
def question_answer(tender_id: int, question_id: int):
    """Publish the answer to a question (the asker stays anonymous)."""
    question = get_question(question_id)
    if question.tender_id != tender_id:
        raise NotFound()
    actor = managing(question.tender, form_int("organisation_id"))
    try:
        answer_question(actor, question, request.form.get("answer", ""))
        db.session.commit()
    except DomainError as exc:
        return _manage_refused(exc, tender_id, f"question-{question_id}")
    flash(_("The answer is published."), "success")
    return redirect(url_for("tenders.manage", tender_id=tender_id))


@bp.route("/tenders/<int:tender_id>/objections/<int:objection_id>/answer", methods=["POST"])
@login_required
def objection_answer(tender_id: int, objection_id: int):
    """Answer an objection (异议); the suspension ends when none is pending."""
    objection = get_objection(objection_id)
    if objection.tender_id != tender_id:
        raise NotFound()
    actor = managing(objection.tender, form_int("organisation_id"))
    try:
        answer_objection(actor, objection, request.form.get("answer", ""))
        db.session.commit()
    except DomainError as exc:
        return _manage_refused(exc, tender_id, f"objection-{objection_id}")
    flash(_("The objection is answered."), "success")
    return redirect(url_for("tenders.manage", tender_id=tender_id))


@bp.route("/tenders/<int:tender_id>/cancel", methods=["POST"])
@login_required
def cancel(tender_id: int):
    """Cancel (终止) the tender with a reason everyone can read."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    try:
        version = form_int("version")
        commit_guarded(actor, "tender.cancel", tender.id, version, lambda: cancel_tender(
            actor, tender, request.form.get("reason", ""), expected_version=version))
    except DomainError as exc:
        return _manage_refused(exc, tender_id, "cancel")
    flash(_("Tender %(code)s is cancelled.", code=tender.code), "success")
    return redirect(url_for("tenders.detail", tender_id=tender.id))


@bp.route("/tenders/<int:tender_id>/retender", methods=["POST"])
@login_required
def retender(tender_id: int):
    """Re-tender (重新招标) the failed lots: a new draft with the same lots, settings and documents."""
    tender = get_tender(tender_id, viewer_orgs())
    actor = managing(tender, form_int("organisation_id"))
    try:
        new = retenders.retender(actor, tender)
        db.session.commit()
    except DomainError as exc:
        return _manage_refused(exc, tender_id, "retender")
    flash(_("Draft %(code)s re-tenders %(old)s: set its periods, check its documents, then publish it.",
            code=new.code, old=tender.code), "success")
    return redirect(url_for("tenders.manage", tender_id=new.id))
