"""Offline verification of a tender's archive (一项一档 归档文件) made by :mod:`supervision.archive`.

Pure: no Flask, no database. Everything needed is the ZIP file and the :mod:`crypto` package, so an
auditor can check an archive on a machine that has never seen the platform. The checks, in order:

1. the file is a readable ZIP without duplicate member names;
2. ``manifest.sha256`` holds the SHA-256 of the exact ``manifest.json`` bytes;
3. every member listed in the manifest is present with the listed size and SHA-256; listed members that
   are absent, members present but not listed, and changed members are each named;
4. the content: the log entries hash to their leaf hashes and to the final signed tree head; every kept
   tree head's signature verifies and its root is the root of that prefix of the entries (and a
   consistency proof to the final head verifies); every receipt's signature (and its tree head's)
   verifies, its envelope's size and SHA-256 equal the receipt's, its log entry is the submission or
   replacement it confirms, and the inclusion proof of that entry against the final head verifies; bidder
   commitments match the bidder named in the file name; the audit events' hashes recompute and
   consecutive ``seq`` link (``prev_hash`` = the previous event's ``hash``); the frozen result, the
   report PDF, the opening record PDF, the tender documents and the guarantee letters match the digests
   the log, the audit events and the tender data give for them.

Any problem is a line naming the member concerned; no input makes :func:`verify_archive` raise.
Internal consistency is not authenticity: compare the archive's keys (``log/keys.json``) with the keys
the platform publishes (``trusted_keys``), and the manifest hash with the ``archive.exported`` event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import merkle
from crypto.receipt import (
    SignedDocument,
    parse_log_entry,
    verify_receipt,
    verify_tree_head,
)

FORMAT = "ebid/archive/v1"
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"
ENTRIES = "log/entries.jsonl"
HEADS = "log/heads.json"
PROOFS = "log/proofs.json"
KEYS = "log/keys.json"
COMMITMENTS = "bids/commitments.json"
AUDIT = "audit/events.jsonl"
TENDER = "tender.json"
RESULT = "records/result.json"
REPORT = "records/evaluation-report.pdf"
OPENING_RECORD = "records/opening-record.pdf"
ORDERS = "guarantees/orders.json"

AUDIT_DOMAIN = b"ebid-audit-v1\n"
AUDIT_GENESIS = "0" * 64
AUDIT_HASHED_FIELDS = ("seq", "at", "actor_person_id", "actor_name", "actor_role", "organisation_id",
                       "organisation_uscc", "source", "object_type", "object_id", "action", "summary")
COMMITMENT_DOMAIN = b"ebid/bidder-commitment/v1\n"
REPORT_EVENTS = ("report-prepared", "report-signed", "report-final")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BID_FILE = re.compile(r"^bids/([^/]+)/([^/]+)-v([0-9]+)\.(ebe|receipt\.json)$")
_CHUNK = 1 << 20
_MAX_TEXT_MEMBER = 256 << 20  # JSON members larger than this are not parsed


@dataclass(frozen=True)
class ArchiveVerdict:
    """The outcome of :func:`verify_archive`: ``checked`` counts the listed members found intact."""

    ok: bool
    problems: tuple[str, ...]
    checked: int
    manifest_sha256: str | None


@dataclass
class _Member:
    sha256: str
    size: int
    data: bytes | None  # kept for the small members the content checks read


@dataclass
class _State:
    members: dict[str, _Member] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    log_key: ec.EllipticCurvePublicKey | None = None
    receipt_key: ec.EllipticCurvePublicKey | None = None
    entries: list[bytes] | None = None
    final_size: int | None = None
    final_root: bytes | None = None
    parsed: dict[str, Any] = field(default_factory=dict)
    manifest_changed: bool = False

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def data(self, path: str) -> bytes | None:
        member = self.members.get(path)
        return None if member is None else member.data

    def json(self, path: str) -> Any:
        """The member parsed as JSON, or None (absent, or a problem was reported)."""
        if path in self.parsed:
            return self.parsed[path]
        data = self.data(path)
        value = None
        if data is not None:
            try:
                value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
            except (UnicodeDecodeError, ValueError) as exc:
                self.problem(path, f"not valid JSON ({exc})")
        self.parsed[path] = value
        return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def verify_archive(path: Path | str | BinaryIO, *,
                   trusted_keys: Mapping[str, str] | None = None) -> ArchiveVerdict:
    """Verify an archive file; see the module's docstring for what is checked.

    ``trusted_keys`` maps ``"log"`` and/or ``"receipt"`` to the hex key id the platform publishes
    (``GET /api/transparency/keys``); the archive's keys must have those ids.
    """
    name = str(path) if isinstance(path, (str, Path)) else "archive"
    state = _State()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        return ArchiveVerdict(False, (f"{name}: not a readable ZIP archive (truncated or another kind of file: "
                                      f"{exc})",), 0, None)
    except OSError as exc:
        return ArchiveVerdict(False, (f"{name}: cannot be read ({exc})",), 0, None)
    with archive:
        _read_members(archive, state)
    manifest_sha = _check_manifest(state)
    checked = _check_listed(state)
    for check in (_check_keys, _check_log, _check_receipts, _check_audit, _check_records, _check_documents,
                  _check_guarantees):
        try:
            if check is _check_keys:
                _check_keys(state, trusted_keys)
            else:
                check(state)
        except Exception as exc:  # noqa: BLE001 - a damaged archive must give a problem, never an exception
            state.problem(check.__name__.removeprefix("_check_"), f"could not be checked ({exc})")
    return ArchiveVerdict(not state.problems, tuple(state.problems), checked, manifest_sha)


def _keeps_data(path: str) -> bool:
    return path.endswith((".json", ".jsonl", ".sha256"))


def _read_members(archive: zipfile.ZipFile, state: _State) -> None:
    seen: set[str] = set()
    for info in archive.infolist():
        if info.filename in seen:
            state.problem(info.filename, "appears twice in the ZIP")
            continue
        seen.add(info.filename)
        if info.is_dir():
            continue
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        keep = _keeps_data(info.filename) and info.file_size <= _MAX_TEXT_MEMBER
        try:
            with archive.open(info) as handle:
                for chunk in iter(lambda h=handle: h.read(_CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    if keep:
                        kept += chunk
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
            state.problem(info.filename, f"damaged in the ZIP, cannot be read ({exc})")
            continue
        state.members[info.filename] = _Member(digest.hexdigest(), size, bytes(kept) if keep else None)


def _check_manifest(state: _State) -> str | None:
    manifest = state.members.get(MANIFEST)
    recorded = state.members.get(MANIFEST_SHA256)
    if manifest is None:
        state.problem(MANIFEST, "missing: nothing in the archive can be checked against it")
    if recorded is None:
        state.problem(MANIFEST_SHA256, "missing")
    if manifest is not None and recorded is not None:
        text = (recorded.data or b"").decode("ascii", errors="replace").strip()
        if not _HEX64.match(text) or (recorded.data or b"") != text.encode() + b"\n":
            state.problem(MANIFEST_SHA256, "is not one line of 64 lowercase hex digits")
        elif text != manifest.sha256:
            state.manifest_changed = True
            state.problem(MANIFEST, f"its SHA-256 {manifest.sha256} differs from the one recorded in "
                                    f"{MANIFEST_SHA256} ({text}): the manifest or its hash was changed")
    if manifest is None:
        return None
    value = state.json(MANIFEST)
    if not isinstance(value, dict) or value.get("format") != FORMAT or not isinstance(value.get("members"), list):
        if value is not None:
            state.problem(MANIFEST, f"is not an {FORMAT} manifest (format and members expected)")
        return manifest.sha256
    state.manifest = value
    return manifest.sha256


def _check_listed(state: _State) -> int:
    if state.manifest is None:
        return 0
    listed: set[str] = set()
    checked = 0
    for number, item in enumerate(state.manifest["members"]):
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("size"), int)
                and isinstance(item.get("sha256"), str) and _HEX64.match(item["sha256"])
                and isinstance(item.get("kind"), str)):
            state.problem(MANIFEST, f"member {number} is malformed (path, sha256, size and kind expected)")
            continue
        path = item["path"]
        changed = "differs from the changed manifest" if state.manifest_changed else "changed"
        if path in listed or path in (MANIFEST, MANIFEST_SHA256):
            state.problem(MANIFEST, f"lists {path} twice or lists itself")
            continue
        listed.add(path)
        member = state.members.get(path)
        if member is None:
            state.problem(path, "listed in the manifest but missing from the archive")
        elif member.size != item["size"]:
            state.problem(path, f"{changed}: {member.size} bytes, the manifest lists {item['size']}")
        elif member.sha256 != item["sha256"]:
            state.problem(path, f"{changed}: its SHA-256 is {member.sha256}, the manifest lists {item['sha256']}")
        else:
            checked += 1
    for path in sorted(set(state.members) - listed - {MANIFEST, MANIFEST_SHA256}):
        state.problem(path, "present in the archive but not listed in the manifest")
    return checked


def _tender_code(state: _State) -> str | None:
    tender = (state.manifest or {}).get("tender")
    code = tender.get("code") if isinstance(tender, dict) else None
    return code if isinstance(code, str) else None


def _load_key(state: _State, keys: dict[str, Any], use: str) -> ec.EllipticCurvePublicKey | None:
    item = keys.get(use)
    if not isinstance(item, dict) or not isinstance(item.get("public_key_pem"), str):
        state.problem(KEYS, f"has no {use} key")
        return None
    try:
        key = serialization.load_pem_public_key(item["public_key_pem"].encode())
    except ValueError as exc:
        state.problem(KEYS, f"the {use} key cannot be read ({exc})")
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        state.problem(KEYS, f"the {use} key is not an EC P-256 key")
        return None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if item.get("key_id") != hashlib.sha256(der).hexdigest():
        state.problem(KEYS, f"the {use} key's key_id is not the SHA-256 of its SubjectPublicKeyInfo")
    return key


def _check_keys(state: _State, trusted: Mapping[str, str] | None) -> None:
    keys = state.json(KEYS)
    if keys is None:
        if KEYS not in state.members and (ENTRIES in state.members or _receipt_paths(state)):
            state.problem(KEYS, "missing: the log and the receipts cannot be verified without the public keys")
        return
    if not isinstance(keys, dict):
        state.problem(KEYS, "is not a JSON object")
        return
    state.log_key = _load_key(state, keys, "log")
    state.receipt_key = _load_key(state, keys, "receipt")
    for use, wanted in (trusted or {}).items():
        item = keys.get(use)
        have = item.get("key_id") if isinstance(item, dict) else None
        if have != wanted.lower():
            state.problem(KEYS, f"the {use} key {have} is not the trusted key {wanted.lower()}")


def _hashes(value: Any) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(h, str) and _HEX64.match(h) for h in value):
        raise ValueError("a proof is a list of 64-hex-digit hashes")
    return [bytes.fromhex(h) for h in value]


def _read_entries(state: _State) -> list[bytes] | None:
    data = state.data(ENTRIES)
    if data is None:
        return None
    entries: list[bytes] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines()):
        try:
            row = json.loads(line)
            raw = base64.b64decode(row["entry"], validate=True)
            if row["index"] != number:
                raise ValueError(f"index {row['index']} where {number} was expected")
            if row["leaf_hash"] != merkle.leaf_hash(raw).hex():
                raise ValueError("its leaf hash is not SHA-256(0x00 || entry)")
            body = parse_log_entry(raw)
            if body["kind"] != row["kind"]:
                raise ValueError(f"kind {row['kind']!r} but the entry is a {body['kind']!r}")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            state.problem(ENTRIES, f"line {number + 1}: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - crypto format errors
            state.problem(ENTRIES, f"line {number + 1}: not a valid log entry ({exc})")
            return None
        entries.append(raw)
    return entries


def _check_log(state: _State) -> None:
    heads = state.json(HEADS)
    entries = _read_entries(state)
    state.entries = entries
    if heads is None:
        if entries is not None and HEADS not in state.members:
            state.problem(HEADS, "missing: the log entries are not covered by a signed tree head")
        return
    if not isinstance(heads, dict):
        state.problem(HEADS, "is not a JSON object")
        return
    if state.log_key is None:
        state.problem(HEADS, "cannot be verified without the log key")
        return
    final = _verify_head(state, heads.get("final"), "final head", heads.get("log_id"))
    if final is None:
        return
    state.final_size, state.final_root = final.tree_size, final.root_hash
    leaves = [merkle.leaf_hash(e) for e in entries] if entries is not None else None
    if leaves is not None:
        if len(leaves) != final.tree_size:
            state.problem(ENTRIES, f"holds {len(leaves)} entries but the final head has {final.tree_size}")
        elif merkle.root_hash(leaves) != final.root_hash:
            state.problem(ENTRIES, "the entries' Merkle root is not the root of the final signed tree head")
    proofs = state.json(PROOFS) or {}
    consistency = {c.get("from"): c.get("proof") for c in proofs.get("consistency", []) if isinstance(c, dict)}
    for number, item in enumerate(heads.get("heads") or []):
        head = _verify_head(state, item.get("document") if isinstance(item, dict) else None, f"head {number}",
                            heads.get("log_id"))
        if head is None:
            continue
        _check_prefix(state, head, leaves, f"head {number}", consistency)


def _verify_head(state: _State, document: Any, label: str, log_id: Any) -> Any:
    try:
        head = verify_tree_head(document, state.log_key)
    except Exception as exc:  # noqa: BLE001 - any damage is a problem
        state.problem(HEADS, f"the {label} does not verify ({exc})")
        return None
    code = _tender_code(state)
    if head.log_id != log_id or (code is not None and head.log_id != f"ebid/tender/{code}"):
        state.problem(HEADS, f"the {label} belongs to log {head.log_id!r}, not to this tender's log")
    return head


def _check_prefix(state: _State, head: Any, leaves: list[bytes] | None, label: str,
                  consistency: dict[Any, Any]) -> None:
    """A signed head must be the root of the first ``tree_size`` entries and a prefix of the final head."""
    if leaves is not None and (head.tree_size > len(leaves) or merkle.root_hash(leaves[:head.tree_size]) !=
                               head.root_hash):
        state.problem(HEADS, f"the {label} (size {head.tree_size}) is not the root of the log's first "
                             f"{head.tree_size} entries: the log was rewritten")
    if state.final_size is None or state.final_root is None:
        return
    if head.tree_size > state.final_size:
        state.problem(HEADS, f"the {label} (size {head.tree_size}) is larger than the final head")
        return
    try:
        proof = [] if head.tree_size in (0, state.final_size) else _hashes(consistency.get(head.tree_size))
        merkle.verify_consistency(head.tree_size, state.final_size, head.root_hash, state.final_root, proof)
    except Exception as exc:  # noqa: BLE001
        state.problem(PROOFS, f"consistency of the {label} (size {head.tree_size}) with the final head: {exc}")


def _receipt_paths(state: _State) -> list[str]:
    return sorted(p for p in state.members if p.startswith("bids/") and p.endswith(".receipt.json"))


def _check_receipts(state: _State) -> None:
    envelopes = sorted(p for p in state.members if p.startswith("bids/") and p.endswith(".ebe"))
    receipts = _receipt_paths(state)
    for path in envelopes:
        if path.removesuffix(".ebe") + ".receipt.json" not in state.members:
            state.problem(path, "has no receipt in the archive")
    if not receipts:
        return
    commitments = _commitments(state)
    proofs = state.json(PROOFS) or {}
    inclusion = {i.get("receipt"): i for i in proofs.get("inclusion", []) if isinstance(i, dict)}
    consistency = {c.get("from"): c.get("proof") for c in proofs.get("consistency", []) if isinstance(c, dict)}
    for path in receipts:
        try:
            _check_receipt(state, path, commitments, inclusion.get(path), consistency)
        except Exception as exc:  # noqa: BLE001 - any damage is a problem naming the receipt
            state.problem(path, f"does not verify ({exc})")


def _commitments(state: _State) -> dict[str, str] | None:
    value = state.json(COMMITMENTS)
    if value is None:
        return None
    out: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        try:
            expected = hashlib.sha256(COMMITMENT_DOMAIN + bytes.fromhex(item["salt"]) +
                                      item["uscc"].encode("ascii")).hexdigest()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            state.problem(COMMITMENTS, f"an entry is malformed ({exc})")
            continue
        if expected != item.get("commitment"):
            state.problem(COMMITMENTS, f"the commitment of {item['uscc']} is not SHA-256(domain || salt || USCC)")
        out[item["uscc"]] = item.get("commitment")
    return out


def _check_receipt(state: _State, path: str, commitments: dict[str, str] | None, proof: Any,
                   consistency: dict[Any, Any]) -> None:
    match = _BID_FILE.match(path)
    if match is None:
        state.problem(path, "is not named bids/<lot>/<bidder>-v<version>.receipt.json")
        return
    lot, uscc, version = match.group(1), match.group(2), int(match.group(3))
    envelope_path = path.removesuffix(".receipt.json") + ".ebe"
    envelope = state.members.get(envelope_path)
    if state.receipt_key is None or state.log_key is None:
        state.problem(path, "cannot be verified without the receipt and log keys")
        return
    document = SignedDocument.from_json(state.data(path) or b"")
    receipt = verify_receipt(document, receipt_key=state.receipt_key, log_key=state.log_key)
    code = _tender_code(state)
    if (code is not None and receipt.tender != code) or receipt.lot != lot or receipt.bid_version != version:
        state.problem(path, f"confirms {receipt.tender}/{receipt.lot} v{receipt.bid_version}, not what its name says")
    if commitments is not None and commitments.get(uscc) != receipt.bidder:
        state.problem(path, f"names bidder commitment {receipt.bidder[:16]}..., not the commitment of {uscc}")
    if envelope is None:
        state.problem(envelope_path, "missing: the receipt's envelope is not in the archive")
    elif envelope.sha256 != receipt.envelope_sha256.hex() or envelope.size != receipt.envelope_size:
        state.problem(envelope_path, f"is not the envelope the receipt confirms (SHA-256 {envelope.sha256}, "
                                     f"{envelope.size} bytes; the receipt names {receipt.envelope_sha256.hex()}, "
                                     f"{receipt.envelope_size} bytes)")
    if state.entries is None or state.final_size is None or state.final_root is None:
        state.problem(path, "its log entry cannot be checked: the archive has no verified log")
        return
    if receipt.log_index >= len(state.entries):
        state.problem(path, f"its log index {receipt.log_index} is not in the archived log")
        return
    entry = state.entries[receipt.log_index]
    try:
        verify_receipt(document, receipt_key=state.receipt_key, log_key=state.log_key, log_entry_bytes=entry)
    except Exception as exc:  # noqa: BLE001
        state.problem(path, f"log entry {receipt.log_index}: {exc}")
    leaves = [merkle.leaf_hash(e) for e in state.entries[:receipt.tree_head.tree_size]]
    _check_prefix(state, receipt.tree_head, leaves, f"tree head of {path}", consistency)
    if not isinstance(proof, dict) or proof.get("log_index") != receipt.log_index:
        state.problem(PROOFS, f"has no inclusion proof for {path}")
        return
    try:
        merkle.verify_inclusion(merkle.leaf_hash(entry), receipt.log_index, state.final_size,
                                _hashes(proof.get("proof")), state.final_root)
    except Exception as exc:  # noqa: BLE001
        state.problem(PROOFS, f"the inclusion proof of {path}: {exc}")


def audit_event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The audit trail's chain hash (core.audit, format version 1), recomputed without the platform."""
    data = json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str).encode()
    return hashlib.sha256(AUDIT_DOMAIN + prev_hash.encode() + b"\n" + data).hexdigest()


def _audit_events(state: _State) -> list[dict[str, Any]] | None:
    data = state.data(AUDIT)
    if data is None:
        return None
    events: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        try:
            event = json.loads(line)
            fields = {name: event[name] for name in AUDIT_HASHED_FIELDS}
            seq, prev_hash, stored = event["seq"], event["prev_hash"], event["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            state.problem(AUDIT, f"line {number} is not an audit event ({exc})")
            return None
        if audit_event_hash(prev_hash, fields) != stored:
            state.problem(AUDIT, f"line {number} (seq {seq}): the hash does not match the event's contents")
        if previous is not None:
            if not isinstance(seq, int) or seq <= previous["seq"]:
                state.problem(AUDIT, f"line {number}: seq {seq} does not follow seq {previous['seq']}")
            elif seq == previous["seq"] + 1 and prev_hash != previous["hash"]:
                state.problem(AUDIT, f"line {number} (seq {seq}) does not link to seq {previous['seq']}")
        elif seq == 1 and prev_hash != AUDIT_GENESIS:
            state.problem(AUDIT, "seq 1 does not start from the genesis hash")
        events.append(event)
        previous = event
    return events


def _check_audit(state: _State) -> None:
    events = _audit_events(state)
    pdf = state.members.get(OPENING_RECORD)
    if events is None or pdf is None:
        return
    digests = [e["summary"]["pdf_sha256"] for e in events if str(e.get("action", "")).startswith("opening_record.")
               and isinstance(e.get("summary"), dict) and e["summary"].get("pdf_sha256")]
    if digests and digests[-1] != pdf.sha256:
        state.problem(OPENING_RECORD, f"is not the latest revision the audit trail records ({digests[-1]})")


def _committee_entries(state: _State, event: str | tuple[str, ...]) -> list[dict[str, Any]]:
    events = (event,) if isinstance(event, str) else event
    out = []
    for raw in state.entries or []:
        body = parse_log_entry(raw)
        if body["kind"] == "committee" and body["event"] in events:
            out.append(body)
    return out


def _check_records(state: _State) -> None:
    result = state.json(RESULT)
    if isinstance(result, dict):
        canonical = json.dumps(result.get("lots"), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                               default=str).encode()
        digest = hashlib.sha256(canonical).hexdigest()
        if digest != result.get("result_sha256"):
            state.problem(RESULT, "the lots do not hash to result_sha256: the result was changed")
        logged = [e.get("sha256") for e in _committee_entries(state, "result")]
        if logged and logged[-1] != digest:
            state.problem(RESULT, f"is not the result the log records ({logged[-1]})")
    elif result is not None:
        state.problem(RESULT, "is not a JSON object")
    report = state.members.get(REPORT)
    if report is not None:
        logged = [e.get("sha256") for e in _committee_entries(state, REPORT_EVENTS) if e.get("sha256")]
        if logged and logged[-1] != report.sha256:
            state.problem(REPORT, f"is not the latest revision the log records ({logged[-1]})")


def _check_documents(state: _State) -> None:
    tender = state.json(TENDER)
    if tender is None:
        return
    documents = tender.get("documents") if isinstance(tender, dict) else None
    for item in documents if isinstance(documents, list) else []:
        path = item.get("path") if isinstance(item, dict) else None
        member = state.members.get(path) if isinstance(path, str) else None
        if member is None:
            state.problem(TENDER, f"lists document {path} that is not in the archive")
        elif member.sha256 != item.get("sha256") or member.size != item.get("size"):
            state.problem(path, "is not the document the tender issued (SHA-256 or size differ)")


def _check_guarantees(state: _State) -> None:
    orders = state.json(ORDERS)
    for item in orders if isinstance(orders, list) else []:
        path = item.get("path") if isinstance(item, dict) else None
        if not isinstance(path, str):
            continue
        member = state.members.get(path)
        if member is None:
            state.problem(ORDERS, f"lists letter {path} that is not in the archive")
        elif member.sha256 != item.get("letter_file_sha256"):
            state.problem(path, "is not the letter the guarantee order records")
