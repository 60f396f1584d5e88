"""What a tender asks of a bidder for a lot: the bid bond requirement (投标保证金要求), DOMAIN.md §1.5.

``tender.guarantee_policy`` (JSON) holds::

    {"mode": "cash_or_guarantee" | "guarantee_only" | "waived_all" | "waived_sme" | "credit_commitment",
     "extra_validity_days": 0,                       # the letter must outlast the bid validity by this much
     "allowed_issuer_kinds": ["bank", "insurer", "guarantee_company"],   # optional (guarantee_only forms)
     "amount": "20000.00"}                           # optional tender-wide bond when a lot has none

The amount per lot is ``Lot.bond_amount`` (else the policy's ``amount``). The legal cap (≤ 2 % of the
estimate, and the absolute cap for works) is the one in :mod:`bidding.rules`, called here, not copied.
An empty policy means ``cash_or_guarantee``: policies may not force cash-only bonds (NDRC Order 16).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from bidding import rules_for
from bidding.models import Lot, Tender
from bidding.rules import max_guarantee
from core.clock import as_utc
from core.errors import RuleViolation
from core.identity.models import Organisation
from guarantees.models import IssuerKind, WaiverKind
from guarantees.rates import money_text


class BondMode(enum.StrEnum):
    CASH_OR_GUARANTEE = "cash_or_guarantee"
    GUARANTEE_ONLY = "guarantee_only"
    WAIVED_ALL = "waived_all"
    WAIVED_SME = "waived_sme"
    CREDIT_COMMITMENT = "credit_commitment"


class Form(enum.StrEnum):
    CASH = "cash"
    GUARANTEE = "guarantee"
    WAIVER = "waiver"
    CREDIT_COMMITMENT = "credit_commitment"


class PolicyInvalid(RuleViolation):
    code = "guarantee_policy_invalid"
    default_message = _l("The tender's guarantee policy cannot be applied: %(problem)s Ask the tenderer to "
                         "correct it by an amendment.")


@dataclass(frozen=True)
class BondPolicy:
    mode: BondMode
    extra_validity_days: int = 0
    allowed_issuer_kinds: frozenset[str] | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class Requirement:
    """The bond a bidder must provide for a lot, the forms accepted and the letter validity needed."""

    mode: BondMode
    required: bool                      # must the bidder provide a bond, guarantee, waiver or commitment?
    amount: Decimal | None              # the bond (and minimum guarantee amount)
    accepted_forms: tuple[Form, ...]
    waiver_kind: WaiverKind | None      # the waiver this bidder may use, if any
    waiver_refusal: Any                 # why the mode's waiver is not open to this bidder (or None)
    valid_until: datetime | None        # the letter must be valid at least until then
    bid_validity_days: int
    extra_validity_days: int
    allowed_issuer_kinds: frozenset[str] | None

    @property
    def accepts_guarantee(self) -> bool:
        return Form.GUARANTEE in self.accepted_forms


def parse_policy(policy: dict[str, Any] | None) -> BondPolicy:
    """Read ``tender.guarantee_policy``; raise :class:`PolicyInvalid` naming the bad entry."""
    policy = policy or {}
    raw_mode = policy.get("mode") or BondMode.CASH_OR_GUARANTEE.value
    try:
        mode = BondMode(raw_mode)
    except ValueError:
        raise PolicyInvalid(problem=_l("the mode '%(mode)s' is unknown (use one of %(modes)s).",
                                       mode=str(raw_mode)[:40],
                                       modes=", ".join(m.value for m in BondMode))) from None
    extra = policy.get("extra_validity_days", 0) or 0
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= 365:
        raise PolicyInvalid(problem=_l("extra_validity_days must be a whole number of days from 0 to 365."))
    kinds = policy.get("allowed_issuer_kinds")
    if kinds is not None:
        known = {k.value for k in IssuerKind}
        if not isinstance(kinds, list) or not kinds or not set(kinds) <= known:
            raise PolicyInvalid(problem=_l("allowed_issuer_kinds must list some of %(kinds)s.",
                                           kinds=", ".join(sorted(known))))
        kinds = frozenset(kinds)
    amount = policy.get("amount")
    if amount is not None:
        try:
            amount = Decimal(str(amount))
        except InvalidOperation:
            raise PolicyInvalid(problem=_l("the amount is not a number.")) from None
    return BondPolicy(mode=mode, extra_validity_days=extra, allowed_issuer_kinds=kinds, amount=amount)


def _forms(mode: BondMode, waiver: WaiverKind | None) -> tuple[Form, ...]:
    if mode == BondMode.GUARANTEE_ONLY:
        return (Form.GUARANTEE,)
    if mode == BondMode.CREDIT_COMMITMENT:
        return (Form.CREDIT_COMMITMENT, Form.GUARANTEE, Form.CASH)
    forms = (Form.CASH, Form.GUARANTEE)
    return (*forms, Form.WAIVER) if waiver is not None else forms


def bond_requirement(tender: Tender, lot: Lot, bidder_org: Organisation | None) -> Requirement:
    """The bond requirement of ``lot`` for ``bidder_org`` (SME waivers depend on ``Organisation.is_sme``)."""
    if lot.tender_id != tender.id:
        raise PolicyInvalid(problem=_l("lot %(lot)s does not belong to this tender.", lot=lot.code))
    policy = parse_policy(tender.guarantee_policy)
    amount = lot.bond_amount if lot.bond_amount is not None else policy.amount
    if amount is not None:
        if amount < 0:
            raise PolicyInvalid(problem=_l("the bid bond of lot %(lot)s is negative.", lot=lot.code))
        limit = max_guarantee(rules_for(tender), lot.estimated_price, str(tender.category))
        if amount > limit:
            raise PolicyInvalid(problem=_l("the bid bond of lot %(lot)s (%(amount)s CNY) is above the legal cap "
                                           "of %(limit)s CNY.", lot=lot.code, amount=money_text(amount),
                                           limit=money_text(limit)))
    waiver: WaiverKind | None = None
    refusal: Any = None
    if policy.mode == BondMode.WAIVED_ALL:
        waiver = WaiverKind.WAIVED_ALL
    elif policy.mode == BondMode.WAIVED_SME:
        if bidder_org is not None and bidder_org.is_sme:
            waiver = WaiverKind.WAIVED_SME
        else:
            refusal = _l("only small and medium-sized enterprises (中小企业) may use it, and %(name)s is not "
                         "registered as one.", name=bidder_org.name if bidder_org else "-")
    elif policy.mode == BondMode.CREDIT_COMMITMENT:
        waiver = WaiverKind.CREDIT_COMMITMENT
    else:
        refusal = _l("the tender documents offer no waiver for this lot.")
    no_bond = amount is None or amount == 0
    required = not no_bond and policy.mode != BondMode.WAIVED_ALL
    valid_until = None
    if tender.bid_deadline_at is not None:
        valid_until = as_utc(tender.bid_deadline_at) + timedelta(days=tender.bid_validity_days
                                                                 + policy.extra_validity_days)
    forms = () if no_bond else _forms(policy.mode, waiver)
    return Requirement(mode=policy.mode, required=required, amount=None if no_bond else amount,
                       accepted_forms=forms, waiver_kind=None if no_bond else waiver,
                       waiver_refusal=refusal, valid_until=valid_until, bid_validity_days=tender.bid_validity_days,
                       extra_validity_days=policy.extra_validity_days,
                       allowed_issuer_kinds=policy.allowed_issuer_kinds)
