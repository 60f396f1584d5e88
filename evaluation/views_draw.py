"""Pages of the expert pool and the draw (blueprint ``evaluation_draw``).

* administrators: ``/evaluation/pool`` (search the pool, upload a CSV);
* a tender's managers: ``/tenders/<id>/draw`` (request form, then the status page: rounds with their
  commitments and revealed seeds, a verify button, member statuses; names sealed until the evaluation
  starts) and ``/tenders/<id>/draw/export`` (the JSON document ``ebid evaluation verify-draw`` checks);
* experts: ``/my/invitations`` (accept, decline, declare a conflict) and the sign-in page with the
  recusal declaration, which opens onto the scoring room.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from bidding.models import Tender
from bidding.tender_form import beijing_input, parse_beijing
from core.actor import Actor
from core.db import db
from core.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from core.forms import commit_form
from core.identity.access import current_actor
from core.identity.models import Role
from evaluation import drawing, experts, recusal
from evaluation.draw_rules import REASON_LABELS, RoundCheck
from evaluation.pool_models import CommitteeMember, DrawStatus, MemberStatus

bp = Blueprint("evaluation_draw", __name__)

STATUS_LABELS = {
    MemberStatus.WAITING: _l("Waiting (alternate)"), MemberStatus.INVITED: _l("Invited"),
    MemberStatus.ACCEPTED: _l("Accepted"), MemberStatus.DECLINED: _l("Declined"),
    MemberStatus.SIGNED_IN: _l("Signed in"), MemberStatus.RECUSED: _l("Recused (回避)"),
    MemberStatus.RELEASED: _l("Released"),
    DrawStatus.REQUESTED: _l("Requested"), DrawStatus.DRAWN: _l("Drawn, invitations out"),
    DrawStatus.COMPLETE: _l("Complete"), DrawStatus.SHORT: _l("Short of experts: top-up draw (补抽) needed"),
    DrawStatus.CANCELLED: _l("Cancelled"),
}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"draw_status_label": lambda s: str(STATUS_LABELS.get(s, s)),
            "draw_reason_label": lambda r: str(REASON_LABELS.get(r, r)), "beijing_input": beijing_input}


def _person():
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user._get_current_object()


def _tender(tender_id: int) -> Tender:
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound()
    return tender


def manager_actor(tender: Tender) -> Actor:
    """The tender's tenderer or agency staff, or a platform administrator (403 otherwise)."""
    who = _person()
    for role, org_id in ((Role.TENDERER, tender.tenderer_id), (Role.AGENCY, tender.agency_id)):
        if org_id is not None and who.has_role(role, org_id):
            return current_actor(role, org_id)
    if who.has_role(Role.ADMIN):
        return current_actor(Role.ADMIN)
    raise Forbidden(_l("Only the tender's tenderer or agency staff manage its expert draw."), code="not_manager")


# --- the pool (administrators) ---------------------------------------------------------------------------

@bp.route("/evaluation/pool", methods=["GET", "POST"])
@login_required
def pool():
    """Search the expert pool (评标专家库) and import a CSV."""
    actor = current_actor(Role.ADMIN)
    problems: list[tuple[int, str]] = []
    error = None
    if request.method == "POST":
        upload = request.files.get("file")
        data = upload.read() if upload else b""

        def run():
            if not data:
                raise ValidationFailed(_l("Choose a CSV file to upload."))
            return experts.import_experts(actor, data)
        report, refusal = commit_form(run)
        if report is not None:
            flash(_("Imported: %(created)s new, %(updated)s updated, %(persons)s new logins.",
                    created=len(report.created), updated=len(report.updated), persons=len(report.persons_created)),
                  "success")
            return redirect(url_for("evaluation_draw.pool"))
        error = refusal[0]
        problems = [(int(k.split()[-1]), m) for k, msgs in refusal[1].items() if k.startswith("line ") for m in msgs]
    query, specialty = request.args.get("q", ""), request.args.get("specialty", "")
    rows = experts.search(query, specialty or None)
    return render_template("evaluation/pool.html", rows=rows, query=query, specialty=specialty, error=error,
                           problems=sorted(problems), columns=experts.COLUMNS), 422 if error else 200


@bp.route("/evaluation/pool/<code>")
@login_required
def pool_expert(code: str):
    current_actor(Role.ADMIN)
    expert = experts.expert_by_code(code)
    if expert is None:
        raise NotFound()
    return render_template("evaluation/pool_expert.html", expert=expert, history=experts.history(expert.id))


# --- the tender's draw (managers) -----------------------------------------------------------------------

def _parse_int(value: str | None, name: str, errors: dict[str, list[str]], *, required: bool = False) -> int | None:
    text = (value or "").strip()
    if not text:
        if required:
            errors.setdefault(name, []).append(_("This field cannot be empty."))
        return None
    try:
        return int(text)
    except ValueError:
        errors.setdefault(name, []).append(_("Enter a whole number."))
        return None


def parse_specialties(text: str, errors: dict[str, list[str]]) -> list[tuple[str, int]]:
    """``A010101:3, B020202:2`` (or one per line) as (code, count) pairs."""
    out = []
    for part in text.replace("\n", ",").replace("；", ",").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        code, _sep, count = part.partition(":")
        try:
            out.append((code.strip().upper(), int(count)))
        except ValueError:
            errors.setdefault("specialties", []).append(
                _("Write each specialty as CODE:COUNT, e.g. A010101:3 (not '%(part)s').", part=part))
    return out


def _request_form(actor: Actor, tender: Tender) -> Any:
    form, errors = request.form, {}
    values = {"specialties": parse_specialties(form.get("specialties", ""), errors),
              "committee_size": _parse_int(form.get("committee_size"), "committee_size", errors, required=True),
              "tenderer_representatives": _parse_int(form.get("tenderer_representatives"), "tenderer_representatives",
                                                     errors) or 0,
              "alternates": _parse_int(form.get("alternates"), "alternates", errors) or 0,
              "is_remote": form.get("is_remote") == "1", "host_region": form.get("host_region", "").strip() or None,
              "local_cap": _parse_int(form.get("local_cap"), "local_cap", errors),
              "venues": [v.strip() for v in form.get("venues", "").splitlines() if v.strip()],
              "excluded_usccs": [u.strip().upper() for u in form.get("excluded_usccs", "").replace(",", "\n").splitlines()
                                 if u.strip()],
              "frequency_cap": _parse_int(form.get("frequency_cap"), "frequency_cap", errors)}
    try:
        values["check_in_at"] = parse_beijing(form.get("check_in_at"))
    except ValueError:
        errors["check_in_at"] = [_("Enter a date and time (Beijing time).")]
    if errors:
        raise ValidationFailed(fields=errors)
    return drawing.request_draw(actor, tender.id, **values)


def _status_context(tender: Tender, actor: Actor, **extra: Any) -> dict[str, Any]:
    draw_request = drawing.request_of(tender.id)
    started = recusal.evaluation_of(tender.id) is not None
    context = {"tender": tender, "draw_request": draw_request, "names_visible": started or actor.role == Role.ADMIN,
               "counts": recusal.status_counts(draw_request) if draw_request else {}, "checks": None,
               "error": None, "errors": {}, "values": request.form if request.method == "POST" else {},
               "evaluation": recusal.evaluation_of(tender.id), "read_only": False}
    context.update(extra)
    return context


@bp.route("/tenders/<int:tender_id>/draw", methods=["GET", "POST"])
@login_required
def draw_page(tender_id: int):
    """The request form, or once drawn the status page (statuses only; names sealed)."""
    tender = _tender(tender_id)
    actor = manager_actor(tender)
    if request.method == "POST":
        result, refusal = commit_form(lambda: _request_form(actor, tender))
        if refusal is None:
            flash(_("The draw request is saved."), "success")
            return redirect(url_for("evaluation_draw.draw_page", tender_id=tender.id))
        return render_template("evaluation/draw.html", **_status_context(tender, actor, error=refusal[0],
                                                                           errors=refusal[1])), refusal[2]
    return render_template("evaluation/draw.html", **_status_context(tender, actor))


@bp.route("/tenders/<int:tender_id>/draw/watch")
@login_required
def draw_watch(tender_id: int):
    """The draw's status page for supervisors (监督): the same page, read-only."""
    tender = _tender(tender_id)
    actor = current_actor(Role.SUPERVISOR)
    return render_template("evaluation/draw.html", **_status_context(tender, actor, read_only=True))


def _action(tender_id: int, service, done: str):
    tender = _tender(tender_id)
    actor = manager_actor(tender)
    result, refusal = commit_form(lambda: service(actor, tender.id))
    if refusal is not None:
        return render_template("evaluation/draw.html", **_status_context(tender, actor, error=refusal[0])), refusal[2]
    flash(done, "success")
    return redirect(url_for("evaluation_draw.draw_page", tender_id=tender.id))


@bp.post("/tenders/<int:tender_id>/draw/run")
@login_required
def draw_run(tender_id: int):
    return _action(tender_id, drawing.draw, _("The experts are drawn and the members invited."))


@bp.post("/tenders/<int:tender_id>/draw/top-up")
@login_required
def draw_top_up(tender_id: int):
    return _action(tender_id, drawing.top_up, _("Top-up draw (补抽) done; the new members are invited."))


@bp.post("/tenders/<int:tender_id>/evaluation/start")
@login_required
def evaluation_start(tender_id: int):
    """Start the evaluation (评标开始): the members sign in, the room opens, the names are unsealed."""
    from evaluation.room import start_evaluation

    return _action(tender_id, start_evaluation, _("The evaluation has started: the members are asked to sign in."))


@bp.post("/tenders/<int:tender_id>/draw/verify")
@login_required
def draw_verify(tender_id: int):
    """Run the same check as ``ebid evaluation verify-draw`` and show the verdict."""
    tender = _tender(tender_id)
    actor = manager_actor(tender)
    checks: list[RoundCheck] = drawing.verify_tender(tender.id)
    return render_template("evaluation/draw.html", **_status_context(tender, actor, checks=checks))


@bp.route("/tenders/<int:tender_id>/draw/export")
@login_required
def draw_export(tender_id: int):
    tender = _tender(tender_id)
    manager_actor(tender)
    data = drawing.export_document(tender)
    return Response(data, mimetype="application/json", headers={
        "Content-Disposition": f"attachment; filename=draw-{tender.code}.json"})


# --- experts ------------------------------------------------------------------------------------------

def _own(member_id: int) -> tuple[Actor, CommitteeMember]:
    actor = current_actor(Role.EXPERT)
    member = db.session.get(CommitteeMember, member_id)
    if member is None or member.expert.person_id != actor.person_id:
        raise NotFound()
    return actor, member


@bp.route("/my/invitations")
@login_required
def invitations():
    """The expert's invitations (评标邀请): accept, decline, declare a conflict, sign in."""
    actor = current_actor(Role.EXPERT)
    expert = experts.expert_of_person(actor.person_id)
    rows = [] if expert is None else list(db.session.scalars(
        select(CommitteeMember).where(CommitteeMember.expert_id == expert.id,
                                      CommitteeMember.status != MemberStatus.WAITING)
        .order_by(CommitteeMember.id.desc())))
    started = {m.tender_id: recusal.evaluation_of(m.tender_id) for m in rows}
    return render_template("evaluation/invitations.html", expert=expert, rows=rows, started=started)


def _expert_action(member_id: int, service, done: str, *args: Any):
    actor, member = _own(member_id)
    _result, refusal = commit_form(lambda: service(actor, member.id, *args))
    if refusal is not None:
        flash(refusal[0], "error")
    else:
        flash(done, "success")
    return redirect(url_for("evaluation_draw.invitations"))


@bp.post("/my/invitations/<int:member_id>/accept")
@login_required
def invitation_accept(member_id: int):
    return _expert_action(member_id, recusal.accept, _("You accepted the invitation."))


@bp.post("/my/invitations/<int:member_id>/decline")
@login_required
def invitation_decline(member_id: int):
    return _expert_action(member_id, recusal.decline, _("You declined the invitation."), request.form.get("reason", ""))


@bp.post("/my/invitations/<int:member_id>/conflict")
@login_required
def invitation_conflict(member_id: int):
    return _expert_action(member_id, recusal.declare_conflict, _("Your recusal (回避) is recorded."),
                          request.form.get("reason", ""))


@bp.route("/my/invitations/<int:member_id>/sign-in", methods=["GET", "POST"])
@login_required
def sign_in(member_id: int):
    """Sign in to the evaluation: read the declaration (回避声明), sign it with the certificate or the name."""
    actor, member = _own(member_id)
    evaluation = recusal.evaluation_of(member.tender_id)
    error, status = None, 200
    if request.method == "POST":
        form = request.form
        _result, refusal = commit_form(lambda: recusal.sign_in(
            actor, member.id, text_sha256=form.get("text_sha256", ""), signature=form.get("signature") or None,
            typed_name=form.get("typed_name")))
        if refusal is None:
            db.session.refresh(member)
            if member.status == MemberStatus.SIGNED_IN:
                flash(_("You are signed in. The scoring room opens once every seat is signed in."), "success")
            else:
                flash(_("You are recused (回避): %(reason)s. Thank you; an alternate is invited.",
                        reason=member.recusal_reason), "warning")
            return redirect(url_for("evaluation_draw.sign_in", member_id=member.id))
        error, status = refusal[0], refusal[2]
    text = recusal.declaration_text(member) if evaluation is not None else None
    has_cert = bool(recusal.valid_certificates(member.expert.person)) if text else False
    return render_template("evaluation/signin.html", member=member, evaluation=evaluation, text=text,
                           text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None,
                           has_certificate=has_cert, error=error), status


def register(app: Flask) -> None:
    """Attach the pool, draw, invitation and sign-in pages to ``app``."""
    app.register_blueprint(bp)
