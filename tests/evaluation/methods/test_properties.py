"""Properties of every method: bounded scores, consistent ranks, determinism, order independence, locality."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.methods import BidInput, LotInput, aggregate_bid, evaluate, parse_method

K = {"K": ["0.0025", "0.005", "0.01"]}
SPECS = [parse_method(raw) for raw in (
    {},
    {"benchmark": "trimmed_mean", "downward_coefficient": "K", "random_parameters": K},
    {"benchmark": "composite", "composite": {"delta": "0.15", "k": "0.97", "floor_factor": "0.75"}},
    {"benchmark": "lowest", "deviation": {"above": "3", "interpolate": False}},
    {"deviation": {"base": "55", "bands": [{"from": "-3", "to": "0", "rate": "2", "action": "add"},
                                           {"from": "0", "to": "2", "rate": "4", "action": "deduct"}]}},
    {"method": "gp_low_price", "gp": {"sme_deduction": "0.2"}},
    {"method": "lowest_price"},
    {"method": "pass_fail"},
)]
CEILING = Decimal("1400000")
DRAWN = {"K": Decimal("0.005")}

cents = st.integers(min_value=50_000_000, max_value=150_000_000).map(lambda c: Decimal(c).scaleb(-2))
points = st.integers(min_value=0, max_value=4000).map(lambda c: Decimal(c).scaleb(-2))
bid_fields = st.tuples(cents, points, st.booleans(), st.booleans(), st.booleans(),
                       st.integers(min_value=-5000, max_value=5000).map(Decimal))


@st.composite
def lots(draw) -> tuple:
    spec = draw(st.sampled_from(SPECS))
    rows = draw(st.lists(bid_fields, min_size=0, max_size=9))
    bids = tuple(BidInput(i, price, passed_review=ok, subjective=subjective, is_sme=sme,
                          rejected=not ok2 and i % 3 == 0, adjustments=adjust)
                 for i, (price, subjective, ok, sme, ok2, adjust) in enumerate(rows, start=1))
    return spec, LotInput(CEILING, bids, DRAWN)


@settings(max_examples=200, deadline=None)
@given(lots())
def test_scores_stay_between_zero_and_full(case):
    spec, lot = case
    outcome = evaluate(spec, lot)
    for bid in outcome.bids:
        if bid.price_score is not None:
            assert Decimal(0) <= bid.price_score <= spec.full_score
        assert bid.valid == (bid.rank is not None)


@settings(max_examples=200, deadline=None)
@given(lots())
def test_ranks_follow_totals_or_prices(case):
    spec, lot = case
    valid = [b for b in evaluate(spec, lot).bids if b.valid]
    for a in valid:
        for b in valid:
            if spec.full_score is not None and a.total > b.total:
                assert a.rank < b.rank
            if spec.full_score is None and a.evaluated_price < b.evaluated_price:
                assert a.rank < b.rank
            if a.rank == b.rank and a.bid_id != b.bid_id:
                assert a.tie and b.tie


@settings(max_examples=200, deadline=None)
@given(lots(), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_bid_order(case, random):
    spec, lot = case
    first = evaluate(spec, lot)
    assert evaluate(spec, lot) == first
    shuffled = list(lot.bids)
    random.shuffle(shuffled)
    again = evaluate(spec, LotInput(lot.ceiling_price, tuple(shuffled), lot.drawn))
    assert {b.bid_id: b for b in again.bids} == {b.bid_id: b for b in first.bids}
    assert again.ranking == first.ranking and again.benchmark == first.benchmark
    assert [b.bid_id for b in again.bids] == [b.bid_id for b in shuffled]


expert_scores = st.lists(st.integers(min_value=0, max_value=2000).map(lambda c: Decimal(c).scaleb(-2)),
                         min_size=5, max_size=7)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SPECS[:6]), st.lists(st.tuples(cents, expert_scores, expert_scores), min_size=2, max_size=6),
       st.data())
def test_one_expert_score_changes_only_that_bid(spec, rows, data):
    sheets = {i: {"T1": dict(enumerate(t1, 1)), "T2": dict(enumerate(t2, 1))}
              for i, (_, t1, t2) in enumerate(rows, 1)}

    def lot_of(items):
        bids = tuple(BidInput(i, price, subjective=aggregate_bid(items[i], spec)[0])
                     for i, (price, _, _) in enumerate(rows, 1))
        return LotInput(CEILING, bids, DRAWN)

    before = evaluate(spec, lot_of(sheets))
    target = data.draw(st.sampled_from(sorted(sheets)))
    item = data.draw(st.sampled_from(["T1", "T2"]))
    member = data.draw(st.sampled_from(sorted(sheets[target][item])))
    new_score = data.draw(st.integers(min_value=0, max_value=2000).map(lambda c: Decimal(c).scaleb(-2)))
    changed = {bid: {code: dict(scores) for code, scores in items.items()} for bid, items in sheets.items()}
    changed[target][item][member] = new_score
    after = evaluate(spec, lot_of(changed))
    assert after.benchmark == before.benchmark
    for old, new in zip(before.bids, after.bids, strict=True):
        assert new.price_score == old.price_score
        if old.bid_id != target:
            assert (new.subjective, new.total) == (old.subjective, old.total)
