"""Scoring room pages (评标室), blueprint ``evaluation_room``.

* ``/evaluations/<id>/room``: the room for the committee's signed-in members and for supervisors (the same
  page, read-only, with the suspend/resume control). The page is a shell: ``ebid/static/room/room.js``
  connects to the ``/room`` Socket.IO namespace (:mod:`evaluation.room_socket`) and renders the state.
* ``/evaluations/<id>/bids/<bid_opening_id>/file``: a decrypted bid's ZIP, for the room's members and
  supervisors only.
* ``/tenders/<id>/clarifications``: the bidder's page of the committee's clarification requests (澄清) to
  its organisation, with a form to answer each; new requests arrive live.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bidding.opening_models import BidOpening, BidOpeningStatus
from bidding.queries import get_tender
from core.clock import as_utc, beijing, now
from core.db import db
from core.errors import Forbidden, NotFound
from core.forms import commit_form
from core.identity.access import actor_for
from core.identity.models import Person, Role
from core.storage import default_store
from evaluation import room
from evaluation.room_events import NAMESPACE
from evaluation.room_models import Clarification, ClarificationStatus, Evaluation
from evaluation.room_state import room_access

bp = Blueprint("evaluation_room", __name__)
AUTOSAVE_MS = 600  # a draft is saved this long after the last keystroke


def bidder_room(tender_id: int, organisation_id: int) -> str:
    """The room of one bidder organisation's clarification page in one tender."""
    return f"clarifications:{tender_id}:{organisation_id}"


def bidder_orgs_in(tender_id: int, person: Person) -> list[int]:
    """The person's bidder organisations with an opened bid in the tender (those the committee may ask)."""
    org_ids = {g.organisation_id for g in person.grants if g.role == Role.BIDDER and g.organisation_id}
    if not org_ids:
        return []
    rows = db.session.scalars(select(BidOpening.organisation_id).where(
        BidOpening.tender_id == tender_id, BidOpening.organisation_id.in_(org_ids)).distinct())
    return sorted(set(rows))


def for_organisations(tender_id: int, org_ids: list[int]) -> list[Clarification]:
    """The committee's clarification requests to these organisations in the tender, oldest first."""
    if not org_ids:
        return []
    return list(db.session.scalars(
        select(Clarification).join(Evaluation, Evaluation.id == Clarification.evaluation_id)
        .where(Evaluation.tender_id == tender_id, Clarification.organisation_id.in_(org_ids))
        .options(selectinload(Clarification.organisation),
                 selectinload(Clarification.bid_opening).selectinload(BidOpening.lot))
        .order_by(Clarification.asked_at, Clarification.id)))


def clarification_view(row: Clarification) -> dict[str, Any]:
    """A clarification request as the bidder sees it (the asking expert stays anonymous)."""
    status = row.status.value
    if status == ClarificationStatus.OPEN.value and now() >= as_utc(row.due_at):
        status = ClarificationStatus.EXPIRED.value
    return {"id": row.id, "evaluation_id": row.evaluation_id, "bid_opening_id": row.bid_opening_id,
            "organisation_id": row.organisation_id, "organisation": row.organisation.name,
            "lot": row.bid_opening.lot.code, "question": row.question, "status": status,
            "asked_at": as_utc(row.asked_at).isoformat(), "due_at": as_utc(row.due_at).isoformat(),
            "answer": row.answer, "answered_at": as_utc(row.answered_at).isoformat() if row.answered_at else None}


def room_strings() -> dict[str, str]:
    """The sentences and labels room.js shows, in the reader's language (the script holds no text)."""
    return {
        "connected": _("Connected: live"), "disconnected": _("Connection lost: reconnecting…"),
        "refused": _("The room refused the connection: %(reason)s"), "network": _("The server cannot be reached."),
        "status_signing_in": _("Signing in (签到)"), "status_scoring": _("Scoring (评分)"),
        "status_summary": _("Summary (汇总)"), "status_complete": _("Complete (评标结束)"),
        "status_suspended": _("Suspended (暂停)"),
        "suspended": _("The supervisor suspended the room: %(reason)s. Nothing can be changed until it resumes."),
        "saving": _("Saving…"), "saved": _("Saved (revision %(revision)s)"), "save_failed": _("Not saved: %(reason)s"),
        "submitted": _("Submitted"), "draft": _("Draft"), "submit": _("Submit this sheet"),
        "pass": _("Pass (合格)"), "fail": _("Fail (不合格)"), "fail_reason": _("Reason for fail (required)"),
        "range": _("%(min)s – %(max)s"),
        "progress": _("%(filled)s / %(total)s"), "chair": _("Chair (主任委员)"), "votes": _("%(n)s votes"),
        "vote_chair": _("Vote"), "present": _("online"), "absent": _("offline"), "supervisor": _("supervisor"),
        "nobody": _("Nobody is connected."), "no_clarifications": _("No clarification requests yet."),
        "no_disputes": _("No disputes."), "no_warnings": _("No deviation warnings."),
        "status_open": _("waiting for the answer"), "status_answered": _("answered"), "status_expired": _("expired"),
        "due": _("due %(at)s (Beijing time)"), "answer": _("Answer"), "hidden_sheet": _("hidden until both have submitted"),
        "warning": _("%(member)s scored %(criterion)s %(value)s; the others' mean is %(mean)s (range %(range)s)."),
        "dispute_votes": _("pass %(pass)s · fail %(fail)s"), "decided": _("decided: %(outcome)s"),
        "vote_pass": _("Vote pass"), "vote_fail": _("Vote fail"), "bid_file": _("Bid file (ZIP)"),
        "record_pdf": _("Opening record (PDF)"), "you": _("you"), "no_bids": _("No opened bids."),
        "member": _("Member"), "all_sheets": _("Sheets of all members"),
    }


@bp.app_template_global("clarifications_url")
def clarifications_url(tender) -> str | None:
    """The tender page's link to the bidder's clarification page: for a bidder with an opened bid, once the
    evaluation has started; None for everyone else."""
    if not current_user.is_authenticated or not current_user.has_role(Role.BIDDER):
        return None
    if db.session.scalar(select(Evaluation.id).where(Evaluation.tender_id == tender.id)) is None:
        return None
    if not bidder_orgs_in(tender.id, current_user._get_current_object()):
        return None
    return url_for("evaluation_room.clarifications", tender_id=tender.id)


def _room_access(evaluation_id: int):
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is None:
        raise NotFound(_l("There is no evaluation %(id)s."), id=evaluation_id)
    access = room_access(current_user.id, evaluation_id)
    if access is None:
        raise Forbidden(_l("The scoring room is open to the committee's signed-in members and to the supervisors."),
                        code="room_refused")
    return evaluation, access


@bp.route("/evaluations/<int:evaluation_id>/room")
@login_required
def room_page(evaluation_id: int):
    """The scoring room: bids, the viewer's own sheets, progress, members, chair, clarifications, disputes."""
    evaluation, access = _room_access(evaluation_id)
    config = {
        "evaluationId": evaluation.id, "tenderId": evaluation.tender_id, "namespace": NAMESPACE,
        "socketPath": "/socket.io", "role": access.role, "memberId": access.member_id,
        "personId": access.person_id, "autosaveMs": AUTOSAVE_MS,
    }
    return render_template("evaluation/room.html", evaluation=evaluation, tender=evaluation.tender, access=access,
                           config=config, strings=room_strings(),
                           vendor=url_for("static", filename="vendor/socket.io/socket.io.min.js"))


@bp.route("/evaluations/<int:evaluation_id>/bids/<int:bid_opening_id>/file")
@bp.route("/evaluations/<int:evaluation_id>/bids/<int:bid_opening_id>/bid.zip")
@login_required
def bid_file(evaluation_id: int, bid_opening_id: int):
    """A decrypted bid's ZIP (the bid file as decrypted at the opening), for the room only."""
    evaluation, _access = _room_access(evaluation_id)
    row = db.session.get(BidOpening, bid_opening_id)
    if (row is None or row.tender_id != evaluation.tender_id or row.status != BidOpeningStatus.DECRYPTED
            or not row.plaintext_sha256):
        raise NotFound(_l("This tender has no decrypted bid %(id)s."), id=bid_opening_id)
    store = default_store()
    if not store.exists(row.plaintext_sha256):
        raise NotFound(_l("The decrypted bid file is missing from the platform's storage; tell the platform "
                          "operator."), code="bid_file_missing")
    name = f"bid-{evaluation.tender.code}-{row.lot.code}-{row.organisation.uscc or row.organisation_id}.zip"
    return send_file(store.open(row.plaintext_sha256), mimetype="application/zip", as_attachment=True,
                     download_name=name)


def _bidder_page(tender_id: int):
    tender = get_tender(tender_id)
    org_ids = bidder_orgs_in(tender.id, current_user._get_current_object())
    if not org_ids:
        raise Forbidden(_l("Only a bidder with a bid in this tender sees the committee's clarification requests."),
                        code="bidder_required")
    return tender, org_ids


@bp.route("/tenders/<int:tender_id>/clarifications", methods=["GET", "POST"])
@login_required
def clarifications(tender_id: int):
    """The bidder's page: the committee's clarification requests to its organisation, each with an answer form."""
    tender, org_ids = _bidder_page(tender_id)
    error, failed_id = None, None
    if request.method == "POST":
        failed_id = request.form.get("clarification_id", type=int)
        row = db.session.get(Clarification, failed_id) if failed_id else None
        evaluation = db.session.get(Evaluation, row.evaluation_id) if row is not None else None
        if row is None or row.organisation_id not in org_ids or evaluation is None or evaluation.tender_id != tender.id:
            raise NotFound(_l("There is no such clarification request to your organisation."))
        actor = actor_for(current_user._get_current_object(), Role.BIDDER, row.organisation_id,
                          source=request.remote_addr)
        answer = request.form.get("answer", "")
        _result, refused = commit_form(lambda: room.answer_clarification(actor, row.id, answer))
        if refused is None:
            return redirect(url_for("evaluation_room.clarifications", tender_id=tender.id) + f"#c{row.id}", 303)
        error = refused[0]
    rows = [{**clarification_view(c), "due_text": f"{beijing(c.due_at):%Y-%m-%d %H:%M}"}
            for c in for_organisations(tender.id, org_ids)]
    config = {"tenderId": tender.id, "namespace": NAMESPACE, "socketPath": "/socket.io",
              "csrfToken": generate_csrf(), "action": url_for("evaluation_room.clarifications", tender_id=tender.id)}
    strings = {k: v for k, v in room_strings().items() if k.startswith(("status_", "connected", "disconnected",
                                                                         "refused", "due", "answer"))}
    strings["none"] = _("The committee has not asked your organisation anything.")
    strings["send"] = _("Send the answer")
    return render_template("evaluation/clarifications.html", tender=tender, rows=rows, config=config,
                           strings=strings, error=error, failed_id=failed_id,
                           answer=request.form.get("answer", "") if error else "",
                           vendor=url_for("static", filename="vendor/socket.io/socket.io.min.js")), \
        (422 if error else 200)


def register(app: Flask) -> None:
    """Attach the scoring room pages to ``app``."""
    app.register_blueprint(bp)
