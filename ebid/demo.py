"""``ebid demo``: seed a trading centre with its people and run the tender lifecycle, then serve.

Running it twice is safe: what exists is found by its USCC or e-mail and kept; the demo tender is
published once. The demo password is printed, so only use the demo on a machine of your own.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from sqlalchemy import select

import bidding
from bidding.models import Tender
from core.actor import Actor
from core.clock import beijing, now
from core.db import db
from core.identity import services as identity
from core.identity.access import actor_for
from core.identity.models import Organisation, OrganisationKind, Person, Role
from core.identity.uscc import make as make_uscc
from core.realtime import run_server
from ebid.demo_bids import demo_secrets_note, prepare_demo_keys, submit_demo_bids
from ebid.demo_evaluation import POOL as EXPERT_POOL
from ebid.demo_evaluation import print_evaluation, run_drawing, run_evaluation
from ebid.demo_guarantees import run_guarantees
from ebid.demo_opening import deliver_reveals, demo_time, print_opening, run_opening
from ebid.demo_results import print_results, run_results
from ebid.demo_supervision import print_supervision, run_supervision, seed_planted

DEMO_TENDER_CODE_PREFIX = "QDGGZY-DEMO"


@dataclass(frozen=True)
class OrgSpec:
    key: str
    first17: str
    name: str
    kind: OrganisationKind
    is_sme: bool = False

    @property
    def uscc(self) -> str:
        return make_uscc(self.first17)


ORGS = (
    OrgSpec("centre", "12370200MB2834715", "青岛市公共资源交易中心", OrganisationKind.TRADING_CENTRE),
    OrgSpec("tenderer", "91370211MA3CH4R61", "青岛西海岸新区城市建设投资有限公司", OrganisationKind.TENDERER),
    OrgSpec("agency", "91370202MA3D9K2W0", "青岛正信工程招标代理有限公司", OrganisationKind.AGENCY),
    OrgSpec("bidder1", "91370200163562681", "山东华泰建工集团有限公司", OrganisationKind.COMPANY),
    OrgSpec("bidder2", "91370203MA3EJQ0T5", "青岛海川路桥工程有限公司", OrganisationKind.COMPANY, is_sme=True),
    OrgSpec("bidder3", "91370212MA3F07L38", "青岛崂山市政建设有限公司", OrganisationKind.COMPANY, is_sme=True),
    OrgSpec("bidder4", "91370100MA3C8NDE2", "济南城建集团有限公司", OrganisationKind.COMPANY),
    OrgSpec("bidder5", "91370600MA3M5BQ47", "烟台鲁东交通工程有限公司", OrganisationKind.COMPANY, is_sme=True),
    OrgSpec("authority", "11370200004185203", "青岛市住房和城乡建设局", OrganisationKind.AUTHORITY),
)


@dataclass(frozen=True)
class PersonSpec:
    email: str
    name: str
    roles: tuple[tuple[Role, str | None], ...]


PEOPLE = (
    PersonSpec("admin@demo.ebid", "平台管理员 王磊", ((Role.ADMIN, None),)),
    PersonSpec("tenderer@demo.ebid", "招标人 刘建国", ((Role.TENDERER, "tenderer"),)),
    PersonSpec("agent@demo.ebid", "代理机构 陈敏", ((Role.AGENCY, "agency"),)),
    *(PersonSpec(f"bidder{i}@demo.ebid", name, ((Role.BIDDER, f"bidder{i}"),))
      for i, name in enumerate(("投标人 张伟", "投标人 李娜", "投标人 赵强", "投标人 孙丽", "投标人 周杰"), start=1)),
    *(PersonSpec(f"expert{i}@demo.ebid", name, ((Role.EXPERT, None),))
      for i, name in enumerate((row[1] for row in EXPERT_POOL), start=1)),
    PersonSpec("supervisor@demo.ebid", "监督人员 马骏", ((Role.SUPERVISOR, None),)),
    *(PersonSpec(f"custodian{i}@demo.ebid", name, ((Role.CUSTODIAN, None),))
      for i, name in enumerate(("密钥保管人 高远", "密钥保管人 林青", "密钥保管人 罗斌"), start=1)),
)


@dataclass
class DemoResult:
    orgs: dict[str, Organisation] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    tender: Tender | None = None
    created: list[str] = field(default_factory=list)


def demo_password() -> str:
    return os.environ.get("EBID_DEMO_PASSWORD", "ebid-demo-2026")


def seed_identities(result: DemoResult) -> None:
    """Create the demo organisations and people unless they exist."""
    admin = Actor.system(source="demo")
    for spec in ORGS:
        org = db.session.scalar(select(Organisation).where(Organisation.uscc == spec.uscc))
        if org is None:
            org = identity.register_organisation(admin, spec.uscc, spec.name, spec.kind, region="370200",
                                                 is_sme=spec.is_sme)
            result.created.append(f"organisation {spec.name} ({spec.uscc})")
        result.orgs[spec.key] = org
    for spec in PEOPLE:
        person = db.session.scalar(select(Person).where(Person.email == spec.email))
        if person is None:
            person = identity.create_person(admin, spec.email, spec.name, password=demo_password())
            for role, org_key in spec.roles:
                identity.grant_role(admin, person, role, result.orgs[org_key] if org_key else None)
            result.created.append(f"person {spec.name} <{spec.email}>")
        result.people[spec.email] = person


def tender_notice_pdf(title: str, lines: list[str]) -> bytes:
    """A short tender notice (招标公告) as a PDF, for the demo's documents."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setFont("STSong-Light", 16)
    pdf.drawString(60, 780, title)
    pdf.setFont("STSong-Light", 11)
    y = 750
    for line in lines:
        pdf.drawString(60, y, line)
        y -= 20
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def demo_tender() -> Tender | None:
    return db.session.scalar(select(Tender).where(Tender.code.like(f"{DEMO_TENDER_CODE_PREFIX}%"))
                             .order_by(Tender.id).limit(1))


def seed_tender(result: DemoResult) -> None:
    """Draft, document and publish the demo tender; a bidder asks, the agency answers and amends."""
    existing = demo_tender()
    if existing is not None:
        result.tender = existing
        return
    agent = actor_for(result.people["agent@demo.ebid"], Role.AGENCY, result.orgs["agency"].id, source="demo")
    start = now()
    deadline = beijing(start + timedelta(days=25)).replace(hour=9, minute=30, second=0, microsecond=0)
    custodians = [result.people[f"custodian{i}@demo.ebid"].id for i in (1, 2, 3)]
    tender = bidding.create_tender(agent, {
        "code": f"{DEMO_TENDER_CODE_PREFIX}-{beijing(start):%Y}-001",
        "title": "青岛西海岸新区滨海大道道路改造工程施工招标",
        "description": "滨海大道(长江路至昆仑山路段)道路、排水及照明改造工程施工,分两个标段。",
        "regime": "works", "category": "works", "is_mandatory": True, "region": "370200",
        "tenderer_id": result.orgs["tenderer"].id,
        "estimated_price": Decimal("21400000.00"), "ceiling_price": Decimal("20800000.00"),
        "documents_from_at": start, "documents_until_at": start + timedelta(days=10),
        "question_deadline_at": deadline - timedelta(days=16), "bid_deadline_at": deadline,
        "bid_validity_days": 90, "decryption_mode": "bidder_then_custodians",
        "custodian_threshold": 2, "custodian_ids": custodians,
        "evaluation_method": {"method": "comprehensive", "benchmark": "trimmed_mean",
                              "weights": {"price": 60, "technical": 40},
                              # B = trimmed mean × (1 − K), K drawn in public at the opening (DOMAIN §2.2)
                              "downward_coefficient": "K",
                              "random_parameters": {"K": ["0.0025", "0.0050", "0.0075", "0.0100", "0.0125",
                                                          "0.0150"]}},
        "guarantee_policy": {"mode": "waived_sme"},  # cash or guarantee; SMEs may use the bond waiver
        "lots": [
            {"title": "第一标段:道路及排水工程", "estimated_price": Decimal("12800000.00"),
             "ceiling_price": Decimal("12500000.00"), "bond_amount": Decimal("250000.00")},
            {"title": "第二标段:照明及附属工程", "estimated_price": Decimal("8600000.00"),
             "ceiling_price": Decimal("8300000.00"), "bond_amount": Decimal("160000.00")},
        ],
    })
    notice = tender_notice_pdf("招标公告", [
        f"项目名称:{tender.title}",
        f"项目编号:{tender.code}",
        "招标人:青岛西海岸新区城市建设投资有限公司",
        "招标代理机构:青岛正信工程招标代理有限公司",
        f"投标截止时间(开标时间):{deadline:%Y年%m月%d日 %H:%M} 北京时间",
        "投标文件须在投标人本地加密后上传,开标在线进行(不见面开标)。",
    ])
    bidding.add_document(agent, tender, filename="招标公告.pdf", stream=io.BytesIO(notice),
                         content_type="application/pdf", kind="tenderNotice")
    bidding.add_document(agent, tender, filename="招标文件.pdf",
                         stream=io.BytesIO(tender_notice_pdf("招标文件", ["第一章 招标公告", "第二章 投标人须知",
                                                                       "第三章 评标办法(综合评估法)",
                                                                       "第四章 合同条款及格式"])),
                         content_type="application/pdf", kind="biddingDocuments")
    bidding.publish_tender(agent, tender)
    result.created.append(f"published tender {tender.code}")

    bidder = actor_for(result.people["bidder1@demo.ebid"], Role.BIDDER, result.orgs["bidder1"].id, source="demo")
    bidding.record_download(bidder, tender.documents[1])
    question = bidding.ask_question(bidder, tender, "第一标段工期是否可以分段验收?")
    bidding.answer_question(agent, question, "可以。道路与排水工程可分段验收,具体见招标文件第四章。")
    bidding.amend_tender(agent, tender, summary="补充说明:现场踏勘时间调整为公告发布后第5日上午9时。",
                         affects_bids=False)
    result.created.append("question answered and amendment no. 1 published")
    result.tender = tender


def print_summary(result: DemoResult, base_url: str) -> None:
    tender = result.tender
    click.echo("\n== ebid demo ==")
    if result.created:
        click.echo("Created:")
        for line in result.created:
            click.echo(f"  - {line}")
    else:
        click.echo("Everything already existed; nothing changed.")
    click.echo(f"\nDemo password for every account: {demo_password()}")
    click.echo("Accounts: agent@demo.ebid (agency), tenderer@demo.ebid, bidder1..5@demo.ebid, expert1..12@demo.ebid,")
    click.echo("          supervisor@demo.ebid, custodian1..3@demo.ebid, admin@demo.ebid")
    if tender is not None:
        click.echo(f"\nTender {tender.code}: {tender.title}")
        click.echo(f"  status {tender.status.value}, bid deadline {beijing(tender.bid_deadline_at):%Y-%m-%d %H:%M} (Beijing time)")
        click.echo(f"  page:      {base_url}/tenders/{tender.id}")
        click.echo(f"  open data: {base_url}/api/ocds/tenders/{tender.id}")
    click.echo(f"\nWhere to look: {base_url}/tenders  ·  API: {base_url}/api/openapi.json  ·  "
               f"audit trail (log in as supervisor): {base_url}/audit\n")


@click.command("demo")
@click.option("--serve/--no-serve", default=True, help="Serve the site after the lifecycle (default) or stop.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def demo_command(serve: bool, host: str, port: int) -> None:
    """Seed a trading centre, its people and a tender; bid, guarantee and open it online; then serve the site."""
    result = DemoResult()
    with demo_time(demo_tender() is not None) as time:  # a first run starts in the past (ebid.demo_opening)
        seed_identities(result)
        prepare_demo_keys(result.people, result.orgs, result.created)  # custodians' certificates: needed to publish
        seed_tender(result)
        db.session.commit()
        seed_planted(result, result.tender.code.rsplit("-", 1)[0], result.tender.bid_deadline_at)  # collusion signs
        submit_demo_bids(result.tender, result.people, result.orgs, result.created)
        market = run_guarantees(result, host=host, port=port)  # the issuers keep running while the site is served
        try:
            drawn = run_drawing(result)  # the committee is drawn before the opening
            opened = run_opening(result, time)  # at the deadline; the clock is back at the present afterwards
            supervised = run_supervision(result)  # the planted tender opens too and is screened
            deliver_reveals(host, port, opened)  # sealed guarantee letters, revealed after the opening
            evaluated = run_evaluation(result, host)  # the scoring room, with experts as real socket clients
            results = run_results(result, time)  # signed report, publicity, objection, award (clock still past)
        except BaseException:
            market.stop()
            raise
    print_summary(result, f"http://{host}:{port}")
    print_opening(result, opened, f"http://{host}:{port}")
    print_evaluation(result, [drawn, evaluated], f"http://{host}:{port}")
    print_results(result, results, f"http://{host}:{port}")
    print_supervision(supervised, f"http://{host}:{port}")
    click.echo(demo_secrets_note())
    try:
        if serve:
            run_server(current_app._get_current_object(), host=host, port=port)
    finally:
        market.stop()
