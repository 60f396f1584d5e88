"""The demo's results: the signed evaluation report, publicity, an objection, the award (评标结果与定标).

After the scoring room completes, every member signs the report with a certificate of their own (the same
code as ``ebid client report sign``, run in-process); the agency publishes the candidates; a bidder
objects and the agency answers; the demo's clock moves past the 3-day publicity (still in the past) and
the agency awards, which releases the other bidders' guarantees. The signed report and one bid's
explanation annex are kept in the demo folder; the summary prints their paths and the report's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app

from bidding.models import TenderStatus
from core.clock import as_utc, now
from core.db import db
from core.identity import ca as platform_ca
from core.identity.models import Role
from ebid.client.report import sign_in_process
from ebid.demo_bids import ca_unlocker, demo_dir, ensure_certificate
from ebid.demo_evaluation import demo_actor, member_actor
from ebid.demo_opening import DemoTime
from evaluation import award as awards
from evaluation import explain_pdf
from evaluation import report as reports
from evaluation.pool_models import CommitteeMember
from evaluation.result_models import ReportStatus
from evaluation.results import bid_row

AGENT = "agent@demo.ebid"
OBJECTING = "bidder3"
OBJECTION = "我公司对第一标段的技术评分有异议:请说明我公司施工组织设计得分偏低的理由。"
ANSWER = ("经招标人组织复核,评标委员会按招标文件规定的评分标准独立评分,各评委评分在分值范围内,汇总计算无误;"
          "贵公司施工组织设计中交通导改方案深度不足,故得分较低。异议不成立。")


@dataclass
class ResultsReport:
    lines: list[str] = field(default_factory=list)
    note: str | None = None
    report_path: Path | None = None
    annex_path: Path | None = None
    verdict: str | None = None


def _sign_report(result: Any, tender_id: int, report: ResultsReport) -> None:
    record = reports.require_report(tender_id)
    signed = {s.member_id for s in record.signatures}
    ca, chain = ca_unlocker([]), [platform_ca.load_ca_certificate()]
    for f in record.fields:
        if f["member_id"] in signed:
            continue
        member = db.session.get(CommitteeMember, f["member_id"])
        person = member.expert.person
        key, cert = ensure_certificate(person, None, ca, [])
        sign_in_process(member_actor(member), tender_id, key, cert, chain)
        db.session.commit()
        report.lines.append(f"{person.name} signed the evaluation report in field {f['field']} (PAdES)")


def _keep(tender: Any, report: ResultsReport) -> None:
    record = reports.require_report(tender.id)
    path = demo_dir() / f"evaluation-report-{tender.code}.pdf"
    path.write_bytes(reports.current_pdf(record))
    report.report_path = path
    report.verdict = reports.verdict(record).status
    stored = awards.result_of_tender(tender.id)
    first = stored.lots[0]["candidates"][0] if stored and stored.lots and stored.lots[0]["candidates"] else None
    if first is None:
        return
    lot, row = bid_row(stored.lots, first["bid_opening_id"])
    from flask_babel import force_locale

    from evaluation.views_results import explanation_rows
    with current_app.test_request_context(), force_locale("zh_CN"):
        pdf = explain_pdf.build_explanation({
            "tender": {"code": tender.code, "title": tender.title},
            "lot": {"code": lot["code"], "title": lot["title"]}, "bidder": row["bidder"], "price": row["price"],
            "steps": explanation_rows(lot, row), "note": "所有数值均以十进制精确计算,按招标文件规定舍入。"})
    annex = demo_dir() / f"price-score-{tender.code}-{lot['code']}-{row['bid_opening_id']}.pdf"
    annex.write_bytes(pdf)
    report.annex_path = annex


def run_results(result: Any, time: DemoTime) -> ResultsReport:
    """Sign the report, publish the candidates, answer an objection, award; skip what is done."""
    report = ResultsReport()
    tender = result.tender
    if tender is None or reports.get_report(tender.id) is None:
        report.note = "the evaluation is not complete: no report yet"
        return report
    agent = demo_actor(result, AGENT, Role.AGENCY, "agency")
    if reports.require_report(tender.id).status == ReportStatus.SIGNING:
        _sign_report(result, tender.id, report)
    db.session.refresh(tender)
    if tender.status == TenderStatus.EVALUATION:
        publicity = awards.start_publicity(agent, tender.id)
        db.session.commit()
        report.lines.append(f"candidates published for {publicity.days} days (中标候选人公示)")
        objection = awards.raise_objection(demo_actor(result, f"{OBJECTING}@demo.ebid", Role.BIDDER, OBJECTING),
                                           tender.id, OBJECTION)
        db.session.commit()
        report.lines.append(f"{result.orgs[OBJECTING].name} objected to the result; the award waits")
        awards.answer_objection(agent, tender.id, objection.id, ANSWER)
        db.session.commit()
        report.lines.append("the agency answered the objection in writing")
    db.session.refresh(tender)
    publicity = awards.publicity_of(tender.id)
    if tender.status == TenderStatus.PUBLICITY and publicity is not None:
        time.advance_to(as_utc(publicity.ends_at) + timedelta(minutes=1))
        if as_utc(publicity.ends_at) > now():
            report.note = f"the publicity runs until {publicity.ends_at:%Y-%m-%d %H:%M} UTC; award after it"
        else:
            made = awards.award(agent, tender.id)
            db.session.commit()
            for a in made:
                report.lines.append(f"lot {a.lot.code} awarded to {a.organisation.name} at {a.amount:.2f} CNY; "
                                    "award notice sent, the other bidders' guarantees released")
            for a in made:
                awards.record_contract(agent, tender.id, a.lot_id)
                db.session.commit()
                report.lines.append(f"lot {a.lot.code}: contract signed and recorded; the winner's guarantee "
                                    "released")
    _keep(tender, report)
    return report


def print_results(result: Any, report: ResultsReport, base_url: str) -> None:
    tender = result.tender
    click.echo("\n== results, report, publicity and award (评标结果、公示与定标) ==")
    for line in report.lines:
        click.echo(f"  - {line}")
    if report.note:
        click.echo(f"  {report.note}")
    if tender is None:
        return
    db.session.refresh(tender)
    click.echo(f"  tender status: {tender.status.value}; result page: {base_url}/tenders/{tender.id}/results")
    if report.report_path is not None:
        click.echo(f"  signed evaluation report: {report.report_path} (verification: {report.verdict})")
        click.echo(f"    check it: pdfsig {report.report_path}  ·  ebid evaluation verify-report "
                   f"{report.report_path} --tender {tender.code}")
    if report.annex_path is not None:
        click.echo(f"  price-score explanation annex: {report.annex_path}")


__all__ = ["print_results", "run_results"]
