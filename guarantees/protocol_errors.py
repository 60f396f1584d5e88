"""Refusals of the issuer protocol (协议拒绝): each a :class:`ProtocolError` with its HTTP status and code.

Shared by the platform and the reference issuer; :mod:`guarantees.protocol` re-exports every class, so
callers keep writing ``protocol.BadSignature``.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.errors import DomainError


class ProtocolError(DomainError):
    """A message was refused; ``status`` is the HTTP status, ``to_dict()`` the body."""

    status = 400
    code = "protocol_error"
    default_message = _l("The message does not follow the issuer protocol.")


class MalformedMessage(ProtocolError):
    code = "malformed_message"
    default_message = _l("The message is not a valid protocol message: %(problem)s.")

    def __init__(self, problem: str):
        super().__init__(problem=problem)


class UnknownSender(ProtocolError):
    status = 401
    code = "unknown_sender"
    default_message = _l("The sender %(sender)s is not registered (or not admitted) here.")

    def __init__(self, sender: str):
        super().__init__(sender=sender)


class BadSignature(ProtocolError):
    status = 401
    code = "bad_signature"
    default_message = _l("The signature does not match the message and the sender's registered certificate.")


class RetiredCertificate(ProtocolError):
    """The signature is valid under one of the sender's earlier certificates, no longer accepted."""

    status = 401
    code = "retired_certificate"
    default_message = _l(
        "The message is signed with %(sender)s's certificate %(fingerprint)s, which was replaced at %(retired_at)s; "
        "messages dated after that must be signed with its current certificate %(current)s."
    )
    revoked_message = _l(
        "The message is signed with %(sender)s's certificate %(fingerprint)s, which was revoked as compromised at "
        "%(retired_at)s; nothing signed with it is accepted any more. Sign with the current certificate %(current)s."
    )

    def __init__(self, sender: str, fingerprint: str, retired_at: str, current: str, *, revoked: bool = False):
        super().__init__(self.revoked_message if revoked else None, sender=sender, fingerprint=fingerprint,
                         retired_at=retired_at, current=current)


class StaleTimestamp(ProtocolError):
    status = 401
    code = "stale_timestamp"
    default_message = _l(
        "The message timestamp %(timestamp)s is %(skew)s seconds from our clock; at most %(max_skew)s "
        "are accepted. Check the sender's clock."
    )

    def __init__(self, timestamp: str, skew: int, max_skew: int):
        super().__init__(timestamp=timestamp, skew=skew, max_skew=max_skew)


class ReplayedNonce(ProtocolError):
    status = 409
    code = "replayed_nonce"
    default_message = _l("The nonce %(nonce)s was already used by %(sender)s; every message needs a fresh one.")

    def __init__(self, sender: str, nonce: str):
        super().__init__(sender=sender, nonce=nonce)


class UnknownOrder(ProtocolError):
    status = 400
    code = "unknown_order"
    default_message = _l("There is no order %(order_no)s for this sender.")

    def __init__(self, order_no: str):
        super().__init__(order_no=order_no)


class StateConflict(ProtocolError):
    """The message contradicts a final state or arrives out of order; nothing was changed."""

    status = 409
    code = "state_conflict"
    default_message = _l("%(type)s cannot be accepted for order %(order_no)s in state %(state)s.")

    def __init__(self, type: str, order_no: str, state: str):  # noqa: A002 - protocol field name
        super().__init__(type=type, order_no=order_no, state=state)
