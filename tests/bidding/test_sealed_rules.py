"""Pure rules of sealed submission, table-driven: recipients, contexts, chunks, closing outcomes."""

from __future__ import annotations

import pytest

from bidding.sealed_rules import (
    MIN_BIDS,
    chunk_plan,
    context_refusal,
    expected_context,
    lot_outcomes,
    recipient_refusal,
)
from crypto.envelope import KEY_MODE_SINGLE as SINGLE
from crypto.envelope import KEY_MODE_SPLIT as SPLIT
from crypto.envelope import ROLE_BIDDER as B
from crypto.envelope import ROLE_TENDER as T
from crypto.envelope import bid_context

TK, OTHER, OWN = "a" * 64, "b" * 64, "c" * 64


@pytest.mark.parametrize(("mode", "key", "key_mode", "recipients", "expected"), [
    ("custodians", TK, SINGLE, [(T, TK)], None),
    ("custodians", TK, SINGLE, [(T, TK), (B, OWN)], None),
    ("custodians", TK, SINGLE, [(B, OWN)], "tender_key_missing"),
    ("custodians", TK, SINGLE, [(T, OTHER)], "foreign_tender_key"),
    ("custodians", TK, SINGLE, [(T, TK), (T, OTHER)], "foreign_tender_key"),
    ("custodians", TK, SPLIT, [(T, TK), (B, OWN)], "split_not_allowed"),
    ("bidder", None, SINGLE, [(B, OWN)], None),
    ("bidder", None, SINGLE, [(T, OTHER), (B, OWN)], "foreign_tender_key"),
    ("bidder", None, SINGLE, [(T, OTHER)], "foreign_tender_key"),
    ("bidder", TK, SINGLE, [(B, OWN)], "tender_key_missing"),  # custodians named: the fallback is required
    ("bidder", TK, SINGLE, [(T, TK)], "bidder_key_missing"),
    ("bidder_then_custodians", TK, SINGLE, [(T, TK), (B, OWN)], None),
    ("bidder_then_custodians", TK, SINGLE, [(T, TK)], "bidder_key_missing"),
    ("double_envelope", TK, SPLIT, [(T, TK), (B, OWN)], None),
    ("double_envelope", TK, SINGLE, [(T, TK), (B, OWN)], "double_envelope_required"),
])
def test_recipients(mode, key, key_mode, recipients, expected):
    refusal = recipient_refusal(mode, key, key_mode, recipients)
    assert (refusal.code if refusal else None) == expected
    if refusal is not None:
        assert str(refusal)  # renders with its parameters


CTX = bid_context("T-1", "L1", "91370200MA00000017", 2)


@pytest.mark.parametrize(("expected", "context", "code"), [
    (expected_context("T-1", "L1", "91370200MA00000017"), CTX, None),
    (expected_context("T-1", "L1", "91370200MA00000017", 2), CTX, None),
    (expected_context("T-2", "L1", "91370200MA00000017"), CTX, "wrong_tender"),
    (expected_context("T-1", "L2", "91370200MA00000017"), CTX, "wrong_lot"),
    (expected_context("T-1", "L1", "91370200MA00000025"), CTX, "wrong_bidder"),
    (expected_context("T-1", "L1", "91370200MA00000017", 3), CTX, "wrong_version"),
    (expected_context("T-1", "L1", "91370200MA00000017"), b"", "context_unreadable"),
    (expected_context("T-1", "L1", "91370200MA00000017"), b'{"tender": "T-1"}', "context_unreadable"),
    (expected_context("T-1", "L1", "91370200MA00000017"), b'{"type":"other"}', "context_unreadable"),
])
def test_contexts(expected, context, code):
    refusal = context_refusal(expected, context)
    assert (refusal.code if refusal else None) == code


def test_a_context_refusal_names_both_values():
    refusal = context_refusal(expected_context("T-2", "L1", "x"), CTX)
    assert "T-1" in str(refusal) and "T-2" in str(refusal)


@pytest.mark.parametrize(("received", "offset", "length", "declared", "plan"), [
    (0, 0, 10, 100, "append"),
    (50, 50, 50, 100, "append"),
    (50, 0, 50, 100, "overlap"),
    (50, 40, 20, 100, "overlap"),
    (50, 60, 10, 100, "gap"),
    (50, 50, 51, 100, "beyond"),
    (0, 0, 0, 100, "empty"),
    (0, 0, 65, 100, "too_big"),
])
def test_chunks(received, offset, length, declared, plan):
    assert chunk_plan(received, offset, length, declared, max_chunk=64) == plan


@pytest.mark.parametrize(("counts", "outcome", "opened"), [
    ({"L1": 3}, "opening", {"L1"}),
    ({"L1": 2}, "failed", set()),
    ({"L1": 0}, "failed", set()),
    ({"L1": 5, "L2": 2}, "opening", {"L1"}),
    ({"L1": 1, "L2": 2}, "failed", set()),
])
def test_closing_outcomes(counts, outcome, opened):
    lots, result = lot_outcomes(counts)
    assert result == outcome and {c for c, v in lots.items() if v["opened"]} == opened
    assert MIN_BIDS == 3
