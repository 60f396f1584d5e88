"""Checking what the platform signed: receipts (投标回执), withdrawals and the transparency log (透明日志).

The platform's two public keys (the log key signs tree heads, the receipt key signs receipts) are fetched
once and pinned in the local state; every later check uses the pinned keys, so a platform that changes
keys, or a server impersonating it, cannot produce receipts this client accepts.

Offline, a receipt bundle is checked with :func:`crypto.receipt.verify_receipt` (both signatures, the
envelope's SHA-256 and size, the log entry and its inclusion proof), plus the bidder commitment
``SHA-256("ebid/bidder-commitment/v1\\n" || salt || USCC)`` that stands for the bidder in the log.
Online, fresh proofs show the log only grew: every tree head this bidder was given is consistent with
every later one, and after the deadline the final tree head contains the receipt's entry and the
opening entry lists exactly the bid version that is current.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask_babel import gettext as _

from crypto import merkle
from crypto.errors import CryptoError
from crypto.receipt import (
    Receipt,
    SignedDocument,
    TreeHead,
    parse_log_entry,
    verify_receipt,
    verify_tree_head,
)
from crypto.suites import SUITE_P256
from ebid.client.errors import ClientError
from ebid.client.http import Api, ApiError
from ebid.client.state import ServerState

COMMITMENT_DOMAIN = b"ebid/bidder-commitment/v1\n"
BUNDLE_TYPE = "ebid/client-receipt/v1"
WITHDRAWAL_TYPE = "ebid/client-withdrawal/v1"

Report = Callable[[str], None]


class VerificationFailed(ClientError):
    """Something the platform signed does not check out: evidence to keep and report."""

    def __init__(self, what: str) -> None:
        super().__init__(_("Verification FAILED: %(what)s Keep the receipt, the envelope and this message, and "
                           "report it to the trading centre's supervisor (监督).", what=what),
                         code="verification_failed")


@dataclass(frozen=True)
class PlatformKeys:
    log: ec.EllipticCurvePublicKey
    receipt: ec.EllipticCurvePublicKey
    pinned_at: str


def commitment_of(salt_hex: str, uscc: str) -> str:
    """The public stand-in for a bidder in a tender's log."""
    return hashlib.sha256(COMMITMENT_DOMAIN + bytes.fromhex(salt_hex) + uscc.encode("ascii")).hexdigest()


def _public_key(pem: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationFailed(_("the platform published a key that is not an EC P-256 key."))
    return key


def platform_keys(api: Api | None, state: ServerState) -> PlatformKeys:
    """The pinned log and receipt keys; on first use fetched from the server and pinned."""
    record = state.pinned_keys()
    if record is None:
        if api is None:
            raise ClientError(_("No platform keys are pinned for %(server)s yet; run the command once without "
                                "--offline.", server=state.server), code="keys_not_pinned")
        published = api.get("/api/transparency/keys")
        keys = {item["use"]: item for item in published if item.get("use") in ("log", "receipt")}
        if set(keys) != {"log", "receipt"}:
            raise VerificationFailed(_("the server does not publish a log key and a receipt key."))
        for item in keys.values():
            if SUITE_P256.key_id(_public_key(item["public_key_pem"])).hex() != item["key_id"]:
                raise VerificationFailed(_("a published key does not match its key id."))
        record = {"server": state.server, "pinned_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "keys": {use: {"key_id": k["key_id"], "public_key_pem": k["public_key_pem"]}
                           for use, k in keys.items()}}
        state.pin_keys(record)
    return PlatformKeys(_public_key(record["keys"]["log"]["public_key_pem"]),
                        _public_key(record["keys"]["receipt"]["public_key_pem"]), record["pinned_at"])


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, streamed."""
    digest, size = hashlib.sha256(), 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _unhex(values: list[str]) -> list[bytes]:
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError):
        raise VerificationFailed(_("a proof holds something other than hexadecimal hashes.")) from None


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, binascii.Error):
        raise VerificationFailed(_("a log entry is not valid base64.")) from None


def _head(document: Any, keys: PlatformKeys) -> TreeHead:
    try:
        return verify_tree_head(document, keys.log)
    except CryptoError as exc:
        raise VerificationFailed(_("a tree head does not verify with the pinned log key (%(reason)s).",
                                   reason=str(exc))) from None


# --- receipts, offline ---------------------------------------------------------------------------

def check_bundle(bundle: dict[str, Any], keys: PlatformKeys, *, envelope: Path | None, report: Report) -> Receipt:
    """Offline checks of a receipt bundle; return the verified receipt."""
    if not isinstance(bundle, dict) or bundle.get("type") != BUNDLE_TYPE:
        raise ClientError(_("This is not a receipt saved by 'ebid client upload'."), code="not_a_receipt")
    expected_sha, expected_size = bundle["envelope"]["sha256"], bundle["envelope"]["size"]
    if envelope is not None:
        expected_sha, expected_size = file_digest(envelope)
        report(_("envelope %(path)s: SHA-256 %(sha)s, %(size)s bytes", path=str(envelope), sha=expected_sha,
                 size=expected_size))
    try:
        receipt = verify_receipt(bundle["receipt"], receipt_key=keys.receipt, log_key=keys.log,
                                 envelope_sha256=bytes.fromhex(expected_sha), envelope_size=expected_size,
                                 log_entry_bytes=_b64(bundle["log_entry"]),
                                 inclusion_proof=_unhex(bundle["inclusion_proof"]))
    except (CryptoError, ValueError) as exc:
        raise VerificationFailed(_("the receipt does not check out: %(reason)s.", reason=str(exc))) from None
    report(_("receipt signed by the platform's receipt key; tree head signed by its log key"))
    report(_("receipt names this envelope (SHA-256 and size) and log entry %(index)s, included in the tree head of "
             "%(size)s entries", index=receipt.log_index, size=receipt.tree_head.tree_size))
    if receipt.tender != bundle["tender_code"] or receipt.lot != bundle["lot_code"]:
        raise VerificationFailed(_("the receipt is for tender %(tender)s lot %(lot)s, not for the one you sealed for.",
                                   tender=receipt.tender, lot=receipt.lot))
    commitment = bundle["bidder_commitment"]
    if commitment["uscc"] != bundle["bidder_uscc"] or \
            commitment_of(commitment["salt"], bundle["bidder_uscc"]) != receipt.bidder:
        raise VerificationFailed(_("the receipt's bidder commitment is not your organisation's (%(uscc)s).",
                                   uscc=bundle["bidder_uscc"]))
    report(_("bidder commitment %(c)s... opens to your USCC %(uscc)s", c=receipt.bidder[:16],
             uscc=bundle["bidder_uscc"]))
    if bundle.get("bid_version") is not None and receipt.bid_version != bundle["bid_version"]:
        raise VerificationFailed(_("the receipt confirms bid version %(got)s, but you sealed version %(sealed)s.",
                                   got=receipt.bid_version, sealed=bundle["bid_version"]))
    return receipt


# --- the log, online -----------------------------------------------------------------------------

def remember_head(state: ServerState, tender_id: int, document: dict[str, Any], keys: PlatformKeys) -> TreeHead:
    """Add a verified head to the local record; two different heads of one size prove a forked log."""
    head = _head(document, keys)
    heads = state.heads(tender_id)
    for known in heads:
        if known["body"]["tree_size"] == head.tree_size:
            if known["body"]["root_hash"] != head.root_hash.hex():
                raise VerificationFailed(_("the platform signed two different tree heads of size %(size)s: the log "
                                           "was forked or rewritten.", size=head.tree_size))
            return head
    heads.append(SignedDocument.from_dict(document).as_dict())
    state.save_heads(tender_id, heads)
    return head


def _consistency(api: Api, tender_id: int, old: TreeHead, new: TreeHead, organisation_id: int | None) -> None:
    if old.tree_size == new.tree_size:
        return
    answer = api.get(f"/api/tenders/{tender_id}/log/consistency",
                     {"first": old.tree_size, "second": new.tree_size, "organisation_id": organisation_id})
    try:
        merkle.verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash,
                                  _unhex(answer["proof"]))
    except CryptoError as exc:
        raise VerificationFailed(_("the log of %(old)s entries is not a prefix of the log of %(new)s entries "
                                   "(%(reason)s).", old=old.tree_size, new=new.tree_size, reason=str(exc))) from None


def check_history(api: Api, state: ServerState, tender_id: int, keys: PlatformKeys, report: Report,
                  organisation_id: int | None = None) -> list[TreeHead]:
    """Fresh consistency proofs between every tree head this bidder holds, in order of size."""
    heads = sorted((_head(h, keys) for h in state.heads(tender_id)), key=lambda h: h.tree_size)
    for old, new in zip(heads, heads[1:], strict=False):
        _consistency(api, tender_id, old, new, organisation_id)
    if len(heads) > 1:
        report(_("the %(n)s tree heads you were given (sizes %(sizes)s) are consistent: the log only grew",
                 n=len(heads), sizes=", ".join(str(h.tree_size) for h in heads)))
    return heads


def fresh_inclusion(api: Api, tender_id: int, receipt: Receipt, entry: bytes, organisation_id: int | None,
                    head: TreeHead) -> None:
    """Ask the server again for the entry's inclusion proof in ``head`` and check it."""
    answer = api.get(f"/api/tenders/{tender_id}/log/inclusion",
                     {"index": receipt.log_index, "size": head.tree_size, "organisation_id": organisation_id})
    if answer.get("leaf_hash") != merkle.leaf_hash(entry).hex():
        raise VerificationFailed(_("the server's log holds another entry at index %(index)s than your receipt's.",
                                   index=receipt.log_index))
    try:
        merkle.verify_inclusion(merkle.leaf_hash(entry), receipt.log_index, head.tree_size,
                                _unhex(answer["proof"]), head.root_hash)
    except CryptoError as exc:
        raise VerificationFailed(_("the fresh inclusion proof of entry %(index)s fails (%(reason)s).",
                                   index=receipt.log_index, reason=str(exc))) from None


def final_head(api: Api, state: ServerState, tender_id: int, keys: PlatformKeys) -> TreeHead | None:
    """The final tree head published at the deadline (None before it)."""
    try:
        heads = api.get(f"/api/tenders/{tender_id}/log/head")
    except ApiError as exc:
        if exc.code == "log_not_public":
            return None
        raise
    if not heads or not heads.get("final"):
        return None
    return remember_head(state, tender_id, heads["final"], keys)


def final_log(api: Api, tender_id: int, final: TreeHead) -> list[dict[str, Any]]:
    """Every entry of the final log, checked: their leaf hashes rebuild the final tree head's root."""
    bodies: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    while len(leaves) < final.tree_size:
        rows = api.get(f"/api/tenders/{tender_id}/log/entries", {"start": len(leaves), "end": final.tree_size})
        if not rows:
            break
        for row in rows:
            entry = _b64(row["entry"])
            try:
                bodies.append(parse_log_entry(entry))
            except CryptoError as exc:
                raise VerificationFailed(_("log entry %(index)s is malformed (%(reason)s).", index=len(leaves),
                                           reason=str(exc))) from None
            leaves.append(merkle.leaf_hash(entry))
    if len(leaves) != final.tree_size or merkle.root_hash(leaves) != final.root_hash:
        raise VerificationFailed(_("the %(n)s log entries the server shows do not rebuild the final tree head of "
                                   "%(size)s entries.", n=len(leaves), size=final.tree_size))
    opening = bodies[-1] if bodies else {}
    if opening.get("kind") != "opening" or opening.get("tree_size") != final.tree_size - 1:
        raise VerificationFailed(_("the final tree head does not end with the opening entry."))
    return bodies


def current_bids(bodies: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Replay submissions, replacements and withdrawals: the bid each (lot, bidder) has at the end."""
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for body in bodies:
        key = (body.get("lot"), body.get("bidder"))
        if body["kind"] in ("submission", "replacement"):
            current[key] = {"lot": body["lot"], "bidder": body["bidder"], "bid_version": body["bid_version"],
                            "envelope_sha256": body["envelope_sha256"]}
        elif body["kind"] == "withdrawal" and key in current \
                and current[key]["bid_version"] == body["bid_version"]:
            del current[key]
    return current


def check_opening(bodies: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The opening entry (last) must list exactly the bids the entries before it leave current."""
    expected = current_bids(bodies[:-1])

    def order(b: dict[str, Any]) -> tuple:
        return b["lot"], b["bidder"], b["bid_version"]
    if sorted(bodies[-1]["bids"], key=order) != sorted(expected.values(), key=order):
        raise VerificationFailed(_("the set of bids to open (the opening entry) is not the set the log's submissions, "
                                   "replacements and withdrawals leave: a bid was dropped, added or swapped."))
    return expected


def check_online(api: Api, state: ServerState, bundle: dict[str, Any], receipt: Receipt, keys: PlatformKeys,
                 report: Report) -> str:
    """Fresh proofs for a verified receipt; return ``"open"`` (before the deadline) or ``"final"``."""
    tender_id, org = bundle["tender_id"], bundle.get("organisation_id")
    entry = _b64(bundle["log_entry"])
    head = remember_head(state, tender_id, bundle["receipt"]["body"]["tree_head"], keys)
    final = final_head(api, state, tender_id, keys)
    if final is None and not api.token:
        raise ClientError(_("Until the bid deadline the platform shows each bidder only its own log entries: give your "
                            "API token (--token or EBID_TOKEN) for fresh proofs, or check offline with --offline."),
                          code="token_missing")
    fresh_inclusion(api, tender_id, receipt, entry, org, head)
    report(_("the server's log still holds your entry %(index)s in the tree of %(size)s entries",
             index=receipt.log_index, size=head.tree_size))
    if final is None:
        check_history(api, state, tender_id, keys, report, org)
        report(_("the log is published at the bid deadline: run verify-receipt again after it to check the final "
                 "tree head and the set of bids opened"))
        return "open"
    check_history(api, state, tender_id, keys, report, org)
    report(_("final tree head (%(size)s entries) published at the deadline, consistent with your receipt's",
             size=final.tree_size))
    fresh_inclusion(api, tender_id, receipt, entry, org, final)
    report(_("your entry %(index)s is in the final log", index=receipt.log_index))
    expected = check_opening(final_log(api, tender_id, final))
    report(_("the whole final log (%(size)s entries) rebuilds the final tree head, and its opening entry lists "
             "exactly the %(n)s bids the log leaves current", size=final.tree_size, n=len(expected)))
    mine = expected.get((receipt.lot, receipt.bidder))
    if mine is not None and mine["bid_version"] == receipt.bid_version:
        report(_("this envelope (version %(v)s) is among the bids to open", v=receipt.bid_version))
    elif mine is not None:
        report(_("version %(other)s of your bid for lot %(lot)s is to be opened, not this version %(v)s (it was "
                 "replaced)", other=mine["bid_version"], lot=receipt.lot, v=receipt.bid_version))
    else:
        report(_("no bid of yours for lot %(lot)s is to be opened: the log records its withdrawal", lot=receipt.lot))
    return "final"


def check_withdrawal(result: dict[str, Any], keys: PlatformKeys, *, tender_code: str, lot_code: str,
                     commitment: str | None, report: Report) -> TreeHead:
    """Check a withdrawal answer: the signed head, the entry, its inclusion; return the head."""
    head = _head(result["tree_head"], keys)
    entry = _b64(result["log_entry"])
    try:
        body = parse_log_entry(entry)
        merkle.verify_inclusion(merkle.leaf_hash(entry), result["log_index"], head.tree_size,
                                _unhex(result["inclusion_proof"]), head.root_hash)
    except CryptoError as exc:
        raise VerificationFailed(_("the withdrawal's log entry does not check out (%(reason)s).",
                                   reason=str(exc))) from None
    if body["kind"] != "withdrawal" or body["tender"] != tender_code or body["lot"] != lot_code \
            or body["bid_version"] != result["bid"]["version"]:
        raise VerificationFailed(_("the log entry does not record the withdrawal of your bid version %(v)s.",
                                   v=result["bid"]["version"]))
    if commitment is not None and body["bidder"] != commitment:
        raise VerificationFailed(_("the withdrawal entry names another bidder commitment than your receipts."))
    report(_("withdrawal of version %(v)s is entry %(index)s of the log, included in the signed tree head of %(size)s "
             "entries", v=body["bid_version"], index=result["log_index"], size=head.tree_size))
    return head
