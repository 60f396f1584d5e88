"""The demo's supervision: a second tender with planted collusion signs, opened and screened.

Four demo bidders bid on a small lighting-maintenance tender. Two of them (bidders 3 and 4) upload from
the same network address and hand in technical proposals that are the same text with a few words
changed, and the four prices are spaced at a regular 30,000 CNY. The other two upload from their own
addresses with their own proposals. At the deadline the tender opens online (the bidders decrypt their
own bids) and the collusion screens run; the supervision console lists the tender with its flags and
evidence. Nothing is decided automatically: the signs are for the supervisors to look into.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
from flask import current_app
from sqlalchemy import select

import bidding
from bidding import opening, opening_decrypt, opening_process, sealed_queries
from bidding.models import Tender, TenderStatus
from bidding.opening_models import BidOpening, BidOpeningStatus, OpeningPhase
from bidding.sealed_models import Bid
from core.actor import Actor
from core.clock import beijing, now
from core.db import db
from core.identity.access import actor_for
from core.identity.models import Role
from crypto import envelope as E
from ebid.client import bidzip
from ebid.client.sealing import seal_for
from ebid.demo_bids import bid_pdf, ca_unlocker, demo_dir, ensure_certificate, submit_envelope
from ebid.demo_opening import envelope_header
from supervision.screening import latest_run, run_screens

PLANTED_CODE_SUFFIX = "002"
BIDDERS = (1, 2, 3, 4)
COLLUDING = (3, 4)
SHARED_ADDRESS = "61.155.20.77"
OWN_ADDRESSES = {1: "112.224.65.18", 2: "218.58.77.203", 3: SHARED_ADDRESS, 4: SHARED_ADDRESS}
PRICES = {1: "3190000.00", 2: "3160000.00", 3: "3130000.00", 4: "3100000.00"}  # a regular 30,000 CNY apart
AGENT = "agent@demo.ebid"
SUPERVISOR = "supervisor@demo.ebid"
TOPICS = ("路灯杆体检查", "灯具更换", "电缆绝缘检测", "配电箱维护", "夜间巡查", "故障抢修", "安全防护", "交通疏导",
          "质量检验", "材料进场验收", "节能改造", "智能控制系统", "应急预案", "文明施工", "环境保护", "进度计划")


@dataclass
class SupervisionReport:
    lines: list[str] = field(default_factory=list)
    tender: Tender | None = None


def planted_tender(prefix: str) -> Tender | None:
    return db.session.scalar(select(Tender).where(Tender.code == f"{prefix}-{PLANTED_CODE_SUFFIX}"))


def proposal(seed: int) -> str:
    """A technical proposal (施工组织设计) of about 3,000 characters, generated from its own seed."""
    rng = random.Random(seed)
    parts = ["第一章 施工组织设计总说明"]
    for chapter in range(2, 12):
        topic = rng.choice(TOPICS)
        parts.append(f"第{chapter}章 {topic}")
        for _ in range(4):
            a, b, c = rng.sample(TOPICS, 3)
            days, crew = rng.randint(2, 30), rng.randint(3, 40)
            parts.append(f"本公司针对{topic}制定专项方案:结合{a}与{b}的要求,安排{crew}名作业人员,计划{days}日内完成,"
                         f"并由项目技术负责人对{c}进行全过程检查,形成书面记录。")
    return "\n".join(parts)


def _near_copy(text: str) -> str:
    """The colluding partner's copy: the same proposal with a few words changed."""
    return text.replace("本公司", "我公司", 3).replace("书面记录", "检查记录", 2)


def seed_planted(result: Any, prefix: str, deadline: Any) -> Tender | None:
    """Draft, publish and bid on the planted tender (the clock is the demo's rewound clock)."""
    existing = planted_tender(prefix)
    if existing is not None:
        return existing
    agent = actor_for(result.people[AGENT], Role.AGENCY, result.orgs["agency"].id, source="demo")
    start = now()
    tender = bidding.create_tender(agent, {
        "code": f"{prefix}-{PLANTED_CODE_SUFFIX}", "title": "青岛西海岸新区城市道路照明设施维护项目",
        "description": "城市主次干道路灯、配电设施日常维护及故障抢修,服务期一年。",
        "regime": "works", "category": "works", "is_mandatory": True, "region": "370200",
        "tenderer_id": result.orgs["tenderer"].id, "estimated_price": Decimal("3300000.00"),
        "ceiling_price": Decimal("3250000.00"), "documents_from_at": start,
        "documents_until_at": start + timedelta(days=10), "question_deadline_at": deadline - timedelta(days=16),
        "bid_deadline_at": deadline, "bid_validity_days": 90, "decryption_mode": "bidder",
        "evaluation_method": {"method": "comprehensive", "benchmark": "mean", "weights": {"price": 60,
                                                                                        "technical": 40}},
        "guarantee_policy": {"mode": "waived_all"},
        "lots": [{"title": "照明设施维护", "estimated_price": Decimal("3300000.00"),
                  "ceiling_price": Decimal("3250000.00"), "bond_amount": Decimal("0.00")}],
    })
    bidding.add_document(agent, tender, filename="招标文件.pdf", stream=io.BytesIO(
        bid_pdf(["招标文件", tender.title, "第三章 评标办法(综合评估法)"])), content_type="application/pdf",
        kind="biddingDocuments")
    bidding.publish_tender(agent, tender)
    db.session.commit()
    _bid_all(result, tender)
    return tender


def _bid_all(result: Any, tender: Tender) -> None:
    ca = ca_unlocker([])
    lot = tender.lots[0]
    base_text = proposal(17)
    for n in BIDDERS:
        person, org = result.people[f"bidder{n}@demo.ebid"], result.orgs[f"bidder{n}"]
        key, cert = ensure_certificate(person, org, ca, [])
        folder = demo_dir() / "planted" / f"bidder{n}"
        folder.mkdir(parents=True, exist_ok=True)
        text = base_text if n == COLLUDING[0] else _near_copy(base_text) if n == COLLUDING[1] else proposal(100 + n)
        plan = folder / "技术标-施工组织设计.txt"
        plan.write_text(text, encoding="utf-8")
        letter = folder / "投标函.pdf"
        letter.write_bytes(bid_pdf([f"投标人:{org.name}", f"项目:{tender.title}", f"投标报价:人民币 {PRICES[n]} 元"],
                                   author=org.name))
        offer = bidzip.make_offer(lot=lot.code, price=PRICES[n], duration_days=365, quality="合格",
                                  manager_name=f"项目经理{n}", manager_certificate_no=f"鲁13720{n}0000{n}")
        zip_path = folder / "bid.zip"
        bidzip.build_bid(offer, [letter, plan], zip_path)
        sealed = seal_for(sealed_queries.sealing_parameters(tender), lot_id=lot.id, bid_path=zip_path, key=key,
                          cert=cert, out=folder / "bid.ebe", version=1,
                          server=current_app.extensions["ebid.settings"].public_base_url, organisation_id=org.id)
        db.session.commit()
        # the upload as the platform saw it: the bidder's network address and its client installation
        actor = actor_for(person, Role.BIDDER, org.id, source=OWN_ADDRESSES[n],
                          device=f"ebid-client/{hashlib.sha256(f'install-{n}'.encode()).hexdigest()[:32]}")
        submit_envelope(actor, tender, lot, sealed.path)
        db.session.commit()


def _open(result: Any, tender: Tender, report: SupervisionReport) -> None:
    """Bidders check in and decrypt their own bids; the screens then run."""
    host = actor_for(result.people[AGENT], Role.AGENCY, result.orgs["agency"].id, source="demo")
    if not opening.participants(tender.id):
        opening.name_participants(host, tender.id, host_id=result.people[AGENT].id,
                                  supervisor_ids=[result.people[SUPERVISOR].id], window_minutes=30)
        db.session.commit()
    session = opening.get_session(tender.id)
    if session.phase == OpeningPhase.CHECKIN:
        opening.start_decryption(host, tender.id)
        db.session.commit()
    ca = ca_unlocker([])
    for n in BIDDERS:
        person, org = result.people[f"bidder{n}@demo.ebid"], result.orgs[f"bidder{n}"]
        actor = actor_for(person, Role.BIDDER, org.id, source="demo")
        key = ensure_certificate(person, org, ca, [])[0]
        rows = db.session.execute(select(BidOpening, Bid).join(Bid, Bid.id == BidOpening.bid_id).where(
            BidOpening.tender_id == tender.id, BidOpening.organisation_id == org.id,
            BidOpening.status == BidOpeningStatus.PENDING, BidOpening.pending_key.is_(None))).all()
        for _row, bid in rows:
            content_key = bytearray(E.unwrap_key_part(envelope_header(bid), key)[1])
            try:
                opening_decrypt.submit_content_key(actor, tender.id, bid.public_id, bytes(content_key))
            finally:
                content_key[:] = bytes(len(content_key))
            db.session.commit()
            opening_process.process_pending(tender.id)
    opened = db.session.scalar(select(db.func.count(BidOpening.id)).where(
        BidOpening.tender_id == tender.id, BidOpening.status == BidOpeningStatus.DECRYPTED))
    report.lines.append(f"planted tender {tender.code}: {opened} bids opened online by their bidders")


def run_supervision(result: Any) -> SupervisionReport:
    """Open the planted tender at its deadline (the clock is there already) and screen it."""
    report = SupervisionReport()
    if result.tender is not None and (run := latest_run(result.tender.id)) is not None:
        report.lines.append(f"tender {result.tender.code} was screened when its opening closed: "
                            f"{len(run.findings)} sign(s) over {run.bids} bids")
    prefix = result.tender.code.rsplit("-", 1)[0] if result.tender is not None else None
    tender = planted_tender(prefix) if prefix else None
    if tender is None:
        return report
    report.tender = tender
    db.session.refresh(tender)
    if tender.status == TenderStatus.OPENING:
        _open(result, tender, report)
    if latest_run(tender.id) is None:
        run = run_screens(Actor.system(source="demo"), tender.id, trigger="opening")
        db.session.commit()
        codes = sorted({f["code"] for f in run.findings})
        report.lines.append(f"collusion screens ran over {run.bids} bids: {len(run.findings)} sign(s) "
                            f"({', '.join(codes)}); the supervisors were notified")
    return report


def print_supervision(report: SupervisionReport, base_url: str) -> None:
    click.echo("\n== supervision (监督) ==")
    for line in report.lines:
        click.echo(f"  - {line}")
    tender = report.tender
    if tender is None:
        return
    run = latest_run(tender.id)
    if run is not None:
        for f in run.findings:
            click.echo(f"  ! {f['code']} ({f['kind']}): bids {', '.join(map(str, f['bid_ids']))}")
    click.echo(f"  console: {base_url}/supervision (log in as {SUPERVISOR}); planted tender: "
               f"{base_url}/supervision/tenders/{tender.id}  ·  as of {beijing(now()):%Y-%m-%d %H:%M}")


__all__ = ["print_supervision", "run_supervision", "seed_planted"]
