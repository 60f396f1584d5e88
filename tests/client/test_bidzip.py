"""The bid ZIP: bid.json's schema, the documents' hashes, refusals of damaged or foreign archives."""

from __future__ import annotations

import json
import zipfile
from decimal import Decimal

import pytest

from ebid.client import bidzip
from ebid.client.bidzip import BidFormatError, build_bid, make_offer, parse_price, read_bid


@pytest.mark.parametrize(("text", "expected"), [
    ("12345678.00", Decimal("12345678.00")),
    ("12345678", Decimal("12345678.00")),
    ("0.5", Decimal("0.50")),
    (" 99.9 ", Decimal("99.90")),
    ("0000123.45", Decimal("123.45")),
    ("9999999999999999.99", Decimal("9999999999999999.99")),
])
def test_prices_accepted(text, expected):
    assert parse_price(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("12,345,678.00", "thousands separators"),
    ("12，345", "thousands separators"),
    ("1.005", "at most two decimals"),
    ("-5", "at most two decimals"),
    ("1e6", "at most two decimals"),
    ("", "at most two decimals"),
    ("0.00", "more than zero"),
    ("10000000000000000", "more than 16 digits"),
])
def test_prices_refused_never_rounded(text, message):
    with pytest.raises(BidFormatError, match=message) as info:
        parse_price(text)
    assert info.value.fields == {"price": [str(info.value)]}


def offer(**overrides):
    values = {"lot": "01", "price": "12345678.00", "duration_days": 365, "quality": "合格", "manager_name": "张伟",
              "manager_certificate_no": "鲁1372020201234"}
    values.update(overrides)
    return make_offer(**values)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"duration_days": 0}, "duration_days"),
    ({"duration_days": 3651}, "duration_days"),
    ({"duration_days": True}, "duration_days"),
    ({"quality": "  "}, "quality"),
    ({"quality": "合格\n优良"}, "quality"),
    ({"manager_name": ""}, "project_manager.name"),
    ({"manager_certificate_no": "x" * 101}, "project_manager.certificate_no"),
    ({"lot": ""}, "lot"),
])
def test_offer_fields_refused(overrides, field):
    with pytest.raises(BidFormatError) as info:
        offer(**overrides)
    assert list(info.value.fields) == [field]


@pytest.fixture
def docs(tmp_path):
    a, b = tmp_path / "商务标.pdf", tmp_path / "技术标.pdf"
    a.write_bytes(b"%PDF-1.4 commercial" * 100)
    b.write_bytes(b"%PDF-1.4 technical" * 100)
    return [a, b]


def test_build_lists_documents_with_their_hashes_and_is_deterministic(tmp_path, docs):
    first = build_bid(offer(alternatives=True), docs, tmp_path / "a.zip")
    second = build_bid(offer(alternatives=True), list(reversed(docs)), tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()  # rebuildable, byte for byte
    assert first.sha256 == second.sha256
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        body = json.loads(zf.read("bid.json"))
        assert sorted(zf.namelist()) == ["bid.json", "documents/商务标.pdf", "documents/技术标.pdf"]
    assert body["price"] == "12345678.00" and body["currency"] == "CNY" and body["alternatives"] is True
    assert body["project_manager"] == {"name": "张伟", "certificate_no": "鲁1372020201234"}
    assert {d["name"]: d["size"] for d in body["documents"]} == {"商务标.pdf": 1900, "技术标.pdf": 1800}
    assert first.offer == offer(alternatives=True)


def _rewrite(src, dst, *, change=None, drop=(), add=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if change and info.filename in change:
                data = change[info.filename](data)
            zout.writestr(info.filename, data)
        for name, data in add:
            zout.writestr(name, data)
    return dst


def _bid_json(edit):
    def apply(data: bytes) -> bytes:
        body = json.loads(data)
        edit(body)
        return json.dumps(body).encode()
    return apply


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"change": {"documents/技术标.pdf": lambda d: d[:-1] + b"X"}}, "does not match the SHA-256"),
    ({"change": {"documents/技术标.pdf": lambda d: d + b"X"}}, "bytes, but bid.json lists"),
    ({"drop": ("documents/商务标.pdf",)}, "does not hold"),
    ({"drop": ("bid.json",)}, "has no bid.json"),
    ({"add": (("documents/unlisted.pdf", b"x"),)}, "does not list"),
    ({"add": (("../../etc/evil", b"x"),)}, "does not list"),
    ({"change": {"bid.json": lambda d: d.replace(b'"12345678.00"', b"12345678.00")}}, "fraction"),
    ({"change": {"bid.json": _bid_json(lambda b: b.update(price="12345678.001"))}}, "at most two decimals"),
    ({"change": {"bid.json": _bid_json(lambda b: b.update(extra=1))}}, "unknown fields"),
    ({"change": {"bid.json": _bid_json(lambda b: b.update(type="other"))}}, "not an ebid bid"),
    ({"change": {"bid.json": _bid_json(lambda b: b.update(currency="USD"))}}, "in CNY"),
    ({"change": {"bid.json": lambda d: b"{" + d}}, "not valid UTF-8 JSON"),
])
def test_damaged_or_foreign_archives_are_refused(tmp_path, docs, kwargs, message):
    build_bid(offer(), docs, tmp_path / "good.zip")
    bad = _rewrite(tmp_path / "good.zip", tmp_path / "bad.zip", **kwargs)
    with pytest.raises(BidFormatError, match=message):
        read_bid(bad)


def test_not_a_zip_and_unsafe_document_names(tmp_path, docs):
    (tmp_path / "x.zip").write_bytes(b"PK not really")
    with pytest.raises(BidFormatError, match="not a ZIP file"):
        read_bid(tmp_path / "x.zip")
    for name in (".hidden", "a/b.pdf", "..", "x" * 201):
        with pytest.raises(BidFormatError, match="cannot be used"):
            bidzip.document_name(name)
    twin = tmp_path / "sub"
    twin.mkdir()
    (twin / "商务标.PDF").write_bytes(b"other")
    with pytest.raises(BidFormatError, match="Two documents are named"):
        build_bid(offer(), [*docs, twin / "商务标.PDF"], tmp_path / "twins.zip")
    assert not (tmp_path / "twins.zip").exists()
