"""``ebid demo``'s guarantees: two simulated issuers as real HTTP services, letters bought through the
outbox, callbacks and registry over HTTP, bound and verified; an SME waiver; a second run buys nothing."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import func, select

from core.db import db
from ebid.demo import DemoResult, seed_identities, seed_tender
from ebid.demo_bids import prepare_demo_keys
from ebid.demo_guarantees import run_guarantees
from guarantees import OrderState, figures_for, parse_period, verify_letter
from guarantees.models import BondWaiver, GuaranteeOrder, Issuer, OutboundMessage, WaiverKind
from tests.guarantees.conftest import free_port


def seeded(*, first: bool = True) -> DemoResult:
    result = DemoResult()
    seed_identities(result)
    if first:  # the custodians' certificates are needed to publish the tender, once
        prepare_demo_keys(result.people, result.orgs, result.created)
    seed_tender(result)
    db.session.commit()
    return result


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_demo_buys_binds_and_verifies_letters_from_two_issuers_and_records_a_waiver(app, capsys):
    result = seeded()
    ports = (free_port(), free_port())
    market = run_guarantees(result, port=free_port(), issuer_ports=ports, timeout=60)
    try:
        issuers = {i.code: i for i in db.session.scalars(select(Issuer))}
        assert set(issuers) == {"QDBANK", "HXINS"}
        assert {i.api_base_url for i in issuers.values()} == {f"http://127.0.0.1:{p}" for p in ports}
        db.session.expire_all()
        orders = list(db.session.scalars(select(GuaranteeOrder).order_by(GuaranteeOrder.id)))
        assert len(orders) == 4
        assert {o.issuer.code for o in orders} == {"QDBANK", "HXINS"}
        assert all(o.state == OrderState.BOUND_TO_BID and o.letter_sha256 for o in orders), \
            [(o.order_no, o.state, o.last_error) for o in orders]
        premiums = {(o.issuer.code, o.lot.number): o.premium for o in orders}
        assert premiums == {("QDBANK", 1): D("250.00"), ("HXINS", 1): D("200.00"),   # 250 000 × 1.0‰ / 0.8‰
                            ("QDBANK", 2): D("160.00"), ("HXINS", 2): D("150.00")}   # 128.00 < minimum 150.00
        assert {o.guarantee_type.value for o in orders} == {"plain", "sealed"}
        for row in market.rows:  # verified by number and code, the issuer's registry asked over HTTP
            report = row["report"]
            assert report.ok and report.check("registry").passed, [c.text for c in report.checks]
        again = verify_letter(guarantee_no=orders[0].guarantee_no, code=orders[0].verification_code,
                              confirm_with_issuer=True)  # the issuers are still running
        assert again.ok and again.check("registry").passed

        waiver = db.session.scalar(select(BondWaiver))
        assert waiver.kind == WaiverKind.WAIVED_SME and waiver.bidder_id == result.orgs["bidder5"].id
        output = capsys.readouterr().out
        for order in orders:
            assert order.guarantee_no in output and f"premium {order.premium} CNY" in output
        assert output.count("verified ✓") == 4 and "waived_sme waiver" in output

        figures = figures_for(parse_period(orders[0].issued_at.strftime("%Y")))
        assert figures.guarantees_issued == 4 and figures.guaranteed_amount == D("820000.00")
        assert figures.premiums_paid == D("760.00") and figures.waivers == 1
    finally:
        market.stop()

    sent = count(OutboundMessage)
    second = run_guarantees(seeded(first=False), port=free_port(), issuer_ports=(free_port(), free_port()), timeout=10)
    try:
        assert count(GuaranteeOrder) == 4 and count(OutboundMessage) == sent and count(BondWaiver) == 1
        assert {s.url for s in second.issuers} == {f"http://127.0.0.1:{p}" for p in ports}  # as admitted
        assert all(row["report"].ok for row in second.rows)
    finally:
        second.stop()
