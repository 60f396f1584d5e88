"""The evaluation report (评标报告): built from the data at completion, signed by every member in turn.

:func:`prepare` assembles the ten sections of 12号令 §42 from the stored result, the opening record, the
committee and the room (nothing retyped), sets the PDF with one empty signature field per member and
keeps it in the file store. Each member downloads the current revision, signs their own field on their
own machine (``ebid client report sign``) and uploads it; :func:`accept_signature` checks the upload the
same way as the opening record's (an unchanged prefix, exactly one new valid signature in the member's
field, chained to the platform CA, nothing else changed) and that the certificate is the member's. With
every signature the report is final and goes to the tenderer and the supervisors. A report is shown as
final only when :func:`verdict` says so: a missing signature means incomplete, never final.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.opening_models import BidOpening
from bidding.record_models import OpeningRecord
from bidding.record_signing import check_revision
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, NotFound
from core.identity.ca import CertificateRefused, load_ca_certificate, verify_certificate
from core.identity.models import Role
from core.notifications import members as org_members
from core.notifications import notify, supervisors
from core.storage import default_store
from evaluation import methods as M
from evaluation import report_pdf, report_verify
from evaluation.outcome import dissents_of
from evaluation.result_models import EvaluationReport, EvaluationResult, ReportSignature, ReportStatus
from evaluation.results import drawn_parameters
from evaluation.room_errors import RoomRefused
from evaluation.room_flow import committee_log, lock_room
from evaluation.room_models import Clarification, Dispute, Evaluation
from evaluation.room_state import signed_in_members

REPORT_LOCALE = "zh_CN"  # the report is a legal document in Chinese; its fixed labels are bilingual
METHOD_NAMES = {"comprehensive": "综合评估法 / Comprehensive scoring",
                "lowest_price": "经评审的最低投标价法 / Lowest evaluated price",
                "gp_low_price": "政府采购低价优先法 / GP lowest price", "pass_fail": "合格制 / Pass-fail"}
INVALID = {"failed_review": "初步评审不合格 / failed the preliminary review",
           "above_ceiling": "报价超过最高投标限价 / above the ceiling price",
           "rejected": "评标委员会否决 / rejected by the committee"}


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def member_name(member: Any) -> str:
    """The name the member's certificate carries (its person's), which the report prints and verifiers match."""
    person = member.expert.person
    return person.name if person is not None else member.expert.name


def field_name(index: int) -> str:
    return f"Member{index}"


def step_lines(steps: list[dict[str, Any]]) -> list[str]:
    """Explanation steps as text lines, in the current locale."""
    lines = []
    for step in steps:
        title, formula = M.describe(M.Step(code=step["code"], values=step["values"], result=step["result"]))
        lines.append(f"{gettext(title)}: {formula}")
    return lines


def _criteria_titles(evaluation: Evaluation) -> dict[str, str]:
    return {c["code"]: gettext(c["title"]) for c in evaluation.criteria}


def _lot_section(lot: dict[str, Any], titles: dict[str, str], field_of: dict[int, str]) -> dict[str, Any]:
    valid = [b for b in lot["bids"] if b["valid"]]
    rejected = [{"bidder": b["bidder"], "reasons": [INVALID.get(b["invalid_reason"], b["invalid_reason"] or "")]
                 + [f"{code} {titles.get(code, '')}" for code in b["failed_items"]]
                 + ([f"异常低价未能合理说明 / below cost: {b['low_reason']}"] if b.get("low_decision") == "rejected"
                    else [])}
                for b in lot["bids"] if not b["valid"]]
    rejected += [{"bidder": b["bidder"], "reasons": [f"未解密 / not opened ({b['status']}, {b['outcome'] or '-'})"]}
                 for b in lot["not_opened"]]
    by_rank = sorted(valid, key=lambda b: (b["rank"] or 10 ** 6, b["bidder"]))
    flags = {True: ["异常低价 / abnormally low"], False: []}
    matters = []
    if lot["competition"]:
        matters.append(f"有效投标不足3家，评标委员会决定 / fewer than 3 valid bids, committee decided: "
                       f"{lot['competition']} ({lot['competition_reason']})")
    if any(b["tie"] for b in valid):
        matters.append("存在得分相同且无法按规则区分的投标，由招标人确定 / tied bids: the tenderer decides")
    return {
        "code": lot["code"], "title": lot["title"], "benchmark": lot["benchmark"],
        "benchmark_lines": step_lines(lot["benchmark_steps"]),
        "qualified": [{"bidder": b["bidder"], "price": b["price"]} for b in valid],
        "rejected": rejected,
        "scores": [{"bidder": b["bidder"], "price": b["price"], "evaluated_price": b["evaluated_price"],
                    "deviation": b["deviation"], "price_score": b["price_score"], "subjective": b["subjective"],
                    "total": b["total"], "rank": b["rank"], "flags": flags[bool(b["abnormally_low"])]}
                   for b in lot["bids"] if b["valid"]],
        "item_scores": [{"bidder": b["bidder"], "code": code,
                         "by_member": {field_of.get(int(m), m): v for m, v in item["by_member"].items()},
                         "average": item["value"],
                         "dropped": [field_of.get(m, str(m)) for m in (item["dropped_high"], item["dropped_low"])
                                     if m is not None]}
                        for b in lot["bids"] for code, item in sorted(b["items"].items())],
        "ranking": [{"rank": b["rank"], "bidder": b["bidder"],
                     "total_or_price": b["total"] if b["total"] is not None else b["evaluated_price"]}
                    for b in by_rank],
        "candidates": [{"rank": c["rank"], "bidder": c["bidder"], "price": c["price"],
                        "note": "评定分离：推荐（不排序）/ recommended, unranked" if c["rank"] is None else ""}
                       for c in lot["candidates"]],
        "matters": matters,
    }


BENCHMARKS = {"mean": "算术平均 / plain mean", "trimmed_mean": "去掉最高和最低报价后平均 / trimmed mean",
              "composite": "复合评标基准价(含最高投标限价)/ composite with the ceiling price",
              "lowest": "最低有效报价 / lowest valid price"}


def method_lines(spec: dict[str, Any], drawn: dict[str, Any]) -> list[str]:
    """The method's parameters as fixed at publication, one line each (section ⑥)."""
    weights = spec.get("weights") or {}
    lines = [f"评标办法 / Method: {METHOD_NAMES.get(spec.get('method'), spec.get('method'))} "
             f"v{spec.get('method_version')}",
             "权重 / Weights: " + ", ".join(f"{k} {v}" for k, v in weights.items())]
    if spec.get("benchmark"):
        line = f"评标基准价 / Benchmark: {BENCHMARKS.get(spec['benchmark'], spec['benchmark'])}"
        if spec["benchmark"] == "trimmed_mean":
            line += f"; more than {spec.get('trim_above')} bids: drop {spec.get('trim_count')} highest and lowest"
        lines.append(line)
    coefficient = spec.get("downward_coefficient")
    if coefficient:
        value = drawn.get(coefficient)
        lines.append(f"下浮系数 / Downward coefficient: B = mean x (1 - {coefficient})"
                     + (f", {coefficient} = {value} (开标时公开抽取 / drawn at the opening)" if value is not None else ""))
    deviation = spec.get("deviation")
    if deviation:
        lines.append(f"偏差率扣分 / Deviation: above the benchmark {deviation.get('above')} points per 1 %, below "
                     f"{deviation.get('below')} per 1 %; interpolation inside 1 %: "
                     f"{'yes' if deviation.get('interpolate') else 'no'}; floor 0")
        for band in deviation.get("bands") or []:
            lines.append(f"  band {band.get('from')} % .. {band.get('to')} %: {band.get('action')} {band.get('rate')}")
    gp = spec.get("gp")
    if gp:
        lines.append(f"小微企业价格扣除 / SME price deduction: {gp.get('sme_deduction')}")
    drop = (spec.get("aggregation") or {}).get("drop_extremes_at")
    lines.append("主观分汇总 / Subjective items: " + (
        f"mean without the highest and lowest score when {drop} or more experts score" if drop else "plain mean"))
    rounding = spec.get("rounding") or {}
    lines.append(f"舍入 / Rounding: {rounding.get('places')} decimals, {rounding.get('mode')}")
    low = (spec.get("abnormally_low") or {}).get("below_benchmark")
    if low:
        lines.append(f"异常低价 / Abnormally low: price below B x (1 - {low}), explained in writing, never rejected "
                     "automatically")
    award = spec.get("award") or {}
    lines.append(f"推荐方式 / Candidates: {award.get('mode')}, " + (
        f"{award.get('candidates')} ranked" if award.get("mode") != "separated"
        else f"{award.get('separated_count')} unranked, picked by {award.get('pick')}"))
    lines.append(f"公示期 / Publicity: {spec.get('publicity_days')} days")
    return lines


def report_data(evaluation: Evaluation, stored: EvaluationResult) -> dict[str, Any]:
    """Everything the report prints, as plain data (kept with the report)."""
    tender = evaluation.tender
    members = signed_in_members(tender.id)
    field_of = {m.id: field_name(i) for i, m in enumerate(members, start=1)}
    record = db.session.scalar(select(OpeningRecord).where(OpeningRecord.tender_id == tender.id))
    clarifications = db.session.scalars(select(Clarification).where(Clarification.evaluation_id == evaluation.id)
                                        .order_by(Clarification.id))
    disputes = db.session.scalars(select(Dispute).where(Dispute.evaluation_id == evaluation.id).order_by(Dispute.id))
    with force_locale(REPORT_LOCALE):
        titles = _criteria_titles(evaluation)
        return {
            "tender": {"code": tender.code, "title": tender.title, "tenderer": tender.tenderer.name,
                       "agency": tender.agency.name if tender.agency else "-", "regime": tender.regime.value,
                       "method": METHOD_NAMES.get(stored.method, stored.method), "method_version": stored.method_version,
                       "opening_at": _iso(tender.bid_deadline_at), "started_at": _iso(evaluation.started_at),
                       "completed_at": _iso(evaluation.completed_at), "report_at": _iso(stored.computed_at)},
            "basics": [["项目编号 / Code", tender.code], ["项目名称 / Title", tender.title],
                       ["招标人 / Tenderer", tender.tenderer.name],
                       ["估算价 / Estimated price", f"{tender.estimated_price:.2f}"],
                       ["最高投标限价 / Ceiling price",
                        f"{tender.ceiling_price:.2f}" if tender.ceiling_price is not None else "-"],
                       ["标段数 / Lots", str(len(tender.lots))],
                       ["评标办法 / Method", f"{METHOD_NAMES.get(stored.method, stored.method)} v{stored.method_version}"],
                       ["输入摘要 / Inputs SHA-256", stored.inputs_sha256]],
            "members": [{"field": field_of[m.id], "name": member_name(m),
                         "role": "组长 / Chair" if m.id == evaluation.chair_member_id else "成员 / Member",
                         "specialty": m.specialty, "employer": m.expert.employer_name or "-"} for m in members],
            "opening": {"sha256": record.sha256 if record else "-",
                        "published_at": _iso(record.published_at) if record else None,
                        "rows": [{"lot": r.get("lot"), "bidder": r.get("bidder"), "price": r.get("price"),
                                  "duration_days": r.get("duration_days"), "quality": r.get("quality"),
                                  "project_manager": r.get("project_manager"),
                                  "bond": (r.get("bond") or {}).get("kind") if isinstance(r.get("bond"), dict)
                                  else r.get("bond")}
                                 for r in (record.rows if record else [])]},
            "criteria": [{"code": c["code"], "group": c["group"], "title": titles[c["code"]], "kind": c["kind"],
                          "range": f"{c['min']}-{c['max']}" if c["kind"] == "score" else "合格/不合格 pass/fail"}
                         for c in evaluation.criteria],
            "method_lines": method_lines(stored.spec, drawn_parameters(tender.id)),
            "lots": [_lot_section(lot, titles, field_of) for lot in stored.lots],
            "clarifications": [{"bidder": c.organisation.name, "question": c.question, "answer": c.answer or "-",
                                "asked_at": _iso(c.asked_at), "answered_at": _iso(c.answered_at),
                                "status": c.status.value} for c in clarifications],
            "disputes": [{"bidder": db.session.get(BidOpening, d.bid_opening_id).organisation.name,
                          "criterion": f"{d.criterion} {titles.get(d.criterion, '')}", "reason": d.reason,
                          "outcome": d.outcome or "-",
                          "votes": [{"member": field_of.get(v.member_id, str(v.member_id)), "vote": v.vote,
                                     "reason": v.reason or ""} for v in d.votes]} for d in disputes],
            "dissents": [{"member": f"{field_of.get(d.member_id, '')} {member_name(d.member)}", "text": d.text}
                         for d in dissents_of(evaluation.id)],
            "summary": evaluation.summary or "",
        }


def get_report(tender_id: int) -> EvaluationReport | None:
    return db.session.scalar(select(EvaluationReport).where(EvaluationReport.tender_id == tender_id))


def require_report(tender_id: int) -> EvaluationReport:
    report = get_report(tender_id)
    if report is None:
        raise NotFound(_l("The evaluation report is prepared when the committee completes the evaluation."))
    return report


def prepare(actor: Actor, evaluation: Evaluation, stored: EvaluationResult) -> EvaluationReport:
    """Build the report with its empty signature fields and keep it (the caller holds the room lock)."""
    data = report_data(evaluation, stored)
    pdf = report_pdf.build_report(data)
    digest, size = default_store().put_bytes(pdf)
    fields = [{"field": m["field"], "member_id": member.id, "name": m["name"]}
              for m, member in zip(data["members"], signed_in_members(evaluation.tender_id), strict=True)]
    report = EvaluationReport(tender_id=evaluation.tender_id, evaluation_id=evaluation.id, data=data, fields=fields,
                              prepared_sha256=digest, pdf_sha256=digest, pdf_size=size)
    db.session.add(report)
    db.session.flush()
    audit.record(actor, "evaluation.report_prepared", "evaluation", evaluation.id,
                 {"tender_id": evaluation.tender_id, "pdf_sha256": digest, "fields": [f["field"] for f in fields]})
    committee_log(evaluation, "report-prepared", sha256=digest)
    return report


def current_pdf(report: EvaluationReport) -> bytes:
    return default_store().read_bytes(report.pdf_sha256)


def field_of_person(report: EvaluationReport, person_id: int | None) -> dict[str, Any] | None:
    """The report field the person signs (as a member of the committee), if any."""
    if person_id is None:
        return None
    from evaluation.pool_models import CommitteeMember, Expert

    member_ids = set(db.session.scalars(
        select(CommitteeMember.id).join(Expert, Expert.id == CommitteeMember.expert_id)
        .where(CommitteeMember.tender_id == report.tender_id, Expert.person_id == person_id)))
    return next((f for f in report.fields if f["member_id"] in member_ids), None)


def accept_signature(actor: Actor, tender_id: int, pdf: bytes) -> EvaluationReport:
    """Accept a member's signed revision; the report is final with every member's signature."""
    report = require_report(tender_id)
    evaluation = lock_room(report.evaluation_id)
    db.session.refresh(report)
    mine = field_of_person(report, actor.person_id)
    if mine is None:
        raise Forbidden(_l("Only the committee's members sign the evaluation report."), code="not_a_signer")
    if report.status != ReportStatus.SIGNING:
        raise RoomRefused(_l("The report is already signed by every member."), code="report_signed")
    if evaluation.tender.hold_reason is not None:
        raise RoomRefused(_l("A supervisor suspended the procedure (%(reason)s); sign once it resumes."),
                          code="tender_held", reason=evaluation.tender.hold_reason)
    if any(s.member_id == mine["member_id"] for s in report.signatures):
        raise RoomRefused(_l("Your signature is already on the report."), code="already_signed")
    new = check_revision(current_pdf(report), pdf, mine["field"], load_ca_certificate())
    try:
        cert = verify_certificate(new.certificate.public_bytes(serialization.Encoding.PEM))
    except CertificateRefused as exc:
        audit.record(actor, "evaluation.report_signature_refused", "evaluation", report.evaluation_id,
                     {"reason": exc.code, "field": mine["field"]})
        raise
    if cert.person_id != actor.person_id:
        raise Forbidden(_l("The signing certificate belongs to someone else; sign with your own certificate."),
                        code="not_your_certificate")
    report.pdf_sha256, report.pdf_size = default_store().put_bytes(pdf)
    db.session.add(ReportSignature(report_id=report.id, member_id=mine["member_id"], field=mine["field"],
                                   certificate_id=cert.id, revision_sha256=report.pdf_sha256))
    db.session.flush()
    db.session.refresh(report)
    audit.record(actor, "evaluation.report_signed", "evaluation", report.evaluation_id,
                 {"tender_id": tender_id, "field": mine["field"], "certificate_serial": cert.serial,
                  "pdf_sha256": report.pdf_sha256})
    committee_log(evaluation, "report-signed", member=mine["member_id"], sha256=report.pdf_sha256)
    if len(report.signatures) == len(report.fields):
        report.status, report.signed_at = ReportStatus.SIGNED, now()
        db.session.flush()
        audit.record(actor, "evaluation.report_final", "evaluation", report.evaluation_id,
                     {"tender_id": tender_id, "pdf_sha256": report.pdf_sha256})
        committee_log(evaluation, "report-final", sha256=report.pdf_sha256)
        _send(report)
    return report


def _send(report: EvaluationReport) -> None:
    """The signed report goes to the tenderer (and agency) and is copied to the supervisors (20号令 §34)."""
    tender = report.tender
    staff = org_members([tender.tenderer_id, tender.agency_id], [Role.TENDERER, Role.AGENCY])
    notify(staff + supervisors(), kind="evaluation_report",
           object_type="tender", object_id=tender.id,
           subject=_l("The evaluation report of %(tender)s is signed by every member of the committee."),
           body=_l("Download it from the tender's results page and verify its signatures there."), tender=tender.code)


def verdict(report: EvaluationReport) -> report_verify.ReportVerdict:
    """The report's signatures checked now against the platform CA: final, incomplete or invalid."""
    return report_verify.verify_report(current_pdf(report), load_ca_certificate(),
                                       [(f["field"], f["name"]) for f in report.fields])
