"""Errors of sealed-bid submission, each with a code a client can act on and a message saying what to do."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed


class EnvelopeRefused(ValidationFailed):
    """The uploaded bytes are not an envelope this tender can accept (20号令 §26: rejected with a prompt)."""

    code = "envelope_refused"
    default_message = _l("The envelope was refused; seal it again as the tender requires.")


class UploadTooLarge(ValidationFailed):
    status = 413
    code = "too_large"
    default_message = _l("The envelope is larger than this lot allows.")


class UploadIncomplete(Conflict):
    code = "upload_incomplete"
    default_message = _l("The upload is not complete yet.")


class OffsetMismatch(Conflict):
    code = "offset_mismatch"
    default_message = _l("The chunk does not continue the upload; ask for the received size and resume from there.")


class UploadClosed(RuleViolation):
    code = "upload_closed"
    default_message = _l("This upload no longer accepts data; start a new upload.")


class NoBid(RuleViolation):
    code = "no_bid"
    default_message = _l("Your organisation has no current bid for this lot.")


class LogNotPublic(Forbidden):
    code = "log_not_public"
    default_message = _l("The tender's log is published at the bid deadline; until then each bidder holds the "
                         "signed tree heads of its own receipts.")


class UploadNotFound(NotFound):
    code = "upload_not_found"
    default_message = _l("There is no such upload for your organisation.")
