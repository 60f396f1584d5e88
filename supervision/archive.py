"""A tender's complete file (一项一档) as one ZIP archive that can be verified offline.

:func:`export_archive` writes every piece of evidence the platform holds about one tender: its public data,
issued documents, sealed envelopes with their signed receipts, the whole transparency log with signed tree
heads and proofs, the opening record, the frozen evaluation result, the signed evaluation report, the
guarantee letters, the tender's slice of the audit trail and its OCDS release. ``manifest.json`` lists every
other member with its SHA-256 and size; ``manifest.sha256`` holds the SHA-256 of the manifest's exact bytes,
which is also printed and recorded in the audit trail (``archive.exported``), so that a copy can be matched
to the export. :mod:`supervision.archive_verify` checks an archive without the platform. The format is
described in docs/archive.md.

The ZIP is deterministic for the same data and export time: members in path order after the manifest,
a fixed timestamp (1980-01-01) and fixed attributes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select

from bidding import translog
from bidding.models import Tender, TenderDocument
from bidding.ocds import build_release, is_exportable
from bidding.receipts import key_id_hex, log_key, receipt_key
from bidding.record_models import OpeningRecord
from bidding.sealed_models import Bid, BidderCommitment, TenderLog, TreeHead
from core import audit
from core.actor import Actor
from core.audit import AuditEvent, hashed_fields
from core.clock import now
from core.db import db
from core.errors import NotFound
from core.storage import CHUNK, default_store, write_atomically
from crypto import keys
from crypto.merkle import MerkleTree
from crypto.receipt import SignedDocument
from evaluation.pool_models import CommitteeMember
from evaluation.result_models import EvaluationReport, EvaluationResult
from evaluation.room_models import Evaluation
from guarantees.models import GuaranteeOrder
from supervision.archive_verify import (
    AUDIT,
    COMMITMENTS,
    ENTRIES,
    FORMAT,
    HEADS,
    KEYS,
    MANIFEST,
    MANIFEST_SHA256,
    OPENING_RECORD,
    ORDERS,
    PROOFS,
    REPORT,
    RESULT,
    TENDER,
)

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
EXPORTED_ACTION = "archive.exported"
_UNSAFE = re.compile(r"[^0-9A-Za-z._\-\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Member:
    """One file of the archive as the manifest lists it."""

    path: str
    sha256: str
    size: int
    kind: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "kind": self.kind}


@dataclass(frozen=True)
class Manifest:
    """What :func:`export_archive` wrote: the manifest's fields, its exact bytes and their SHA-256."""

    tender_code: str
    title: str
    exported_at: str
    ebid_version: str
    members: tuple[Member, ...]
    data: bytes
    sha256: str


@dataclass(frozen=True)
class _Source:
    """A member to write: its bytes, or a file-store blob read in chunks."""

    path: str
    kind: str
    data: bytes | None = None
    blob: str | None = None

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        with default_store().open(self.blob) as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")


def ebid_version() -> str:
    try:
        return importlib.metadata.version("ebid")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def safe_name(value: str) -> str:
    """A path component that cannot climb out of its folder or hide a separator."""
    cleaned = _UNSAFE.sub("_", value).strip("._") or "file"
    return cleaned[:120]


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, default=_plain) + "\n").encode()


def _jsonl(rows: Iterable[Any]) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                               default=_plain).encode() + b"\n" for row in rows)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def export_archive(tender_id: int, out: BinaryIO | Path, *, actor: Actor | None = None) -> Manifest:
    """Write the tender's archive to ``out`` (a binary stream or a file path) and return its manifest.

    May sign a tree head of the log as it stands (when no signed head covers every entry yet) and records
    ``archive.exported`` with the manifest hash in the audit trail (``actor`` defaults to the platform);
    the caller commits. Raises :class:`core.errors.NotFound` for an unknown tender.
    """
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound(_l("No tender has this id; check the tender code."), code="tender_not_found")
    sources = _sources(tender)
    exported_at = now().isoformat()
    if isinstance(out, (str, Path)):
        manifest = _write_file(Path(out), tender, sources, exported_at)
    else:
        manifest = _write(out, tender, sources, exported_at)
    audit.record(actor or Actor.system("cli"), EXPORTED_ACTION, "tender", tender.id,
                 {"tender_id": tender.id, "tender_code": tender.code, "manifest_sha256": manifest.sha256,
                  "members": len(manifest.members)})
    return manifest


def find_tender(code: str) -> Tender:
    tender = db.session.scalar(select(Tender).where(Tender.code == code))
    if tender is None:
        raise NotFound(_l("No tender has this code; check the tender code."), code="tender_not_found")
    return tender


def _write_file(path: Path, tender: Tender, sources: list[_Source], exported_at: str) -> Manifest:
    return write_atomically(path, lambda handle: _write(handle, tender, sources, exported_at))


def _info(path: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def _write(out: BinaryIO, tender: Tender, sources: list[_Source], exported_at: str) -> Manifest:
    members: list[Member] = []
    # The manifest names every member's hash, so members are written first (hashed while they are copied);
    # manifest.json and manifest.sha256 close the archive.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as archive:
        for source in sorted(sources, key=lambda s: s.path):
            digest, size = hashlib.sha256(), 0
            with archive.open(_info(source.path), "w", force_zip64=True) as handle:
                for chunk in source.chunks():
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
            members.append(Member(source.path, digest.hexdigest(), size, source.kind))
        version = ebid_version()
        data = _json({"format": FORMAT, "tender": {"code": tender.code, "title": tender.title},
                      "exported_at": exported_at, "ebid_version": version,
                      "members": [m.as_dict() for m in members]})
        sha = hashlib.sha256(data).hexdigest()
        archive.writestr(_info(MANIFEST), data)
        archive.writestr(_info(MANIFEST_SHA256), (sha + "\n").encode())
    return Manifest(tender.code, tender.title, exported_at, version, tuple(members), data, sha)


# --- the members -------------------------------------------------------------------------------------


def _sources(tender: Tender) -> list[_Source]:
    sources = [_Source(TENDER, "tender", _json(_tender_data(tender)))]
    sources += _documents(tender)
    sources += _bids(tender)
    sources += _log(tender)
    sources += _records(tender)
    sources += _guarantees(tender)
    sources += _audit(tender)
    if is_exportable(tender):
        settings = current_app.extensions["ebid.settings"]
        release = build_release(tender, ocid_prefix=settings.ocid_prefix, base_url=settings.public_base_url)
        sources.append(_Source("ocds/release.json", "ocds-release", _json(release)))
    return sources


def _issued(tender: Tender) -> list[TenderDocument]:
    return [d for d in tender.documents if d.published_at is not None]


def _document_path(doc: TenderDocument) -> str:
    return f"documents/{doc.id}-{safe_name(doc.filename)}"


def _tender_data(tender: Tender) -> dict[str, Any]:
    def org(o: Any) -> dict[str, str] | None:
        return None if o is None else {"uscc": o.uscc, "name": o.name}

    return {
        "code": tender.code, "title": tender.title, "description": tender.description,
        "regime": tender.regime, "category": tender.category, "is_mandatory": tender.is_mandatory,
        "region": tender.region, "status": tender.status, "currency": tender.currency,
        "tenderer": org(tender.tenderer), "agency": org(tender.agency),
        "estimated_price": tender.estimated_price, "ceiling_price": tender.ceiling_price,
        "documents_from_at": _iso(tender.documents_from_at), "documents_until_at": _iso(tender.documents_until_at),
        "question_deadline_at": _iso(tender.question_deadline_at), "bid_deadline_at": _iso(tender.bid_deadline_at),
        "bid_validity_days": tender.bid_validity_days, "evaluation_method": tender.evaluation_method,
        "guarantee_policy": tender.guarantee_policy, "decryption_mode": tender.decryption_mode,
        "custodian_threshold": tender.custodian_threshold, "rules_version": tender.rules_version,
        "opening_key_id": tender.opening_key_id, "opening_public_key_pem": tender.opening_public_key_pem,
        "published_at": _iso(tender.published_at), "cancelled_at": _iso(tender.cancelled_at),
        "cancel_reason": tender.cancel_reason,
        "lots": [{"number": lot.number, "code": lot.code, "title": lot.title, "description": lot.description,
                  "estimated_price": lot.estimated_price, "ceiling_price": lot.ceiling_price,
                  "bond_amount": lot.bond_amount} for lot in tender.lots],
        "amendments": [{"number": a.number, "summary": a.summary, "affects_bids": a.affects_bids,
                        "changes": a.changes, "previous_deadline_at": _iso(a.previous_deadline_at),
                        "new_deadline_at": _iso(a.new_deadline_at), "published_at": _iso(a.published_at)}
                       for a in tender.amendments],
        "documents": [{"id": d.id, "filename": d.filename, "kind": d.kind, "content_type": d.content_type,
                       "sha256": d.sha256, "size": d.size, "amendment_id": d.amendment_id,
                       "published_at": _iso(d.published_at), "is_withdrawn": d.is_withdrawn,
                       "path": _document_path(d)} for d in _issued(tender)],
    }


def _documents(tender: Tender) -> list[_Source]:
    return [_Source(_document_path(d), "document", blob=d.sha256) for d in _issued(tender)]


def _bid_stem(bid: Bid) -> str:
    return f"bids/{safe_name(bid.lot.code)}/{safe_name(bid.organisation.uscc)}-v{bid.version}"


def _bids(tender: Tender) -> list[_Source]:
    bids = list(db.session.scalars(select(Bid).where(Bid.tender_id == tender.id).order_by(Bid.id)))
    store = default_store()
    sources: list[_Source] = []
    for bid in bids:
        stem = _bid_stem(bid)
        if store.exists(bid.envelope_sha256):
            sources.append(_Source(f"{stem}.ebe", "envelope", blob=bid.envelope_sha256))
        sources.append(_Source(f"{stem}.receipt.json", "receipt", bid.receipt.encode()))
    log = db.session.get(TenderLog, tender.id)
    if bids and log is not None and log.closed_at is not None:
        # the salts are published at the opening: only then do commitments name their bidders
        rows = db.session.scalars(select(BidderCommitment).where(BidderCommitment.tender_id == tender.id)
                                  .order_by(BidderCommitment.id))
        sources.append(_Source(COMMITMENTS, "commitments", _json(
            [{"uscc": c.organisation.uscc, "salt": c.salt, "commitment": c.commitment} for c in rows])))
    return sources


def _log(tender: Tender) -> list[_Source]:
    log = db.session.get(TenderLog, tender.id)
    if log is None:
        return []
    head_row, head_doc = translog.sign_head(tender, now())
    db.session.flush()
    size = head_row.tree_size
    entries = translog.entries(tender.id, 0, size)
    tree_heads = list(db.session.scalars(select(TreeHead).where(TreeHead.tender_id == tender.id)
                                         .order_by(TreeHead.tree_size)))
    bids = list(db.session.scalars(select(Bid).where(Bid.tender_id == tender.id).order_by(Bid.id)))
    leaves = translog.leaf_hashes(tender.id, size)
    tree = MerkleTree.from_leaf_hashes(leaves)
    sizes = sorted({h.tree_size for h in tree_heads if 0 < h.tree_size < size} |
                   {b.head_size for b in bids if 0 < b.head_size < size})
    proofs = {
        "head_size": size,
        "inclusion": [{"receipt": f"{_bid_stem(b)}.receipt.json", "log_index": b.log_index,
                       "proof": [p.hex() for p in tree.inclusion_proof(b.log_index, size)]}
                      for b in bids if b.log_index < size],
        "consistency": [{"from": s, "to": size, "proof": [p.hex() for p in tree.consistency_proof(s, size)]}
                        for s in sizes],
    }
    heads = {
        "log_id": log.log_id,
        "final": head_doc.as_dict(),
        "heads": [{"tree_size": h.tree_size, "deadline": h.is_final,
                   "document": SignedDocument.from_json(h.document).as_dict()} for h in tree_heads],
    }
    public = {use: {"key_id": key_id_hex(k.public_key()), "public_key_pem": keys.public_key_pem(k).decode(),
                    "algorithm": "ECDSA P-256 SHA-256 (raw r||s)"}
              for use, k in (("log", log_key()), ("receipt", receipt_key()))}
    rows = [{"index": e.index, "kind": e.kind, "entry": base64.b64encode(bytes(e.entry)).decode(),
             "leaf_hash": e.leaf_hash} for e in entries]
    return [_Source(ENTRIES, "log-entries", _jsonl(rows)), _Source(HEADS, "log-heads", _json(heads)),
            _Source(PROOFS, "log-proofs", _json(proofs)), _Source(KEYS, "log-keys", _json(public))]


def _records(tender: Tender) -> list[_Source]:
    sources: list[_Source] = []
    store = default_store()
    record = db.session.scalar(select(OpeningRecord).where(OpeningRecord.tender_id == tender.id))
    if record is not None and record.pdf_sha256 and store.exists(record.pdf_sha256):
        sources.append(_Source(OPENING_RECORD, "opening-record", blob=record.pdf_sha256))
    report = db.session.scalar(select(EvaluationReport).where(EvaluationReport.tender_id == tender.id))
    if report is not None and store.exists(report.pdf_sha256):
        sources.append(_Source(REPORT, "evaluation-report", blob=report.pdf_sha256))
    result = db.session.scalar(select(EvaluationResult).where(EvaluationResult.tender_id == tender.id)
                               .order_by(EvaluationResult.id.desc()).limit(1))
    if result is not None:
        digest = hashlib.sha256(json.dumps(result.lots, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                           default=str).encode()).hexdigest()
        sources.append(_Source(RESULT, "result", _json({
            "method": result.method, "method_version": result.method_version, "spec": result.spec,
            "inputs_sha256": result.inputs_sha256, "lots": result.lots, "result_sha256": digest,
            "computed_at": _iso(result.computed_at)})))
    return sources


def _guarantees(tender: Tender) -> list[_Source]:
    orders = [o for o in db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.tender_id == tender.id)
                                            .order_by(GuaranteeOrder.id)) if o.letter_file_sha256]
    store = default_store()
    sources, index = [], []
    for order in orders:
        path = f"guarantees/{safe_name(order.order_no)}.pdf"
        index.append({"order_no": order.order_no, "lot": order.lot.code, "bidder": order.bidder.uscc,
                      "guarantee_no": order.guarantee_no, "amount": order.amount, "state": order.state,
                      "letter_sha256": order.letter_sha256, "letter_file_sha256": order.letter_file_sha256,
                      "issued_at": _iso(order.issued_at), "path": path})
        if store.exists(order.letter_file_sha256):
            sources.append(_Source(path, "guarantee-letter", blob=order.letter_file_sha256))
    if index:
        sources.append(_Source(ORDERS, "guarantee-orders", _json(index)))
    return sources


def _audit_filter(tender: Tender) -> Any:
    """Events on the tender or on something of it: its bids, evaluation, members, guarantee orders, or
    any event whose summary names its ``tender_id``."""
    related: dict[str, list[int]] = {
        "bid": list(db.session.scalars(select(Bid.id).where(Bid.tender_id == tender.id))),
        "evaluation": list(db.session.scalars(select(Evaluation.id).where(Evaluation.tender_id == tender.id))),
        "guarantee_order": list(db.session.scalars(select(GuaranteeOrder.id)
                                                   .where(GuaranteeOrder.tender_id == tender.id))),
    }
    related["committee_member"] = list(db.session.scalars(select(CommitteeMember.id)
                                                          .where(CommitteeMember.tender_id == tender.id)))
    related["tender"] = [tender.id]
    conditions = [and_(AuditEvent.object_type == kind, AuditEvent.object_id.in_([str(i) for i in ids]))
                  for kind, ids in related.items() if ids]
    named = AuditEvent.summary["tender_id"]
    if db.session.get_bind().dialect.name == "sqlite":
        conditions.append(named.as_integer() == tender.id)  # SQLite's CAST never fails
    else:
        conditions.append(named.as_string() == str(tender.id))
    return or_(*conditions)


def _audit(tender: Tender) -> list[_Source]:
    events = db.session.scalars(select(AuditEvent).where(_audit_filter(tender)).order_by(AuditEvent.seq)
                                .execution_options(yield_per=1000))
    rows = [{**hashed_fields(ev), "prev_hash": ev.prev_hash, "hash": ev.hash} for ev in events]
    return [_Source(AUDIT, "audit-events", _jsonl(rows))] if rows else []
