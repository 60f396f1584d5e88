"""Collusion screens: every screen fires on its planted sign, names the right bids, stays silent on clean tenders,
and keeps its false-positive rate on random clean tenders below the documented bound."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest

from supervision.screens import (
    CODES,
    LEGAL,
    LEGAL_CODES,
    STATISTICAL,
    STATISTICAL_CODES,
    BidFacts,
    DocumentFact,
    ScreenParams,
    screen_tender,
)
from tests.supervision.clean_tenders import planted_tender, random_clean_tender

# the documented bounds (docs/collusion-screens.md): legal screens never fire on independent bidders,
# each statistical screen on at most 5 % of the clean tenders where it applies
FPR_BOUND = {code: Decimal(0) for code in LEGAL_CODES} | {code: Decimal("0.05") for code in STATISTICAL_CODES}
MIN_BIDS = {"low_cv": 4, "relative_distance": 4, "kurtosis": 5, "skewness": 4, "regular_spacing": 4}


def _bid(bid_id: int, org: int, **kw) -> BidFacts:
    return BidFacts(bid_id=bid_id, bidder=f"Bidder {org}", organisation_id=org, lot=kw.pop("lot", "01"),
                    price=kw.pop("price", Decimal("1000000")), **kw)


def test_clean_tender_is_silent():
    rng = random.Random(3)
    for _ in range(20):
        bids = random_clean_tender(rng, n_bids=8)
        legal = [f for f in screen_tender(bids) if f.kind == LEGAL]
        assert legal == []


@pytest.mark.parametrize("code", LEGAL_CODES)
def test_planted_legal_sign_names_the_two_bids(code):
    bids = planted_tender(random.Random(100 + CODES.index(code)), code)
    findings = screen_tender(bids)
    assert [f.code for f in findings if f.kind == LEGAL] == [code]
    finding = next(f for f in findings if f.code == code)
    assert finding.bid_ids == tuple(sorted((bids[0].bid_id, bids[1].bid_id)))
    assert finding.lot == bids[0].lot
    assert bids[0].bidder in finding.params["bidders"] and bids[1].bidder in finding.params["bidders"]
    placeholders = {part.split(")")[0] for part in finding.explanation.split("%(")[1:]}
    assert placeholders <= set(finding.params), "every placeholder of the explanation has a value"
    expected = {
        "same_address": ("address", bids[0].upload_addresses[0]),
        "same_device": ("device", bids[0].upload_devices[0]),
        "same_signer": ("key", bids[0].signer_key_id),
        "same_payer": ("account", bids[0].guarantee_payers[0]),
        "same_manager": ("manager", bids[0].project_manager.upper()),
        "identical_document": ("sha256", bids[0].documents[0].sha256),
        "same_metadata": ("value", bids[0].documents[0].metadata["author"]),
    }
    if code in expected:
        key, value = expected[code]
        assert finding.evidence[key] == value
    if code == "similar_document":
        docs = finding.evidence["documents"][0]
        assert docs["bid_a"]["sha256"] == bids[0].documents[0].sha256
        assert Decimal(finding.params["similarity"]) >= Decimal("0.8")


@pytest.mark.parametrize("code", STATISTICAL_CODES)
def test_planted_price_sign_fires(code):
    bids = planted_tender(random.Random(200 + CODES.index(code)), code)
    findings = [f for f in screen_tender(bids) if f.code == code]
    assert len(findings) == 1
    finding = findings[0]
    assert finding.kind == STATISTICAL
    assert finding.bid_ids == tuple(sorted(b.bid_id for b in bids))
    assert finding.evidence["n"] == len(bids)
    assert finding.params["threshold"]


def test_same_organisation_is_not_collusion_with_itself():
    bids = [_bid(1, 7, upload_addresses=("10.0.0.1",)), _bid(2, 7, upload_addresses=("10.0.0.1",)),
            _bid(3, 8, upload_addresses=("10.0.0.2",))]
    assert screen_tender(bids) == []


def test_addresses_are_normalised_and_ignorable():
    bids = [_bid(1, 1, upload_addresses=("::ffff:36.1.2.3",)), _bid(2, 2, upload_addresses=(" 36.1.2.3",)),
            _bid(3, 3, upload_addresses=("58.1.1.1",))]
    [finding] = screen_tender(bids)
    assert (finding.code, finding.bid_ids, finding.evidence["address"]) == ("same_address", (1, 2), "36.1.2.3")
    assert screen_tender(bids, ScreenParams(ignored_addresses=frozenset({"36.1.2.3"}))) == []


def test_lots_are_screened_apart_and_findings_are_ordered():
    bids = [_bid(4, 1, lot="02", signer_key_id="ab"), _bid(5, 2, lot="02", signer_key_id="AB"),
            _bid(1, 1, lot="01", project_manager="x1", upload_addresses=("1.1.1.1",)),
            _bid(2, 2, lot="01", project_manager="X1", upload_addresses=("1.1.1.1",)),
            _bid(3, 3, lot="02", project_manager="x1")]
    findings = screen_tender(bids)
    assert [(f.lot, f.code, f.bid_ids) for f in findings] == [
        ("01", "same_address", (1, 2)), ("01", "same_manager", (1, 2)), ("02", "same_signer", (4, 5))]
    assert screen_tender(list(reversed(bids))) == findings


def test_tender_documents_are_not_evidence():
    form = DocumentFact(name="投标函.docx", sha256="aa" * 32, size=5000, text=None, metadata={})
    bids = [_bid(1, 1, documents=(form,)), _bid(2, 2, documents=(form,))]
    assert [f.code for f in screen_tender(bids)] == ["identical_document"]
    assert screen_tender(bids, exclude_sha256=frozenset({"AA" * 32})) == []


def test_empty_files_are_not_identical_documents():
    empty = DocumentFact(name="空.txt", sha256="e3b0" + "0" * 60, size=0, text=None, metadata={})
    assert screen_tender([_bid(1, 1, documents=(empty,)), _bid(2, 2, documents=(empty,))]) == []


def test_bids_without_price_are_left_out_of_price_screens():
    bids = [_bid(i, i, price=None) for i in range(1, 6)]
    assert screen_tender(bids) == []


def test_false_positive_rate_on_clean_tenders():
    """1,000 random clean tenders: legal screens never fire, statistical screens stay under 5 %."""
    rng = random.Random(20180601)
    fired, applicable = Counter(), Counter()
    for _ in range(1000):
        bids = random_clean_tender(rng)
        for code in CODES:
            if len(bids) >= MIN_BIDS.get(code, 2):
                applicable[code] += 1
        fired.update({f.code for f in screen_tender(bids)})
    for code in CODES:
        rate = Decimal(fired[code]) / applicable[code]
        assert rate <= FPR_BOUND[code], f"{code}: {fired[code]} of {applicable[code]} clean tenders"


def test_detection_rate_on_planted_tenders():
    """Each screen finds its planted sign in (nearly) every planted tender; kurtosis needs many bunched bids."""
    rng = random.Random(42)
    minimum = {code: Decimal("0.95") for code in CODES} | {"kurtosis": Decimal("0.6")}
    for code in CODES:
        found = sum(any(f.code == code for f in screen_tender(planted_tender(rng, code))) for _ in range(30))
        assert Decimal(found) / 30 >= minimum[code], f"{code}: {found} of 30"


def test_every_statistical_screen_stays_silent_below_its_minimum():
    rng = random.Random(5)
    for code, least in MIN_BIDS.items():
        for _ in range(30):
            bids = planted_tender(rng, code)[: least - 1]
            assert not any(f.code == code for f in screen_tender(bids)), code


def test_findings_are_json_ready():
    import json

    bids = planted_tender(random.Random(9), "relative_distance")
    bids[1] = replace(bids[1], upload_addresses=bids[0].upload_addresses)
    for finding in screen_tender(bids):
        json.dumps({"params": dict(finding.params), "evidence": finding.evidence})
        assert all(isinstance(v, str) for v in finding.params.values())
