"""What the guarantee pages share: the ``guarantees`` blueprint, labels, and who acts for whom.

The pages are thin: parse the form, build the actor, call the service from :mod:`guarantees`, commit,
then redirect or re-render with the refusal shown next to the form (nothing stored). Access refusals
(401/403) go to the error page instead.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from bidding import get_tender, managed_organisation_ids
from bidding.models import Lot, Tender
from core.actor import Actor
from core.db import db
from core.errors import Forbidden, NotAuthenticated, NotFound
from core.forms import form_error, refusal
from core.identity.access import current_actor
from core.identity.models import Organisation, Role
from guarantees.lifecycle import OrderState
from guarantees.models import ClaimState, ClaimTrigger, GuaranteeType, IssuerKind, WaiverKind
from guarantees.rates import money_text, permille_text
from guarantees.requirements import BondMode, Form

bp = Blueprint("guarantees", __name__)

MANAGER_ROLES = (Role.TENDERER, Role.AGENCY)

STATE_LABELS = {
    OrderState.DRAFT: _l("Waiting to be sent"), OrderState.APPLIED: _l("Applied"),
    OrderState.CANCELLED: _l("Cancelled"), OrderState.APPROVED: _l("Approved"),
    OrderState.REJECTED: _l("Rejected"), OrderState.ISSUED: _l("Letter issued"),
    OrderState.BOUND_TO_BID: _l("Bound to the bid"), OrderState.VERIFIED_AT_OPENING: _l("Verified at the opening"),
    OrderState.RELEASED: _l("Released"), OrderState.CLAIMED: _l("Claimed"), OrderState.PAID: _l("Claim paid"),
    OrderState.DENIED: _l("Claim denied"), OrderState.CLOSED: _l("Closed"),
}
KIND_LABELS = {IssuerKind.BANK: _l("Bank guarantee (银行保函)"),
               IssuerKind.INSURER: _l("Bid bond insurance (投标保证保险)"),
               IssuerKind.GUARANTEE_COMPANY: _l("Guarantee company (担保公司保函)")}
TYPE_LABELS = {GuaranteeType.PLAIN: _l("Plain letter (明文保函)"),
               GuaranteeType.SEALED: _l("Sealed letter (密文保函)")}
MODE_LABELS = {BondMode.CASH_OR_GUARANTEE: _l("Cash bond or guarantee"),
               BondMode.GUARANTEE_ONLY: _l("Guarantee only (the forms the documents name)"),
               BondMode.WAIVED_ALL: _l("Bond waived for every bidder"),
               BondMode.WAIVED_SME: _l("Bond waived for small and medium-sized enterprises"),
               BondMode.CREDIT_COMMITMENT: _l("Credit commitment (信用承诺) instead of a bond")}
FORM_LABELS = {Form.CASH: _l("Cash bond from the basic account"), Form.GUARANTEE: _l("Electronic guarantee letter"),
               Form.WAIVER: _l("Waiver"), Form.CREDIT_COMMITMENT: _l("Credit commitment")}
WAIVER_LABELS = {WaiverKind.WAIVED_ALL: _l("Bond waiver (免收投标保证金)"),
                 WaiverKind.WAIVED_SME: _l("SME bond waiver (中小企业免收)"),
                 WaiverKind.CREDIT_COMMITMENT: _l("Credit commitment (信用承诺)")}
TRIGGER_LABELS = {
    ClaimTrigger.REVOKED_AFTER_DEADLINE: _l("Bid revoked after the deadline (条例 §35)"),
    ClaimTrigger.REFUSED_CONTRACT: _l("Winner refuses to sign the contract (条例 §74)"),
    ClaimTrigger.ADDED_CONDITIONS: _l("Winner adds conditions to the contract (条例 §74)"),
    ClaimTrigger.NO_PERFORMANCE_SECURITY: _l("Winner gives no performance security (条例 §74)"),
    ClaimTrigger.OTHER_IN_DOCUMENTS: _l("Another event named in the tender documents"),
}
CLAIM_STATE_LABELS = {ClaimState.FILED: _l("Filed, waiting to be sent"), ClaimState.SENT: _l("Sent to the issuer"),
                      ClaimState.PAID: _l("Paid"), ClaimState.DENIED: _l("Denied")}
CHECK_LABELS = {
    "record": _l("On record"), "signature": _l("Issuer's signature (PAdES)"), "issuer_admitted": _l("Issuer admitted"),
    "hash": _l("File hash (SHA-256)"), "status": _l("In force"), "registry": _l("Issuer's registry"),
    "principal": _l("Principal is the bidder"), "beneficiary": _l("Beneficiary is the tenderer"),
    "lot": _l("Tender and lot"), "amount": _l("Amount covers the bond"),
    "issued_before_deadline": _l("Issued before the deadline"), "validity": _l("Validity long enough"),
    "waiver": _l("Waiver"),
}
FIELD_LABELS = {"product_id": _l("Issuer and product"), "guarantee_type": _l("Letter type"),
                "statement": _l("Commitment statement"), "kind": _l("Waiver"), "trigger": _l("Trigger"),
                "amount": _l("Amount"), "reason": _l("Reason"), "evidence": _l("Evidence"),
                "no": _l("Guarantee number"), "code": _l("Verification code"), "file": _l("Letter PDF"),
                "period": _l("Period"), "until": _l("Up to"), "region": _l("Region code"), "count": _l("Periods")}


def _label(table: dict, value: Any) -> str:
    for key, text in table.items():
        if key == value or getattr(key, "value", None) == value:
            return str(text)
    return str(value)


@bp.app_context_processor
def _guarantee_labels() -> dict[str, Any]:
    return {"g_state": lambda s: _label(STATE_LABELS, s), "g_kind": lambda k: _label(KIND_LABELS, k),
            "g_type": lambda t: _label(TYPE_LABELS, t), "g_mode": lambda m: _label(MODE_LABELS, m),
            "g_form": lambda f: _label(FORM_LABELS, f), "g_waiver": lambda w: _label(WAIVER_LABELS, w),
            "g_trigger": lambda t: _label(TRIGGER_LABELS, t), "g_claim_state": lambda s: _label(CLAIM_STATE_LABELS, s),
            "g_check": lambda c: _label(CHECK_LABELS, c), "g_field": lambda f: _label(FIELD_LABELS, f),
            "permille": permille_text, "cny": money_text}


# -- who acts for whom -----------------------------------------------------------------------------

def int_arg(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def person():
    """The logged-in person (401 otherwise)."""
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user._get_current_object()


def bidder_orgs() -> list[Organisation]:
    """The organisations the logged-in person may act for as a bidder (none when logged out)."""
    if not current_user or not current_user.is_authenticated:
        return []
    seen: dict[int, Organisation] = {}
    for grant in current_user.grants:
        if grant.role == Role.BIDDER and grant.organisation is not None:
            seen.setdefault(grant.organisation.id, grant.organisation)
    return list(seen.values())


def chosen_bidder(orgs: list[Organisation]) -> Organisation | None:
    """The bidder organisation named in the form or query (``organisation_id`` or ``org``), else the first."""
    wanted = int_arg(request.values.get("organisation_id") or request.values.get("org"))
    for org in orgs:
        if org.id == wanted:
            return org
    return orgs[0] if orgs else None


def bidder_actor(organisation_id: int | None) -> Actor:
    """Act as a bidder of ``organisation_id`` (access.py words the refusal for a non-member)."""
    person()
    return current_actor(Role.BIDDER, organisation_id)


def viewer_orgs() -> frozenset[int]:
    return managed_organisation_ids(current_user if current_user and current_user.is_authenticated else None)


def tender_and_lot(tender_id: int, lot_id: int | None = None) -> tuple[Tender, Lot | None]:
    tender = get_tender(tender_id, viewer_orgs())
    if lot_id is None:
        return tender, None
    lot = db.session.get(Lot, lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise NotFound()
    return tender, lot


def staff_actor(tender: Tender, *, read_only: bool = False) -> tuple[Actor, bool]:
    """The actor for the tender's staff (tenderer or agency), or an administrator; (actor, may_act).

    With ``read_only`` a supervisor (行政监督) may look too, without acting.
    """
    who = person()
    for role, org_id in ((Role.TENDERER, tender.tenderer_id), (Role.AGENCY, tender.agency_id)):
        if org_id is not None and who.has_role(role, org_id):
            return current_actor(role, org_id), True
    if who.has_role(Role.ADMIN):
        return current_actor(Role.ADMIN), True
    if read_only and who.has_role(Role.SUPERVISOR):
        return current_actor(Role.SUPERVISOR), False
    raise Forbidden(_l("Only staff of the tender's tenderer or agency (the beneficiary) may see its guarantees."),
                    code="not_beneficiary")


__all__ = ["bp", "bidder_actor", "bidder_orgs", "chosen_bidder", "form_error", "int_arg", "person", "refusal",
           "staff_actor", "tender_and_lot", "viewer_orgs"]
