"""Pure rules of sealed-bid submission (密封投标): data in, decision out, table-tested.

* which recipients an envelope must be wrapped for, given the tender's decryption mode and opening key;
* whether an envelope's context (tender, lot, bidder, bid version) is the one expected;
* how a chunk relates to what an upload has received so far;
* the outcome of closing: a lot is opened only with at least three bids (招标投标法 §28, 条例 §44).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from crypto import canonical
from crypto.envelope import KEY_MODE_SPLIT, ROLE_BIDDER, ROLE_TENDER
from crypto.errors import CryptoError

BID_CONTEXT_TYPE = "ebid/bid-context/v1"
MIN_BIDS = 3  # fewer bids than this at the deadline: the lot is not opened and must be re-tendered
BIDDER_DECRYPTS = frozenset({"bidder", "bidder_then_custodians", "double_envelope"})


@dataclass(frozen=True)
class Refusal:
    """Why something is refused: a code for programs, a message (lazy, with ``params``) for people."""

    code: str
    message: Any
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return str(self.message) % dict(self.params)


def _short(key_id: str) -> str:
    return key_id[:16]


def recipient_refusal(mode: str, opening_key_id: str | None, key_mode: int,
                      recipients: Sequence[tuple[int, str]]) -> Refusal | None:
    """Check an envelope's recipients (role, key id hex) against the tender's decryption mode."""
    tender_keys = {k for role, k in recipients if role == ROLE_TENDER}
    split_required = mode == "double_envelope"
    if split_required and key_mode != KEY_MODE_SPLIT:
        return Refusal("double_envelope_required", _l(
            "This tender uses the double envelope: seal in split mode, so that the content key is the XOR of a "
            "part wrapped for the tender's opening key and a part wrapped for your own key."))
    if not split_required and key_mode == KEY_MODE_SPLIT:
        return Refusal("split_not_allowed", _l(
            "This tender's decryption mode is '%(mode)s': seal in single mode, not as a double envelope."),
            {"mode": mode})
    foreign = sorted(tender_keys - {opening_key_id})
    if foreign:
        return Refusal("foreign_tender_key", _l(
            "The envelope is wrapped for an opening key that is not this tender's (%(key)s...); seal it again "
            "with the opening key published with this tender."), {"key": _short(foreign[0])})
    if opening_key_id is not None and opening_key_id not in tender_keys:
        return Refusal("tender_key_missing", _l(
            "The envelope is not wrapped for this tender's opening key (%(key)s...); seal it again with the "
            "opening key published with the tender."), {"key": _short(opening_key_id)})
    if mode in BIDDER_DECRYPTS and not any(role == ROLE_BIDDER for role, _ in recipients):
        return Refusal("bidder_key_missing", _l(
            "The envelope is not wrapped for your own key: in this tender each bidder decrypts its own bid at "
            "the opening, so add your key as a recipient and seal it again."))
    return None


def expected_context(tender_code: str, lot_code: str, bidder_uscc: str, bid_version: int | None = None) -> dict:
    """The fields of ``crypto.envelope.bid_context`` an envelope must carry (version optional)."""
    fields = {"type": BID_CONTEXT_TYPE, "tender": tender_code, "lot": lot_code, "bidder": bidder_uscc}
    if bid_version is not None:
        fields["bid_version"] = bid_version
    return fields


_CONTEXT_FIELDS = (
    ("tender", "wrong_tender", _l("The envelope was sealed for tender %(sealed)s, not for this tender "
                                  "(%(expected)s); upload it to the right tender or seal it again.")),
    ("lot", "wrong_lot", _l("The envelope was sealed for lot %(sealed)s, not for lot %(expected)s; upload it "
                            "to the right lot or seal it again.")),
    ("bidder", "wrong_bidder", _l("The envelope was sealed for another bidder (%(sealed)s), not for your "
                                  "organisation (%(expected)s); a bidder can only submit its own envelopes.")),
    ("bid_version", "wrong_version", _l("The envelope was sealed as version %(sealed)s of your bid, but the next "
                                        "version for this lot is %(expected)s; seal it again for version "
                                        "%(expected)s.")),
)


def context_refusal(expected: Mapping[str, Any], context: bytes) -> Refusal | None:
    """Compare the context an envelope carries with the ``expected`` fields; say what differs."""
    try:
        actual = canonical.decode(context)
    except CryptoError:
        actual = None
    if not isinstance(actual, dict) or actual.get("type") != BID_CONTEXT_TYPE:
        return Refusal("context_unreadable", _l(
            "The envelope does not say which tender, lot and bidder it was sealed for (its context is not an "
            "ebid bid context); seal it with the ebid client or the sealing page."))
    for name, code, message in _CONTEXT_FIELDS:
        if name in expected and actual.get(name) != expected[name]:
            return Refusal(code, message, {"sealed": str(actual.get(name)), "expected": str(expected[name])})
    return None


def chunk_plan(received: int, offset: int, length: int, declared: int, max_chunk: int) -> str:
    """How a chunk of ``length`` bytes at ``offset`` relates to an upload that has ``received`` bytes.

    ``append`` continues it; ``overlap`` starts inside what was received (a resent chunk: compare, then
    append any rest); ``gap`` leaves a hole; ``beyond`` passes the declared size; ``too_big`` or
    ``empty`` are bad requests.
    """
    if length == 0:
        return "empty"
    if length > max_chunk:
        return "too_big"
    if offset + length > declared:
        return "beyond"
    if offset > received:
        return "gap"
    return "append" if offset == received else "overlap"


def lot_outcomes(counts: Mapping[str, int]) -> tuple[dict[str, dict[str, Any]], str]:
    """Per lot: its bid count and whether it is opened; and the tender's next status (opening or failed)."""
    lots = {code: {"bids": n, "opened": n >= MIN_BIDS} for code, n in counts.items()}
    return lots, ("opening" if any(v["opened"] for v in lots.values()) else "failed")
