"""The rows of the opening record (开标记录 / 唱标): one per opened bid, straight from its bid.json.

Pure row building (:func:`build_row`, :func:`rows_digest`) plus the gathering from the opening engine's
:class:`~bidding.opening_models.BidOpening` rows. Nothing is retyped: price, duration, quality and
project manager come from the decrypted bid.json's opening form; the decryption result from the engine.

The bond status (保证金/保函) comes from the guarantees package, which sits above bidding in the layers;
it registers a provider with :func:`register_bond_status` at import, and bidding calls it here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from bidding.models import Lot, Tender
from bidding.opening import opened_bids
from core.errors import RuleViolation

BOND_KINDS = ("waiver", "cash_bond", "e_guarantee", "none", "unknown")
BondStatusProvider = Callable[[Tender, Lot, int], dict[str, Any]]
_provider: list[BondStatusProvider] = []


class RecordNotReady(RuleViolation):
    code = "record_not_ready"
    default_message = _l("The opening record cannot be built yet: %(problem)s")


def register_bond_status(fn: BondStatusProvider) -> BondStatusProvider:
    """Install the provider of a bidder's bond status for a lot (the guarantees package calls this)."""
    _provider[:] = [fn]
    return fn


def bond_status(tender: Tender, lot: Lot, organisation_id: int) -> dict[str, Any]:
    """The bond status ``{kind, passed, reasons, required}`` of a bidder for a lot (unknown without a provider)."""
    if not _provider:
        return {"kind": "unknown", "passed": None, "required": None,
                "reasons": ["no guarantee check is installed on this platform"]}
    return normalise_bond(_provider[0](tender, lot, organisation_id))


def normalise_bond(status: dict[str, Any]) -> dict[str, Any]:
    """Check a provider's answer and keep only the fields the record shows."""
    kind = status.get("kind")
    if kind not in BOND_KINDS:
        raise ValueError(f"bond status kind must be one of {', '.join(BOND_KINDS)}, not {kind!r}")
    passed = status.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise ValueError("bond status 'passed' must be true, false or null")
    required = status.get("required")
    return {"kind": kind, "passed": passed, "required": None if required is None else bool(required),
            "reasons": [str(r) for r in status.get("reasons") or []]}


@dataclass(frozen=True)
class RowSource:
    """What the engine and the guarantee check know of one opened bid."""

    lot_number: int
    lot_code: str
    lot_title: str
    bidder_name: str
    bidder_uscc: str
    status: str                                   # decrypted | failed | pending
    method: str | None = None                     # bidder | custodians | both
    form: dict[str, Any] | None = None            # bid.json's opening form (decrypted only)
    failure_cause: str | None = None              # bidder | platform | ca | network | unknown
    legal_outcome: str | None = None              # revoked (撤销) | withdrawn (撤回)
    failure_reason: str | None = None
    bond: dict[str, Any] = field(default_factory=dict)


def _problem(message: Any) -> RecordNotReady:
    return RecordNotReady(problem=message)


def build_row(src: RowSource) -> dict[str, Any]:
    """The record's row for one bid; refuse a bid still pending or a failure whose cause is undecided."""
    row: dict[str, Any] = {"lot": src.lot_code, "lot_title": src.lot_title, "lot_number": src.lot_number,
                           "bidder": src.bidder_name, "uscc": src.bidder_uscc, "bond": normalise_bond(src.bond),
                           "price": None, "currency": None, "duration_days": None, "quality": None,
                           "project_manager": None, "alternatives": None}
    if src.status == "decrypted":
        form = src.form or {}
        missing = [k for k in ("price", "duration_days", "quality", "project_manager") if not form.get(k)]
        if missing:
            raise _problem(_l("the decrypted bid of %(bidder)s has no %(fields)s in its bid.json.",
                              bidder=src.bidder_name, fields=", ".join(missing)))
        manager = form["project_manager"]
        row.update(price=str(form["price"]), currency=str(form.get("currency") or "CNY"),
                   duration_days=int(form["duration_days"]), quality=str(form["quality"]),
                   project_manager={"name": str(manager.get("name", "")),
                                    "certificate_no": str(manager.get("certificate_no", ""))},
                   alternatives=bool(form.get("alternatives", False)))
        row["decryption"] = {"result": "decrypted", "method": src.method}
    elif src.status == "failed":
        if not src.failure_cause or not src.legal_outcome:
            raise _problem(_l("the host and the supervisor have not yet decided why the bid of %(bidder)s "
                              "failed to decrypt; decide its cause first.", bidder=src.bidder_name))
        row["decryption"] = {"result": "failed", "cause": src.failure_cause, "outcome": src.legal_outcome,
                             "reason": src.failure_reason or ""}
    else:
        raise _problem(_l("the bid of %(bidder)s is still being decrypted; wait for the decryption to end.",
                          bidder=src.bidder_name))
    return row


def build_rows(sources: list[RowSource]) -> list[dict[str, Any]]:
    """All rows, ordered by lot then bidder USCC (stable whatever order the bids were opened in)."""
    if not sources:
        raise _problem(_l("no bid was opened."))
    return [build_row(s) for s in sorted(sources, key=lambda s: (s.lot_number, s.bidder_uscc))]


def canonical_json(value: Any) -> bytes:
    """Sorted-key, compact UTF-8 JSON: the bytes the record's SHA-256 is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the rows' canonical JSON; anyone can recompute it from the published rows."""
    return hashlib.sha256(canonical_json(rows)).hexdigest()


def bidders_of(rows: list[dict[str, Any]]) -> dict[str, str]:
    """``{uscc: name}`` of every bidder in the record: those who confirm or object."""
    return {r["uscc"]: r["bidder"] for r in rows}


def collect_sources(tender: Tender) -> list[RowSource]:
    """Read the engine's opened bids and each bidder's bond status."""
    sources = []
    for b in opened_bids(tender.id):
        sources.append(RowSource(
            lot_number=b.lot.number, lot_code=b.lot.code, lot_title=b.lot.title, bidder_name=b.organisation.name,
            bidder_uscc=b.organisation.uscc, status=b.status.value, method=b.method.value if b.method else None,
            form=dict(b.form) if b.form else None,
            failure_cause=b.failure_cause.value if b.failure_cause else None,
            legal_outcome=b.legal_outcome.value if b.legal_outcome else None, failure_reason=b.failure_reason,
            bond=bond_status(tender, b.lot, b.organisation_id)))
    return sources
