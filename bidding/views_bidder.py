"""Bidder pages (投标人): download the tender documents, ask a question, raise an objection, notifications."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from bidding.clarifications import ask_question, raise_objection
from bidding.models import Objection, Question
from bidding.queries import get_document, get_tender
from bidding.services import record_download
from bidding.view_support import (
    acting_as,
    bp,
    detail_context,
    form_error,
    form_int,
    int_arg,
    manages,
    managing,
    refusal,
    viewer_orgs,
)
from core.db import db
from core.errors import DomainError, NotFound
from core.forms import commit_form
from core.identity.models import Role
from core.notifications import Notification
from core.storage import default_store

NOTIFICATIONS_SHOWN = 200


@bp.route("/tenders/<int:tender_id>/documents/<int:document_id>")
@login_required
def download(tender_id: int, document_id: int):
    """Download an issued document; a bidder's first download is recorded (to notify it of amendments)."""
    tender = get_tender(tender_id, viewer_orgs())
    document = get_document(document_id)
    if document.tender_id != tender.id:
        raise NotFound()
    organisation_id = int_arg(request.args.get("org"))
    actor = managing(tender, organisation_id) if manages(tender) else acting_as((Role.BIDDER,), organisation_id)
    try:
        record_download(actor, document)
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        db.session.rollback()
        flash(form_error(exc)[0], "error")
        return redirect(url_for("tenders.detail", tender_id=tender.id))
    return send_file(default_store().open(document.sha256), mimetype=document.content_type,
                     as_attachment=True, download_name=document.filename, etag=document.sha256)


def _bidder_form(tender_id: int, form: str, verb):
    tender = get_tender(tender_id, viewer_orgs())
    actor = acting_as((Role.BIDDER,), form_int("organisation_id"))
    _result, refused = commit_form(lambda: verb(actor, tender, request.form.get("text", "")))
    if refused is not None:
        message, fields, status = refused
        tender = get_tender(tender_id, viewer_orgs())
        context = detail_context(tender, error_for=form, error=message, errors=fields,
                                 values=request.form.to_dict())
        return render_template("bidding/detail.html", **context), status
    return None


@bp.route("/tenders/<int:tender_id>/questions", methods=["POST"])
@login_required
def ask(tender_id: int):
    """Ask a question about the tender documents (answered publicly, the asker stays anonymous)."""
    refused = _bidder_form(tender_id, "ask", ask_question)
    if refused:
        return refused
    flash(_("Your question is sent. The answer will be published on this page and you will be notified."),
          "success")
    return redirect(url_for("tenders.detail", tender_id=tender_id))


@bp.route("/tenders/<int:tender_id>/objections", methods=["POST"])
@login_required
def objection(tender_id: int):
    """Raise an objection (异议) to the tender documents; the procedure is suspended until it is answered."""
    refused = _bidder_form(tender_id, "object", raise_objection)
    if refused:
        return refused
    flash(_("Your objection is recorded. The procedure is suspended until the tenderer answers it."), "success")
    return redirect(url_for("tenders.detail", tender_id=tender_id))


@bp.route("/my/notifications")
@login_required
def notifications():
    """The person's notifications: amendments, answers, objections (newest first)."""
    items = db.session.scalars(select(Notification).where(Notification.person_id == current_user.id)
                               .order_by(Notification.created_at.desc(), Notification.id.desc())
                               .limit(NOTIFICATIONS_SHOWN)).all()
    links = {item.id: _link(item) for item in items}
    return render_template("bidding/notifications.html", items=items, links=links)


def _link(item: Notification) -> str | None:
    """Where a notification leads: the tender it concerns."""
    if item.object_id is None:
        return None
    if item.object_type == "tender":
        return url_for("tenders.detail", tender_id=item.object_id)
    model = {"question": Question, "objection": Objection}.get(item.object_type or "")
    obj = db.session.get(model, item.object_id) if model else None
    return url_for("tenders.detail", tender_id=obj.tender_id) if obj else None
