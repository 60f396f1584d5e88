"""E-guarantee errors, each mapped once (via core.errors) to an HTTP status and the one error shape.

Protocol refusals (unknown sender, bad signature, stale timestamp, replay, unknown order, state
conflict) live in :mod:`guarantees.protocol`, shared with the reference issuer, and are re-exported here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from guarantees.lifecycle import TransitionRefused
from guarantees.protocol import (
    BadSignature,
    MalformedMessage,
    ProtocolError,
    ReplayedNonce,
    RetiredCertificate,
    StaleTimestamp,
    StateConflict,
    UnknownOrder,
    UnknownSender,
)
from guarantees.rates import RateAboveCap


class NotABidder(Forbidden):
    code = "bidder_required"
    default_message = _l("Only bidders acting for their own organisation may do this.")


class NotYourOrder(Forbidden):
    code = "not_your_order"
    default_message = _l("This guarantee order belongs to another organisation.")


class NotBeneficiary(Forbidden):
    code = "not_beneficiary"
    default_message = _l("Only staff of the tender's tenderer or agency (the beneficiary) may do this.")


class AdminRequired(Forbidden):
    code = "admin_required"
    default_message = _l("Only a platform administrator may manage issuers, products and rates.")


class OrderNotFound(NotFound):
    code = "guarantee_order_not_found"
    default_message = _l("There is no guarantee order %(order_no)s.")


class ProductNotOfferable(RuleViolation):
    code = "product_not_offerable"
    default_message = _l("This product cannot be chosen: %(reason)s")


class BondNotRequired(RuleViolation):
    code = "bond_not_accepted"
    default_message = _l("The tender does not ask for a guarantee for this lot: %(reason)s")


class WaiverRefused(RuleViolation):
    code = "waiver_refused"
    default_message = _l("This waiver cannot be used: %(reason)s")


class DeadlinePassed(RuleViolation):
    code = "deadline_passed"
    default_message = _l("The bid deadline (%(deadline)s) has passed; this is no longer possible.")


class AlreadyHasOrder(RuleViolation):
    code = "order_exists"
    default_message = _l("Your organisation already has guarantee order %(order_no)s (%(state)s) for this lot; "
                         "cancel it first or use it.")


class LetterRefused(RuleViolation):
    code = "letter_refused"
    default_message = _l("The guarantee letter does not pass verification: %(reasons)s")


class ClaimRefused(RuleViolation):
    code = "claim_refused"
    default_message = _l("The claim cannot be filed: %(reason)s")


class InvalidInput(ValidationFailed):
    """Input the schema accepted but the domain cannot."""


__all__ = [
    "AdminRequired", "AlreadyHasOrder", "BadSignature", "BondNotRequired", "ClaimRefused", "DeadlinePassed",
    "InvalidInput", "LetterRefused", "MalformedMessage", "NotABidder", "NotBeneficiary", "NotYourOrder",
    "OrderNotFound", "ProductNotOfferable", "ProtocolError", "RateAboveCap", "ReplayedNonce", "RetiredCertificate",
    "StaleTimestamp", "StateConflict", "TransitionRefused", "UnknownOrder", "UnknownSender", "WaiverRefused",
]
