"""Near-identical texts (shingle Jaccard) and shared authoring metadata."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from supervision import similarity
from supervision.screens import BidFacts, DocumentFact, ScreenParams, screen_tender
from tests.supervision.clean_tenders import bid_text


def _doc(name: str, text: str | None, digest: str, **metadata) -> DocumentFact:
    return DocumentFact(name=name, sha256=digest, size=len(text or "") * 3 + 1, text=text, metadata=metadata)


def _bid(bid_id: int, *docs: DocumentFact) -> BidFacts:
    return BidFacts(bid_id=bid_id, bidder=f"Bidder {bid_id}", organisation_id=bid_id, lot="01", price=None,
                    documents=docs)


def test_normalise_ignores_layout_width_and_case():
    assert similarity.normalise("Ａ Ｂ\u3000c，\nＤ") == "abc,d"


def test_jaccard_of_shingles():
    a = similarity.shingles("abcdefg", 5)  # abcde bcdef cdefg
    b = similarity.shingles("bcdefgh", 5)  # bcdef cdefg defgh
    assert len(a) == 3 and similarity.jaccard(a, b) == Decimal(2) / 4
    assert similarity.jaccard(frozenset(), frozenset()) == 0
    assert similarity.shingles("abcd", 5) == frozenset()


def test_sampling_keeps_the_same_shingles_everywhere():
    text = bid_text(random.Random(1), 4000)
    full, kept = similarity.shingles(text, 5), similarity.shingles(text, 5, 4)
    assert kept <= full and all(h % 4 == 0 for h in kept)
    assert len(full) / 6 < len(kept) < len(full) / 2


def test_near_identical_texts_are_found_and_independent_ones_not():
    rng = random.Random(2)
    original = bid_text(rng, 5000)
    copy = original[:2000] + "本公司郑重承诺" + original[2000:4000] + "项目经理王强" + original[4000:]
    other = bid_text(rng, 5000)
    bids = [_bid(1, _doc("a.docx", original, "a" * 64)), _bid(2, _doc("b.docx", copy, "b" * 64)),
            _bid(3, _doc("c.docx", other, "c" * 64))]
    [finding] = screen_tender(bids)
    assert finding.code == "similar_document" and finding.bid_ids == (1, 2)
    assert (finding.params["name_a"], finding.params["name_b"]) == ("a.docx", "b.docx")
    assert Decimal(finding.params["similarity"]) > Decimal("0.9")
    assert finding.evidence["documents"][0]["bid_b"]["sha256"] == "b" * 64


def test_short_texts_are_not_compared():
    text = bid_text(random.Random(3), 500)
    bids = [_bid(1, _doc("a", text, "a" * 64)), _bid(2, _doc("b", text + "。", "b" * 64))]
    assert screen_tender(bids) == []
    assert [f.code for f in screen_tender(bids, ScreenParams(similarity_min_chars=100))] == ["similar_document"]


def test_filled_in_tender_forms_are_not_similar():
    rng = random.Random(4)
    form = bid_text(rng, 6000)
    filled_a = form + bid_text(rng, 800)
    filled_b = form + bid_text(rng, 800)
    bids = [_bid(1, _doc("投标函.docx", filled_a, "a" * 64)), _bid(2, _doc("投标函.docx", filled_b, "b" * 64))]
    assert [f.code for f in screen_tender(bids)] == ["similar_document"]
    assert screen_tender(bids, exclude_texts=[form]) == []


def test_hundred_kilobyte_texts_are_fast():
    rng = random.Random(5)
    texts = [bid_text(rng, 100_000) for _ in range(6)]
    bids = [_bid(i + 1, _doc(f"{i}.docx", t, f"{i:064x}")) for i, t in enumerate(texts)]
    started = time.perf_counter()
    assert screen_tender(bids) == []
    assert time.perf_counter() - started < 5  # about 0.05 s a text; a pairwise diff would take minutes


def test_same_author_across_bidders():
    bids = [_bid(1, _doc("a.docx", None, "a" * 64, author="李建国", creator="WPS 文字")),
            _bid(2, _doc("b.pdf", None, "b" * 64, author=" 李建国 ", creator="Microsoft Word")),
            _bid(3, _doc("c.pdf", None, "c" * 64, author="王芳"))]
    [finding] = screen_tender(bids)
    assert (finding.code, finding.bid_ids) == ("same_metadata", (1, 2))
    assert finding.evidence["field"] == "author" and finding.evidence["value"] == "李建国"
    assert finding.evidence["files"] == [{"bid_id": 1, "names": ["a.docx"]}, {"bid_id": 2, "names": ["b.pdf"]}]


def test_generic_metadata_is_ignored():
    meta = {"author": "Administrator", "creator": "Microsoft Word", "producer": "Microsoft: Print To PDF"}
    bids = [_bid(1, _doc("a.pdf", None, "a" * 64, **meta)), _bid(2, _doc("b.pdf", None, "b" * 64, **meta))]
    assert screen_tender(bids) == []
    tender = {"author": "招标代理张三"}
    bids = [_bid(1, _doc("a.pdf", None, "a" * 64, **tender)), _bid(2, _doc("b.pdf", None, "b" * 64, **tender))]
    assert screen_tender(bids, ScreenParams(ignored_metadata_values=frozenset({"招标代理张三"}))) == []


def test_same_creation_time_and_program_and_zip_comment():
    stamp = {"creation_date": "D:20261105143012+08'00'", "creator": "Microsoft Word"}
    bids = [_bid(1, _doc("a.pdf", None, "a" * 64, zip_comment="v2 final", **stamp)),
            _bid(2, _doc("b.pdf", None, "b" * 64, zip_comment="v2 final", **stamp)),
            _bid(3, _doc("c.pdf", None, "c" * 64, creation_date=stamp["creation_date"], creator="WPS 文字"))]
    findings = screen_tender(bids)
    assert sorted((f.evidence["field"], f.bid_ids) for f in findings) == [
        ("creation_date+creator", (1, 2)), ("zip_comment", (1, 2))]
    assert screen_tender(list(reversed(bids))) == findings
