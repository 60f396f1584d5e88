"""The demo's experts and evaluation: the pool, a verifiable draw, and a scoring room with simulated experts.

Before the opening the agency asks for a five-expert committee (three road and drainage experts, two cost
experts, two alternates each, at most one expert local to Qingdao); the draw commits its seed in the
tender's log, draws, reveals, and the drawn experts answer (one declines: the next alternate is invited).
After the opening record is published the agency starts the evaluation; the members sign the recusal
declaration (one declares a conflict and is replaced), and then the experts join the scoring room as real
Socket.IO clients of the site, served for the occasion: they elect a chair, type their scores, one asks a
bidder for a clarification that the bidder answers, they submit, and the chair writes the summary.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
import socketio
from flask import current_app
from sqlalchemy import func, select

from bidding.models import TenderStatus
from bidding.opening_models import BidOpening, BidOpeningStatus
from bidding.record_models import RecordStatus
from bidding.record_service import get_record
from core.clock import now
from core.db import db
from core.identity.access import actor_for
from core.identity.models import Role
from core.identity.tokens import issue_api_token, revoke_api_token
from core.identity.uscc import make as make_uscc
from ebid.demo_guarantees import QuietHandler, serve
from evaluation import drawing, experts, recusal
from evaluation import room as room_service
from evaluation.criteria import PASS_FAIL
from evaluation.pool_models import CommitteeMember, MemberStatus
from evaluation.room_events import NAMESPACE, PROGRESS
from evaluation.room_models import Evaluation, EvaluationStatus

AGENT, ADMIN, SUPERVISOR = "agent@demo.ebid", "admin@demo.ebid", "supervisor@demo.ebid"
HOST_REGION = "370200"  # Qingdao: the host centre (主场)
ROADS, COST = "A050101", "B020101"  # 市政道路与排水工程, 工程造价
DEMO_EXPERTS = 12

# code, name, specialties, region, employer USCC without its check digit, employer, title
POOL = (
    ("QD-E001", "专家 吴刚", ROADS, "370200", "91370200MA3B1K7X1", "青岛市政设计研究院有限公司", "正高级工程师"),
    ("QD-E002", "专家 郑红", ROADS, "370100", "91370100MA3C2L8Y2", "山东省交通规划设计院", "高级工程师"),
    ("QD-E003", "专家 冯涛", ROADS, "370600", "91370600MA3D3M9W3", "烟台市政工程设计院", "高级工程师"),
    ("QD-E004", "专家 何静", ROADS, "370700", "91370700MA3E4N0A4", "潍坊市城建设计研究院", "正高级工程师"),
    ("QD-E005", "专家 许峰", ROADS, "371000", "91371000MA3F5P1B5", "威海市政工程有限公司", "高级工程师"),
    ("QD-E006", "专家 韩梅", f"{ROADS};{COST}", "370300", "91370300MA3G6Q2C6", "淄博工程咨询有限公司", "高级经济师"),
    ("QD-E007", "专家 曹阳", COST, "370100", "91370100MA3H7R3D7", "山东正源造价咨询有限公司", "高级工程师"),
    ("QD-E008", "专家 彭亮", COST, "370600", "91370600MA3J8T4E8", "烟台信达工程造价事务所", "正高级经济师"),
    ("QD-E009", "专家 蒋莉", COST, "370700", "91370700MA3K9U5F9", "潍坊华信工程咨询有限公司", "高级经济师"),
    ("QD-E010", "专家 沈斌", COST, "370200", "91370200MA3L0W6G0", "青岛建衡造价咨询有限公司", "高级工程师"),
    ("QD-E011", "专家 陆洋", ROADS, "370800", "91370800MA3M1X7H1", "济宁市市政设计院", "高级工程师"),
    ("QD-E012", "专家 秦娟", COST, "371300", "91371300MA3N2Y8J2", "临沂公信造价咨询有限公司", "高级经济师"),
)
DECLINE_REASON = "已有其他评标安排,无法参加。"
CONFLICT_REASON = "本人近三年曾为本项目一名投标人提供造价咨询服务,申请回避。"
CLARIFICATION = "请澄清贵公司投标文件中项目经理的在建工程情况,并说明第一标段施工组织设计中的交通导改方案。"
CLARIFICATION_ANSWER = "我公司拟派项目经理目前无在建工程(附无在建承诺书);交通导改采用半幅施工、分段封闭的方案,详见施工组织设计第3章。"
SUMMARY = ("评标委员会按招标文件规定的评标办法对各投标文件进行了初步评审和详细评审;所有投标文件均通过初步评审。"
           "评委对一名投标人的交通导改方案提出澄清,投标人已书面答复。技术评分汇总后交由系统计算价格得分。")


@dataclass
class EvaluationReport:
    lines: list[str] = field(default_factory=list)
    note: str | None = None


def _csv() -> str:
    rows = ["code,name,email,specialties,region,employer_uscc,employer_name,title,avoidance_usccs,available"]
    for i, (code, name, specialties, region, uscc, employer, title) in enumerate(POOL, start=1):
        rows.append(f"{code},{name},expert{i}@demo.ebid,{specialties},{region},{make_uscc(uscc)},{employer},{title},,yes")
    return "\n".join(rows) + "\n"


def demo_actor(result: Any, email: str, role: Role, org: str | None = None):
    return actor_for(result.people[email], role, result.orgs[org].id if org else None, source="demo")


def member_actor(member: CommitteeMember):
    return actor_for(member.expert.person, Role.EXPERT, source="demo")


def run_drawing(result: Any) -> EvaluationReport:
    """Import the pool and draw the committee of the demo tender, unless done; the experts answer."""
    report = EvaluationReport()
    tender = result.tender
    if tender is None or drawing.request_of(tender.id) is not None:
        return report
    if tender.status != TenderStatus.PUBLISHED:
        report.note = "the tender is past publication: no committee was drawn for it"
        return report
    imported = experts.import_experts(demo_actor(result, ADMIN, Role.ADMIN), _csv())
    report.lines.append(f"expert pool: {len(imported.created)} experts imported from CSV")
    agent = demo_actor(result, AGENT, Role.AGENCY, "agency")
    drawing.request_draw(agent, tender.id, specialties=[(ROADS, 3), (COST, 2)], committee_size=5, alternates=2,
                         is_remote=True, host_region=HOST_REGION, local_cap=1,
                         venues=["青岛市公共资源交易中心 远程评标室(主场)", "济南 省公共资源交易中心评标室(副场)",
                                 "烟台市公共资源交易中心 评标室(副场)"])
    row = drawing.draw(agent, tender.id)
    db.session.commit()
    report.lines.append(f"draw round {row.number}: commitment {row.seed_commitment[:16]}… logged before the draw, "
                        f"seed {row.seed[:16]}… revealed after it")
    declined = False
    while invited := _members(tender.id, MemberStatus.INVITED):
        for member in invited:
            if not declined:
                recusal.decline(member_actor(member), member.id, DECLINE_REASON)
                declined = True
                report.lines.append("one drawn expert declined; the next alternate was invited")
            else:
                recusal.accept(member_actor(member), member.id)
            db.session.commit()
    accepted = _members(tender.id, MemberStatus.ACCEPTED)
    report.lines.append(f"committee complete: {len(accepted)} experts accepted (names sealed until the evaluation)")
    return report


def _members(tender_id: int, status: MemberStatus) -> list[CommitteeMember]:
    db.session.expire_all()
    return list(db.session.scalars(select(CommitteeMember).where(CommitteeMember.tender_id == tender_id,
                                                                 CommitteeMember.status == status)
                                   .order_by(CommitteeMember.position)))


def _sign_in_all(tender_id: int, report: EvaluationReport) -> None:
    conflict_declared = False
    while accepted := _members(tender_id, MemberStatus.ACCEPTED):
        for member in accepted:
            actor = member_actor(member)
            if not conflict_declared and member.specialty == COST:
                recusal.declare_conflict(actor, member.id, CONFLICT_REASON)
                conflict_declared = True
                report.lines.append("one member declared a conflict at sign-in and was replaced by the next "
                                    "alternate")
            else:
                text = recusal.declaration_text(member)
                recusal.sign_in(actor, member.id, text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                                typed_name=member.expert.name)
            db.session.commit()
        for member in _members(tender_id, MemberStatus.INVITED):  # the replacement answers its invitation
            recusal.accept(member_actor(member), member.id)
            db.session.commit()


class _RoomHandler(QuietHandler):
    """Werkzeug reads a websocket's closing frame, sent after the session ended, as a bad HTTP request: not news."""

    def log_error(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        if not (args and str(args[0]) == "400"):
            super().log_error(format, *args)


class SimulatedExpert:
    """An expert's browser stand-in: a Socket.IO client of the site that joins the room and acts."""

    def __init__(self, url: str, token: str, evaluation_id: int) -> None:
        self.evaluation_id = evaluation_id
        self.progress_seen = 0
        self.client = socketio.Client(reconnection=False)
        self.client.on(PROGRESS, self._progress, namespace=NAMESPACE)
        self.client.connect(url, namespaces=[NAMESPACE], auth={"token": token}, transports=["websocket"],
                            wait_timeout=10)
        self.state = self._call("join", {"evaluation_id": evaluation_id})["state"]

    def _progress(self, _payload: Any) -> None:
        self.progress_seen += 1

    def _call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.call(event, data, namespace=NAMESPACE, timeout=20)
        if not answer or not answer.get("ok"):
            raise click.ClickException(f"the scoring room refused {event} {data.get('name', '')}: "
                                       f"{(answer or {}).get('message')}")
        return answer

    def act(self, name: str, **data: Any) -> dict[str, Any]:
        return self._call("action", {"evaluation_id": self.evaluation_id, "name": name, **data})

    def close(self) -> None:
        self.client.disconnect()


def _scores(criteria: list[dict[str, Any]], expert_no: int, bid_no: int) -> list[dict[str, str]]:
    """Two saves as an expert types: the pass/fail items first, then the scores (deterministic, varied)."""
    first = {c["code"]: "pass" for c in criteria if c["kind"] == PASS_FAIL}
    second = {}
    for n, c in enumerate(c for c in criteria if c["kind"] != PASS_FAIL):
        top = Decimal(c["max"])
        share = Decimal("0.62") + Decimal((expert_no * 7 + bid_no * 3 + n * 5) % 30) / 100
        if expert_no == 4 and n == 0:
            share = Decimal("0.25")  # far below the others: the room warns about the deviation
        second[c["code"]] = str((top * share).quantize(Decimal("0.5")))
    return [first, second]


def _bidder_actor(result: Any, bid_opening_id: int):
    """The demo bidder's staff member acting for the organisation of one opened bid."""
    organisation_id = db.session.get(BidOpening, bid_opening_id).organisation_id
    key = next(k for k, org in result.orgs.items() if org.id == organisation_id)
    return demo_actor(result, f"{key}@demo.ebid", Role.BIDDER, key)


def _score_in_room(url: str, evaluation: Evaluation, tokens: list[str], result: Any,
                   report: EvaluationReport) -> None:
    clients = [SimulatedExpert(url, token, evaluation.id) for token in tokens]
    try:
        state = clients[0].state
        members = [m["member_id"] for m in state["members"]]
        for client in clients[:len(clients) // 2 + 1]:  # a majority elects; the vote then closes
            client.act("vote_chair", candidate_id=members[0])
        bids = [b["bid_opening_id"] for b in state["bids"] if b["evaluated"]]
        asked = clients[0].act("ask_clarification", bid_opening_id=bids[1], question=CLARIFICATION, minutes=30)
        clarification_id = asked["clarification_id"]
        threads = [threading.Thread(target=_type_and_submit, args=(client, n, bids, state["criteria"]))
                   for n, client in enumerate(clients, start=1)]
        for t in threads:
            t.start()
        room_service.answer_clarification(_bidder_actor(result, bids[1]), clarification_id, CLARIFICATION_ANSWER)
        db.session.commit()
        report.lines.append("a clarification was asked in the room and answered by the bidder")
        for t in threads:
            t.join(120)
        clients[0].act("write_summary", text=SUMMARY)
        clients[0].act("complete")
        report.lines.append(f"{len(clients)} simulated experts joined as Socket.IO clients, elected a chair, "
                            f"scored {len(bids)} bids ({sum(c.progress_seen for c in clients)} live progress events "
                            "received) and completed the evaluation")
    finally:
        for client in clients:
            client.close()


def _type_and_submit(client: SimulatedExpert, expert_no: int, bids: list[int], criteria: list[dict[str, Any]]) -> None:
    for bid_no, bid in enumerate(bids, start=1):
        revision = None
        for values in _scores(criteria, expert_no, bid_no):
            saved = client.act("save_sheet", bid_opening_id=bid, values=values, revision=revision)
            revision = saved["sheet"]["revision"]
        client.act("submit_sheet", bid_opening_id=bid)


def run_evaluation(result: Any, host: str) -> EvaluationReport:
    """Start the demo tender's evaluation and run its scoring room, unless done or not ready."""
    report = EvaluationReport()
    tender = result.tender
    if tender is None or drawing.request_of(tender.id) is None:
        return report
    record = get_record(tender.id)
    if record is None or record.status != RecordStatus.PUBLISHED:
        report.note = "the opening record is not published yet: the evaluation waits for it"
        return report
    evaluation = db.session.scalar(select(Evaluation).where(Evaluation.tender_id == tender.id))
    if evaluation is not None and evaluation.status == EvaluationStatus.COMPLETE:
        return report
    if evaluation is None:
        evaluation = room_service.start_evaluation(demo_actor(result, AGENT, Role.AGENCY, "agency"), tender.id)
        db.session.commit()
        report.lines.append("evaluation started: the tender is in evaluation, the committee's names unsealed")
    _sign_in_all(tender.id, report)
    signed = _members(tender.id, MemberStatus.SIGNED_IN)
    tokens, rows = [], []
    for member in signed:
        row, plaintext = issue_api_token(member_actor(member), member.expert.person, "demo scoring room",
                                         expires_at=now() + timedelta(hours=1))
        rows.append(row)
        tokens.append(plaintext)
    db.session.commit()
    app = current_app._get_current_object()
    service = serve("room", app, host, 0, request_handler=_RoomHandler)  # a free port: the site itself is served later on --port
    try:
        db.session.refresh(evaluation)
        _score_in_room(service.url, evaluation, tokens, result, report)
    finally:
        service.stop()
        for row in rows:
            revoke_api_token(member_actor(next(m for m in signed if m.expert.person_id == row.person_id)), row)
        db.session.commit()
    return report


def print_evaluation(result: Any, reports: list[EvaluationReport], base_url: str) -> None:
    tender = result.tender
    click.echo("\n== experts and remote evaluation (远程异地评标) ==")
    for report in reports:
        for line in report.lines:
            click.echo(f"  - {line}")
        if report.note:
            click.echo(f"  {report.note}")
    if tender is None or drawing.request_of(tender.id) is None:
        return
    checks = drawing.verify_tender(tender.id)
    verdict = "ok" if checks and all(c.ok for c in checks) else "NOT ok"
    click.echo(f"  draw verification: {verdict} ({len(checks)} round(s)); recompute it with "
               f"`ebid evaluation verify-draw --tender {tender.code}`")
    evaluation = db.session.scalar(select(Evaluation).where(Evaluation.tender_id == tender.id))
    if evaluation is not None:
        opened = db.session.scalar(select(func.count(BidOpening.id)).where(
            BidOpening.tender_id == tender.id, BidOpening.status == BidOpeningStatus.DECRYPTED))
        members = ", ".join(m.expert.person.email for m in _members(tender.id, MemberStatus.SIGNED_IN)
                            if m.expert.person is not None)
        click.echo(f"  evaluation: {evaluation.status.value}, {opened} bids evaluated; room: "
                   f"{base_url}/evaluations/{evaluation.id}/room (log in as a member: {members}; or as "
                   "supervisor@demo.ebid)")
    click.echo(f"  draw: {base_url}/tenders/{tender.id}/draw (agent@demo.ebid)")


__all__ = ["DEMO_EXPERTS", "demo_actor", "member_actor", "print_evaluation", "run_drawing", "run_evaluation"]
