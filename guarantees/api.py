"""JSON API of e-guarantees (flask-smorest): thin views — parse, build the actor, call the service, commit.

Bidders and tenderers authenticate as elsewhere (session cookie with CSRF, or a bearer API token) and
may name the ``organisation_id`` they act for. Three doors are public and CSRF-exempt: the issuer
callbacks (authenticated by the message signature alone), the letter verification (GET by number and
code, POST a PDF), and the figures.
"""

from __future__ import annotations

import io
from typing import Any

from flask import request, send_file
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from bidding import get_tender, managed_organisation_ids
from bidding.models import Lot, Tender
from core.actor import Actor
from core.db import db
from core.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from core.extensions import csrf
from core.identity.access import current_actor
from core.identity.models import Organisation, Person, Role
from core.storage import default_store
from guarantees import claims, figures, opening, orders, protocol, release, schemas, verification
from guarantees.callbacks import receive_callback
from guarantees.errors import NotYourOrder
from guarantees.limits import verification_limit
from guarantees.models import GuaranteeOrder, GuaranteeProduct

blp = Blueprint("guarantees_api", __name__, url_prefix="/api/guarantees",
                description="E-guarantees (电子保函): offers, orders, waivers, claims, issuer callbacks, "
                            "verification, figures")
MANAGERS = (Role.TENDERER, Role.AGENCY)
MAX_VERIFY_BYTES = 20 * 1024 * 1024
PUBLIC_WRITES = frozenset({"guarantees_api.Callbacks", "guarantees_api.Verify"})


@blp.before_request
def _authenticated_writes() -> None:
    """Say "log in" before "your input is invalid": changes need a logged-in person (callbacks excepted)."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in PUBLIC_WRITES:
        _person()


def _person() -> Person:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user._get_current_object()


def _viewer_orgs() -> frozenset[int]:
    return managed_organisation_ids(current_user if current_user else None)


def _tender(tender_id: int) -> Tender:
    return get_tender(tender_id, _viewer_orgs())


def _lot(tender: Tender, lot_id: int) -> Lot:
    lot = db.session.get(Lot, lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise NotFound()
    return lot


def _bidder(organisation_id: int | None) -> Actor:
    _person()
    return current_actor(Role.BIDDER, organisation_id)


def _staff(tender: Tender, organisation_id: int | None) -> Actor:
    """Act as the tender's tenderer or agency staff (the one the person belongs to unless named)."""
    person = _person()
    for role, org_id in ((Role.TENDERER, tender.tenderer_id), (Role.AGENCY, tender.agency_id)):
        if org_id is not None and person.has_role(role, org_id) and organisation_id in (None, org_id):
            return current_actor(role, org_id)
    if person.has_role(Role.ADMIN):
        return current_actor(Role.ADMIN)
    return current_actor(Role.TENDERER, organisation_id or tender.tenderer_id)  # refuses, saying why


class OrderOut:
    """An order as the API shows it: with its progress in words."""

    def __init__(self, order: GuaranteeOrder):
        self._order = order
        self.progress = orders.order_progress(order)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._order, name)


def _order_for_viewer(order_no: str, organisation_id: int | None) -> tuple[GuaranteeOrder, Actor]:
    """The order, for its bidder, the tender's staff or an administrator (others: NotYourOrder)."""
    order = orders.order_by_no(order_no)
    person = _person()
    if person.has_role(Role.BIDDER, order.bidder_id) and organisation_id in (None, order.bidder_id):
        return order, current_actor(Role.BIDDER, order.bidder_id)
    if person.has_role(Role.ADMIN):
        return order, current_actor(Role.ADMIN)
    if any(person.has_role(r, o) for r in MANAGERS for o in (order.tender.tenderer_id, order.tender.agency_id) if o):
        return order, _staff(order.tender, organisation_id)
    raise NotYourOrder()


@blp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/offers")
class Offers(MethodView):
    @blp.arguments(schemas.ActingSchema, location="query")
    @blp.response(200, schemas.OffersSchema)
    def get(self, args: dict, tender_id: int, lot_id: int):
        """The bond requirement and every offerable product, in random order, with its premium."""
        actor = _bidder(args.get("organisation_id"))
        tender = _tender(tender_id)
        lot = _lot(tender, lot_id)
        bidder = db.session.get(Organisation, actor.organisation_id)
        return {"requirement": orders.requirement_for(bidder, tender, lot),
                "offers": orders.offers(tender, lot, bidder), "unavailable": orders.unavailable_products(tender, lot)}


@blp.route("/orders")
class Orders(MethodView):
    @blp.arguments(schemas.ActingSchema, location="query")
    @blp.response(200, schemas.OrderSchema(many=True))
    def get(self, args: dict):
        """My organisation's guarantee orders, newest first, with their state."""
        actor = _bidder(args.get("organisation_id"))
        return [OrderOut(o) for o in orders.orders_of(actor.organisation_id)]

    @blp.arguments(schemas.ApplySchema)
    @blp.response(201, schemas.OrderSchema)
    def post(self, data: dict):
        """Apply for a guarantee; the order is sent to the issuer in the background."""
        actor = _bidder(data.get("organisation_id"))
        tender = _tender(data["tender_id"])
        lot = _lot(tender, data["lot_id"])
        product = db.session.get(GuaranteeProduct, data["product_id"])
        if product is None:
            raise ValidationFailed(fields={"product_id": [_l("No product has this id.")]})
        order = orders.apply_for_guarantee(actor, tender, lot, product, data["guarantee_type"])
        db.session.commit()
        return OrderOut(order)


@blp.route("/orders/<order_no>")
class OrderItem(MethodView):
    @blp.arguments(schemas.ActingSchema, location="query")
    @blp.response(200, schemas.OrderSchema)
    def get(self, args: dict, order_no: str):
        """One order with its progress ("waiting for issuer (attempt n, next try at …)") and claims."""
        order, _ = _order_for_viewer(order_no, args.get("organisation_id"))
        return OrderOut(order)


@blp.route("/orders/<order_no>/cancel")
class CancelOrder(MethodView):
    @blp.arguments(schemas.ReasonSchema)
    @blp.response(200, schemas.OrderSchema)
    def post(self, data: dict, order_no: str):
        """Cancel an order before its letter is issued."""
        order, actor = _order_for_viewer(order_no, data.get("organisation_id"))
        orders.cancel_order(actor, order, data["reason"])
        _commit()
        return OrderOut(order)


@blp.route("/orders/<order_no>/bind")
class BindOrder(MethodView):
    @blp.arguments(schemas.ActingSchema)
    @blp.response(200, schemas.OrderSchema)
    def post(self, data: dict, order_no: str):
        """Bind the issued letter to my bid for its lot (the letter is verified first)."""
        order, actor = _order_for_viewer(order_no, data.get("organisation_id"))
        release.bind_to_bid(actor, order)
        _commit()
        return OrderOut(order)


@blp.route("/orders/<order_no>/release")
class ReleaseOrder(MethodView):
    @blp.arguments(schemas.ReleaseSchema)
    @blp.response(200, schemas.OrderSchema)
    def post(self, data: dict, order_no: str):
        """Release the letter (withdrawal before the deadline; contract signed; …)."""
        order, actor = _order_for_viewer(order_no, data.get("organisation_id"))
        release.release(actor, order, data["reason"], note=data["note"])
        _commit()
        return OrderOut(order)


@blp.route("/orders/<order_no>/letter")
class LetterFile(MethodView):
    @blp.arguments(schemas.ActingSchema, location="query")
    @blp.response(200, content_type="application/pdf", description="The letter PDF as issued")
    def get(self, args: dict, order_no: str):
        """Download the letter (its bidder, the tender's staff)."""
        order, _ = _order_for_viewer(order_no, args.get("organisation_id"))
        if not order.letter_file_sha256:
            raise NotFound(_l("No letter has been issued for this order yet."))
        return send_file(io.BytesIO(default_store().read_bytes(order.letter_file_sha256)),
                         mimetype="application/pdf", as_attachment=True,
                         download_name=order.letter_filename or f"{order.guarantee_no}.pdf")


@blp.route("/orders/<order_no>/claims")
class Claims(MethodView):
    @blp.arguments(schemas.EvidenceSchema, location="files")
    @blp.arguments(schemas.ClaimFormSchema, location="form")
    @blp.response(201, schemas.ClaimSchema)
    def post(self, files: dict, form: dict, order_no: str):
        """File a claim (索赔) as the beneficiary: multipart ``trigger``, ``amount``, ``reason``, ``evidence``."""
        order = orders.order_by_no(order_no)
        actor = _staff(order.tender, form.get("organisation_id"))
        uploads = request.files.getlist("evidence") or files.get("evidence") or []
        claim = claims.file_claim(actor, order, form["trigger"], form["amount"], form["reason"],
                                  [(u.filename or "", u.stream) for u in uploads])
        _commit()
        return claim


@blp.route("/waivers")
class Waivers(MethodView):
    @blp.arguments(schemas.WaiverInSchema)
    @blp.response(201, schemas.WaiverSchema)
    def post(self, data: dict):
        """Use the lot's bond waiver or credit commitment instead of a guarantee."""
        actor = _bidder(data.get("organisation_id"))
        tender = _tender(data["tender_id"])
        waiver = orders.use_waiver(actor, tender, _lot(tender, data["lot_id"]), data["kind"], data["statement"])
        db.session.commit()
        return waiver


@blp.route("/tenders/<int:tender_id>/opening-check")
class OpeningCheck(MethodView):
    @blp.arguments(schemas.ActingSchema)
    @blp.response(200, schemas.OpeningCheckSchema(many=True))
    def post(self, data: dict, tender_id: int):
        """Check every bidder's guarantee per lot at the opening and store the results."""
        tender = _tender(tender_id)
        results = opening.check_for_opening(_staff(tender, data.get("organisation_id")), tender)
        _commit()
        return results


@blp.route("/callbacks")
class Callbacks(MethodView):
    @blp.response(200, schemas.CallbackAnswerSchema)
    def post(self):
        """Issuer callback (Result, Letter, ReleaseNotify, ClaimResult), authenticated by its signature."""
        outcome = receive_callback(request.get_data(cache=False))
        try:
            db.session.commit()
        except IntegrityError as exc:  # a concurrent twin of this message took the nonce first
            db.session.rollback()
            raise protocol.ReplayedNonce(outcome.sender, outcome.nonce) from exc
        except StaleDataError as exc:  # another callback changed the order at the same time: retry later
            db.session.rollback()
            raise Conflict() from exc
        return {"accepted": True, "outcome": outcome.result, "state": outcome.state}


@blp.route("/verify")
class Verify(MethodView):
    decorators = [verification_limit]  # shared with the public page: one budget per address

    @blp.arguments(schemas.VerifyQuerySchema, location="query")
    @blp.response(200, schemas.VerificationSchema)
    def get(self, args: dict):
        """Verify a letter by its number and verification code (public)."""
        return verification.verify_letter(guarantee_no=args["no"], code=args["code"],
                                          confirm_with_issuer=args["confirm"]).to_dict()

    @blp.arguments(schemas.LetterUploadSchema, location="files")
    @blp.response(200, schemas.VerificationSchema)
    def post(self, files: dict):
        """Verify a letter PDF (multipart ``file``; public)."""
        data = files["file"].stream.read(MAX_VERIFY_BYTES + 1)
        if len(data) > MAX_VERIFY_BYTES:
            raise ValidationFailed(fields={"file": [_l("The file is larger than 20 MB.")]})
        return verification.verify_letter(pdf_bytes=data).to_dict()


@blp.route("/figures")
class Figures(MethodView):
    @blp.arguments(schemas.FiguresQuerySchema, location="query")
    @blp.response(200, schemas.FiguresSchema)
    def get(self, args: dict):
        """Guarantees issued, amount guaranteed, premiums paid and saved, waivers, for a period (public)."""
        try:
            period = figures.parse_period(args["period"])
        except ValueError:
            raise ValidationFailed(fields={"period": [_l("Use a year (2025), a quarter (2025-Q1) or a month "
                                                         "(2025-03).")]}) from None
        return figures.collect(period, args.get("region"))


def _commit() -> None:
    try:
        db.session.commit()
    except StaleDataError as exc:
        db.session.rollback()
        raise Conflict() from exc


def exempt_from_csrf() -> None:
    """Callbacks carry no session (the signature authenticates them); verification is a public upload."""
    csrf.exempt(f"{__name__}.Callbacks")
    csrf.exempt(f"{__name__}.Verify")
