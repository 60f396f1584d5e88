"""Results pages (评标结果), blueprint ``evaluation_results``.

* ``/evaluations/<id>/results``: the committee and the supervisors: the result computed by the tender's
  method (a live preview while the committee decides, frozen once completed), the chair's decisions on
  abnormally low bids and on too little competition, each member's dissent, and the report to sign
  (download the current revision, sign it with ``ebid client report sign`` or any PAdES tool with your
  platform certificate, upload it) with every signature's verification.
* ``/tenders/<id>/results``: the tender's result for everyone allowed to see it: the managers (report,
  评定分离 choice, publicity, objections, award), bidders (candidates, objections, their own bids'
  explanations) and the public (candidates during publicity, then the award).
* ``/tenders/<id>/results/bids/<bid_opening_id>`` (and ``.pdf``): how one bid's price score was computed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from bidding.models import Tender, TenderStatus
from bidding.opening_models import BidOpening
from bidding.queries import get_tender, managed_organisation_ids
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, NotFound, ValidationFailed
from core.forms import commit_form, flash_and_redirect
from core.identity.access import current_actor
from core.identity.models import Role
from evaluation import award as awards
from evaluation import explain_pdf, outcome, results
from evaluation import report as reports
from evaluation.result_models import ReportStatus
from evaluation.results_api import may_read, verdict_view
from evaluation.room_models import EvaluationStatus
from evaluation.room_state import get_evaluation, room_access
from evaluation.views_draw import manager_actor

bp = Blueprint("evaluation_results", __name__)
MAX_SIGNED_PDF = 20 * 1024 * 1024


# --- the committee's results page ---------------------------------------------------------------------------

def _access(evaluation_id: int):
    access = room_access(current_user.id, evaluation_id)
    if access is None:
        raise Forbidden(_l("Only the committee's signed-in members and the supervisors see this page."),
                        code="not_in_room")
    return access


def _lots_view(evaluation) -> tuple[list[dict[str, Any]], str | None, bool]:
    """(lots, problem, frozen): the stored result, or the preview while the committee decides."""
    stored = outcome.result_of(evaluation.id)
    if stored is not None:
        return stored.lots, None, True
    try:
        return results.compute(evaluation).lots, None, False
    except ValidationFailed as exc:
        return [], exc.to_dict()["message"], False


@bp.route("/evaluations/<int:evaluation_id>/results")
@login_required
def committee(evaluation_id: int):
    evaluation = get_evaluation(evaluation_id)
    access = _access(evaluation.id)
    lots, problem, frozen = _lots_view(evaluation)
    report = reports.get_report(evaluation.tender_id)
    verdict = verdict_view(report) if report is not None else None
    my_field = reports.field_of_person(report, current_user.id) if report is not None else None
    signed_fields = {s.field for s in report.signatures} if report is not None else set()
    titles = {c["code"]: _(c["title"]) for c in evaluation.criteria}
    dissents = outcome.dissents_of(evaluation.id)
    mine = next((d for d in dissents if d.member_id == access.member_id), None)
    return render_template("evaluation/results.html", evaluation=evaluation, access=access, lots=lots,
                           problem=problem, frozen=frozen, report=report, verdict=verdict, my_field=my_field,
                           signed_fields=signed_fields, titles=titles, dissents=dissents, my_dissent=mine,
                           is_chair=access.member_id is not None and access.member_id == evaluation.chair_member_id,
                           summary_stage=evaluation.status == EvaluationStatus.SUMMARY,
                           step_lines=reports.step_lines)


@bp.route("/evaluations/<int:evaluation_id>/results/low-price/<int:bid_opening_id>", methods=["POST"])
@login_required
def low_price(evaluation_id: int, bid_opening_id: int):
    actor = current_actor()
    _r, refusal = commit_form(lambda: outcome.decide_low_price(
        actor, evaluation_id, bid_opening_id, request.form.get("outcome", ""), request.form.get("reason", "")))
    return flash_and_redirect(refusal, _("Decision recorded."), url_for(".committee", evaluation_id=evaluation_id))


@bp.route("/evaluations/<int:evaluation_id>/results/competition/<int:lot_id>", methods=["POST"])
@login_required
def competition(evaluation_id: int, lot_id: int):
    actor = current_actor()
    _r, refusal = commit_form(lambda: outcome.decide_competition(
        actor, evaluation_id, lot_id, request.form.get("outcome", ""), request.form.get("reason", "")))
    return flash_and_redirect(refusal, _("Decision recorded."), url_for(".committee", evaluation_id=evaluation_id))


@bp.route("/evaluations/<int:evaluation_id>/results/dissent", methods=["POST"])
@login_required
def dissent(evaluation_id: int):
    actor = current_actor()
    _r, refusal = commit_form(lambda: outcome.write_dissent(actor, evaluation_id, request.form.get("text", "")))
    return flash_and_redirect(refusal, _("Your dissent is recorded."), url_for(".committee", evaluation_id=evaluation_id))


@bp.route("/evaluations/<int:evaluation_id>/report/sign", methods=["POST"])
@login_required
def sign_upload(evaluation_id: int):
    evaluation = get_evaluation(evaluation_id)
    upload = request.files.get("pdf")
    data = upload.read(MAX_SIGNED_PDF + 1) if upload else b""
    actor = current_actor()

    def run():
        if not data:
            raise ValidationFailed(_l("Choose the signed PDF to upload."), fields={"pdf": _l("Choose a file.")})
        return reports.accept_signature(actor, evaluation.tender_id, data)
    _r, refusal = commit_form(run)
    return flash_and_redirect(refusal, _("Your signature is on the report."), url_for(".committee", evaluation_id=evaluation_id))


@bp.route("/evaluations/<int:evaluation_id>/report.pdf")
@login_required
def committee_pdf(evaluation_id: int):
    evaluation = get_evaluation(evaluation_id)
    report = reports.require_report(evaluation.tender_id)
    if not may_read(report, current_user):
        raise Forbidden()
    return Response(reports.current_pdf(report), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="evaluation-report-{report.tender.code}.pdf"'})


# --- the tender's results page --------------------------------------------------------------------------------

def _viewer_orgs() -> set[int]:
    if not current_user or not current_user.is_authenticated:
        return set()
    return {g.organisation_id for g in current_user.grants if g.organisation_id}


def _is_manager(tender: Tender) -> bool:
    return bool(_viewer_orgs() & {tender.tenderer_id, tender.agency_id}) or (
        current_user.is_authenticated and current_user.has_role(Role.ADMIN))


def _bids_of_viewer(tender: Tender) -> list[int]:
    orgs = _viewer_orgs()
    if not orgs:
        return []
    return [b.id for b in db.session.query(BidOpening).filter(BidOpening.tender_id == tender.id,
                                                              BidOpening.organisation_id.in_(orgs))]


def _supervisor(tender: Tender) -> bool:
    from evaluation.room_state import is_supervisor_of
    return current_user.is_authenticated and is_supervisor_of(current_user.id, tender.id)


@bp.route("/tenders/<int:tender_id>/results")
def tender_results(tender_id: int):
    viewer = current_user if current_user and current_user.is_authenticated else None
    tender = get_tender(tender_id, managed_organisation_ids(viewer))
    stored = awards.result_of_tender(tender.id)
    report = reports.get_report(tender.id)
    manager, supervisor = _is_manager(tender), _supervisor(tender)
    publicity = awards.publicity_of(tender.id)
    my_bids = _bids_of_viewer(tender)
    insider = (manager and report is not None and report.status == ReportStatus.SIGNED) or supervisor
    if publicity is None and not insider:
        raise NotFound(_l("The result of this tender is not published yet."), code="result_not_published")
    mode = (stored.spec.get("award") or {}).get("mode", "rank_first") if stored else "rank_first"
    return render_template(
        "evaluation/tender_results.html", tender=tender, stored=stored, report=report, publicity=publicity,
        manager=manager, supervisor=supervisor, insider=insider, mode=mode,
        awards={a.lot_id: a for a in awards.awards_of(tender.id)}, objections=awards.objections_of(tender.id),
        my_bids=my_bids, verdict=verdict_view(report) if report and insider else None,
        publicity_over=publicity is not None and now() >= as_utc(publicity.ends_at),
        is_bidder=bool(my_bids), TenderStatus=TenderStatus)


def _managed(tender_id: int) -> Tender:
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound()
    return tender


def _tender_action(tender_id: int, action, success: str) -> Response:
    _r, refusal = commit_form(action)
    return flash_and_redirect(refusal, success, url_for(".tender_results", tender_id=tender_id))


@bp.route("/tenders/<int:tender_id>/results/pick/<int:lot_id>", methods=["POST"])
@login_required
def pick(tender_id: int, lot_id: int):
    actor = manager_actor(_managed(tender_id))
    votes = {k.removeprefix("votes_"): v for k, v in request.form.items() if k.startswith("votes_") and v.strip()}
    return _tender_action(tender_id, lambda: awards.pick_separated(actor, tender_id, lot_id, votes or None),
                          _("The decision committee's choice is recorded."))


@bp.route("/tenders/<int:tender_id>/results/publicity", methods=["POST"])
@login_required
def publicity(tender_id: int):
    actor = manager_actor(_managed(tender_id))
    return _tender_action(tender_id, lambda: awards.start_publicity(actor, tender_id),
                          _("The candidates are published."))


@bp.route("/tenders/<int:tender_id>/results/objections", methods=["POST"])
@login_required
def objection(tender_id: int):
    actor = current_actor(Role.BIDDER, request.form.get("organisation_id", type=int))
    return _tender_action(tender_id, lambda: awards.raise_objection(actor, tender_id, request.form.get("text", "")),
                          _("Your objection is recorded; the tenderer answers within 3 days."))


@bp.route("/tenders/<int:tender_id>/results/objections/<int:objection_id>/answer", methods=["POST"])
@login_required
def answer(tender_id: int, objection_id: int):
    actor = manager_actor(_managed(tender_id))
    return _tender_action(tender_id, lambda: awards.answer_objection(actor, tender_id, objection_id,
                                                                     request.form.get("answer", "")),
                          _("The answer is sent."))


@bp.route("/tenders/<int:tender_id>/results/award", methods=["POST"])
@login_required
def award(tender_id: int):
    actor = manager_actor(_managed(tender_id))
    choices = {}
    for key, value in request.form.items():
        if key.startswith("lot_") and value.strip().isdigit():
            choices[int(key.removeprefix("lot_"))] = int(value)
    return _tender_action(tender_id, lambda: awards.award(actor, tender_id, choices),
                          _("Awarded; the award notices are sent."))


@bp.route("/tenders/<int:tender_id>/results/contract/<int:lot_id>", methods=["POST"])
@login_required
def contract(tender_id: int, lot_id: int):
    actor = manager_actor(_managed(tender_id))
    return _tender_action(tender_id, lambda: awards.record_contract(actor, tender_id, lot_id),
                          _("The contract is recorded; the winner's guarantee is released."))


# --- explanations (报价得分计算说明) ------------------------------------------------------------------------

def _explained(tender_id: int, bid_opening_id: int) -> tuple[Tender, dict[str, Any], dict[str, Any]]:
    viewer = current_user if current_user and current_user.is_authenticated else None
    tender = get_tender(tender_id, managed_organisation_ids(viewer))
    stored = awards.result_of_tender(tender.id)
    found = results.bid_row(stored.lots, bid_opening_id) if stored else None
    if found is None:
        raise NotFound(_l("This bid has no computed result."))
    report = reports.get_report(tender.id)
    own = bid_opening_id in _bids_of_viewer(tender) and awards.publicity_of(tender.id) is not None
    insider = _supervisor(tender) or (viewer is not None and report is not None and (
        reports.field_of_person(report, viewer.id) is not None
        or (_is_manager(tender) and report.status == ReportStatus.SIGNED)))
    if not (own or insider):
        raise Forbidden(_l("A bid's explanation is shown to its bidder once the result is published, and to the "
                           "committee, the tender's managers and the supervisors."), code="not_your_bid")
    return tender, found[0], found[1]


def explanation_rows(lot: dict[str, Any], row: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    from evaluation import methods as M
    for step in [*lot["benchmark_steps"], *row["steps"]]:
        title, formula = M.describe(M.Step(code=step["code"], values=step["values"], result=step["result"]))
        out.append({"title": _(title), "formula": formula, "result": step["result"]})
    return out


@bp.route("/tenders/<int:tender_id>/results/bids/<int:bid_opening_id>")
def explanation(tender_id: int, bid_opening_id: int):
    tender, lot, row = _explained(tender_id, bid_opening_id)
    return render_template("evaluation/explanation.html", tender=tender, lot=lot, row=row,
                           rows=explanation_rows(lot, row))


@bp.route("/tenders/<int:tender_id>/results/bids/<int:bid_opening_id>.pdf")
def explanation_pdf(tender_id: int, bid_opening_id: int):
    tender, lot, row = _explained(tender_id, bid_opening_id)
    pdf = explain_pdf.build_explanation({
        "tender": {"code": tender.code, "title": tender.title}, "lot": {"code": lot["code"], "title": lot["title"]},
        "bidder": row["bidder"], "price": row["price"], "steps": explanation_rows(lot, row),
        "note": _("Every number is computed with decimal arithmetic and rounded as the tender documents say.")})
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="price-score-{tender.code}-{bid_opening_id}.pdf"'})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
