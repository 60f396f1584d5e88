"""The committee's decisions before completing, and the frozen result (评审结果) at completion.

In the summary stage the chair records what only the committee may decide (DOMAIN §2.6, §1.3): whether
each abnormally low bid's written explanation is accepted or the bid is rejected as below cost, which
needs a clarification asked and answered (or left unanswered past its due time) first; and, for a lot
left with fewer than 3 valid bids, whether competition is sufficient to go on. Members write their
dissent (不同意见). :func:`finalize` runs when the chair completes: every decision taken, the result is
computed by the tender's method and frozen, and the report is prepared for signing.
"""

from __future__ import annotations

import hashlib

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.policy import clean_text
from core.actor import Actor
from core.db import db
from core.errors import ValidationFailed
from evaluation import results
from evaluation.result_models import CommitteeDecision, DecisionKind, Dissent, EvaluationResult
from evaluation.room_errors import RoomRefused
from evaluation.room_flow import committee_log, enter, record, require_bid, require_chair
from evaluation.room_models import Clarification, ClarificationStatus, Evaluation, EvaluationStatus

S = EvaluationStatus
LOW_OUTCOMES = (results.ACCEPTED, results.REJECTED)
COMPETITION_OUTCOMES = (results.CONTINUE, results.REJECT_ALL)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _store(evaluation: Evaluation, kind: DecisionKind, subject: str, outcome: str, reason: str,
           member_id: int) -> CommitteeDecision:
    row = db.session.scalar(select(CommitteeDecision).where(CommitteeDecision.evaluation_id == evaluation.id,
                                                            CommitteeDecision.kind == kind,
                                                            CommitteeDecision.subject == subject))
    if row is None:
        row = CommitteeDecision(evaluation_id=evaluation.id, kind=kind, subject=subject)
        db.session.add(row)
    row.outcome, row.reason, row.decided_by_id = outcome, reason, member_id
    db.session.flush()
    return row


def decide_low_price(actor: Actor, evaluation_id: int, bid_opening_id: int, outcome: str,
                     reason: str) -> CommitteeDecision:
    """The chair records the committee's decision on an abnormally low bid (accepted | rejected)."""
    evaluation, access = enter(actor, evaluation_id, S.SUMMARY)
    require_chair(evaluation, access)
    bid = require_bid(evaluation, bid_opening_id)
    if outcome not in LOW_OUTCOMES:
        raise ValidationFailed(_l("Decide accepted (the explanation holds) or rejected (below cost)."),
                               fields={"outcome": _l("Choose accepted or rejected.")})
    text = clean_text(reason, "reason", max_length=4000)
    row = results.bid_row(results.compute(evaluation).lots, bid.id)
    if row is None or not row[1].get("abnormally_low"):
        raise RoomRefused(_l("This bid's price is not flagged as abnormally low; there is nothing to decide."),
                          code="not_abnormally_low")
    explained = db.session.scalar(select(Clarification.id).where(
        Clarification.evaluation_id == evaluation.id, Clarification.bid_opening_id == bid.id,
        Clarification.status.in_([ClarificationStatus.ANSWERED, ClarificationStatus.EXPIRED])).limit(1))
    if explained is None:
        raise RoomRefused(_l("Ask the bidder for a written explanation of its price first (a clarification), and "
                             "decide once it is answered or past its due time."), code="explanation_missing")
    decision = _store(evaluation, DecisionKind.ABNORMALLY_LOW, results.bid_subject(bid.id), outcome, text,
                      access.member_id)
    record(actor, "low_price_decided", evaluation, bid_opening_id=bid.id, outcome=outcome, reason=text)
    committee_log(evaluation, "low-price-decided", member=access.member_id, bid=bid.id, detail=outcome,
                  sha256=_digest(text))
    return decision


def decide_competition(actor: Actor, evaluation_id: int, lot_id: int, outcome: str, reason: str) -> CommitteeDecision:
    """The chair records whether a lot with fewer than 3 valid bids goes on (continue) or all are rejected."""
    evaluation, access = enter(actor, evaluation_id, S.SUMMARY)
    require_chair(evaluation, access)
    if outcome not in COMPETITION_OUTCOMES:
        raise ValidationFailed(_l("Decide continue (competition is sufficient) or reject_all (every bid of the lot "
                                  "is rejected and the lot is tendered again)."),
                               fields={"outcome": _l("Choose continue or reject_all.")})
    text = clean_text(reason, "reason", max_length=4000)
    lot = results.lot_by_id(results.compute(evaluation).lots, lot_id)
    if lot is None or not (0 < lot["valid_count"] < results.MIN_VALID or lot["competition"] is not None):
        raise RoomRefused(_l("This lot has 3 or more valid bids (or none); there is no competition question to "
                             "decide."), code="competition_not_in_question")
    decision = _store(evaluation, DecisionKind.COMPETITION, results.lot_subject(lot_id), outcome, text,
                      access.member_id)
    record(actor, "competition_decided", evaluation, lot_id=lot_id, outcome=outcome, reason=text)
    committee_log(evaluation, "competition-decided", member=access.member_id, detail=f"{lot_id}:{outcome}",
                  sha256=_digest(text))
    return decision


def write_dissent(actor: Actor, evaluation_id: int, text: str) -> Dissent | None:
    """A member writes (or rewrites) their dissent with reasons; empty text withdraws it."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING, S.SUMMARY)
    row = db.session.scalar(select(Dissent).where(Dissent.evaluation_id == evaluation.id,
                                                  Dissent.member_id == access.member_id))
    body = (text or "").strip()
    if not body:
        if row is not None:
            db.session.delete(row)
            db.session.flush()
            record(actor, "dissent_withdrawn", evaluation, member_id=access.member_id)
            committee_log(evaluation, "dissent-withdrawn", member=access.member_id)
        return None
    body = clean_text(body, "text", max_length=8000)
    if row is None:
        row = Dissent(evaluation_id=evaluation.id, member_id=access.member_id, text=body)
        db.session.add(row)
    row.text = body
    db.session.flush()
    record(actor, "dissent", evaluation, member_id=access.member_id, sha256=_digest(body))
    committee_log(evaluation, "dissent", member=access.member_id, sha256=_digest(body))
    return row


def dissents_of(evaluation_id: int) -> list[Dissent]:
    return list(db.session.scalars(select(Dissent).where(Dissent.evaluation_id == evaluation_id)
                                   .order_by(Dissent.member_id)))


def result_of(evaluation_id: int) -> EvaluationResult | None:
    return db.session.scalar(select(EvaluationResult).where(EvaluationResult.evaluation_id == evaluation_id))


def require_decisions(computed: results.Computed) -> None:
    """Completion waits for every decision only the committee may take."""
    if computed.undecided_low:
        raise RoomRefused(_l("Decide on every abnormally low bid first (bids %(ids)s): ask for the explanation, "
                             "then accept it or reject the bid as below cost."),
                          code="low_price_undecided", ids=", ".join(map(str, computed.undecided_low)))
    if computed.undecided_lots:
        raise RoomRefused(_l("A lot has fewer than 3 valid bids; decide whether competition is sufficient (continue) "
                             "or every bid is rejected (reject_all) first."), code="competition_undecided")


def finalize(actor: Actor, evaluation: Evaluation) -> EvaluationResult:
    """Freeze the result (the chair completes; the caller holds the room lock and set nothing yet)."""
    computed = results.compute(evaluation)
    require_decisions(computed)
    stored = EvaluationResult(evaluation_id=evaluation.id, tender_id=evaluation.tender_id,
                              method=computed.spec.method, method_version=computed.spec.version,
                              spec=computed.spec.to_dict(), inputs_sha256=computed.inputs_sha256, lots=computed.lots)
    db.session.add(stored)
    db.session.flush()
    outcome_digest = hashlib.sha256(results.canonical(computed.lots)).hexdigest()
    record(actor, "result", evaluation, method=stored.method, method_version=stored.method_version,
           inputs_sha256=stored.inputs_sha256, result_sha256=outcome_digest)
    committee_log(evaluation, "result", detail=f"inputs:{stored.inputs_sha256}", sha256=outcome_digest)
    return stored
