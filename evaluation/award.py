"""After the report: 评定分离 decision, publicity of the candidates, objections, award (定标 and 中标通知).

* Rank-first (the default, and mandatory for state-funded works, 条例 §55): the report's ranked candidates
  are published; after the publicity the first candidate is awarded (a tie the rules could not break is
  settled by the tenderer choosing among the tied bids).
* 评定分离 (DOMAIN §2.7): the committee recommended unranked candidates; the tenderer's decision committee
  picks by the method fixed in the tender — lowest price, vote, or vote then a drawn lot (seed committed
  in the transparency log before it is revealed) — and the choice is published with the candidates.
* Publicity (条例 §54): at least 3 days (``publicity_days``); bidders may object during it; an objection
  is answered within 3 days and, while unanswered, the award waits. After the award every other bidder's
  guarantee is released through the guarantees package.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import translog
from bidding.lifecycle import transition
from bidding.models import Lot, Tender, TenderStatus
from bidding.opening_draws import draw_index
from bidding.opening_models import BidOpening
from bidding.policy import clean_text, require_manager
from bidding.receipts import epoch_ms
from bidding.services import tender_failed
from core import audit
from core.actor import Actor
from core.clock import as_utc, beijing, now
from core.db import db, locked_scalars
from core.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from core.identity.models import Role
from core.notifications import members as org_members
from core.notifications import notify
from evaluation.result_models import (
    Award,
    EvaluationReport,
    EvaluationResult,
    Publicity,
    ReportStatus,
    ResultObjection,
)
from guarantees.release import ReleaseReason, release_for_bidder

OBJECTION_ANSWER_DAYS = 3  # 条例 §54
PICKS = ("price", "vote", "vote_then_lot")


class AwardRefused(RuleViolation):
    code = "award_refused"
    default_message = _l("This step of the award cannot be taken now.")


def lock_tender(tender_id: int) -> Tender:
    tender = locked_scalars(select(Tender).where(Tender.id == tender_id), Tender, Tender.id == tender_id).first()
    if tender is None:
        raise NotFound(_l("This tender does not exist."))
    return tender


def result_of_tender(tender_id: int) -> EvaluationResult | None:
    return db.session.scalar(select(EvaluationResult).where(EvaluationResult.tender_id == tender_id))


def publicity_of(tender_id: int) -> Publicity | None:
    return db.session.scalar(select(Publicity).where(Publicity.tender_id == tender_id))


def awards_of(tender_id: int) -> list[Award]:
    return list(db.session.scalars(select(Award).where(Award.tender_id == tender_id).order_by(Award.lot_id)))


def objections_of(tender_id: int) -> list[ResultObjection]:
    return list(db.session.scalars(select(ResultObjection).where(ResultObjection.tender_id == tender_id)
                                   .order_by(ResultObjection.id)))


def _log(tender: Tender, event: str, **fields: Any) -> int:
    clean = {k: str(v) for k, v in fields.items() if v is not None}
    return translog.append_event(tender, "award", event=event, at_ms=epoch_ms(now()), **clean)


def _signed_result(tender: Tender) -> EvaluationResult:
    report = db.session.scalar(select(EvaluationReport).where(EvaluationReport.tender_id == tender.id))
    if report is None or report.status != ReportStatus.SIGNED:
        raise AwardRefused(_l("The evaluation report is not signed by every member yet; the result can be "
                              "published once it is."), code="report_not_signed")
    result = result_of_tender(tender.id)
    assert result is not None  # a report is only prepared from a stored result
    return result


def _mode(result: EvaluationResult) -> dict[str, Any]:
    return dict(result.spec.get("award") or {"mode": "rank_first"})


def _lot_result(result: EvaluationResult, lot_id: int) -> dict[str, Any]:
    lot = next((x for x in result.lots if x["lot_id"] == lot_id), None)
    if lot is None:
        raise NotFound(_l("This lot has no evaluation result."))
    return lot


# --- 评定分离: the tenderer's decision committee picks ------------------------------------------------------

def _votes(raw: Any, candidates: list[dict[str, Any]]) -> dict[int, int]:
    ids = {c["bid_opening_id"] for c in candidates}
    if not isinstance(raw, dict) or not raw:
        raise ValidationFailed(_l("Enter the decision committee's votes for each candidate."),
                               fields={"votes": _l("Enter a number of votes for each candidate.")})
    out = {}
    for key, value in raw.items():
        try:
            bid, count = int(key), int(value)
        except (TypeError, ValueError):
            raise ValidationFailed(_l("Votes must be whole numbers."), fields={"votes": _l("Whole numbers only.")})\
                from None
        if bid not in ids or count < 0:
            raise ValidationFailed(_l("Votes may only go to the recommended candidates, as numbers from 0 up."),
                                   fields={"votes": _l("Check the candidates and the numbers.")})
        out[bid] = count
    return out


def pick_separated(actor: Actor, tender_id: int, lot_id: int, votes: dict[Any, Any] | None = None) -> Award:
    """The tenderer records the decision committee's choice (定标) for one lot, by the tender's method."""
    tender = lock_tender(tender_id)
    require_manager(actor, tender)
    if tender.status != TenderStatus.EVALUATION:
        raise AwardRefused(_l("The choice is made after the report is signed and before publicity."),
                           code="wrong_stage")
    result = _signed_result(tender)
    mode = _mode(result)
    if mode.get("mode") != "separated":
        raise AwardRefused(_l("This tender awards the first-ranked candidate; there is no choice to record."),
                           code="not_separated")
    lot = _lot_result(result, lot_id)
    candidates = lot["candidates"]
    if not candidates:
        raise AwardRefused(_l("This lot has no candidate; it is tendered again."), code="no_candidates")
    if tender.is_suspended:
        raise AwardRefused(_l("The procedure is suspended; the choice waits until it resumes."), code="suspended")
    if db.session.scalar(select(Award.id).where(Award.lot_id == lot_id)):
        raise AwardRefused(_l("The choice for this lot is already recorded."), code="already_picked")
    pick = mode.get("pick", "price")
    decision: dict[str, Any] = {"pick": pick}
    if pick == "price":
        ranked = sorted(candidates, key=lambda c: (Decimal(c["price"]), c["bid_opening_id"]))
        lowest = [c for c in ranked if Decimal(c["price"]) == Decimal(ranked[0]["price"])]
        if len(lowest) > 1:
            raise AwardRefused(_l("Two candidates offer the same lowest price; the tender's method cannot choose "
                                  "between them."), code="price_tie")
        chosen = ranked[0]
    else:
        counts = _votes(votes, candidates)
        decision["votes"] = {str(k): v for k, v in sorted(counts.items())}
        top = max(counts.values(), default=0)
        leaders = sorted(b for b, n in counts.items() if n == top)
        if len(leaders) == 1:
            chosen_id = leaders[0]
        elif pick == "vote_then_lot":
            seed = secrets.token_bytes(32)
            commitment = hashlib.sha256(seed).hexdigest()
            name = f"award-lot-{lot['code']}"
            commit_index = _log(tender, "lot-commit", lot=lot["code"], commitment=commitment,
                                choices=",".join(map(str, leaders)))
            chosen_id = leaders[draw_index(seed, tender.code, name, len(leaders))]
            reveal_index = _log(tender, "lot-reveal", lot=lot["code"], seed=seed.hex(), result=chosen_id)
            decision["lot"] = {"name": name, "tied": leaders, "commitment": commitment, "seed": seed.hex(),
                               "commit_index": commit_index, "reveal_index": reveal_index}
        else:
            raise AwardRefused(_l("The vote is tied; the tender's method (vote) needs a majority. Vote again."),
                               code="vote_tie")
        chosen = next(c for c in candidates if c["bid_opening_id"] == chosen_id)
    bid = db.session.get(BidOpening, chosen["bid_opening_id"])
    award = Award(tender_id=tender.id, lot_id=lot_id, organisation_id=bid.organisation_id, bid_opening_id=bid.id,
                  amount=Decimal(chosen["price"]), mode="separated", decision=decision,
                  decided_by_id=actor.person_id)
    db.session.add(award)
    db.session.flush()
    audit.record(actor, "award.picked", "tender", tender.id, {"lot_id": lot_id, "bid_opening_id": bid.id,
                                                              "decision": decision})
    _log(tender, "picked", lot=lot["code"], bid=bid.id, pick=pick)
    return award


# --- publicity (中标候选人公示) ----------------------------------------------------------------------------

def start_publicity(actor: Actor, tender_id: int) -> Publicity:
    """Publish the candidates for the tender's publicity period; lots without candidates are noted."""
    tender = lock_tender(tender_id)
    require_manager(actor, tender)
    result = _signed_result(tender)
    if tender.status != TenderStatus.EVALUATION:
        raise AwardRefused(_l("The candidates are published once, after the report is signed (the tender is %(s)s)."),
                           code="wrong_stage", s=tender.status.value)
    separated = _mode(result).get("mode") == "separated"
    picked = {a.lot_id: a for a in awards_of(tender.id)}
    lots = []
    for lot in result.lots:
        if separated and lot["candidates"] and lot["lot_id"] not in picked:
            raise AwardRefused(_l("Record the decision committee's choice for lot %(lot)s first (评定分离)."),
                               code="pick_missing", lot=lot["code"])
        chosen = picked.get(lot["lot_id"])
        lots.append({"lot_id": lot["lot_id"], "code": lot["code"], "title": lot["title"],
                     "candidates": lot["candidates"], "mode": "separated" if separated else "rank_first",
                     "chosen": chosen.bid_opening_id if chosen else None})
    if not any(lot["candidates"] for lot in lots):
        old = transition(tender, TenderStatus.FAILED)
        db.session.flush()
        audit.record(actor, "tender.failed", "tender", tender.id,
                     {"status": [old.value, TenderStatus.FAILED.value], "reason": "no_valid_bid"})
        tender_failed.send(tender, actor=actor, at=now())
        nothing = Publicity(tender_id=tender.id, days=0, starts_at=now(), ends_at=now(), candidates=lots,
                            published_by_id=actor.person_id)  # what was published: every lot without candidate
        db.session.add(nothing)
        db.session.flush()
        return nothing
    days = int(result.spec.get("publicity_days") or 3)
    start = now()
    publicity = Publicity(tender_id=tender.id, days=days, starts_at=start, ends_at=start + timedelta(days=days),
                          candidates=lots, published_by_id=actor.person_id)
    db.session.add(publicity)
    old = transition(tender, TenderStatus.PUBLICITY)
    db.session.flush()
    audit.record(actor, "publicity.start", "tender", tender.id,
                 {"status": [old.value, TenderStatus.PUBLICITY.value], "days": days,
                  "ends_at": publicity.ends_at.isoformat(),
                  "candidates": {lot["code"]: [c["bid_opening_id"] for c in lot["candidates"]] for lot in lots}})
    _log(tender, "publicity", days=days, ends_ms=epoch_ms(publicity.ends_at))
    bidders = sorted({b.organisation_id for b in db.session.scalars(
        select(BidOpening).where(BidOpening.tender_id == tender.id))})
    notify(org_members(bidders, [Role.BIDDER]), kind="publicity", object_type="tender", object_id=tender.id,
           subject=_l("The candidates of %(tender)s are published until %(end)s (Beijing time)."),
           body=_l("Objections to the result may be raised on the tender's page during the publicity."),
           tender=tender.code, end=beijing(publicity.ends_at).strftime("%Y-%m-%d %H:%M"))
    return publicity


def _bidder_org(actor: Actor, tender: Tender) -> int:
    if actor.role != Role.BIDDER or actor.organisation_id is None:
        raise Forbidden(_l("Only bidders raise objections to the result, acting for their organisation."),
                        code="not_a_bidder")
    if not db.session.scalar(select(BidOpening.id).where(BidOpening.tender_id == tender.id,
                                                         BidOpening.organisation_id == actor.organisation_id)
                             .limit(1)):
        raise Forbidden(_l("Only organisations that bid in this tender may object to its result."),
                        code="not_a_bidder")
    return actor.organisation_id


def raise_objection(actor: Actor, tender_id: int, text: str) -> ResultObjection:
    """A bidder objects to the result during publicity (条例 §54); the award waits for the answer."""
    tender = lock_tender(tender_id)
    org = _bidder_org(actor, tender)
    publicity = publicity_of(tender.id)
    if tender.status != TenderStatus.PUBLICITY or publicity is None or now() >= as_utc(publicity.ends_at):
        raise AwardRefused(_l("Objections to the result are raised only during the publicity period."),
                           code="not_in_publicity")
    body = clean_text(text, "text", max_length=8000)
    at = now()
    row = ResultObjection(tender_id=tender.id, organisation_id=org, person_id=actor.person_id, text=body,
                          raised_at=at, due_at=at + timedelta(days=OBJECTION_ANSWER_DAYS))
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "publicity.objection", "tender", tender.id, {"objection_id": row.id,
                                                                     "sha256": _digest(body)})
    _log(tender, "objection", objection=row.id, sha256=_digest(body))
    notify(org_members([tender.tenderer_id, tender.agency_id], [Role.TENDERER, Role.AGENCY]), kind="objection",
           object_type="tender", object_id=tender.id,
           subject=_l("A bidder objects to the result of %(tender)s; answer by %(due)s (Beijing time)."),
           body=_l("The award waits until every objection is answered."), tender=tender.code,
           due=beijing(row.due_at).strftime("%Y-%m-%d %H:%M"))
    return row


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def answer_objection(actor: Actor, tender_id: int, objection_id: int, answer: str) -> ResultObjection:
    """The tenderer (or agency) answers an objection in writing; the answer goes to the objecting bidder."""
    tender = lock_tender(tender_id)
    require_manager(actor, tender)
    row = db.session.get(ResultObjection, objection_id)
    if row is None or row.tender_id != tender.id:
        raise NotFound(_l("This objection does not exist."))
    if row.answered_at is not None:
        raise AwardRefused(_l("This objection is already answered."), code="already_answered")
    row.answer = clean_text(answer, "answer", max_length=8000)
    row.answered_by_id, row.answered_at = actor.person_id, now()
    db.session.flush()
    audit.record(actor, "publicity.objection_answered", "tender", tender.id,
                 {"objection_id": row.id, "sha256": _digest(row.answer),
                  "late": as_utc(row.answered_at) > as_utc(row.due_at)})
    _log(tender, "objection-answered", objection=row.id, sha256=_digest(row.answer))
    notify(org_members([row.organisation_id], [Role.BIDDER]), kind="objection_answer", object_type="tender",
           object_id=tender.id, subject=_l("Your objection to the result of %(tender)s was answered."),
           body=_l("Answer: %(answer)s"), tender=tender.code, answer=row.answer)
    return row


def award(actor: Actor, tender_id: int, choices: dict[int, int] | None = None) -> list[Award]:
    """After the publicity, with every objection answered: award each lot and send the notices (中标通知书).

    ``choices`` ({lot_id: bid_opening_id}) settles a first place the tie rules left to the tenderer.
    """
    tender = lock_tender(tender_id)
    require_manager(actor, tender)
    publicity = publicity_of(tender.id)
    if tender.status != TenderStatus.PUBLICITY or publicity is None:
        raise AwardRefused(_l("The award follows the publicity of the candidates."), code="wrong_stage")
    if now() < as_utc(publicity.ends_at):
        raise AwardRefused(_l("The publicity lasts until %(end)s (Beijing time); award after it ends."),
                           code="publicity_running", end=beijing(publicity.ends_at).strftime("%Y-%m-%d %H:%M"))
    if any(o.answered_at is None for o in objections_of(tender.id)):
        raise AwardRefused(_l("An objection to the result is not answered yet; the award waits for the answer."),
                           code="objection_open")
    picked = {a.lot_id: a for a in awards_of(tender.id)}
    at, made = now(), []
    for lot in publicity.candidates:
        if not lot["candidates"]:
            continue
        row = picked.get(lot["lot_id"])
        if row is None:
            first = [c for c in lot["candidates"] if c.get("rank") == lot["candidates"][0].get("rank")]
            chosen_id = first[0]["bid_opening_id"]
            if len(first) > 1:
                chosen_id = (choices or {}).get(lot["lot_id"])
                if chosen_id not in {c["bid_opening_id"] for c in first}:
                    raise ValidationFailed(_l("Lot %(lot)s has tied first candidates; choose one of them."),
                                           lot=lot["code"], fields={f"lot_{lot['lot_id']}": _l("Choose one.")})
            chosen = next(c for c in lot["candidates"] if c["bid_opening_id"] == chosen_id)
            bid = db.session.get(BidOpening, chosen_id)
            row = Award(tender_id=tender.id, lot_id=lot["lot_id"], organisation_id=bid.organisation_id,
                        bid_opening_id=bid.id, amount=Decimal(chosen["price"]), mode="rank_first",
                        decision={"tie_choice": len(first) > 1}, decided_by_id=actor.person_id, decided_at=at)
            db.session.add(row)
        row.notified_at = at
        made.append(row)
    old = transition(tender, TenderStatus.AWARDED)
    db.session.flush()
    for row in made:
        lot = db.session.get(Lot, row.lot_id)
        audit.record(actor, "award.notice", "tender", tender.id,
                     {"lot_id": row.lot_id, "organisation_id": row.organisation_id, "amount": str(row.amount)})
        _log(tender, "awarded", lot=lot.code, bid=row.bid_opening_id, amount=row.amount)
        notify(org_members([row.organisation_id], [Role.BIDDER]), kind="award_notice", object_type="tender",
               object_id=tender.id, subject=_l("Award notice (中标通知书): you won lot %(lot)s of %(tender)s."),
               body=_l("Contract amount %(amount)s CNY; sign the contract within 30 days."), lot=lot.code,
               tender=tender.code, amount=f"{row.amount:.2f}")
    audit.record(actor, "tender.awarded", "tender", tender.id,
                 {"status": [old.value, TenderStatus.AWARDED.value], "lots": [a.lot_id for a in made]})
    _release_others(actor, tender, made)
    return made


def _release_others(actor: Actor, tender: Tender, made: list[Award]) -> None:
    """Every bidder that did not win a lot gets its guarantee back (条例 §57)."""
    winners = {(a.lot_id, a.organisation_id) for a in made}
    for bid in db.session.scalars(select(BidOpening).where(BidOpening.tender_id == tender.id)):
        if (bid.lot_id, bid.organisation_id) not in winners:
            release_for_bidder(actor, tender, bid.lot_id, bid.organisation_id, ReleaseReason.NOT_AWARDED)


CONTRACT_DAYS = 30  # the contract within 30 days of the award notice (招标投标法 §46)


def record_contract(actor: Actor, tender_id: int, lot_id: int) -> Award:
    """The tenderer records that the contract of a lot is signed; the winner's guarantee is then released
    (条例 §57). Signing later than 30 days after the notice is recorded as late, not refused."""
    tender = lock_tender(tender_id)
    require_manager(actor, tender)
    row = db.session.scalar(select(Award).where(Award.tender_id == tender.id, Award.lot_id == lot_id))
    if row is None or row.notified_at is None:
        raise AwardRefused(_l("This lot has no award notice yet; the contract follows the award."),
                           code="not_awarded")
    if row.contract_signed_at is not None:
        raise AwardRefused(_l("The contract of this lot is already recorded."), code="contract_recorded")
    at = now()
    row.contract_signed_at = at
    db.session.flush()
    late = at > as_utc(row.notified_at) + timedelta(days=CONTRACT_DAYS)
    audit.record(actor, "award.contract", "tender", tender.id,
                 {"lot_id": lot_id, "organisation_id": row.organisation_id, "late": late})
    _log(tender, "contract", lot=db.session.get(Lot, lot_id).code, bid=row.bid_opening_id)
    release_for_bidder(actor, tender, lot_id, row.organisation_id, ReleaseReason.CONTRACT_SIGNED)
    return row
