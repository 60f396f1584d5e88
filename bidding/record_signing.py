"""Checking a signed revision of the opening record (开标记录签署) uploaded by the host or the supervisor.

The signer downloads the current revision, signs its own empty field on its own machine (the private key
never reaches the platform) and uploads the result. :func:`check_revision` accepts it only if the
revisions the platform holds are an unchanged prefix of the upload, the upload adds exactly one
signature, in the signer's own field, that pyHanko validates (intact, valid, chained to the platform CA),
that covers the whole file, and that the new revision changes nothing but that field. The caller then
checks that the certificate belongs to the signer and is not revoked (:mod:`bidding.record_service`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel, SuspiciousModification
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from core.errors import ValidationFailed
from core.pdf import to_asn1

MAX_RECORD_PDF = 20 * 1024 * 1024


class SignatureRefused(ValidationFailed):
    code = "signature_refused"
    default_message = _l("The signed record was refused.")


@dataclass(frozen=True)
class NewSignature:
    """The one signature an accepted upload adds."""

    field_name: str
    certificate: x509.Certificate


def _refuse(code: str, message: Any, **params: Any) -> SignatureRefused:
    return SignatureRefused(message, code=code, **params)


def _reader(data: bytes) -> PdfFileReader:
    try:
        return PdfFileReader(io.BytesIO(data))
    except Exception:  # pyHanko raises several kinds on broken files; all mean "not a PDF we can read"
        raise _refuse("not_a_pdf", _l("The upload is not a readable PDF; upload the file your signing tool wrote."))\
            from None


def check_revision(held: bytes, uploaded: bytes, field_name: str, ca_cert: x509.Certificate) -> NewSignature:
    """Check an uploaded revision against the one held; return the new signature or raise SignatureRefused."""
    if len(uploaded) > MAX_RECORD_PDF:
        raise _refuse("too_large", _l("The upload is larger than %(n)s MiB; it cannot be a signed record."),
                      n=MAX_RECORD_PDF // (1024 * 1024))
    if len(uploaded) <= len(held) or not uploaded.startswith(held):
        raise _refuse("revision_altered", _l(
            "The upload does not start with the record as the platform holds it: an earlier revision was "
            "changed, or another file was signed. Download the current revision again and sign it unchanged."))
    held_reader = _reader(held)
    held_fields = {s.field_name for s in held_reader.embedded_signatures}
    reader = _reader(uploaded)
    new = [s for s in reader.embedded_signatures if s.field_name not in held_fields]
    if len(new) != 1:
        raise _refuse("one_signature", _l("The upload must add exactly one signature; it adds %(n)s."), n=len(new))
    sig = new[0]
    if sig.field_name != field_name:
        raise _refuse("wrong_field", _l("You signed the field %(signed)s; sign your own field %(field)s instead."),
                      signed=sig.field_name, field=field_name)
    context = ValidationContext(trust_roots=[to_asn1(ca_cert)], allow_fetching=False)
    try:
        status = validate_pdf_signature(sig, context)
    except Exception:  # a malformed signature dictionary or CMS blob
        raise _refuse("signature_invalid", _l("The new signature cannot be read; sign again with the ebid client."))\
            from None
    if not (status.intact and status.valid):
        raise _refuse("signature_invalid", _l("The new signature does not verify: the signed bytes were changed "
                                              "after signing. Sign the current revision again."))
    if not status.trusted:
        raise _refuse("not_platform_ca", _l("The signing certificate was not issued by this platform's CA; sign "
                                            "with the certificate the platform issued to you."))
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        raise _refuse("not_whole_file", _l("The new signature does not cover the whole file: something was added "
                                           "after it. Upload the file exactly as signed."))
    # the held file is a prefix, so its revisions are the upload's first ones: compare with its last
    diff = DEFAULT_DIFF_POLICY.review_file(reader, held_reader.xrefs.total_revisions - 1)
    if isinstance(diff, SuspiciousModification) or diff.modification_level > ModificationLevel.FORM_FILLING:
        raise _refuse("content_changed", _l("The new revision changes more than your signature field; sign the "
                                            "current revision without editing it."))
    return NewSignature(sig.field_name, x509.load_der_x509_certificate(sig.signer_cert.dump()))
