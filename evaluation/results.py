"""The evaluation's result (评审结果), computed from the room's data by the tender's method.

The room holds the facts: every member's submitted sheets, the disputes decided by vote, the committee's
decisions on abnormally low bids and on too little competition; the opening holds the prices (bid.json)
and the drawn random parameters. :func:`compute` turns them into the inputs of the pure methods
(:mod:`evaluation.methods`): pass/fail review by majority (disputes override), subjective items averaged
per the tender's aggregation rule, objective price scores computed once, ranks and candidates. The same
function gives the live preview the committee sees before completing and the frozen result stored at
completion, so what the committee saw is what the report prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.models import Lot, Tender
from bidding.opening_models import BidOpening, BidOpeningStatus, RandomDraw
from core.db import db
from core.errors import ValidationFailed
from evaluation import criteria as C
from evaluation import methods as M
from evaluation.result_models import CommitteeDecision, DecisionKind
from evaluation.room_models import Dispute, DisputeStatus, Evaluation, ScoreSheet

ACCEPTED, REJECTED = "accepted", "rejected"
CONTINUE, REJECT_ALL = "continue", "reject_all"
MIN_VALID = 3  # fewer valid bids: the committee decides whether competition is sufficient (12号令 §27)


def bid_subject(bid_opening_id: int) -> str:
    return f"bid:{bid_opening_id}"


def lot_subject(lot_id: int) -> str:
    return f"lot:{lot_id}"


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def step_dict(step: M.Step) -> dict[str, Any]:
    return {"code": step.code, "values": dict(step.values), "result": step.result}


@dataclass
class Computed:
    """A computed result: the method's spec, per-lot outcomes (JSON-ready) and what still needs deciding."""

    spec: M.MethodSpec
    lots: list[dict[str, Any]]
    inputs_sha256: str
    undecided_low: list[int] = field(default_factory=list)   # abnormally low bids without a decision
    undecided_lots: list[int] = field(default_factory=list)  # lots with 0 < valid < 3 and no decision


def method_spec(tender: Tender) -> M.MethodSpec:
    return M.parse_method(tender.evaluation_method or {})


def drawn_parameters(tender_id: int) -> dict[str, Decimal]:
    rows = db.session.scalars(select(RandomDraw).where(RandomDraw.tender_id == tender_id,
                                                       RandomDraw.result.is_not(None)))
    return {r.name: Decimal(r.result) for r in rows}


def decisions_of(evaluation_id: int) -> dict[tuple[DecisionKind, str], CommitteeDecision]:
    rows = db.session.scalars(select(CommitteeDecision).where(CommitteeDecision.evaluation_id == evaluation_id))
    return {(d.kind, d.subject): d for d in rows}


def _submitted(evaluation_id: int) -> dict[int, dict[int, dict[str, str]]]:
    """{bid_opening_id: {member_id: values}} of the submitted sheets."""
    out: dict[int, dict[int, dict[str, str]]] = {}
    for sheet in db.session.scalars(select(ScoreSheet).where(ScoreSheet.evaluation_id == evaluation_id,
                                                             ScoreSheet.submitted_at.is_not(None))):
        out.setdefault(sheet.bid_opening_id, {})[sheet.member_id] = dict(sheet.values or {})
    return out


def _decided_disputes(evaluation_id: int) -> dict[tuple[int, str], str]:
    rows = db.session.scalars(select(Dispute).where(Dispute.evaluation_id == evaluation_id,
                                                    Dispute.status == DisputeStatus.DECIDED))
    return {(d.bid_opening_id, d.criterion): d.outcome for d in rows if d.outcome}


def _bids_by_lot(tender_id: int) -> dict[int, list[BidOpening]]:
    out: dict[int, list[BidOpening]] = {}
    for bid in db.session.scalars(select(BidOpening).where(BidOpening.tender_id == tender_id)
                                  .order_by(BidOpening.id)):
        out.setdefault(bid.lot_id, []).append(bid)
    return out


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _candidates(spec: M.MethodSpec, outcome: M.LotOutcome, rows: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank-first: the first ``candidates`` valid bids, ranked. 评定分离: the best N, unranked (by name)."""
    award = spec.award
    if award.mode == "separated":
        picked = [rows[b] for b in outcome.ranking[:award.separated_count]]
        picked.sort(key=lambda r: r["bidder"])
        return [{"bid_opening_id": r["bid_opening_id"], "organisation_id": r["organisation_id"],
                 "bidder": r["bidder"], "price": r["price"], "rank": None} for r in picked]
    return [{"bid_opening_id": rows[b]["bid_opening_id"], "organisation_id": rows[b]["organisation_id"],
             "bidder": rows[b]["bidder"], "price": rows[b]["price"], "rank": rows[b]["rank"],
             "tie": rows[b]["tie"]} for b in outcome.ranking[:award.candidates]]


def _lot_result(spec: M.MethodSpec, evaluation: Evaluation, lot: Lot, bids: list[BidOpening],
                sheets: dict[int, dict[int, dict[str, str]]], disputes: dict[tuple[int, str], str],
                decisions: Mapping[tuple[DecisionKind, str], CommitteeDecision],
                drawn: Mapping[str, Decimal]) -> tuple[dict[str, Any], dict[str, Any]]:
    tender = evaluation.tender
    pass_codes = [c["code"] for c in evaluation.criteria if c["kind"] == C.PASS_FAIL]
    score_codes = [c["code"] for c in evaluation.criteria if c["kind"] == C.SCORE]
    opened = [b for b in bids if b.status == BidOpeningStatus.DECRYPTED and (b.form or {}).get("price")]
    votes = {b.id: {m: {code: v[code] for code in pass_codes if code in v} for m, v in sheets.get(b.id, {}).items()}
             for b in opened}
    review = M.review(pass_codes, votes, {k: v for k, v in disputes.items() if k[0] in votes})
    competition = decisions.get((DecisionKind.COMPETITION, lot_subject(lot.id)))
    inputs, rows, item_views = [], {}, {}
    for bid in opened:
        items = {code: {m: Decimal(v[code]) for m, v in sheets.get(bid.id, {}).items() if v.get(code) is not None}
                 for code in score_codes}
        subjective, aggregates = M.aggregate_bid(items, spec)
        low = decisions.get((DecisionKind.ABNORMALLY_LOW, bid_subject(bid.id)))
        rejected = (low is not None and low.outcome == REJECTED) or \
            (competition is not None and competition.outcome == REJECT_ALL)
        price = Decimal(str(bid.form["price"]))
        inputs.append(M.BidInput(bid_id=bid.id, price=price, passed_review=review[bid.id].passed,
                                 subjective=subjective, is_sme=bool(bid.organisation.is_sme), rejected=rejected))
        item_views[bid.id] = {code: {"value": _text(a.value), "by_member": {str(m): _text(s) for m, s in
                                                                              items[code].items()},
                                     "dropped_high": a.dropped_high, "dropped_low": a.dropped_low}
                              for code, a in aggregates.items()}
        rows[bid.id] = {"bid_opening_id": bid.id, "organisation_id": bid.organisation_id,
                        "bidder": bid.organisation.name, "price": _text(price),
                        "failed_items": list(review[bid.id].failed_items),
                        "review": {k: list(v) for k, v in review[bid.id].tallies.items()},
                        "low_decision": low.outcome if low else None, "low_reason": low.reason if low else None}
    ceiling = lot.ceiling_price if lot.ceiling_price is not None else tender.ceiling_price
    outcome = M.evaluate(spec, M.LotInput(ceiling_price=ceiling, bids=tuple(inputs), drawn=dict(drawn)))
    for bo in outcome.bids:
        rows[bo.bid_id].update({
            "valid": bo.valid, "invalid_reason": bo.invalid_reason, "evaluated_price": _text(bo.evaluated_price),
            "deviation": _text(bo.deviation), "price_score": _text(bo.price_score), "subjective": _text(bo.subjective),
            "total": _text(bo.total), "rank": bo.rank, "tie": bo.tie, "abnormally_low": bo.abnormally_low,
            "in_benchmark": bo.in_benchmark, "steps": [step_dict(s) for s in bo.steps], "items": item_views[bo.bid_id]})
    not_opened = [{"bid_opening_id": b.id, "organisation_id": b.organisation_id, "bidder": b.organisation.name,
                   "status": b.status.value, "outcome": b.legal_outcome.value if b.legal_outcome else None}
                  for b in bids if b not in opened]
    result = {"lot_id": lot.id, "code": lot.code, "title": lot.title,
              "ceiling_price": _text(ceiling), "benchmark": _text(outcome.benchmark),
              "benchmark_steps": [step_dict(s) for s in outcome.benchmark_steps],
              "valid_count": outcome.valid_count, "ranking": list(outcome.ranking),
              "bids": [rows[b.bid_id] for b in outcome.bids], "not_opened": not_opened,
              "competition": competition.outcome if competition else None,
              "competition_reason": competition.reason if competition else None}
    result["candidates"] = _candidates(spec, outcome, rows) if outcome.valid_count else []
    inputs_view = {"lot": lot.id, "ceiling": _text(ceiling), "bids": [
        {"id": i.bid_id, "price": _text(i.price), "passed": i.passed_review, "subjective": _text(i.subjective),
         "sme": i.is_sme, "rejected": i.rejected} for i in inputs]}
    return result, inputs_view


def compute(evaluation: Evaluation) -> Computed:
    """The result as it stands (preview in SUMMARY, frozen at completion)."""
    tender = evaluation.tender
    spec = method_spec(tender)
    drawn = drawn_parameters(tender.id)
    missing = sorted(M.random_parameter_names(spec) - set(drawn))
    if missing:
        raise ValidationFailed(_l("The method needs the random parameter(s) %(names)s drawn at the opening; "
                                  "they were not drawn."), names=", ".join(missing), code="parameter_not_drawn")
    sheets, disputes = _submitted(evaluation.id), _decided_disputes(evaluation.id)
    decisions = decisions_of(evaluation.id)
    by_lot = _bids_by_lot(tender.id)
    lots, inputs = [], []
    for lot in tender.lots:
        if lot.id not in by_lot:
            continue
        result, view = _lot_result(spec, evaluation, lot, by_lot[lot.id], sheets, disputes, decisions, drawn)
        lots.append(result)
        inputs.append(view)
    digest = hashlib.sha256(canonical({"spec": spec.to_dict(), "drawn": {k: str(v) for k, v in drawn.items()},
                                       "lots": inputs})).hexdigest()
    computed = Computed(spec=spec, lots=lots, inputs_sha256=digest)
    for lot in lots:
        for row in lot["bids"]:
            if row["abnormally_low"] and row["low_decision"] is None and row["valid"]:
                computed.undecided_low.append(row["bid_opening_id"])
        if 0 < lot["valid_count"] < MIN_VALID and lot["competition"] is None:
            computed.undecided_lots.append(lot["lot_id"])
    return computed


def lot_by_id(lots: list[dict[str, Any]], lot_id: int) -> dict[str, Any] | None:
    return next((lot for lot in lots if lot["lot_id"] == lot_id), None)


def bid_row(lots: list[dict[str, Any]], bid_opening_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(lot, bid row) of one bid in a computed result."""
    for lot in lots:
        for row in lot["bids"]:
            if row["bid_opening_id"] == bid_opening_id:
                return lot, row
    return None
