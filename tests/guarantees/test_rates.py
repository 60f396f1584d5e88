"""Premiums (pure, table-driven), the rate cap, and products made not offerable by a lowered cap."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.db import db
from core.errors import ValidationFailed
from guarantees import offers, unavailable_products
from guarantees.models import ProductRate
from guarantees.rates import RateAboveCap, availability, premium, reference_premium, saving
from guarantees.services import rate_in_force, set_product_rate, set_rate_policy
from tests.guarantees.conftest import ADMIN

PREMIUMS = [
    # amount, rate ‰, minimum, maximum, expected
    (D("800000.00"), D("1"), D("0"), None, D("800.00")),              # works cap × 1‰
    (D("800000.00"), D("0.8"), D("300.00"), None, D("640.00")),
    (D("100000.00"), D("1"), D("300.00"), None, D("300.00")),         # the minimum binds
    (D("300000.00"), D("1"), D("300.00"), None, D("300.00")),         # exactly the minimum
    (D("1005.00"), D("1"), D("0"), None, D("1.01")),                  # 1.005 rounds half up (a float gives 1.00)
    (D("2025.00"), D("0.5"), D("0"), None, D("1.01")),                # 1.0125
    (D("30.00"), D("0.5"), D("0"), None, D("0.02")),                  # 0.015 rounds up to 2 fen
    (D("12345.00"), D("0.5"), D("0"), None, D("6.17")),               # 6.1725 rounds down
    (D("123456789.99"), D("0.75"), D("0"), None, D("92592.59")),      # 92 592.5924925
    (D("10000000.00"), D("1"), D("300.00"), D("5000.00"), D("5000.00")),  # capped by the maximum
    (D("20000.00"), D("1.2345"), D("0"), None, D("24.69")),           # 24.69
]


@pytest.mark.parametrize(("amount", "rate", "minimum", "maximum", "expected"), PREMIUMS)
def test_premium_table(amount, rate, minimum, maximum, expected):
    result = premium(amount, rate, minimum, maximum)
    assert result == expected
    assert result.as_tuple().exponent == -2  # always to the fen


@pytest.mark.parametrize(("amount", "rate", "error"), [
    (D("1000"), D("0"), ValueError),       # a zero rate is refused: it is no price
    (D("1000"), D("-0.5"), ValueError),
    (D("-1"), D("1"), ValueError),
    (D("0"), D("1"), ValueError),
    (1000.0, D("1"), TypeError),          # floats are never money
    (D("1000"), 1.0, TypeError),
])
def test_premium_refuses_bad_input(amount, rate, error):
    with pytest.raises(error):
        premium(amount, rate, D("0"))


def test_saving_is_never_negative():
    assert reference_premium(D("800000"), D("1.5")) == D("1200.00")
    assert saving(D("800000"), D("640.00"), D("1.5")) == D("560.00")
    assert saving(D("100000"), D("300.00"), D("1.5")) == D("0.00")  # minimum fee above the reference
    assert saving(D("100000"), D("100.00"), None) == D("0.00")


def test_availability_reasons():
    assert availability(is_active=True, issuer_admitted=True, rate=D("1"), cap=D("1"))
    verdict = availability(is_active=True, issuer_admitted=True, rate=D("1.2"), cap=D("1"))
    assert not verdict and verdict.code == "rate_above_cap"
    assert "1.2‰" in str(verdict.reason) and "1‰" in str(verdict.reason)
    assert availability(is_active=False, issuer_admitted=True, rate=D("1"), cap=None).code == "product_inactive"
    assert availability(is_active=True, issuer_admitted=False, rate=D("1"), cap=None).code == "issuer_not_admitted"
    assert availability(is_active=True, issuer_admitted=True, rate=None, cap=None).code == "no_rate"


def test_product_rate_above_cap_is_refused(app, make_issuer, policy):
    with pytest.raises(RateAboveCap) as refused:
        make_issuer("BANK9", rate="1.2")
    message = refused.value.to_dict()["message"]
    assert "1.2‰" in message and "1‰" in message  # names the rate and the cap
    _, product, _ = make_issuer("BANK8", rate="0.9")
    with pytest.raises(RateAboveCap):
        set_product_rate(ADMIN, product, "1.0001")
    assert rate_in_force(product).rate_permille == D("0.9")


@pytest.mark.parametrize("rate", ["0", "-1", "1000", "0.00001", "abc", 1.5])
def test_product_rate_must_be_a_sane_decimal(app, make_issuer, rate):
    _, product, _ = make_issuer("BANK7")
    with pytest.raises(ValidationFailed):
        set_product_rate(ADMIN, product, rate)


def test_lowering_the_cap_filters_products_without_changing_rates(app, make_issuer, tender, bidder):
    set_rate_policy(ADMIN, "1.5", "1.5")
    _, cheap, _ = make_issuer("BANKA", rate="0.8")
    _, dear, _ = make_issuer("BANKB", rate="1.2")
    lot = tender.lots[0]
    assert {o.product.id for o in offers(tender, lot, bidder[0])} == {cheap.id, dear.id}

    policy, affected = set_rate_policy(ADMIN, "1.0", "1.5")
    db.session.commit()
    assert [p.id for p in affected] == [dear.id]
    assert [r.rate_permille for r in db.session.query(ProductRate).filter_by(product_id=dear.id)] == [D("1.2")]
    assert [o.product.id for o in offers(tender, lot, bidder[0])] == [cheap.id]
    [excluded] = unavailable_products(tender, lot)
    assert excluded.product.id == dear.id and excluded.code == "rate_above_cap"

    set_product_rate(ADMIN, dear, "0.95")  # the issuer lowers its rate: offered again
    assert {o.product.id for o in offers(tender, lot, bidder[0])} == {cheap.id, dear.id}
