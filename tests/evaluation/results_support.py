"""Driving a scoring room to its result: scores, summary, completion, every member's report signature.

Use with the ``make_room`` fixture (``from tests.evaluation.results_support import *``)::

    r = make_room(experts=5, bidders=4)
    complete(r, scores=[...])          # elect, submit, summarise, complete: the result and report exist
    sign_all(r, certify)               # every member signs the report with a certificate of their own
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from core.db import db
from core.identity.ca import load_ca_certificate
from evaluation import report as reports
from evaluation import room
from evaluation.report_verify import sign_report
from tests.evaluation.room_support import FULL_SHEET, Room

__all__ = ["FULL_SHEET", "complete", "sheet", "sign_all", "sign_as", "to_summary"]


def sheet(t1: str = "10", **extra: str) -> dict[str, str]:
    """A full sheet with the first technical item set to ``t1`` (its maximum is 12 of the default 30)."""
    return {**FULL_SHEET, "T1": t1, **extra}


def to_summary(r: Room, per_member: list[dict[int, dict[str, str]]] | None = None) -> None:
    """Elect member 0, then every member submits every bid (``per_member[i][bid]`` or FULL_SHEET); commits."""
    r.elect(0)
    for i in range(len(r.members)):
        for bid in r.bid_ids:
            values = (per_member[i].get(bid) if per_member else None) or FULL_SHEET
            room.save_sheet(r.member_actor(i), r.evaluation_id, bid, values)
            room.submit_sheet(r.member_actor(i), r.evaluation_id, bid)
            db.session.commit()


def complete(r: Room, per_member: list[dict[int, dict[str, str]]] | None = None) -> Any:
    """To the summary, the chair's summary, completion; returns the evaluation."""
    to_summary(r, per_member)
    room.write_summary(r.member_actor(0), r.evaluation_id, "评标委员会一致同意推荐以下中标候选人。")
    db.session.commit()
    evaluation = room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    db.session.commit()
    return evaluation


def sign_as(r: Room, i: int, certify, *, keys: dict[int, Any] | None = None) -> Any:
    """Member ``i`` signs its field of the current revision with its own certificate; commits."""
    person = r.experts[i]
    if keys is not None and i in keys:
        key, cert = keys[i]
    else:
        key, row = certify(person=person)
        db.session.commit()
        cert = x509.load_pem_x509_certificate(row.pem.encode())
        if keys is not None:
            keys[i] = (key, cert)
    report = reports.require_report(r.tender_id)
    field = reports.field_of_person(report, person.id)["field"]
    signed = sign_report(reports.current_pdf(report), field, key, cert, [load_ca_certificate()], field)
    result = reports.accept_signature(r.member_actor(i), r.tender_id, signed)
    db.session.commit()
    return result


def sign_all(r: Room, certify) -> Any:
    report = None
    for i in range(len(r.members)):
        report = sign_as(r, i, certify)
    return report
