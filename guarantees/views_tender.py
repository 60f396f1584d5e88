"""The tender's guarantees for its staff (招标人/代理机构): per lot, after the bid deadline only.

Before the deadline the page shows the requirement and nothing about who bought guarantees, not even
how many: the names and the number of potential bidders must stay secret until the opening (招标投标法 §22;
sealed letters, 密文保函, exist for the same reason). After the deadline it lists, per lot, the letters
bound to bids and the waivers used, the guarantee check of the opening, and lets the beneficiary file a
claim (索赔) with its evidence and follow the claim's status. Supervisors may look, not act.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from bidding.models import Tender
from core.clock import as_utc, beijing, now
from core.db import db
from core.errors import DomainError, NotFound
from guarantees import check_for_opening, file_claim, order_by_no, requirement_for
from guarantees.claims import CLAIMABLE
from guarantees.models import BondWaiver, ClaimTrigger, GuaranteeOrder, OpeningCheck
from guarantees.views_support import bp, form_error, refusal, staff_actor, tender_and_lot


def _after_deadline(tender: Tender) -> bool:
    deadline = tender.bid_deadline_at
    return deadline is not None and now() >= as_utc(deadline)


def _lot_rows(tender: Tender) -> list[dict[str, Any]]:
    """Per lot: the requirement and, after the deadline, the bound letters, waivers and opening checks."""
    after = _after_deadline(tender)
    rows = []
    for lot in tender.lots:
        row: dict[str, Any] = {"lot": lot, "requirement": None, "policy_error": None, "orders": [], "waivers": [],
                               "checks": {}}
        try:
            row["requirement"] = requirement_for(None, tender, lot)
        except DomainError as exc:
            row["policy_error"] = form_error(exc)[0]
        if after:
            # only letters bound to a bid concern the beneficiary; drafts, cancelled and unused letters do not
            row["orders"] = list(db.session.scalars(
                select(GuaranteeOrder).where(GuaranteeOrder.lot_id == lot.id, GuaranteeOrder.bound_at.is_not(None))
                .order_by(GuaranteeOrder.id)))
            row["waivers"] = list(db.session.scalars(select(BondWaiver).where(BondWaiver.lot_id == lot.id)
                                                     .order_by(BondWaiver.id)))
            row["checks"] = {c.bidder_id: c for c in db.session.scalars(
                select(OpeningCheck).where(OpeningCheck.lot_id == lot.id))}
        rows.append(row)
    return rows


def tender_context(tender: Tender, **extra: Any) -> dict[str, Any]:
    _actor, may_act = staff_actor(tender, read_only=True)
    context = {"tender": tender, "after_deadline": _after_deadline(tender), "lots": _lot_rows(tender),
               "may_act": may_act, "claimable": CLAIMABLE, "triggers": list(ClaimTrigger),
               "error_for": None, "error": None, "errors": {}, "values": {}}
    context.update(extra)
    return context


@bp.route("/tenders/<int:tender_id>/guarantees")
@login_required
def tender_guarantees(tender_id: int):
    """The tender's guarantees per lot (its staff; supervisors read-only)."""
    tender, _lot = tender_and_lot(tender_id)
    return render_template("guarantees/tender.html", **tender_context(tender))


def _refused(tender_id: int, form: str, exc: DomainError):
    db.session.rollback()
    message, fields = form_error(exc)
    tender, _lot = tender_and_lot(tender_id)
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    return render_template("guarantees/tender.html", **tender_context(tender, error_for=form, error=message,
                                                                      errors=fields, values=values)), exc.status


@bp.route("/tenders/<int:tender_id>/guarantees/check", methods=["POST"])
@login_required
def run_check(tender_id: int):
    """Run the guarantee check of the opening (开标保函验证) for every bidder of every lot."""
    tender, _lot = tender_and_lot(tender_id)
    actor, _may_act = staff_actor(tender)
    try:
        results = check_for_opening(actor, tender)
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        return _refused(tender_id, "check", exc)
    passed = sum(1 for r in results if r.passed)
    flash(_("Guarantee check done: %(passed)s of %(total)s bidders passed.", passed=passed, total=len(results)),
          "success")
    return redirect(url_for("guarantees.tender_guarantees", tender_id=tender_id))


@bp.route("/tenders/<int:tender_id>/guarantees/<order_no>/claim", methods=["POST"])
@login_required
def claim(tender_id: int, order_no: str):
    """File a claim on a bid's letter: trigger, amount, written demand and evidence files."""
    tender, _lot = tender_and_lot(tender_id)
    order = order_by_no(order_no)
    if order.tender_id != tender.id:
        raise NotFound()
    actor, _may_act = staff_actor(tender)
    files = [(f.filename or "", f.stream) for f in request.files.getlist("evidence") if f and f.filename]
    try:
        filed = file_claim(actor, order, request.form.get("trigger", ""), request.form.get("amount", ""),
                           request.form.get("reason", ""), files)
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        return _refused(tender_id, order_no, exc)
    flash(_("Claim %(claim_no)s is filed and sent to %(issuer)s; the issuer answers by %(due)s.",
            claim_no=filed.claim_no, issuer=order.issuer.name,
            due=beijing(filed.answer_due_at).strftime("%Y-%m-%d")), "success")
    return redirect(url_for("guarantees.tender_guarantees", tender_id=tender_id) + f"#order-{order.order_no}")
