"""Statutory time and price rules (DOMAIN.md §1.1, §1.5): table-driven, with the boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bidding.errors import RulesViolated
from bidding.rules import (
    CN_2019_1,
    LotTerms,
    RuleBook,
    RuleConfigError,
    RuleSet,
    TenderTerms,
    check_amendment,
    check_bid_validity,
    check_guarantees,
    check_objection,
    check_periods,
    check_prices,
    check_publication,
    check_question,
    max_guarantee,
    objection_answer_due,
    when,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Beijing time
DAY, SECOND = timedelta(days=1), timedelta(seconds=1)
RULES = CN_2019_1


def terms(**overrides) -> TenderTerms:
    values = {"regime": "works", "category": "works", "is_mandatory": True, "estimated_price": Decimal("1000000"),
              "documents_from_at": T0, "documents_until_at": T0 + 10 * DAY, "question_deadline_at": T0 + 15 * DAY,
              "bid_deadline_at": T0 + 25 * DAY, "bid_validity_days": 90, "document_count": 1,
              "lots": [LotTerms(estimated_price=Decimal("1000000"), bond_amount=Decimal("20000"))]}
    values.update(overrides)
    return TenderTerms(**values)


def codes(violations) -> list[str]:
    return [v.code for v in violations]


def test_valid_terms_pass_every_rule():
    assert check_publication(RULES, terms(), T0) == []


@pytest.mark.parametrize(("deadline", "mandatory", "regime", "expected"), [
    (T0 + 20 * DAY, True, "works", []),                                   # exactly 20 days
    (T0 + 20 * DAY - SECOND, True, "works", ["bid_period_too_short"]),    # one second short
    (T0 + 20 * DAY - SECOND, False, "works", []),                         # not 依法必须: no statutory minimum
    (T0 + 20 * DAY - SECOND, False, "gp", ["bid_period_too_short"]),      # GP 等标期 always 20 days
    (T0 + 20 * DAY, False, "gp", []),
])
def test_bid_period(deadline, mandatory, regime, expected):
    t = terms(bid_deadline_at=deadline, is_mandatory=mandatory, regime=regime, question_deadline_at=T0 + 5 * DAY)
    assert codes(check_periods(RULES, t, T0)) == expected


def test_bid_period_message_names_rule_and_satisfying_date_in_beijing_time():
    t = terms(bid_deadline_at=T0 + 19 * DAY, question_deadline_at=T0 + 5 * DAY)
    [violation] = check_periods(RULES, t, T0)
    assert violation.field == "bid_deadline_at"
    assert str(violation) == ("The bid deadline must be at least 20 days after the documents are issued "
                              "(on or after 2026-03-22 09:00 (UTC+08:00)).")


@pytest.mark.parametrize(("until", "expected"), [
    (T0 + 5 * DAY, []),
    (T0 + 5 * DAY - SECOND, ["documents_period_too_short"]),
    (T0 + 25 * DAY, []),                                   # until the deadline itself
    (T0 + 25 * DAY + SECOND, ["documents_after_deadline"]),
])
def test_documents_window(until, expected):
    assert codes(check_periods(RULES, terms(documents_until_at=until), T0)) == expected


@pytest.mark.parametrize(("question_deadline", "opening", "expected"), [
    (T0 + 25 * DAY - SECOND, None, []),
    (T0 + 25 * DAY, None, ["question_deadline_after_bid_deadline"]),
    (T0 + 15 * DAY, T0 + 25 * DAY, []),
    (T0 + 15 * DAY, T0 + 25 * DAY + SECOND, ["opening_not_at_deadline"]),
])
def test_question_deadline_and_opening(question_deadline, opening, expected):
    t = terms(question_deadline_at=question_deadline, opening_at=opening)
    assert codes(check_periods(RULES, t, T0)) == expected


def test_documents_issued_later_than_publication_move_the_minimum():
    t = terms(documents_from_at=T0 + 2 * DAY, bid_deadline_at=T0 + 21 * DAY, question_deadline_at=T0 + 9 * DAY)
    assert codes(check_publication(RULES, t, T0)) == ["bid_period_too_short"]


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"documents_from_at": None}, []),                     # available from publication
    ({"documents_until_at": None}, ["required"]),
    ({"bid_deadline_at": None}, ["required"]),
    ({"lots": []}, ["lots_required"]),
    ({"document_count": 0}, ["documents_required"]),
    ({"question_deadline_at": T0 - SECOND}, ["in_the_past"]),
])
def test_publication_needs_everything(overrides, expected):
    assert codes(check_publication(RULES, terms(**overrides), T0)) == expected


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"estimated_price": Decimal("0")}, ["estimated_price_not_positive"]),
    ({"estimated_price": Decimal("0.01")}, []),
    ({"estimated_price": None}, ["estimated_price_not_positive"]),
    ({"ceiling_price": Decimal("0")}, []),
    ({"ceiling_price": Decimal("-0.01")}, ["ceiling_price_negative"]),
    ({"lots": [LotTerms(estimated_price=Decimal("0"))]}, ["lot_price_not_positive"]),
    ({"lots": [LotTerms(estimated_price=Decimal("5"), ceiling_price=Decimal("0"))]}, ["lot_price_not_positive"]),
    ({"lots": [LotTerms(estimated_price=Decimal("5")), LotTerms(estimated_price=Decimal("-1"))]},
     ["lot_price_not_positive"]),
])
def test_prices(overrides, expected):
    assert codes(check_prices(terms(**overrides))) == expected


def test_lot_violation_names_the_lot_field():
    [v] = check_prices(terms(lots=[LotTerms(Decimal("1")), LotTerms(Decimal("0"))]))
    assert v.field == "lots.1.estimated_price"
    assert "lot 2" in str(v)


@pytest.mark.parametrize(("category", "estimate", "bond", "expected"), [
    ("goods", Decimal("1000000"), Decimal("20000.00"), []),                        # exactly 2 %
    ("goods", Decimal("1000000"), Decimal("20000.01"), ["guarantee_above_rate"]),
    ("goods", Decimal("123456.78"), Decimal("2469.14"), []),                       # 2469.1356 → 2469.14 (HALF_UP)
    ("goods", Decimal("123456.78"), Decimal("2469.15"), ["guarantee_above_rate"]),
    ("works", Decimal("100000000"), Decimal("800000.00"), []),                     # works cap
    ("works", Decimal("100000000"), Decimal("800000.01"), ["guarantee_above_cap"]),
    ("goods", Decimal("100000000"), Decimal("2000000.00"), []),                    # no cap outside works
    ("works", Decimal("1000000"), Decimal("-1"), ["guarantee_negative"]),
])
def test_guarantee_limits(category, estimate, bond, expected):
    t = terms(category=category, lots=[LotTerms(estimated_price=estimate, bond_amount=bond)])
    assert codes(check_guarantees(RULES, t)) == expected


def test_guarantee_message_states_the_largest_allowed_amount():
    t = terms(category="goods", lots=[LotTerms(Decimal("1000000"), bond_amount=Decimal("30000"))])
    [v] = check_guarantees(RULES, t)
    assert str(v) == "The bid bond may be at most 2% of the estimated price; lower it to 20,000.00 CNY or less."
    assert max_guarantee(RULES, Decimal("100000000"), "works") == Decimal("800000.00")


def test_tender_level_guarantee_amount_is_checked_too():
    t = terms(guarantee_amount=Decimal("20000.01"))
    assert [(v.code, v.field) for v in check_guarantees(RULES, t)] == [("guarantee_above_rate",
                                                                        "guarantee_policy.amount")]


@pytest.mark.parametrize(("days", "ok"), [(29, False), (30, True), (180, True), (181, False), (None, False)])
def test_bid_validity_range(days, ok):
    assert (check_bid_validity(RULES, terms(bid_validity_days=days)) == []) is ok


@pytest.mark.parametrize(("remaining", "new_deadline", "affects", "expected"), [
    (15 * DAY, None, True, []),                                   # exactly 15 days left: no postponement
    (15 * DAY - SECOND, None, True, ["postponement_required"]),   # one second short
    (3 * DAY, None, False, []),                                   # clarification not affecting bids
    (3 * DAY, 15 * DAY, True, []),                                # postponed to exactly 15 days
    (3 * DAY, 15 * DAY - SECOND, True, ["postponement_too_short"]),
])
def test_amendment_rule(remaining, new_deadline, affects, expected):
    found = check_amendment(RULES, at=T0, current_deadline=T0 + remaining,
                            new_deadline=T0 + new_deadline if new_deadline else None, affects_bids=affects)
    assert codes(found) == expected


def test_amendment_message_gives_the_date_that_satisfies_it():
    [v] = check_amendment(RULES, at=T0, current_deadline=T0 + DAY, new_deadline=None, affects_bids=True)
    assert "2026-03-17 09:00 (UTC+08:00)" in str(v)


@pytest.mark.parametrize(("before_deadline", "expected"), [
    (10 * DAY, []), (10 * DAY - SECOND, ["objection_too_late"]), (30 * DAY, []),
])
def test_objection_deadline(before_deadline, expected):
    assert codes(check_objection(RULES, at=T0, bid_deadline=T0 + before_deadline)) == expected


def test_objection_answer_due_in_three_days():
    assert objection_answer_due(RULES, T0) == T0 + 3 * DAY


@pytest.mark.parametrize(("at", "expected"), [
    (T0 - SECOND, []), (T0, ["question_deadline_passed"]), (T0 + DAY, ["question_deadline_passed"]),
])
def test_question_deadline(at, expected):
    assert codes(check_question(at=at, question_deadline=T0)) == expected


def test_when_shows_beijing_time():
    assert when(datetime(2026, 1, 5, 9, 30, tzinfo=UTC)) == "2026-01-05 17:30 (UTC+08:00)"


# ---- the rule book: versions and regional overrides ----

def test_rule_book_returns_the_fixed_version_not_the_current_one():
    newer = RuleSet(version="cn-2030.1", bid_period_min_days=30)
    book = RuleBook(rulesets=(CN_2019_1, newer), current="cn-2030.1")
    assert book.get().bid_period_min_days == 30
    assert book.get("cn-2019.1").bid_period_min_days == 20
    with pytest.raises(RuleConfigError):
        book.get("cn-1999.1")


@pytest.mark.parametrize(("overrides", "region", "field", "value"), [
    ({"37": {"bid_period_min_days": 25}}, "370200", "bid_period_min_days", 25),       # province applies to city
    ({"37": {"bid_period_min_days": 25}}, "440300", "bid_period_min_days", 20),       # other province untouched
    ({"37": {"bid_period_min_days": 25}, "3702": {"bid_period_min_days": 22}}, "370200", "bid_period_min_days", 25),
    ({"3702": {"guarantee_max_rate": "0.01"}}, "370200", "guarantee_max_rate", Decimal("0.01")),
    ({"3702": {"objection_answer_days": 2}}, "370200", "objection_answer_days", 2),
])
def test_regional_overrides_tighten(overrides, region, field, value):
    assert getattr(RuleBook(region_overrides=overrides).get(None, region), field) == value


@pytest.mark.parametrize("override", [
    {"bid_period_min_days": 19},
    {"documents_min_days": 4},
    {"amendment_min_days": 14},
    {"guarantee_max_rate": "0.03"},
    {"guarantee_cap_works": "900000"},
    {"objection_answer_days": 4},
    {"bid_validity_max_days": 365},
    {"objection_min_days": 12},          # fixed by law
    {"no_such_rule": 1},
])
def test_looser_or_unknown_overrides_are_refused_at_load(override):
    with pytest.raises(RuleConfigError):
        RuleBook(region_overrides={"37": override})


def test_region_requiring_25_days_refuses_20():
    rules = RuleBook(region_overrides={"37": {"bid_period_min_days": 25}}).get(None, "370200")
    t = terms(bid_deadline_at=T0 + 20 * DAY)
    [v] = check_periods(rules, t, T0)
    assert v.code == "bid_period_too_short" and v.params["days"] == 25
    assert check_periods(rules, replace(t, bid_deadline_at=T0 + 25 * DAY), T0) == []


def test_one_violation_is_its_own_message_several_get_a_summary():
    [late] = check_objection(RULES, at=T0, bid_deadline=T0 + DAY)
    single = RulesViolated([late]).to_dict()
    assert single["code"] == "objection_too_late" and single["message"] == str(late)
    several = RulesViolated(check_prices(terms(estimated_price=Decimal("0"), ceiling_price=Decimal("-1")))).to_dict()
    assert several["code"] == "rule_violation" and set(several["fields"]) == {"estimated_price", "ceiling_price"}
