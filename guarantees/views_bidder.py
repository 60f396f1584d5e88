"""Bidder pages (投标人): a lot's bid guarantee (requirement, issuer choices, apply, waiver) and my guarantees.

The choices are shown side by side in the random order :func:`guarantees.offers` returns, with no
choice preselected: the platform recommends no issuer (DOMAIN.md §4). Applying only creates the order
and queues ``OrderApply`` in the outbox; the issuer is called in the background after the commit.
"""

from __future__ import annotations

import io
from typing import Any

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from bidding.models import Lot, Tender, TenderStatus
from core.clock import as_utc, now
from core.db import db
from core.errors import DomainError, NotFound, ValidationFailed
from core.forms import commit_form
from core.identity.models import Role
from core.storage import default_store
from guarantees import (
    Expectation,
    apply_for_guarantee,
    bind_to_bid,
    cancel_order,
    live_order,
    offers,
    order_by_no,
    order_progress,
    orders_of,
    requirement_for,
    unavailable_products,
    use_waiver,
    verify_stored_letter,
)
from guarantees.errors import NotYourOrder
from guarantees.lifecycle import BEFORE_ISSUE, LETTER_IN_FORCE, OrderState
from guarantees.models import BondWaiver, GuaranteeOrder, GuaranteeProduct
from guarantees.views_support import (
    bidder_actor,
    bidder_orgs,
    bp,
    chosen_bidder,
    form_error,
    int_arg,
    person,
    refusal,
    tender_and_lot,
)

VERIFIED_ON_PAGE = 20  # letters re-verified on "my guarantees" (newest first); older ones link to the verify page


def _is_open(tender: Tender) -> bool:
    deadline = tender.bid_deadline_at
    return tender.status == TenderStatus.PUBLISHED and deadline is not None and now() < as_utc(deadline)


def _waiver_of(lot: Lot, bidder_id: int) -> BondWaiver | None:
    return db.session.scalar(select(BondWaiver).where(BondWaiver.lot_id == lot.id, BondWaiver.bidder_id == bidder_id))


def lot_context(tender: Tender, lot: Lot, **extra: Any) -> dict[str, Any]:
    """What the lot's guarantee page shows, for the acting bidder (or a visitor)."""
    orgs = bidder_orgs()
    org = chosen_bidder(orgs)
    context: dict[str, Any] = {
        "tender": tender, "lot": lot, "bidder_orgs": orgs, "org": org, "is_open": _is_open(tender),
        "requirement": None, "policy_error": None, "offers": [], "unavailable": [], "order": None,
        "progress": None, "history": [], "waiver": None, "error_for": None, "error": None, "errors": {},
        "values": {},
    }
    try:
        context["requirement"] = requirement_for(org, tender, lot)
        context["offers"] = offers(tender, lot, org)
        context["unavailable"] = unavailable_products(tender, lot)
    except DomainError as exc:  # the tender's policy cannot be applied: say so on the page
        context["policy_error"] = form_error(exc)[0]
    if org is not None:
        order = live_order(lot, org.id)
        context["order"] = order
        context["progress"] = order_progress(order) if order else None
        context["history"] = [o for o in orders_of(org.id) if o.lot_id == lot.id and o is not order]
        context["waiver"] = _waiver_of(lot, org.id)
    context.update(extra)
    return context


@bp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/guarantee")
def lot(tender_id: int, lot_id: int):
    """A lot's bid guarantee: the requirement, the issuers' offers side by side, apply or use a waiver."""
    tender, the_lot = tender_and_lot(tender_id, lot_id)
    return render_template("guarantees/lot.html", **lot_context(tender, the_lot))


def _refused(tender_id: int, lot_id: int, form: str, exc: DomainError):
    db.session.rollback()
    message, fields = form_error(exc)
    tender, the_lot = tender_and_lot(tender_id, lot_id)
    context = lot_context(tender, the_lot, error_for=form, error=message, errors=fields,
                          values=request.form.to_dict())
    return render_template("guarantees/lot.html", **context), exc.status


@bp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/guarantee/apply", methods=["POST"])
@login_required
def apply(tender_id: int, lot_id: int):
    """Apply for a guarantee from the chosen product; the order goes to the issuer in the background."""
    tender, the_lot = tender_and_lot(tender_id, lot_id)
    try:
        actor = bidder_actor(int_arg(request.form.get("organisation_id")))
        product_id = int_arg(request.form.get("product_id"))
        product = db.session.get(GuaranteeProduct, product_id) if product_id is not None else None
        if product is None:
            raise ValidationFailed(_l("Choose one of the issuers' products."),
                                   fields={"product_id": [_l("Choose one of the offers above.")]})
        order = apply_for_guarantee(actor, tender, the_lot, product, request.form.get("guarantee_type", ""))
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        return _refused(tender_id, lot_id, "apply", exc)
    flash(_("Order %(order_no)s is created: %(premium)s CNY premium to %(issuer)s. It is sent to the issuer in the "
            "background; follow it on this page or under My guarantees.", order_no=order.order_no,
            premium=f"{order.premium:,.2f}", issuer=order.issuer.name), "success")
    return redirect(url_for("guarantees.lot", tender_id=tender_id, lot_id=lot_id, org=order.bidder_id))


@bp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/guarantee/waiver", methods=["POST"])
@login_required
def waiver(tender_id: int, lot_id: int):
    """Use the lot's waiver (or credit commitment) instead of a bond, with a written statement."""
    tender, the_lot = tender_and_lot(tender_id, lot_id)
    try:
        actor = bidder_actor(int_arg(request.form.get("organisation_id")))
        used = use_waiver(actor, tender, the_lot, request.form.get("kind", ""), request.form.get("statement", ""))
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        return _refused(tender_id, lot_id, "waiver", exc)
    flash(_("The waiver is recorded for lot %(lot)s; no bond is needed from your organisation.",
            lot=the_lot.code), "success")
    return redirect(url_for("guarantees.lot", tender_id=tender_id, lot_id=lot_id, org=used.bidder_id))


# -- my guarantees ---------------------------------------------------------------------------------

def _verification(order: GuaranteeOrder) -> dict[str, Any]:
    report = verify_stored_letter(order, expected=Expectation(order.tender, order.lot, order.bidder))
    return {"ok": report.ok, "failures": report.failures}


def mine_context(**extra: Any) -> dict[str, Any]:
    orgs = bidder_orgs()
    rows = []
    for org in orgs:
        for order in orders_of(org.id):
            rows.append(order)
    rows.sort(key=lambda o: o.id, reverse=True)
    checked = [o for o in rows if o.letter_file_sha256 and o.state in LETTER_IN_FORCE][:VERIFIED_ON_PAGE]
    waivers = list(db.session.scalars(select(BondWaiver).where(BondWaiver.bidder_id.in_([o.id for o in orgs]))
                                      .order_by(BondWaiver.id.desc()))) if orgs else []
    context = {"orders": rows, "progress": {o.id: order_progress(o) for o in rows},
               "verification": {o.id: _verification(o) for o in checked}, "waivers": waivers,
               "bidder_orgs": orgs, "open": {o.id: _is_open(o.tender) for o in rows},
               "before_issue": BEFORE_ISSUE, "issued_state": OrderState.ISSUED,
               "error_for": None, "error": None, "errors": {}}
    context.update(extra)
    return context


@bp.route("/my/guarantees")
@login_required
def mine():
    """My organisations' guarantee orders: state and progress, letter, verification; bind or cancel."""
    if not person().has_role(Role.BIDDER):
        raise NotYourOrder(_l("Only bidders have guarantee orders; log in with a bidder account."))
    return render_template("guarantees/mine.html", **mine_context())


def _own_order(order_no: str) -> GuaranteeOrder:
    order = order_by_no(order_no)
    if order.bidder_id not in {o.id for o in bidder_orgs()}:
        raise NotYourOrder()
    return order


def _order_action(order_no: str, verb, done: str):
    order = _own_order(order_no)
    _result, refused = commit_form(lambda: verb(bidder_actor(order.bidder_id), order))
    if refused is not None:
        message, fields, status = refused
        return render_template("guarantees/mine.html", **mine_context(error_for=order_no, error=message,
                                                                      errors=fields)), status
    flash(done, "success")
    return redirect(url_for("guarantees.mine"))


@bp.route("/my/guarantees/<order_no>/bind", methods=["POST"])
@login_required
def bind(order_no: str):
    """Bind the issued letter to my bid for its lot (the letter is verified first)."""
    return _order_action(order_no, bind_to_bid, _("The letter is verified and bound to your bid."))


@bp.route("/my/guarantees/<order_no>/cancel", methods=["POST"])
@login_required
def cancel(order_no: str):
    """Cancel an order before its letter is issued."""
    reason = request.form.get("reason", "")
    return _order_action(order_no, lambda actor, order: cancel_order(actor, order, reason),
                         _("The order is cancelled; the issuer is told if it already has it."))


@bp.route("/guarantees/orders/<order_no>/letter")
@login_required
def letter(order_no: str):
    """Download a letter: its bidder, or the tender's staff once the bid deadline has passed."""
    order = order_by_no(order_no)
    who = person()
    own = order.bidder_id in {o.id for o in bidder_orgs()}
    staff = any(who.has_role(role, org_id) for role, org_id in ((Role.TENDERER, order.tender.tenderer_id),
                                                                (Role.AGENCY, order.tender.agency_id)) if org_id)
    deadline = order.tender.bid_deadline_at
    after_deadline = deadline is not None and now() >= as_utc(deadline)
    if not (own or who.has_role(Role.ADMIN) or (staff and after_deadline and order.bound_at is not None)):
        raise NotYourOrder()
    if not order.letter_file_sha256:
        raise NotFound(_l("No letter has been issued for this order yet."))
    return send_file(io.BytesIO(default_store().read_bytes(order.letter_file_sha256)), mimetype="application/pdf",
                     as_attachment=True, download_name=order.letter_filename or f"{order.guarantee_no}.pdf")
