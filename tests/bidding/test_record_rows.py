"""Pure row building of the opening record: decrypted, failed, pending, bond status (table-driven)."""

from __future__ import annotations

import pytest

from bidding.opening_record import (
    RecordNotReady,
    RowSource,
    build_row,
    build_rows,
    normalise_bond,
    rows_digest,
)

FORM = {"lot": "1", "price": "980000.00", "currency": "CNY", "duration_days": 365, "quality": "合格",
        "project_manager": {"name": "张伟", "certificate_no": "鲁1372020201234"}, "alternatives": False}
BOND = {"kind": "e_guarantee", "passed": True, "required": True, "reasons": []}


def src(**kw) -> RowSource:
    values = {"lot_number": 1, "lot_code": "1", "lot_title": "Lot 1", "bidder_name": "甲公司",
              "bidder_uscc": "91350100M000100Y43", "status": "decrypted", "method": "bidder", "form": FORM,
              "bond": BOND}
    values.update(kw)
    return RowSource(**values)


@pytest.mark.parametrize(("source", "expected"), [
    (src(), {"price": "980000.00", "duration_days": 365, "quality": "合格",
             "decryption": {"result": "decrypted", "method": "bidder"}}),
    (src(status="failed", form=None, failure_cause="bidder", legal_outcome="revoked", failure_reason="key lost"),
     {"price": None, "decryption": {"result": "failed", "cause": "bidder", "outcome": "revoked",
                                    "reason": "key lost"}}),
    (src(status="failed", form=None, failure_cause="ca", legal_outcome="withdrawn"),
     {"decryption": {"result": "failed", "cause": "ca", "outcome": "withdrawn", "reason": ""}}),
    (src(bond={"kind": "none", "passed": False, "required": True, "reasons": ["no bond"]}),
     {"bond": {"kind": "none", "passed": False, "required": True, "reasons": ["no bond"]}}),
    (src(bond={"kind": "waiver", "passed": True}), {"bond": {"kind": "waiver", "passed": True, "required": None,
                                                             "reasons": []}}),
])
def test_rows(source, expected):
    row = build_row(source)
    for key, value in expected.items():
        assert row[key] == value
    assert row["uscc"] == source.bidder_uscc and row["lot"] == "1"


@pytest.mark.parametrize(("source", "words"), [
    (src(status="pending", form=None), "still being decrypted"),
    (src(status="failed", form=None), "decide its cause first"),
    (src(form={**FORM, "price": None}), "no price"),
])
def test_rows_not_ready(source, words):
    with pytest.raises(RecordNotReady) as info:
        build_row(source)
    assert words in info.value.to_dict()["message"]


@pytest.mark.parametrize("bond", [{"kind": "cash"}, {"kind": "waiver", "passed": "yes"}])
def test_bad_bond_status_from_a_provider(bond):
    with pytest.raises(ValueError):
        normalise_bond(bond)


def test_order_and_digest_do_not_depend_on_opening_order():
    a = src(bidder_uscc="B", lot_number=2, lot_code="2")
    b = src(bidder_uscc="A")
    c = src(bidder_uscc="C")
    rows = build_rows([a, c, b])
    assert [(r["lot"], r["uscc"]) for r in rows] == [("1", "A"), ("1", "C"), ("2", "B")]
    assert rows_digest(rows) == rows_digest(build_rows([b, a, c]))
    assert rows_digest(rows) != rows_digest(build_rows([b, c]))
    with pytest.raises(RecordNotReady):
        build_rows([])
