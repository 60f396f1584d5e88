"""Supervision pages (监督), blueprint ``supervision``.

* ``/supervision``: the live console — every tender in opening or evaluation now, with its hall, room,
  screens and suspension one click away, and the live feed of the centre's events (Socket.IO
  ``/supervision``) with filters by tender, organisation and event kind.
* ``/supervision/tenders/<id>``: one tender: suspend or resume it, the collusion screens with their
  evidence (run again on demand), its complaints, its transparency log (searchable, verified on demand)
  and its audit events, the complete file (一项一档) to download.
* ``/supervision/complaints``: every complaint, to accept or reject, then decide.
* ``/tenders/<id>/complaints``: bidders file a complaint about a matter they objected to; decided
  complaints are published there for everyone.

Only supervisors (and administrators, read-only) open the supervision pages; the only writes are the
suspension, the screens' run (a read that is recorded) and complaint decisions.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import and_, or_, select

from bidding.models import Objection, Tender, TenderStatus
from bidding.queries import get_tender, managed_organisation_ids
from bidding.record_models import OpeningRecord, RecordObjection
from core.audit import AuditEvent
from core.db import db
from core.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from core.forms import commit_form, flash_and_redirect
from core.identity.access import current_actor
from core.identity.models import Organisation, Role
from core.storage import default_store
from evaluation.result_models import ResultObjection
from evaluation.room_models import Evaluation
from supervision import log_check, services
from supervision.feed import NAMESPACE, event_payload
from supervision.models import Complaint, ComplaintStatus
from supervision.screening import latest_run, run_screens

bp = Blueprint("supervision", __name__)
LIVE = (TenderStatus.OPENING, TenderStatus.EVALUATION, TenderStatus.PUBLICITY)
FEED_SIZE = 100


def _viewer():
    """A supervisor, or an administrator (who reads); anyone else is refused."""
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    person = current_user._get_current_object()
    if not (person.has_role(Role.SUPERVISOR) or person.has_role(Role.ADMIN)):
        raise Forbidden(_l("The supervision pages are for supervisors (监督人员)."), code="not_supervisor")
    return person


def _supervisor_actor():
    return current_actor(Role.SUPERVISOR)


def _filters() -> dict[str, str]:
    return {k: (request.args.get(k) or "").strip() for k in ("tender", "organisation", "kind")}


def recent_events(filters: dict[str, str], limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The latest audit events of the centre, newest first, filtered like the live feed."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if filters.get("kind"):
        stmt = stmt.where(AuditEvent.action.startswith(filters["kind"]))
    if filters.get("organisation", "").isdigit():
        stmt = stmt.where(AuditEvent.organisation_id == int(filters["organisation"]))
    if filters.get("tender", "").isdigit():  # the tender's own events and those naming it (as tender_of reads)
        tender_id = int(filters["tender"])
        stmt = stmt.where(or_(and_(AuditEvent.object_type == "tender", AuditEvent.object_id == str(tender_id)),
                              AuditEvent.summary["tender_id"].as_integer() == tender_id))
    return [{**event_payload(event), "at_dt": event.at} for event in db.session.scalars(stmt.limit(limit))]


@bp.route("/supervision")
@login_required
def console():
    _viewer()
    live = list(db.session.scalars(select(Tender).where(or_(Tender.status.in_(LIVE), Tender.hold_reason.is_not(None)))
                                   .order_by(Tender.bid_deadline_at.desc())))
    rooms = {e.tender_id: e for e in db.session.scalars(select(Evaluation).where(
        Evaluation.tender_id.in_([t.id for t in live])))} if live else {}
    runs = {t.id: latest_run(t.id) for t in live}
    filters = _filters()
    open_complaints = db.session.scalar(select(db.func.count(Complaint.id)).where(
        Complaint.status.in_([ComplaintStatus.FILED, ComplaintStatus.ACCEPTED])))
    return render_template("supervision/console.html", tenders=live, rooms=rooms, runs=runs, filters=filters,
                           events=recent_events(filters), namespace=NAMESPACE, open_complaints=open_complaints,
                           organisations=db.session.scalars(select(Organisation).order_by(Organisation.name)).all())


@bp.route("/supervision/tenders/<int:tender_id>")
@login_required
def tender_page(tender_id: int):
    person = _viewer()
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound()
    kind, text = request.args.get("log_kind") or None, request.args.get("log_q") or None
    verdict = log_check.verify_log(tender.id) if request.args.get("verify") == "log" else None
    run = latest_run(tender.id)
    explained = [(f, explain(f)) for f in (run.findings if run else [])]
    return render_template("supervision/tender.html", tender=tender, run=run, explained=explained,
                           complaints=services.complaints_of(tender.id),
                           log=log_check.search_entries(tender.id, kind, text, limit=300), log_kind=kind or "",
                           log_q=text or "", verdict=verdict,
                           events=recent_events({"tender": str(tender.id)}, limit=300),
                           evaluation=db.session.scalar(select(Evaluation).where(Evaluation.tender_id == tender.id)),
                           can_act=person.has_role(Role.SUPERVISOR))


def explain(finding: dict[str, Any]) -> str:
    """A finding's sentence in the reader's language (a placeholder may itself be a message id)."""
    params = {k: _(v) if isinstance(v, str) and v else v for k, v in (finding.get("params") or {}).items()}
    return _(finding["explanation"]) % params


@bp.route("/supervision/tenders/<int:tender_id>/suspend", methods=["POST"])
@login_required
def suspend(tender_id: int):
    actor = _supervisor_actor()
    _r, refusal = commit_form(lambda: services.suspend_tender(actor, tender_id, request.form.get("reason", "")))
    return flash_and_redirect(refusal, _("The procedure is suspended."), url_for(".tender_page", tender_id=tender_id))


@bp.route("/supervision/tenders/<int:tender_id>/resume", methods=["POST"])
@login_required
def resume(tender_id: int):
    actor = _supervisor_actor()
    _r, refusal = commit_form(lambda: services.resume_tender(actor, tender_id))
    return flash_and_redirect(refusal, _("The procedure is resumed."), url_for(".tender_page", tender_id=tender_id))


@bp.route("/supervision/tenders/<int:tender_id>/screens", methods=["POST"])
@login_required
def screens(tender_id: int):
    actor = _supervisor_actor()
    _r, refusal = commit_form(lambda: run_screens(actor, tender_id, trigger="manual"))
    return flash_and_redirect(refusal, _("The screens ran again."), url_for(".tender_page", tender_id=tender_id))


@bp.route("/supervision/tenders/<int:tender_id>/archive.zip")
@login_required
def archive(tender_id: int):
    """The tender's complete file (一项一档): every document, envelope, receipt, log, record and signed PDF."""
    person = _viewer()
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound()
    from core.identity.access import actor_for
    from supervision.archive import export_archive

    buffer = io.BytesIO()
    role = Role.SUPERVISOR if person.has_role(Role.SUPERVISOR) else Role.ADMIN
    manifest = export_archive(tender.id, buffer, actor=actor_for(person, role))
    db.session.commit()
    return Response(buffer.getvalue(), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="tender-file-{tender.code}.zip"',
        "X-Manifest-SHA256": manifest.sha256})


@bp.route("/supervision/complaints")
@login_required
def complaints():
    person = _viewer()
    return render_template("supervision/complaints.html", complaints=services.complaints_of(),
                           can_act=person.has_role(Role.SUPERVISOR))


@bp.route("/supervision/complaints/<int:complaint_id>/accept", methods=["POST"])
@login_required
def accept(complaint_id: int):
    actor = _supervisor_actor()
    decision = request.form.get("decision")
    _r, refusal = commit_form(lambda: services.accept_complaint(actor, complaint_id, decision == "accept",
                                                                request.form.get("note", "")))
    return flash_and_redirect(refusal, _("Recorded."), request.form.get("next") or url_for(".complaints"))


@bp.route("/supervision/complaints/<int:complaint_id>/decide", methods=["POST"])
@login_required
def decide(complaint_id: int):
    actor = _supervisor_actor()
    _r, refusal = commit_form(lambda: services.decide_complaint(actor, complaint_id, request.form.get("outcome", ""),
                                                                request.form.get("decision", "")))
    return flash_and_redirect(refusal, _("The decision is published."), request.form.get("next") or url_for(".complaints"))


@bp.route("/complaints/<int:complaint_id>/attachment")
@login_required
def attachment(complaint_id: int):
    complaint = db.session.get(Complaint, complaint_id)
    person = current_user._get_current_object()
    own = complaint is not None and person.has_role(Role.BIDDER, complaint.organisation_id)
    if complaint is None or complaint.attachment_sha256 is None:
        raise NotFound()
    if not (own or person.has_role(Role.SUPERVISOR) or person.has_role(Role.ADMIN)):
        raise Forbidden()
    return Response(default_store().read_bytes(complaint.attachment_sha256), mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="complaint-{complaint.id}-attachment"'})


# --- the bidders' side ------------------------------------------------------------------------------------

def _own_objections(tender: Tender, org_ids: set[int]) -> list[tuple[str, int, str]]:
    """(kind, id, text) of the viewer's organisations' objections in the tender, to complain about."""
    out: list[tuple[str, int, str]] = []
    if not org_ids:
        return out
    for o in db.session.scalars(select(Objection).where(Objection.tender_id == tender.id,
                                                        Objection.organisation_id.in_(org_ids))):
        out.append(("documents", o.id, o.text))
    record = db.session.scalar(select(OpeningRecord).where(OpeningRecord.tender_id == tender.id))
    if record is not None:
        for o in db.session.scalars(select(RecordObjection).where(RecordObjection.record_id == record.id,
                                                                  RecordObjection.organisation_id.in_(org_ids))):
            out.append(("opening", o.id, o.text))
    for o in db.session.scalars(select(ResultObjection).where(ResultObjection.tender_id == tender.id,
                                                              ResultObjection.organisation_id.in_(org_ids))):
        out.append(("result", o.id, o.text))
    return out


@bp.route("/tenders/<int:tender_id>/complaints", methods=["GET", "POST"])
def tender_complaints(tender_id: int):
    """Decided complaints for everyone; a bidder's own complaints and the form to file one."""
    viewer = current_user if current_user and current_user.is_authenticated else None
    tender = get_tender(tender_id, managed_organisation_ids(viewer))
    bidder_orgs = {g.organisation_id for g in viewer.grants if g.role == Role.BIDDER} if viewer else set()
    if request.method == "POST":
        if viewer is None:
            raise NotAuthenticated()
        actor = current_actor(Role.BIDDER, request.form.get("organisation_id", type=int))
        upload = request.files.get("attachment")
        data = upload.read(services.MAX_ATTACHMENT + 1) if upload and upload.filename else None
        kind, _sep, objection_id = (request.form.get("objection") or "").partition(":")

        def run():
            if not objection_id.isdigit():
                raise ValidationFailed(_l("Choose the objection your complaint is about."),
                                       fields={"objection": _l("Choose one of your objections.")})
            return services.file_complaint(actor, tender.id, kind, int(objection_id), request.form.get("text", ""),
                                           (upload.filename, data) if data is not None else None)
        _r, refusal = commit_form(run)
        return flash_and_redirect(refusal, _("Your complaint is filed; the supervisors accept or reject it within 3 working days."),
                     url_for(".tender_complaints", tender_id=tender.id))
    public = services.complaints_of(tender.id, published_only=True)
    own = [c for c in services.complaints_of(tender.id) if c.organisation_id in bidder_orgs]
    return render_template("supervision/tender_complaints.html", tender=tender, public=public, own=own,
                           objections=_own_objections(tender, bidder_orgs))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
