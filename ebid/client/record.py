"""``ebid client record sign``: the host or a supervisor signs the opening record (开标记录) on their machine.

Download the current revision, add one PAdES signature in your own field (Host or Supervisor) with your
own key, upload the result. The private key never leaves this machine; the platform checks that the
earlier revisions are unchanged and that the certificate is yours. :func:`sign_record` is the same code
the demo uses to sign in-process (:func:`sign_in_process`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from flask_babel import gettext as _
from pyhanko.sign.general import SigningError

from core.clock import beijing, now
from core.pdf import sign_field
from crypto import keys
from ebid.client.errors import ClientError
from ebid.client.http import DEFAULT_RETRIES, Api

ROLE_LABEL = {"Host": "主持人 Host", "Supervisor": "监督人 Supervisor"}


def load_signing_material(key_path: Path, passphrase: str, cert_path: Path, chain_paths: tuple[Path, ...] = ()
                          ) -> tuple[Any, x509.Certificate, list[x509.Certificate]]:
    """Your encrypted key (``ebid client keygen`` format), your certificate, the CA chain."""
    data = key_path.read_bytes()
    try:
        key = keys.decrypt_private_key(data, passphrase)
    except keys.WrongPassphrase:
        raise ClientError(_("The key passphrase is wrong."), code="wrong_passphrase") from None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    chain = [c for p in chain_paths for c in x509.load_pem_x509_certificates(p.read_bytes())]
    return key, cert, chain


def sign_record(pdf: bytes, field: str, key: Any, cert: x509.Certificate, chain: list[x509.Certificate]) -> bytes:
    """Add your signature to ``field`` of the record as an incremental revision."""
    if field not in ROLE_LABEL:
        raise ClientError(_("You are not the host or a supervisor of this opening, so there is no field for you "
                            "to sign."), code="no_field")
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    name = str(names[0].value) if names else cert.subject.rfc4514_string()
    stamp = f"{ROLE_LABEL[field]}\n{name}\n{beijing(now()).strftime('%Y-%m-%d %H:%M')} 北京时间"
    try:
        return sign_field(pdf, field, key, cert, chain, stamp_text=stamp, reason="开标记录签署 / Opening record",
                          signer_name=name)
    except SigningError as exc:
        if "filled already" in str(exc):
            raise ClientError(_("Your field %(field)s of the record is already signed.", field=field),
                              code="already_signed") from None
        raise


def sign_and_upload(api: Api, tender_id: int, key: Any, cert: x509.Certificate,
                    chain: list[x509.Certificate]) -> dict[str, Any]:
    """Fetch the current revision, check its digest, sign your field, upload; return the record."""
    api.require_token()
    revision = api.get(f"/api/opening/tenders/{tender_id}/opening-record/revision")
    pdf = base64.b64decode(revision["pdf"])
    if hashlib.sha256(pdf).hexdigest() != revision["sha256"]:
        raise ClientError(_("The downloaded record does not match its SHA-256; download it again."),
                          code="digest_mismatch")
    signed = sign_record(pdf, revision.get("my_field") or "", key, cert, chain)
    return api.post(f"/api/opening/tenders/{tender_id}/opening-record/revision",
                    {"pdf": base64.b64encode(signed).decode()})


def sign_in_process(actor: Any, tender_id: int, key: Any, cert: x509.Certificate,
                    chain: list[x509.Certificate]) -> Any:
    """Sign in the server's process (the demo): the same signing code, then the same acceptance checks."""
    from bidding import opening, record_service
    from bidding.record_pdf import FIELD_OF_ROLE

    record = record_service.tick(tender_id)
    field = FIELD_OF_ROLE.get(opening.role_of(tender_id, actor.person_id) or "", "")
    signed = sign_record(record_service.current_pdf(record), field, key, cert, chain)
    return record_service.accept_signature(actor, tender_id, signed)


@click.group("record", help="The opening record (开标记录): sign it as the host or a supervisor.")
def record_cli() -> None:
    pass


SignAndUpload = Callable[[Api, int, Any, x509.Certificate, list[x509.Certificate]], dict[str, Any]]
_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


def signing_options(document: str) -> Callable[[Callable], Callable]:
    """The options of a ``sign`` command: the tender, your key and certificate, the server and token."""
    options = [
        click.option("--tender", "tender_id", required=True, type=int, help="The tender's id."),
        click.option("--key", "key_path", required=True, type=_PATH,
                     help="Your private key (encrypted, as written by 'ebid client keygen')."),
        click.option("--cert", "cert_path", required=True, type=_PATH,
                     help="Your certificate from the platform CA (PEM)."),
        click.option("--chain", "chain_paths", multiple=True, type=_PATH,
                     help="The platform CA's certificate (PEM), embedded so verifiers need only the root."),
        click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help=f"Also keep the {document} as it stands after your signature."),
        click.option("--passphrase-file", type=_PATH, default=None,
                     help="File whose first line is the key passphrase (else EBID_KEY_PASSPHRASE, else a prompt)."),
        click.option("--server", envvar="EBID_SERVER", default=None, help="The platform's address (or EBID_SERVER)."),
        click.option("--token", envvar="EBID_TOKEN", default=None, help="Your API token (better: EBID_TOKEN)."),
    ]

    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def run_signing(sign_and_upload_fn: SignAndUpload, revision_path: str, *, tender_id: int, key_path: Path,
                cert_path: Path, chain_paths: tuple[Path, ...], out_path: Path | None, passphrase_file: Path | None,
                server: str | None, token: str | None) -> dict[str, Any]:
    """Load your signing material, sign and upload; keep the signed revision in ``out_path`` if given."""
    from ebid.client.cli import read_passphrase

    try:
        key, cert, chain = load_signing_material(key_path, read_passphrase(passphrase_file), cert_path, chain_paths)
        api = Api(server or "", token, retries=DEFAULT_RETRIES)
        result = sign_and_upload_fn(api, tender_id, key, cert, chain)
        if out_path is not None:
            out_path.write_bytes(base64.b64decode(api.get(revision_path.format(tender_id=tender_id))["pdf"]))
    except ClientError as exc:
        raise click.ClickException(exc.message) from None
    return result


@record_cli.command("sign")
@signing_options("record")
def sign_command(**options: Any) -> None:
    """Sign your field of the opening record and upload the signed revision."""
    result = run_signing(sign_and_upload, "/api/opening/tenders/{tender_id}/opening-record/revision", **options)
    click.echo(_("Signed. The record is now %(status)s.", status=result["status"]))
