"""The bid document (投标文件): a ZIP of ``bid.json`` and the documents, and its validation.

``bid.json`` carries the structured opening-form data (开标一览表) read out at the opening (唱标), so the
price is parsed from data, never from a scanned page. One bid ZIP is for one lot (标段), as the envelope
that seals it is::

    {
      "type": "ebid/bid/v1",
      "lot": "1",                               lot code, as the tender names it
      "price": "12345678.00",                   bid price (投标报价), CNY, decimal string, 2 decimals
      "currency": "CNY",
      "duration_days": 365,                     construction / delivery period (工期), calendar days
      "quality": "合格",                         quality commitment (质量标准)
      "project_manager": {"name": "张伟", "certificate_no": "鲁1372020201234"},   项目经理 and 注册证书号
      "alternatives": false,                    whether the bid includes an alternative offer (备选方案)
      "documents": [{"name": "商务标.pdf", "path": "documents/商务标.pdf", "size": 1234, "sha256": "<hex>"}]
    }

``bid.json`` is written as sorted-key UTF-8 JSON; prices are strings, never floats. The documents are
stored (not compressed) under ``documents/`` and listed with their size and SHA-256. Builds are
deterministic (``ebid.client.bidzip`` builds them). :func:`read_bid` checks all of this, and refuses unsafe
archive entries: the bidder's client before sealing, the platform after decrypting at the opening.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from core.errors import ValidationFailed

BID_TYPE = "ebid/bid/v1"
BID_JSON = "bid.json"
DOCS_DIR = "documents/"
CURRENCY = "CNY"
MAX_PRICE_DIGITS = 16  # Numeric(18, 2): 16 digits before the point
MAX_DURATION_DAYS = 3650
MAX_TEXT = 100
MAX_DOCUMENTS = 500
MAX_NAME = 200
MAX_BID_JSON = 1 << 20
_PRICE = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEYS = {"type", "lot", "price", "currency", "duration_days", "quality", "project_manager", "alternatives",
         "documents"}


class BidFormatError(ValidationFailed):
    """The bid data or the bid ZIP is not acceptable; the message says which field and why."""

    def __init__(self, message: Any, field: str | None = None) -> None:
        self.field = field
        super().__init__(message, code="bid_invalid", fields={field: [str(message)]} if field else None)


@dataclass(frozen=True)
class Offer:
    """The opening-form data of one lot (开标一览表)."""

    lot: str
    price: Decimal
    duration_days: int
    quality: str
    manager_name: str
    manager_certificate_no: str
    alternatives: bool = False


@dataclass(frozen=True)
class Document:
    name: str
    size: int
    sha256: str

    @property
    def path(self) -> str:
        return DOCS_DIR + self.name


@dataclass(frozen=True)
class BidFile:
    """A checked bid ZIP."""

    offer: Offer
    documents: tuple[Document, ...]
    size: int
    sha256: str


def parse_price(text: str) -> Decimal:
    """A price in yuan with at most two decimals (to the fen, 分), positive; refused otherwise, never rounded."""
    value = (text or "").strip()
    if "," in value or "，" in value:
        raise BidFormatError(_("Write the price without thousands separators, e.g. 12345678.00 (you gave "
                               "%(value)s).", value=value), "price")
    if not _PRICE.match(value):
        raise BidFormatError(_("The price must be an amount in yuan with at most two decimals, e.g. 12345678.00 "
                               "(you gave %(value)s).", value=value), "price")
    try:
        price = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern already refused it
        raise BidFormatError(_("The price is not a number."), "price") from None
    if price <= 0:
        raise BidFormatError(_("The price must be more than zero."), "price")
    if len(value.split(".")[0].lstrip("0") or "0") > MAX_PRICE_DIGITS:
        raise BidFormatError(_("The price has more than %(n)s digits before the decimal point.",
                               n=MAX_PRICE_DIGITS), "price")
    return price.quantize(Decimal("0.01"))


def _text(value: Any, field: str, label: str) -> str:
    text = unicodedata.normalize("NFC", str(value or "")).strip()
    if not text:
        raise BidFormatError(_("Give the %(label)s.", label=label), field)
    if len(text) > MAX_TEXT or _CONTROL.search(text):
        raise BidFormatError(_("The %(label)s must be one line of at most %(n)s characters.", label=label,
                               n=MAX_TEXT), field)
    return text


def make_offer(*, lot: str, price: str | Decimal, duration_days: int, quality: str, manager_name: str,
               manager_certificate_no: str, alternatives: bool = False) -> Offer:
    """Check and normalise the opening-form data of one lot."""
    lot_code = _text(lot, "lot", _("lot code"))
    amount = parse_price(str(price))
    if isinstance(duration_days, bool) or not isinstance(duration_days, int) \
            or not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise BidFormatError(_("The duration is a whole number of calendar days from 1 to %(n)s.",
                               n=MAX_DURATION_DAYS), "duration_days")
    return Offer(lot=lot_code, price=amount, duration_days=duration_days,
                 quality=_text(quality, "quality", _("quality commitment")),
                 manager_name=_text(manager_name, "project_manager.name", _("project manager's name")),
                 manager_certificate_no=_text(manager_certificate_no, "project_manager.certificate_no",
                                              _("project manager's certificate number")),
                 alternatives=bool(alternatives))


def document_name(name: str) -> str:
    """A safe file name for a document inside the ZIP (no folders, no control characters)."""
    clean = unicodedata.normalize("NFC", name or "").strip()
    if not clean or clean in (".", "..") or clean.startswith(".") or "/" in clean or "\\" in clean \
            or _CONTROL.search(clean) or len(clean) > MAX_NAME:
        raise BidFormatError(_("The document name %(name)s cannot be used: give a plain file name of at most "
                               "%(n)s characters, not starting with a dot.", name=repr(name), n=MAX_NAME), "documents")
    return clean


def bid_json(offer: Offer, documents: Sequence[Document]) -> bytes:
    body = {"type": BID_TYPE, "lot": offer.lot, "price": f"{offer.price:.2f}", "currency": CURRENCY,
            "duration_days": offer.duration_days, "quality": offer.quality,
            "project_manager": {"name": offer.manager_name, "certificate_no": offer.manager_certificate_no},
            "alternatives": offer.alternatives,
            "documents": [{"name": d.name, "path": d.path, "size": d.size, "sha256": d.sha256} for d in documents]}
    return (json.dumps(body, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()


def _load_json(data: bytes) -> dict[str, Any]:
    def no_duplicates(pairs):
        keys = [k for k, _v in pairs]
        if len(keys) != len(set(keys)):
            raise BidFormatError(_("bid.json repeats a key."), "bid.json")
        return dict(pairs)

    def no_float(text):
        raise BidFormatError(_("bid.json holds a number with a fraction (%(value)s); prices are strings such as "
                               "\"12345678.00\".", value=text), "bid.json")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_float=no_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BidFormatError(_("bid.json is not valid UTF-8 JSON: %(reason)s", reason=str(exc)), "bid.json") from None
    if not isinstance(value, dict):
        raise BidFormatError(_("bid.json must be a JSON object."), "bid.json")
    return value


def _offer_from(body: dict[str, Any]) -> Offer:
    if body.get("type") != BID_TYPE:
        raise BidFormatError(_("bid.json is not an ebid bid (its type must be %(type)s).", type=BID_TYPE), "type")
    unknown, missing = set(body) - _KEYS, _KEYS - set(body)
    if unknown or missing:
        raise BidFormatError(_("bid.json has unknown fields (%(unknown)s) or lacks fields (%(missing)s).",
                               unknown=", ".join(sorted(unknown)) or "-", missing=", ".join(sorted(missing)) or "-"),
                             "bid.json")
    if body["currency"] != CURRENCY:
        raise BidFormatError(_("Bid prices are in CNY."), "currency")
    if not isinstance(body["price"], str):
        raise BidFormatError(_("The price in bid.json must be a string such as \"12345678.00\"."), "price")
    manager = body["project_manager"]
    if not isinstance(manager, dict) or set(manager) != {"name", "certificate_no"}:
        raise BidFormatError(_("project_manager holds exactly a name and a certificate_no."), "project_manager")
    if not isinstance(body["alternatives"], bool):
        raise BidFormatError(_("alternatives is true or false."), "alternatives")
    offer = make_offer(lot=body["lot"], price=body["price"], duration_days=body["duration_days"],
                       quality=body["quality"], manager_name=manager["name"],
                       manager_certificate_no=manager["certificate_no"], alternatives=body["alternatives"])
    if f"{offer.price:.2f}" != body["price"] or offer.lot != body["lot"]:
        raise BidFormatError(_("Write the price with exactly two decimals and the lot code without spaces."), "price")
    return offer


def _documents_from(body: dict[str, Any]) -> list[Document]:
    items = body["documents"]
    if not isinstance(items, list) or len(items) > MAX_DOCUMENTS:
        raise BidFormatError(_("documents is a list of at most %(n)s entries.", n=MAX_DOCUMENTS), "documents")
    docs: list[Document] = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"name", "path", "size", "sha256"}:
            raise BidFormatError(_("Each document is listed with name, path, size and sha256."), "documents")
        name = document_name(item["name"])
        if item["path"] != DOCS_DIR + name or not isinstance(item["size"], int) or item["size"] < 0 \
                or not isinstance(item["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", item["sha256"]):
            raise BidFormatError(_("The listing of document %(name)s is malformed.", name=name), "documents")
        docs.append(Document(name, item["size"], item["sha256"]))
    if len({d.name.casefold() for d in docs}) != len(docs):
        raise BidFormatError(_("bid.json lists a document twice."), "documents")
    return docs


def _check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, doc: Document) -> None:
    if info.flag_bits & 0x1:
        raise BidFormatError(_("The document %(name)s is encrypted inside the ZIP; add it unencrypted (the whole "
                               "bid is sealed).", name=doc.name), "documents")
    if info.file_size != doc.size:
        raise BidFormatError(_("The document %(name)s has %(size)s bytes, but bid.json lists %(listed)s.",
                               name=doc.name, size=info.file_size, listed=doc.size), "documents")
    digest, seen = hashlib.sha256(), 0
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            seen += len(chunk)
            if seen > doc.size:
                break
            digest.update(chunk)
    if seen != doc.size or digest.hexdigest() != doc.sha256:
        raise BidFormatError(_("The document %(name)s does not match the SHA-256 listed in bid.json; rebuild the "
                               "bid.", name=doc.name), "documents")


def read_bid(path: Path | str, *, sha256: str | None = None) -> BidFile:
    """Open and check a bid ZIP: bid.json's schema, and every document against its listed size and hash.

    ``sha256``: the file's hash when the caller already computed it (it is not read a second time).
    """
    path = Path(path)
    if not path.is_file():
        raise BidFormatError(_("The bid file %(path)s does not exist.", path=str(path)), "bid")
    if not zipfile.is_zipfile(path):
        raise BidFormatError(_("%(path)s is not a ZIP file; make it with 'ebid client build'.", path=str(path)), "bid")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(names) != len(set(names)):
                raise BidFormatError(_("The ZIP holds two entries with the same name."), "bid")
            if BID_JSON not in names:
                raise BidFormatError(_("The ZIP has no bid.json; make it with 'ebid client build'."), "bid.json")
            bid_info = zf.getinfo(BID_JSON)
            if bid_info.file_size > MAX_BID_JSON:
                raise BidFormatError(_("bid.json is larger than 1 MiB."), "bid.json")
            body = _load_json(zf.read(bid_info))
            offer = _offer_from(body)
            docs = _documents_from(body)
            expected = {BID_JSON, *(d.path for d in docs)}
            extra = sorted(set(names) - expected)
            if extra:
                raise BidFormatError(_("The ZIP holds entries bid.json does not list (%(names)s); every document "
                                       "must be listed with its hash.", names=", ".join(extra[:5])), "documents")
            absent = sorted(expected - set(names))
            if absent:
                raise BidFormatError(_("bid.json lists documents the ZIP does not hold (%(names)s).",
                                       names=", ".join(absent[:5])), "documents")
            for doc in docs:
                _check_member(zf, zf.getinfo(doc.path), doc)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise BidFormatError(_("The ZIP file is damaged or uses an unsupported feature: %(reason)s",
                               reason=str(exc)), "bid") from None
    if sha256 is None:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        sha256 = digest.hexdigest()
    return BidFile(offer, tuple(docs), path.stat().st_size, sha256)
