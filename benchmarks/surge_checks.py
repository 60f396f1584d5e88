"""Deadline surge, part 3: after the deadline, check that nothing was lost and nothing late was accepted.

* **lost**: a bidder holding a 2xx receipt whose bid is not where the receipt says: the receipt does
  not verify offline (signatures, its log entry and inclusion proof), the final log does not hold that
  entry at that index, the closing ``opening`` entry does not list the bid, the database has no such
  current bid, or the stored envelope is missing or has another size.
* **late**: an accepted bid received at or after the deadline (receipt time or database time).
* **unreceipted**: a bid the database holds whose bidder got no receipt (e.g. cut off by a timeout).

Uses only the public API after the deadline (summary, log, keys) plus the database and file store.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from surge_load import Outcome
from surge_setup import Envelope, TenderRun, make_app

from bidding import Bid
from bidding.receipts import epoch_ms
from core.clock import as_utc
from core.db import db
from core.storage import FileStore
from crypto import merkle
from crypto.receipt import verify_receipt, verify_tree_head

DEADLINE_CODES = {"deadline_passed", "upload_withdrawn"}


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def close_and_summarise(base: str, tender_id: int, attempts: int = 20) -> dict[str, Any]:
    """Ask for the bid summary after the deadline (any request closes a due tender); bounded retries."""
    for _ in range(attempts):
        status, data = _get(f"{base}/api/tenders/{tender_id}/bids/summary")
        if status == 200:
            return data
        time.sleep(0.5)
    raise RuntimeError(f"tender {tender_id} did not close: {status} {data}")


def _log(base: str, tender_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    while True:
        status, page = _get(f"{base}/api/tenders/{tender_id}/log/entries?start={len(entries)}")
        if status != 200:
            raise RuntimeError(f"log entries: {status} {page}")
        entries += page
        if len(page) < 1000:
            return entries


def _public_keys(base: str) -> dict[str, Any]:
    status, data = _get(f"{base}/api/transparency/keys")
    if status != 200:
        raise RuntimeError(f"transparency keys: {status} {data}")
    return {k["use"]: serialization.load_pem_public_key(k["public_key_pem"].encode()) for k in data}


def check_run(env: dict[str, str], base: str, run: TenderRun, deadline: datetime, outcomes: list[Outcome],
              envelopes: dict[int, Envelope]) -> dict[str, Any]:
    """Every check above; returns counts and the first few problems of each kind."""
    summary = close_and_summarise(base, run.tender_id)
    keys = _public_keys(base)
    entries = _log(base, run.tender_id)
    status, heads = _get(f"{base}/api/tenders/{run.tender_id}/log/head")
    problems: dict[str, list[str]] = {"lost": [], "late": [], "unreceipted": [], "log": []}
    final = verify_tree_head(heads["final"], keys["log"]) if status == 200 and heads.get("final") else None
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in entries]
    if final is None or final.tree_size != len(entries) or merkle.root_hash(leaves) != final.root_hash:
        problems["log"].append("the final signed tree head does not cover exactly the published entries")
    opening = [e["body"] for e in entries if e["body"].get("kind") == "opening"]
    opened = {(b["lot"], b["bidder"], b["bid_version"], b["envelope_sha256"]) for b in opening[-1]["bids"]} \
        if opening else set()
    if len(opening) != 1:
        problems["log"].append(f"{len(opening)} opening entries in the log (expected 1)")
    deadline_ms = epoch_ms(deadline)
    receipts = [o for o in outcomes if o.ok]
    with make_app(env).app_context():
        bids = {b.public_id: b for b in db.session.scalars(select(Bid).where(Bid.tender_id == run.tender_id))}
        store = FileStore(Path(env["EBID_DATA_DIR"]) / "files")
        for o in receipts:
            problem = _check_receipt(o, envelopes[o.bidder], keys, entries, opened, bids, store, deadline)
            if problem:
                problems["lost"].append(f"bidder {o.bidder}: {problem}")
            if o.body["receipt"]["body"]["received_at_ms"] >= deadline_ms:
                problems["late"].append(f"bidder {o.bidder}: receipt at {o.body['receipt']['body']['received_at_ms']}"
                                        f" ms, deadline {deadline_ms} ms")
        receipted = {o.body["bid"]["id"] for o in receipts}
        for public_id, bid in bids.items():
            if as_utc(bid.received_at) >= deadline:
                problems["late"].append(f"bid {public_id} stored with received_at {bid.received_at.isoformat()}")
            if public_id not in receipted:
                problems["unreceipted"].append(f"bid {public_id} (organisation {bid.organisation_id}) has no "
                                               f"receipt at its bidder")
        db.session.remove()
    refused = [o for o in outcomes if not o.ok]
    by_code: dict[str, int] = {}
    for o in refused:
        key = f"{o.step}:{o.status}:{o.code}"
        by_code[key] = by_code.get(key, 0) + 1
    # a finalize whose upload was withdrawn by the closing while it was being checked finds its data gone:
    # refused for the deadline too, under another code (reported as a finding)
    late_codes = [o for o in refused if o.code in DEADLINE_CODES
                  or (o.code == "upload_data_gone" and o.answered_at >= deadline.timestamp())]
    unexpected = [o for o in refused if o not in late_codes]
    return {"receipts": len(receipts), "db_bids": len(bids), "closing_total": summary.get("total"),
            "opening_entry_bids": len(opened), "refused": len(refused), "refused_by": by_code,
            "refused_late": len(late_codes),
            "unexpected_failures": len(unexpected),
            "unexpected_examples": [f"bidder {o.bidder} {o.step} {o.status} {o.code}: {o.message}" for o in unexpected[:5]],
            "lost": len(problems["lost"]), "late_accepted": len(problems["late"]),
            "unreceipted": len(problems["unreceipted"]), "log_problems": problems["log"],
            "problems": {k: v[:5] for k, v in problems.items() if v},
            "closing_matches": summary.get("total") == len(receipts) == len(bids) == len(opened)}


def _check_receipt(o: Outcome, env_: Envelope, keys: dict[str, Any], entries: list[dict[str, Any]],
                   opened: set, bids: dict[str, Bid], store: FileStore, deadline: datetime) -> str | None:
    body = o.body
    entry_bytes = base64.b64decode(body["log_entry"])
    try:
        receipt = verify_receipt(body["receipt"], receipt_key=keys["receipt"], log_key=keys["log"],
                                 envelope_sha256=bytes.fromhex(env_.sha256), envelope_size=env_.size,
                                 log_entry_bytes=entry_bytes,
                                 inclusion_proof=[bytes.fromhex(h) for h in body["inclusion_proof"]])
    except Exception as exc:  # any verdict of the offline check is a problem to report, with its reason
        return f"receipt does not verify offline: {type(exc).__name__}: {exc}"
    if receipt.log_index >= len(entries) or base64.b64decode(entries[receipt.log_index]["entry"]) != entry_bytes:
        return f"log index {receipt.log_index} of the final log is not the receipt's entry"
    if (receipt.lot, receipt.bidder, receipt.bid_version, env_.sha256) not in opened:
        return "the closing opening entry does not list the bid"
    bid = bids.get(body["bid"]["id"])
    if bid is None or not bid.is_current or bid.envelope_sha256 != env_.sha256 or bid.envelope_size != env_.size:
        return "the database has no matching current bid"
    if epoch_ms(as_utc(bid.received_at)) != receipt.received_at_ms:
        return "the database's received_at differs from the receipt's"
    path = store.path_for(env_.sha256)
    if not path.exists() or path.stat().st_size != env_.size:
        return "the stored envelope is missing or has another size"
    return None
