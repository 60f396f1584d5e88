"""What the reference issuer does with each platform message, and the work it does later.

Inbound handlers (called by the web views with a message that passed every protocol check) record
the request and queue the work; the background worker then underwrites orders, issues and seals
letters, decides claims and reveals sealed letters, and each outcome becomes a signed callback in the
outbox (``jobs``), delivered in order per order number.

Sealed letters (密文保函): on ``DecryptionNotice`` the issuer builds a second letter revision that
prints the hidden details and the salt of the digest printed on the first, seals it, publishes its
SHA-256 in the registry and sends it as a second ``Letter`` callback with ``revision: 2`` and
``supersedes_sha256`` (the first revision's hash).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from core.clock import beijing, now
from guarantees import protocol
from guarantees.issuer_sim.config import SimConfig
from guarantees.issuer_sim.keys import IssuerKeys
from guarantees.issuer_sim.store import Store, from_ts, ts
from guarantees.issuer_sim.underwriting import ClaimFacts, decide, decide_claim, guarantee_number, parse_order
from guarantees.issuer_sim.underwriting import validity_period as compute_validity
from guarantees.letters import (
    LetterData,
    Party,
    build_letter_pdf,
    letter_sha256,
    new_details_salt,
    new_verification_code,
    reveal,
    sign_letter,
)
from guarantees.protocol import MalformedMessage, Received, StateConflict

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
Reply = tuple[int, dict]


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return protocol.format_timestamp(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def letter_to_json(data: LetterData) -> str:
    fields = asdict(data)
    for name in ("valid_from", "valid_until", "issued_at", "revealed_at"):
        fields[name] = ts(fields[name]) if fields[name] is not None else None
    fields["amount"] = str(data.amount)
    return json.dumps(fields, ensure_ascii=False)


def letter_from_json(text: str) -> LetterData:
    fields = json.loads(text)
    for name in ("valid_from", "valid_until", "issued_at", "revealed_at"):
        fields[name] = from_ts(fields[name])
    fields["amount"] = Decimal(fields["amount"])
    fields["beneficiary"], fields["principal"] = Party(**fields["beneficiary"]), Party(**fields["principal"])
    return LetterData(**fields)


class IssuerService:
    """The issuer's behaviour over its store; ``wake`` nudges the background worker."""

    def __init__(self, config: SimConfig, store: Store, keys: IssuerKeys, wake: Callable[[], None] = lambda: None):
        self.config, self.store, self.keys, self.wake = config, store, keys, wake

    def _later(self) -> datetime:
        return now() + timedelta(seconds=self.config.delay)

    def _callback(self, conn, type_: str, order_no: str, data: dict, due_at: datetime | None = None) -> None:
        """Queue a callback; it is signed (fresh nonce and timestamp) at each delivery attempt."""
        Store.add_job(conn, "callback", order_no, {"type": type_, "data": {k: _wire(v) for k, v in data.items()}},
                      due_at or now())

    # ------------------------------------------------------------------ inbound

    def apply(self, msg: Received) -> Reply:
        """OrderApply: record the order and underwrite it in the background (202 at once)."""
        parse_order(msg.order_no, msg.data)
        with self.store.transaction() as conn:
            row = conn.execute("SELECT data, state FROM orders WHERE order_no = ?", (msg.order_no,)).fetchone()
            if row is not None:
                if json.loads(row["data"]) == msg.data:
                    return 202, {"accepted": True, "duplicate": True}
                raise StateConflict(msg.type, msg.order_no, row["state"])
            stamp = ts(now())
            conn.execute("INSERT INTO orders (order_no, data, state, received_at, updated_at) "
                         "VALUES (?, ?, 'received', ?, ?)",
                         (msg.order_no, json.dumps(msg.data, ensure_ascii=False), stamp, stamp))
            Store.add_job(conn, "underwrite", msg.order_no, {}, self._later())
        self.wake()
        return 202, {"accepted": True}

    def cancel(self, msg: Received) -> Reply:
        """OrderCancel: possible until the letter is issued."""
        with self.store.transaction() as conn:
            state = conn.execute("SELECT state FROM orders WHERE order_no = ?", (msg.order_no,)).fetchone()["state"]
            if state == "cancelled":
                return 200, {"cancelled": True, "duplicate": True}
            if state != "received":
                raise StateConflict(msg.type, msg.order_no, state)
            conn.execute("UPDATE orders SET state = 'cancelled', updated_at = ? WHERE order_no = ?",
                         (ts(now()), msg.order_no))
        return 200, {"cancelled": True}

    def _letter_of(self, msg: Received) -> dict:
        letter = self.store.letter_for_order(msg.order_no)
        if letter is None:
            order = self.store.order(msg.order_no)
            raise StateConflict(msg.type, msg.order_no, order["state"] if order else "unknown")
        asked = msg.data.get("guarantee_no")
        if asked is not None and asked != letter["guarantee_no"]:
            raise MalformedMessage(f"data.guarantee_no {str(asked)[:40]} is not the guarantee of order {msg.order_no}")
        return dict(letter)

    def release(self, msg: Received) -> Reply:
        """Release (退保): the guarantee ends; ReleaseNotify follows after the delay."""
        if not isinstance(msg.data.get("guarantee_no"), str):
            raise MalformedMessage("data.guarantee_no must be a string")
        letter = self._letter_of(msg)
        with self.store.transaction() as conn:
            status = conn.execute("SELECT status FROM letters WHERE guarantee_no = ?",
                                  (letter["guarantee_no"],)).fetchone()["status"]
            if status == "released":
                return 202, {"accepted": True, "duplicate": True}
            if status != "valid":
                raise StateConflict(msg.type, msg.order_no, status)
            released_at = now().replace(microsecond=0)
            conn.execute("UPDATE letters SET status = 'released', released_at = ?, updated_at = ? "
                         "WHERE guarantee_no = ?", (ts(released_at), ts(now()), letter["guarantee_no"]))
            self._callback(conn, protocol.RELEASE_NOTIFY, msg.order_no,
                           {"guarantee_no": letter["guarantee_no"],
                            "released_at": protocol.format_timestamp(released_at)}, self._later())
        self.wake()
        return 202, {"accepted": True}

    def claim(self, msg: Received) -> Reply:
        """Claim (索赔): recorded now, decided (paid or denied) after the delay."""
        data = msg.data
        claim_no = data.get("claim_no")
        if not isinstance(claim_no, str) or not claim_no.strip():
            raise MalformedMessage("data.claim_no must be a non-empty string")
        if not isinstance(data.get("guarantee_no"), str):
            raise MalformedMessage("data.guarantee_no must be a string")
        try:
            amount = Decimal(str(data.get("amount")))
        except InvalidOperation:
            raise MalformedMessage("data.amount must be a decimal string such as \"50000.00\"") from None
        if not amount.is_finite():
            raise MalformedMessage("data.amount must be a decimal string such as \"50000.00\"")
        evidence = data.get("evidence", [])
        if not isinstance(evidence, list) or not all(isinstance(h, str) and _SHA256_RE.match(h) for h in evidence):
            raise MalformedMessage("data.evidence must be a list of SHA-256 hashes (64 lowercase hex characters)")
        letter = self._letter_of(msg)
        with self.store.transaction() as conn:
            existing = conn.execute("SELECT data, status FROM claims WHERE claim_no = ?", (claim_no,)).fetchone()
            if existing is not None:
                if json.loads(existing["data"]) == data:
                    return 202, {"accepted": True, "duplicate": True}
                raise StateConflict(msg.type, msg.order_no, f"claim {claim_no} {existing['status']}")
            pending = conn.execute("SELECT claim_no FROM claims WHERE guarantee_no = ? AND status = 'received'",
                                   (letter["guarantee_no"],)).fetchone()
            if pending is not None:
                raise StateConflict(msg.type, msg.order_no, f"claim {pending['claim_no']} pending")
            received_at = now()
            conn.execute("INSERT INTO claims (claim_no, guarantee_no, order_no, data, status, received_at) "
                         "VALUES (?, ?, ?, ?, 'received', ?)",
                         (claim_no, letter["guarantee_no"], msg.order_no, json.dumps(data, ensure_ascii=False),
                          ts(received_at)))
            valid_until = letter_from_json(letter["letter"]).valid_until
            if letter["status"] == "valid" and received_at <= valid_until:
                conn.execute("UPDATE letters SET status = 'claimed', updated_at = ? WHERE guarantee_no = ?",
                             (ts(received_at), letter["guarantee_no"]))
            Store.add_job(conn, "decide_claim", msg.order_no, {"claim_no": claim_no}, self._later())
        self.wake()
        return 202, {"accepted": True}

    def reveal_request(self, msg: Received) -> Reply:
        """DecryptionNotice: after the opening, publish the sealed letter's details as revision 2."""
        letter = self._letter_of(msg)
        if not letter_from_json(letter["letter"]).sealed:
            raise StateConflict(msg.type, msg.order_no, "plain letter")
        with self.store.transaction() as conn:
            revision = conn.execute("SELECT revision FROM letters WHERE guarantee_no = ?",
                                    (letter["guarantee_no"],)).fetchone()["revision"]
            queued = conn.execute("SELECT 1 FROM jobs WHERE kind = 'reveal' AND order_no = ? AND state = 'pending'",
                                  (msg.order_no,)).fetchone()
            if revision > 1 or queued is not None:
                return 202, {"accepted": True, "duplicate": True}
            Store.add_job(conn, "reveal", msg.order_no, {}, self._later())
        self.wake()
        return 202, {"accepted": True}

    def registry_entry(self, guarantee_no: str) -> dict | None:
        """The public registry answer (验真): a signed ``LetterStatus`` message, or None if unknown."""
        letter = self.store.letter(guarantee_no)
        if letter is None:
            return None
        return self.sign(protocol.LETTER_STATUS, letter["order_no"], {
            "guarantee_no": guarantee_no, "sha256": letter["sha256"], "status": letter["status"]})

    def sign(self, type_: str, order_no: str, data: dict) -> dict:
        return protocol.sign_message(self.keys.message_key, type_, self.config.code, order_no, data, now=now())

    # ------------------------------------------------------------------ background work

    def underwrite(self, order_no: str) -> None:
        """Decide an order; when approved, issue and seal the letter; queue Result (+ Letter)."""
        order = self.store.order(order_no)
        if order is None or order["state"] != "received":
            return  # cancelled meanwhile, or already done
        terms = parse_order(order_no, json.loads(order["data"]))
        decision = decide(terms, self.config.rules, now=now())
        if not decision.approved:
            with self.store.transaction() as conn:
                if conn.execute("SELECT state FROM orders WHERE order_no = ?", (order_no,)).fetchone()[0] != "received":
                    return
                conn.execute("UPDATE orders SET state = 'rejected', reason = ?, updated_at = ? WHERE order_no = ?",
                             (str(decision.reason), ts(now()), order_no))
                self._callback(conn, protocol.RESULT, order_no, {
                    "status": "rejected", "reason": str(decision.reason), "guarantee_no": None,
                    "issued_at": None, "valid_from": None, "valid_until": None})
            return
        issued_at = now().replace(microsecond=0)
        day = beijing(issued_at).date()
        with self.store.transaction() as conn:
            guarantee_no = guarantee_number(self.config.code, day, self.store.next_sequence(conn, day.isoformat()))
        valid_from, valid_until = compute_validity(issued_at, terms, self.config.extra_validity_days)
        code = new_verification_code()
        sealed = terms.guarantee_type == "sealed"
        letter = LetterData(
            guarantee_no=guarantee_no, issuer_name=self.config.name, issuer_kind=self.config.kind,
            beneficiary=Party(terms.beneficiary_name, terms.beneficiary_uscc),
            principal=Party(terms.principal_name, terms.principal_uscc),
            tender_code=terms.tender_code, tender_title=terms.tender_title, lot_code=terms.lot_code,
            lot_title=terms.lot_title, amount=terms.amount.quantize(Decimal("0.01")), valid_from=valid_from,
            valid_until=valid_until, issued_at=issued_at, verification_code=code,
            verify_url=self.config.verify_url(guarantee_no, code), sealed=sealed,
            details_salt=new_details_salt() if sealed else "")
        pdf = self._seal(build_letter_pdf(letter))
        with self.store.transaction() as conn:
            if conn.execute("SELECT state FROM orders WHERE order_no = ?", (order_no,)).fetchone()[0] != "received":
                return  # cancelled while the letter was being made: it is never published
            conn.execute("INSERT INTO letters (guarantee_no, order_no, revision, sha256, pdf, letter, status, "
                         "updated_at) VALUES (?, ?, 1, ?, ?, ?, 'valid', ?)",
                         (guarantee_no, order_no, letter_sha256(pdf), pdf, letter_to_json(letter), ts(now())))
            conn.execute("UPDATE orders SET state = 'issued', guarantee_no = ?, updated_at = ? WHERE order_no = ?",
                         (guarantee_no, ts(now()), order_no))
            self._callback(conn, protocol.RESULT, order_no, {
                "status": "approved", "reason": "", "guarantee_no": guarantee_no,
                "issued_at": issued_at, "valid_from": valid_from, "valid_until": valid_until})
            self._callback(conn, protocol.LETTER, order_no, self._letter_data(letter, pdf))

    def _seal(self, pdf: bytes) -> bytes:
        return sign_letter(pdf, self.keys.letter_key, self.keys.letter_cert, [self.keys.ca_cert])

    @staticmethod
    def _letter_data(letter: LetterData, pdf: bytes, **extra: Any) -> dict:
        suffix = f"-r{letter.revision}" if letter.revision > 1 else ""
        return {"guarantee_no": letter.guarantee_no, "filename": f"{letter.guarantee_no}{suffix}.pdf",
                "pdf_base64": base64.b64encode(pdf).decode("ascii"), "sha256": letter_sha256(pdf),
                "verification_code": letter.verification_code, "revision": letter.revision, **extra}

    def decide_claim(self, claim_no: str) -> None:
        """Pay or deny a claim; queue ClaimResult."""
        claim = self.store.claim(claim_no)
        if claim is None or claim["status"] != "received":
            return
        letter_row = self.store.letter(claim["guarantee_no"])
        letter = letter_from_json(letter_row["letter"])
        data = json.loads(claim["data"])
        status_before = "valid" if letter_row["status"] == "claimed" else letter_row["status"]
        decision = decide_claim(ClaimFacts(
            letter_status=status_before, valid_until=letter.valid_until, guarantee_amount=letter.amount,
            claim_amount=Decimal(str(data["amount"])), received_at=from_ts(claim["received_at"]),
            released_at=from_ts(letter_row["released_at"])))
        decided_at = now().replace(microsecond=0)
        with self.store.transaction() as conn:
            conn.execute("UPDATE claims SET status = ?, amount_paid = ?, reason = ?, decided_at = ? WHERE claim_no = ?",
                         ("paid" if decision.paid else "denied", str(decision.amount_paid), str(decision.reason),
                          ts(decided_at), claim_no))
            new_status = "paid" if decision.paid else status_before
            conn.execute("UPDATE letters SET status = ?, updated_at = ? WHERE guarantee_no = ?",
                         (new_status, ts(now()), claim["guarantee_no"]))
            self._callback(conn, protocol.CLAIM_RESULT, claim["order_no"], {
                "claim_no": claim_no, "status": "paid" if decision.paid else "denied",
                "amount_paid": decision.amount_paid, "reason": str(decision.reason), "decided_at": decided_at})

    def reveal(self, order_no: str) -> None:
        """Build, seal and publish revision 2 of a sealed letter; queue the second Letter callback."""
        row = self.store.letter_for_order(order_no)
        if row is None or row["revision"] > 1:
            return
        revealed = reveal(letter_from_json(row["letter"]), revealed_at=now().replace(microsecond=0))
        pdf = self._seal(build_letter_pdf(revealed))
        with self.store.transaction() as conn:
            superseded = json.loads(row["superseded"]) + [row["sha256"]]
            conn.execute("UPDATE letters SET revision = 2, sha256 = ?, pdf = ?, letter = ?, superseded = ?, "
                         "updated_at = ? WHERE guarantee_no = ? AND revision = 1",
                         (letter_sha256(pdf), pdf, letter_to_json(revealed), json.dumps(superseded), ts(now()),
                          row["guarantee_no"]))
            self._callback(conn, protocol.LETTER, order_no,
                           self._letter_data(revealed, pdf, supersedes_sha256=row["sha256"]))
