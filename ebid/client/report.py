"""``ebid client report sign``: a committee member signs the evaluation report (评标报告) on their machine.

Download the current revision, add one PAdES signature in your own field (``MemberN``) with your own key,
upload the result. The private key never leaves this machine; the platform checks that the earlier
revisions are unchanged, that only your field was filled and that the certificate is yours.
:func:`sign_in_process` is the same signing code run inside the server's process (the demo).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import click
from cryptography import x509
from flask_babel import gettext as _
from pyhanko.sign.general import SigningError

from core.errors import DomainError
from ebid.client.errors import ClientError
from ebid.client.http import Api
from ebid.client.record import run_signing, signing_options
from evaluation.report_verify import sign_report

API = "/api/evaluation/tenders/{tender_id}/report/revision"


def sign_revision(pdf: bytes, field: str | None, key: Any, cert: x509.Certificate,
                  chain: list[x509.Certificate]) -> bytes:
    """Add your signature to ``field`` of the report as an incremental revision."""
    if not field:
        raise ClientError(_("You are not a member of this tender's evaluation committee, so there is no field for "
                            "you to sign."), code="no_field")
    try:
        return sign_report(pdf, field, key, cert, chain, field)
    except DomainError as exc:
        if exc.code == "field_signed":
            raise ClientError(_("Your field %(field)s of the report is already signed.", field=field),
                              code="already_signed") from None
        raise ClientError(exc.to_dict()["message"], code=exc.code) from None
    except SigningError as exc:
        raise ClientError(_("The report could not be signed: %(reason)s", reason=str(exc)), code="signing_failed")\
            from None


SIGN_ATTEMPTS = 3  # members sign in turn; one who signed a revision another member just replaced tries again


def sign_and_upload(api: Api, tender_id: int, key: Any, cert: x509.Certificate,
                    chain: list[x509.Certificate]) -> dict[str, Any]:
    """Fetch the current revision, check its digest, sign your field, upload; return the report's state.

    When another member's signature landed between the download and the upload, the platform refuses the
    upload (``revision_altered``: it must extend the current revision); the revision is then fetched and
    signed again, up to three times.
    """
    api.require_token()
    for attempt in range(1, SIGN_ATTEMPTS + 1):
        revision = api.get(API.format(tender_id=tender_id))
        pdf = base64.b64decode(revision["pdf"])
        if hashlib.sha256(pdf).hexdigest() != revision["sha256"]:
            raise ClientError(_("The downloaded report does not match its SHA-256; download it again."),
                              code="digest_mismatch")
        signed = sign_revision(pdf, revision.get("my_field"), key, cert, chain)
        try:
            return api.post(API.format(tender_id=tender_id), {"pdf": base64.b64encode(signed).decode()})
        except ClientError as exc:
            if exc.code != "revision_altered" or attempt == SIGN_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


def sign_in_process(actor: Any, tender_id: int, key: Any, cert: x509.Certificate,
                    chain: list[x509.Certificate]) -> Any:
    """Sign in the server's process (the demo): the same signing code, then the same acceptance checks."""
    from evaluation import report as reports

    report = reports.require_report(tender_id)
    mine = reports.field_of_person(report, actor.person_id)
    signed = sign_revision(reports.current_pdf(report), mine["field"] if mine else None, key, cert, chain)
    return reports.accept_signature(actor, tender_id, signed)


@click.group("report", help="The evaluation report (评标报告): sign it as a member of the committee.")
def report_cli() -> None:
    pass


@report_cli.command("sign")
@signing_options("report")
def sign_command(**options: Any) -> None:
    """Sign your field of the evaluation report and upload the signed revision."""
    result = run_signing(sign_and_upload, API, **options)
    click.echo(_("Signed. The report is now %(status)s.", status=result["status"]))
