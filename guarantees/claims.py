"""Claims (索赔) by the beneficiary (招标人) on a bid guarantee, relayed to the issuer.

Triggers (DOMAIN.md §4): a bid revoked after the deadline within its validity (条例 §35); the winner
refuses the contract, adds conditions or gives no performance security (条例 §74); other events the
tender documents name. The claim is filed through the platform before the letter expires, with a
written reason and evidence files (stored, their SHA-256 sent to the issuer), and goes out through
the outbox; the issuer's ``ClaimResult`` callback marks it paid or denied.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import ValidationFailed
from core.identity.models import Role
from core.storage import default_store
from guarantees import lifecycle, notices, outbox, protocol, rates
from guarantees.errors import ClaimRefused, NotBeneficiary
from guarantees.lifecycle import OrderState
from guarantees.models import ClaimState, ClaimTrigger, GuaranteeClaim, GuaranteeOrder

MAX_EVIDENCE_FILES = 10
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
CLAIMABLE = frozenset({OrderState.BOUND_TO_BID, OrderState.VERIFIED_AT_OPENING})
AFTER_DEADLINE_TRIGGERS = frozenset(ClaimTrigger)  # every statutory trigger happens after the bid deadline


def require_beneficiary(actor: Actor, order: GuaranteeOrder) -> None:
    """Only the tenderer's or agency's staff of the order's tender act for the beneficiary."""
    if actor.role in (Role.TENDERER, Role.AGENCY) and order.tender.is_managed_by(actor.organisation_id):
        return
    raise NotBeneficiary()


def _evidence(files: Iterable[tuple[str, BinaryIO]]) -> list[dict[str, Any]]:
    store = default_store()
    out = []
    for filename, stream in files:
        name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
        if not name:
            raise ValidationFailed(fields={"evidence": [_l("Every evidence file needs a name.")]})
        try:
            sha, size = store.put_stream(stream, max_size=MAX_EVIDENCE_BYTES)
        except ValueError:
            raise ValidationFailed(fields={"evidence": [_l("%(name)s is larger than 20 MB.", name=name)]}) from None
        if size == 0:
            raise ValidationFailed(fields={"evidence": [_l("%(name)s is empty.", name=name)]})
        out.append({"filename": name, "sha256": sha, "size": size})
    return out


def file_claim(actor: Actor, order: GuaranteeOrder, trigger: ClaimTrigger | str, amount: Any, reason: str,
               evidence: Iterable[tuple[str, BinaryIO]]) -> GuaranteeClaim:
    """File a claim on a bid's letter before it expires; it is sent to the issuer through the outbox."""
    require_beneficiary(actor, order)
    try:
        trigger = ClaimTrigger(trigger)
    except ValueError:
        raise ValidationFailed(fields={"trigger": [_l("Use one of: %(triggers)s.",
                                                      triggers=", ".join(t.value for t in ClaimTrigger))]}) from None
    reason = (reason or "").strip()
    if not 10 <= len(reason) <= 5000:
        raise ValidationFailed(fields={"reason": [_l("State the written demand and its grounds (10 to 5000 "
                                                     "characters).")]})
    amount = rates.as_decimal(amount, "amount")
    if amount <= 0 or amount != rates.round_money(amount) or amount > order.amount:
        raise ValidationFailed(fields={"amount": [_l("Claim more than 0 and at most the guaranteed %(amount)s CNY, "
                                                     "to the fen.", amount=rates.money_text(order.amount))]})
    at = now()
    if order.state not in CLAIMABLE:
        raise ClaimRefused(reason=_l("the letter is %(state)s; only a letter bound to a bid can be claimed on.",
                                     state=order.state.value))
    if order.valid_until is None or at > as_utc(order.valid_until):
        raise ClaimRefused(reason=_l("the letter expired at %(at)s; claims must be filed before expiry.",
                                     at=as_utc(order.valid_until).isoformat() if order.valid_until else "-"))
    deadline = order.tender.bid_deadline_at
    if trigger in AFTER_DEADLINE_TRIGGERS and (deadline is None or at < as_utc(deadline)):
        raise ClaimRefused(reason=_l("the bid deadline has not passed; before it a bidder may still withdraw "
                                     "freely (条例 §35)."))
    if db.session.scalar(select(GuaranteeClaim.id).where(GuaranteeClaim.order_id == order.id,
                                                         GuaranteeClaim.state.in_([ClaimState.FILED,
                                                                                   ClaimState.SENT]))):
        raise ClaimRefused(reason=_l("a claim on this letter is already waiting for the issuer's answer."))
    files = _evidence(list(evidence)[:MAX_EVIDENCE_FILES + 1])
    if not files:
        raise ValidationFailed(fields={"evidence": [_l("Attach the evidence (at least one file).")]})
    if len(files) > MAX_EVIDENCE_FILES:
        raise ValidationFailed(fields={"evidence": [_l("Attach at most %(n)s files.", n=MAX_EVIDENCE_FILES)]})
    old = lifecycle.transition(order, OrderState.CLAIMED)
    claim = GuaranteeClaim(claim_no=f"C{at:%Y%m%d}{secrets.token_hex(5).upper()}", order_id=order.id,
                           trigger=trigger, amount=amount, reason=reason, evidence=files, state=ClaimState.FILED,
                           filed_by_id=actor.person_id, filed_at=at,
                           answer_due_at=at + timedelta(days=order.product.claim_answer_days))
    db.session.add(claim)
    db.session.flush()
    outbox.queue(order, protocol.CLAIM, {"guarantee_no": order.guarantee_no, "claim_no": claim.claim_no,
                                         "amount": amount, "reason": reason, "trigger": trigger.value,
                                         "evidence": [f["sha256"] for f in files]}, claim=claim)
    audit.record(actor, "guarantee.claim.file", "guarantee_claim", claim.id,
                 {"claim_no": claim.claim_no, "order_no": order.order_no, "guarantee_no": order.guarantee_no,
                  "state": [old.value, OrderState.CLAIMED.value], "trigger": trigger.value, "amount": amount,
                  "evidence": files, "answer_due_at": claim.answer_due_at})
    notices.notify(notices.members([order.bidder_id], [Role.BIDDER]), kind="guarantee_claim_filed",
                   object_type="guarantee_claim", object_id=claim.id,
                   subject=_l("A claim of %(amount)s CNY was filed on guarantee %(guarantee_no)s"),
                   amount=rates.money_text(amount), guarantee_no=order.guarantee_no)
    return claim


def claims_for(order: GuaranteeOrder) -> list[GuaranteeClaim]:
    return list(order.claims)
