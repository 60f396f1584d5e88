"""Building the bid file (投标文件) before sealing: a ZIP of ``bid.json`` and the documents.

The format and its validation live in :mod:`bidding.bid_document` (the platform checks the same rules
when it decrypts a bid at the opening); this module builds the ZIP deterministically: the same inputs
give the same ZIP bytes (fixed timestamps and order), so a bidder can rebuild and compare. Errors are
raised as the client's :class:`BidFormatError` (a :class:`ClientError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from bidding import bid_document as doc
from bidding.bid_document import (  # noqa: F401  (re-exported: the client's names for the format)
    BID_JSON,
    BID_TYPE,
    CURRENCY,
    DOCS_DIR,
    MAX_DOCUMENTS,
    BidFile,
    Document,
    Offer,
    bid_json,
)
from ebid.client.errors import ClientError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the ZIP epoch: builds do not depend on when they ran


class BidFormatError(ClientError):
    """The bid data or the bid ZIP is not acceptable; the message says which field and why."""

    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(message, code="bid_invalid", fields={field: [str(message)]} if field else None)


@contextlib.contextmanager
def _as_client_error() -> Iterator[None]:
    try:
        yield
    except doc.BidFormatError as exc:
        raise BidFormatError(exc.message, exc.field) from None


def parse_price(text: str):
    """A price in yuan with at most two decimals (to the fen, 分), positive; refused otherwise, never rounded."""
    with _as_client_error():
        return doc.parse_price(text)


def make_offer(**values: Any) -> Offer:
    """Check and normalise the opening-form data of one lot."""
    with _as_client_error():
        return doc.make_offer(**values)


def document_name(name: str) -> str:
    """A safe file name for a document inside the ZIP (no folders, no control characters)."""
    with _as_client_error():
        return doc.document_name(name)


def read_bid(path: Path | str) -> BidFile:
    """Open and check a bid ZIP: bid.json's schema, and every document against its listed size and hash."""
    with _as_client_error():
        return doc.read_bid(path)


def _entry(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = compress
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def build_bid(offer: Offer, documents: Sequence[Path | str], out: Path | str) -> BidFile:
    """Write the bid ZIP to ``out`` (atomically) and return what it holds."""
    out = Path(out)
    named: dict[str, Path] = {}
    for item in documents:
        path = Path(item)
        if not path.is_file():
            raise BidFormatError(_("The document %(path)s does not exist or is not a file.", path=str(path)),
                                 "documents")
        name = document_name(path.name)
        if name.casefold() in {n.casefold() for n in named}:
            raise BidFormatError(_("Two documents are named %(name)s; rename one of them.", name=name), "documents")
        named[name] = path
    if len(named) > MAX_DOCUMENTS:
        raise BidFormatError(_("A bid holds at most %(n)s documents.", n=MAX_DOCUMENTS), "documents")
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    listed: list[Document] = []
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as zf:
            for name in sorted(named):
                source = named[name]
                info = _entry(DOCS_DIR + name, zipfile.ZIP_STORED)
                info.file_size = source.stat().st_size
                digest = hashlib.sha256()
                size = 0
                with source.open("rb") as src, zf.open(info, "w", force_zip64=info.file_size > 0x7FFFFFFF) as dst:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        dst.write(chunk)
                        size += len(chunk)
                listed.append(Document(name, size, digest.hexdigest()))
            zf.writestr(_entry(BID_JSON, zipfile.ZIP_DEFLATED), bid_json(offer, listed))
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return read_bid(out)


