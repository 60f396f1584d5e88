"""The reference issuer's pure rules: underwriting, validity period, guarantee numbers, claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from guarantees.issuer_sim.underwriting import (
    ClaimFacts,
    OrderTerms,
    Rules,
    decide,
    decide_claim,
    guarantee_number,
    parse_order,
    validity_period,
)
from guarantees.protocol import MalformedMessage

NOW = datetime(2025, 2, 1, 2, 0, tzinfo=UTC)
TERMS = OrderTerms(
    order_no="G1", tender_code="T1", tender_title="工程", lot_code="T1-1", lot_title="一标段",
    bid_deadline=datetime(2025, 3, 1, 1, 30, tzinfo=UTC), validity_days=90, amount=Decimal("125000.00"),
    guarantee_type="plain", beneficiary_name="招标人", beneficiary_uscc="12110000MB0123456X",
    principal_name="投标人", principal_uscc="91110000MA01234567", product_code="P", premium=Decimal("125.00"),
    rate_permille=Decimal("1.0"))


@pytest.mark.parametrize(("terms", "rules", "approved", "says"), [
    (TERMS, Rules(), True, ""),
    (replace(TERMS, amount=Decimal("5000000.00")), Rules(), True, ""),                    # exactly the limit
    (replace(TERMS, amount=Decimal("5000000.01")), Rules(), False, "limit of 5,000,000.00"),
    (replace(TERMS, amount=Decimal("90000000")), Rules(amount_limit=None), True, ""),    # no limit set
    (TERMS, Rules(denied_usccs=frozenset({"91110000MA01234567"})), False, "91110000MA01234567"),
    (replace(TERMS, principal_uscc="91110000ma01234567"), Rules(denied_usccs=frozenset({"91110000MA01234567"})),
     False, "does not guarantee"),
    (replace(TERMS, bid_deadline=NOW), Rules(), False, "deadline has passed"),
    (replace(TERMS, bid_deadline=NOW + timedelta(seconds=1)), Rules(), True, ""),
])
def test_underwriting(terms, rules, approved, says):
    decision = decide(terms, rules, now=NOW)
    assert decision.approved is approved
    assert says in str(decision.reason)


@pytest.mark.parametrize(("overrides", "issuer_extra", "until_utc"), [
    ({}, 0, datetime(2025, 5, 30, 15, 59, 59, tzinfo=UTC)),          # 2025-03-01 09:30 Beijing + 90 d, end of day
    ({"extra_validity_days": 10}, 5, datetime(2025, 6, 9, 15, 59, 59, tzinfo=UTC)),
    ({"extra_validity_days": 2}, 5, datetime(2025, 6, 4, 15, 59, 59, tzinfo=UTC)),
    ({"bid_deadline": datetime(2025, 3, 1, 17, 0, tzinfo=UTC)}, 0,   # 01:00 on 2 March in Beijing
     datetime(2025, 5, 31, 15, 59, 59, tzinfo=UTC)),
    ({"valid_until_required": datetime(2025, 7, 1, 3, 0, tzinfo=UTC)}, 0, datetime(2025, 7, 1, 15, 59, 59, tzinfo=UTC)),
    ({"valid_until_required": datetime(2025, 4, 1, tzinfo=UTC)}, 0, datetime(2025, 5, 30, 15, 59, 59, tzinfo=UTC)),
])
def test_validity_period_covers_the_bid_validity(overrides, issuer_extra, until_utc):
    start, until = validity_period(NOW, replace(TERMS, **overrides), issuer_extra)
    assert start == NOW and until == until_utc


@pytest.mark.parametrize(("sequence", "expected"), [(1, "BANK1-20250131-000001"), (999_999, "BANK1-20250131-999999")])
def test_guarantee_numbers(sequence, expected):
    assert guarantee_number("BANK1", date(2025, 1, 31), sequence) == expected


@pytest.mark.parametrize("sequence", [0, 1_000_000])
def test_guarantee_number_range(sequence):
    with pytest.raises(ValueError):
        guarantee_number("BANK1", date(2025, 1, 31), sequence)


UNTIL = datetime(2025, 6, 1, tzinfo=UTC)
FACTS = ClaimFacts(letter_status="valid", valid_until=UNTIL, guarantee_amount=Decimal("125000.00"),
                   claim_amount=Decimal("125000.00"), received_at=UNTIL - timedelta(days=1))


@pytest.mark.parametrize(("overrides", "paid", "says"), [
    ({}, True, ""),
    ({"claim_amount": Decimal("0.01")}, True, ""),
    ({"received_at": UNTIL}, True, ""),                                           # on the last moment
    ({"received_at": UNTIL + timedelta(seconds=1)}, False, "expired"),
    ({"letter_status": "released"}, False, "released"),
    ({"released_at": UNTIL - timedelta(days=2)}, False, "released"),
    ({"released_at": UNTIL}, True, ""),                                           # released after the demand
    ({"letter_status": "cancelled"}, False, "cancelled"),
    ({"letter_status": "paid"}, False, "already been paid"),
    ({"claim_amount": Decimal("125000.01")}, False, "not between 0 and"),
    ({"claim_amount": Decimal("0")}, False, "not between 0 and"),
])
def test_claim_decisions(overrides, paid, says):
    decision = decide_claim(replace(FACTS, **overrides))
    assert decision.paid is paid
    assert decision.amount_paid == (replace(FACTS, **overrides).claim_amount if paid else Decimal("0.00"))
    assert says in str(decision.reason)


def _order(**overrides) -> dict:
    data = {"tender_code": "T1", "tender_title": "工程", "lot_code": "T1-1", "lot_title": "一标段",
            "bid_deadline": "2025-03-01T01:30:00Z", "validity_days": 90, "amount": "125000.00",
            "guarantee_type": "sealed", "beneficiary": {"name": "招标人", "uscc": "12110000MB0123456X"},
            "principal": {"name": "投标人", "uscc": "91110000MA01234567"}, "premium": "125.00", "rate_permille": "1.0"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_parse_order_reads_flat_and_nested_tender_fields():
    flat = parse_order("G1", _order())
    nested = parse_order("G1", _order(tender_code=None, tender_title=None, lot_code=None, lot_title=None,
                                      tender={"code": "T1", "title": "工程"}, lot={"code": "T1-1", "title": "一标段"}))
    assert flat == nested
    assert flat.amount == Decimal("125000.00") and flat.guarantee_type == "sealed"
    assert parse_order("G1", _order(amount=None, guarantee_amount="10.00")).amount == Decimal("10.00")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"amount": "0"}, "amount"),
    ({"amount": "-5"}, "amount"),
    ({"amount": "1e400"}, "amount"),
    ({"amount": "12.000001"}, "amount"),
    ({"validity_days": True}, "validity_days"),
    ({"validity_days": 0}, "validity_days"),
    ({"guarantee_type": "明文"}, "guarantee_type"),
    ({"bid_deadline": "2025-03-01 01:30"}, "timestamp"),
    ({"principal": {"name": "投标人"}}, "uscc"),
    ({"lot_code": ""}, "lot_code"),
    ({"extra_validity_days": -1}, "extra_validity_days"),
    ({"order_no": "G2"}, "order_no"),
])
def test_parse_order_names_the_field_to_fix(overrides, field):
    with pytest.raises(MalformedMessage) as caught:
        parse_order("G1", _order(**overrides))
    assert field in caught.value.to_dict()["message"]
