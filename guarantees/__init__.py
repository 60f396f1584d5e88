"""E-guarantees (电子保函): issuers, products and rates, orders, letters, verification, release, claims.

The services and read models other packages (and the pages) may use are re-exported here; import
them from ``guarantees``, not from the modules inside. The issuer protocol is :mod:`guarantees.protocol`.
"""

from __future__ import annotations

from guarantees import models, protocol
from guarantees.callbacks import Outcome, receive_callback
from guarantees.claims import claims_for, file_claim, require_beneficiary
from guarantees.figures import Figures, Period, collect, parse_period, write_csv
from guarantees.issuer_admin import admit_new_issuer, change_issuer_details, rename_issuer
from guarantees.keys import platform_certificate_pem, platform_id
from guarantees.lifecycle import OrderState
from guarantees.opening import check_for_opening
from guarantees.orders import (
    Offer,
    Progress,
    Unavailable,
    apply_for_guarantee,
    cancel_order,
    live_order,
    offers,
    order_by_no,
    order_progress,
    orders_for_tender,
    orders_of,
    requirement_for,
    unavailable_products,
    use_waiver,
)
from guarantees.outbox import retry_failed
from guarantees.rates import premium
from guarantees.release import ReleaseReason, bind_to_bid, release, release_for_tender
from guarantees.requirements import BondMode, Form, Requirement, bond_requirement
from guarantees.services import (
    add_product,
    admit_issuer,
    issuer_by_code,
    policy_in_force,
    product_availability,
    rate_in_force,
    set_issuer_admission,
    set_product_active,
    set_product_rate,
    set_rate_policy,
    update_issuer,
)
from guarantees.verification import Expectation, VerificationReport, verify_letter, verify_stored_letter

figures_for = collect

__all__ = [
    "BondMode", "Expectation", "Figures", "Form", "Offer", "OrderState", "Outcome", "Period", "Progress",
    "ReleaseReason", "Requirement", "Unavailable", "VerificationReport", "add_product", "admit_issuer",
    "admit_new_issuer", "apply_for_guarantee", "bind_to_bid", "bond_requirement", "cancel_order",
    "change_issuer_details", "check_for_opening", "claims_for", "figures_for", "file_claim", "issuer_by_code",
    "live_order", "models", "offers", "order_by_no", "order_progress", "orders_for_tender", "orders_of",
    "parse_period", "platform_certificate_pem", "platform_id", "policy_in_force", "premium", "product_availability",
    "protocol", "rate_in_force", "receive_callback", "release", "release_for_tender", "rename_issuer",
    "require_beneficiary", "requirement_for", "retry_failed", "set_issuer_admission", "set_product_active",
    "set_product_rate", "set_rate_policy", "unavailable_products", "update_issuer", "use_waiver", "verify_letter",
    "verify_stored_letter", "write_csv",
]
