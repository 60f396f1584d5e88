"""``ebid client ...``: the bidder's commands (also ``python -m ebid.client``).

keygen -> csr -> (the platform CA issues the certificate) -> build -> seal -> upload -> verify-receipt;
withdraw and status. Secrets never come from the command line, where ``ps`` and shell history would show
them: key passphrases come from ``--passphrase-file``, ``EBID_KEY_PASSPHRASE`` or a prompt. The API token
comes from ``--token`` or (better) ``EBID_TOKEN``. Every refusal exits 1 with a message saying what to do.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask_babel import gettext as _

from core.identity import uscc as uscc_rules
from crypto import keys
from crypto.suites import SUITE_P256
from ebid.client import bidzip, sealing
from ebid.client.errors import ClientError
from ebid.client.http import DEFAULT_RETRIES, Api
from ebid.client.state import ServerState, home_dir, read_json
from ebid.client.upload import DEFAULT_CHUNK, session_path, upload_envelope
from ebid.client.verify import (
    WITHDRAWAL_TYPE,
    check_bundle,
    check_history,
    check_online,
    check_withdrawal,
    platform_keys,
    remember_head,
)

MIN_PASSPHRASE = 12
KEY_FILE, PUBLIC_FILE = "bidder.key", "bidder.pub.pem"


def handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the client's errors into a clean exit 1 with the message (no traceback)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as exc:
            raise click.ClickException(exc.message) from None
        except OSError as exc:  # a file that cannot be read or written: say which, and why
            raise click.ClickException(_("Cannot use the file %(path)s: %(reason)s", path=exc.filename or "-",
                                         reason=exc.strerror or str(exc))) from None
    return run


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """The key passphrase: first line of ``passphrase_file``, else EBID_KEY_PASSPHRASE, else a prompt."""
    if passphrase_file is not None:
        return (passphrase_file.read_text(encoding="utf-8").splitlines() or [""])[0]
    if os.environ.get("EBID_KEY_PASSPHRASE"):
        return os.environ["EBID_KEY_PASSPHRASE"]
    return click.prompt(_("Key passphrase"), hide_input=True, confirmation_prompt=confirm)


def _check() -> Callable[[str], None]:
    return lambda line: click.echo(f"  ok  {line}")


passphrase_option = click.option(
    "--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="File whose first line is the key passphrase (else EBID_KEY_PASSPHRASE, else a prompt).")
server_option = click.option("--server", envvar="EBID_SERVER", default=None,
                             help="The platform's address, e.g. https://ebid.example.cn (or EBID_SERVER).")
token_option = click.option("--token", envvar="EBID_TOKEN", default=None,
                            help="Your personal API token (better: the EBID_TOKEN environment variable).")
home_option = click.option("--home", envvar="EBID_CLIENT_HOME", default=None, type=click.Path(path_type=Path),
                           help="Folder of the client's state (default ~/.ebid-client).")
org_option = click.option("--organisation-id", type=int, envvar="EBID_ORGANISATION_ID", default=None,
                          help="The organisation to act for, if your account belongs to several bidders.")
retries_option = click.option("--retries", type=click.IntRange(0, 20), default=DEFAULT_RETRIES, show_default=True,
                              help="How often to retry when the connection fails.")


def _api(server: str | None, token: str | None, retries: int = DEFAULT_RETRIES) -> Api:
    return Api(server or "", token, retries=retries)


@click.group("client", help="The bidder's side: keys, build, seal, upload, receipts, withdraw (投标人客户端).")
def client_cli() -> None:
    pass


@client_cli.command("keygen")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for bidder.key (encrypted) and bidder.pub.pem.")
@passphrase_option
@click.option("--kdf-cost", type=click.IntRange(keys.MIN_SCRYPT_LOG2_N, keys.MAX_SCRYPT_LOG2_N),
              default=keys.DEFAULT_SCRYPT_LOG2_N, show_default=True, help="scrypt cost, log2(N).")
@handled
def keygen_command(out_dir: Path, passphrase_file: Path | None, kdf_cost: int) -> None:
    """Make an EC P-256 key pair; the private key is stored only encrypted under your passphrase."""
    key_path, public_path = out_dir / KEY_FILE, out_dir / PUBLIC_FILE
    if key_path.exists() or public_path.exists():
        raise ClientError(_("%(path)s already holds a key; choose another --out folder (a key is never overwritten).",
                            path=str(out_dir)))
    passphrase = read_passphrase(passphrase_file, confirm=True)
    if len(passphrase) < MIN_PASSPHRASE:
        raise ClientError(_("The passphrase must have at least %(n)s characters.", n=MIN_PASSPHRASE))
    key = keys.generate_private_key()
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(keys.encrypt_private_key(key, passphrase, log2_n=kdf_cost))
    public_path.write_bytes(keys.public_key_pem(key))
    click.echo(_("private key (encrypted): %(path)s", path=str(key_path)))
    click.echo(_("public key: %(path)s", path=str(public_path)))
    click.echo(_("key id: %(id)s", id=SUITE_P256.key_id(key.public_key()).hex()))
    click.echo(_("Keep the key file and its passphrase safe: without them you cannot decrypt your bid at the opening."))


@client_cli.command("csr")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org-uscc", required=True, help="Your organisation's unified social credit code (统一社会信用代码).")
@click.option("--name", required=True, help="Your organisation's registered name.")
@click.option("--email", default=None, help="Contact e-mail to put in the request (optional).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@passphrase_option
@handled
def csr_command(key_path: Path, org_uscc: str, name: str, email: str | None, out_path: Path,
                passphrase_file: Path | None) -> None:
    """Make the certificate signing request for your organisation's certificate."""
    code = uscc_rules.normalize(org_uscc)
    problem = uscc_rules.problem(code)
    if problem is not None:
        raise ClientError(_("%(uscc)s is not a valid unified social credit code: %(reason)s", uscc=org_uscc,
                            reason=str(problem.message)))
    key = sealing.load_key(key_path, read_passphrase(passphrase_file))
    out_path.write_bytes(keys.make_csr(key, name.strip(), uscc=code, organisation_name=name.strip(), email=email))
    click.echo(_("certificate request written to %(path)s; give it to the platform CA (平台CA) to be certified for "
                 "%(uscc)s.", path=str(out_path), uscc=code))


@client_cli.command("build")
@click.option("--lot", required=True, help="The lot's code (标段编号), e.g. 01.")
@click.option("--price", required=True, help="Bid price in yuan, e.g. 12345678.00 (投标报价).")
@click.option("--duration", required=True, type=int, help="Duration in calendar days (工期).")
@click.option("--quality", required=True, help="Quality commitment (质量标准), e.g. 合格.")
@click.option("--manager", required=True, help="Project manager's name (项目经理).")
@click.option("--manager-cert", required=True, help="Project manager's registration certificate number.")
@click.option("--alternatives/--no-alternatives", default=False, help="The bid includes an alternative offer.")
@click.option("--doc", "docs", multiple=True, type=click.Path(path_type=Path), help="A document to include (repeat).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@handled
def build_command(lot: str, price: str, duration: int, quality: str, manager: str, manager_cert: str,
                  alternatives: bool, docs: tuple[Path, ...], out_path: Path) -> None:
    """Build the bid ZIP: bid.json (the opening form) and the documents with their SHA-256."""
    offer = bidzip.make_offer(lot=lot, price=price, duration_days=duration, quality=quality, manager_name=manager,
                              manager_certificate_no=manager_cert, alternatives=alternatives)
    bid = bidzip.build_bid(offer, docs, out_path)
    click.echo(_("bid for lot %(lot)s written to %(path)s (%(size)s bytes, SHA-256 %(sha)s)", lot=offer.lot,
                 path=str(out_path), size=bid.size, sha=bid.sha256))
    click.echo(_("price %(price)s CNY, duration %(days)s days, quality %(quality)s, %(n)s document(s)",
                 price=f"{offer.price:.2f}", days=offer.duration_days, quality=offer.quality, n=len(bid.documents)))


@client_cli.command("seal")
@click.option("--tender", "tender_id", required=True, type=int, help="The tender's id.")
@click.option("--lot", "lot_id", required=True, type=int, help="The lot's id.")
@click.option("--bid", "bid_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cert", "cert_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your organisation's certificate from the platform CA.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=click.IntRange(1), default=None,
              help="Bid version to seal (default: the next one, asked from the server).")
@click.option("--own-key", "own_key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Public key (PEM) you will decrypt with at the opening (default: your certificate's key).")
@server_option
@token_option
@org_option
@passphrase_option
@retries_option
@handled
def seal_command(tender_id: int, lot_id: int, bid_path: Path, key_path: Path, cert_path: Path, out_path: Path,
                 version: int | None, own_key_path: Path | None, server: str | None, token: str | None,
                 organisation_id: int | None, passphrase_file: Path | None, retries: int) -> None:
    """Seal the bid for a tender and lot: encrypt, wrap the key for the recipients, sign."""
    api = _api(server, token, retries)
    cert = sealing.load_certificate(cert_path)
    own_key = sealing.load_public_key(own_key_path) if own_key_path else None
    bidzip.read_bid(bid_path)  # refuse a bad bid before asking for the passphrase
    key = sealing.load_key(key_path, read_passphrase(passphrase_file))
    sealed = sealing.seal_bid(api, tender_id=tender_id, lot_id=lot_id, bid_path=bid_path, key=key, cert=cert,
                              out=out_path, version=version, own_public_key=own_key,
                              organisation_id=organisation_id)
    info = sealed.sidecar
    click.echo(_("sealed %(path)s: tender %(tender)s lot %(lot)s, bid version %(v)s, %(size)s bytes",
                 path=str(out_path), tender=info["tender_code"], lot=info["lot_code"], v=info["bid_version"],
                 size=info["size"]))
    click.echo(_("envelope SHA-256 %(sha)s (the receipt will name it)", sha=info["sha256"]))
    click.echo(_("recipients: %(r)s; key mode %(mode)s", mode=info["key_mode"],
                 r=", ".join({1: "tender opening key", 2: "your key"}[r["role"]] for r in info["recipients"])))


@client_cli.command("upload")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tender", "tender_id", type=int, default=None, help="Tender id (default: from the seal).")
@click.option("--lot", "lot_id", type=int, default=None, help="Lot id (default: from the seal).")
@click.option("--chunk-kib", type=click.IntRange(1, 32 * 1024), default=DEFAULT_CHUNK // 1024, show_default=True,
              help="Chunk size in KiB (the server may ask for smaller chunks); an envelope no larger than one "
                   "chunk is sent in one request.")
@click.option("--receipt-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the receipt (default: ENVELOPE.receipt.json).")
@server_option
@token_option
@home_option
@retries_option
@handled
def upload_command(envelope: Path, tender_id: int | None, lot_id: int | None, chunk_kib: int,
                   receipt_out: Path | None, server: str | None, token: str | None, home: Path | None,
                   retries: int) -> None:
    """Upload a sealed envelope (in one request, or resumable), finalize it and check the signed receipt."""
    server = server or (read_json(sealing.sidecar_path(envelope)) or {}).get("server")
    api = _api(server, token, retries)
    state = ServerState(home_dir(home), api.server)

    shown = [-1]

    def progress(received: int, size: int) -> None:
        percent = received * 100 // size
        if percent // 10 > shown[0] // 10 or received == size:  # a line per 10 %, not per chunk
            shown[0] = percent
            click.echo(_("  %(percent)s%% (%(received)s / %(size)s bytes)", percent=percent, received=received,
                         size=size))

    try:
        done = upload_envelope(api, state, envelope, tender_id=tender_id, lot_id=lot_id, chunk_size=chunk_kib * 1024,
                               out=receipt_out, progress=progress, report=_check())
    except KeyboardInterrupt:
        raise click.ClickException(_("Interrupted. The upload is remembered in %(path)s: run the same command again "
                                     "to resume.", path=str(session_path(envelope)))) from None
    receipt = done.bundle["receipt"]["body"]
    if done.resumed_from:
        click.echo(_("resumed at byte %(n)s", n=done.resumed_from))
    click.echo(_("%(sent)s bytes sent in this run", sent=done.sent))
    click.echo(_("accepted: tender %(tender)s lot %(lot)s version %(v)s, received at %(at)s ms, log index %(i)s",
                 tender=receipt["tender"], lot=receipt["lot"], v=receipt["bid_version"], at=receipt["received_at_ms"],
                 i=receipt["log_index"]))
    click.echo(_("receipt: %(path)s", path=str(done.receipt_path)))


@client_cli.command("verify-receipt")
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Check that the receipt names this envelope (SHA-256 and size).")
@click.option("--offline", is_flag=True, help="Only the offline checks (no fresh proofs from the server).")
@server_option
@token_option
@home_option
@retries_option
@handled
def verify_receipt_command(receipt_file: Path, envelope: Path | None, offline: bool, server: str | None,
                           token: str | None, home: Path | None, retries: int) -> None:
    """Check a receipt offline, then fresh inclusion and consistency proofs from the server."""
    try:
        bundle = json.loads(receipt_file.read_text(encoding="utf-8"))
    except ValueError:
        raise ClientError(_("%(path)s is not a receipt saved by 'ebid client upload'.", path=str(receipt_file))) from None
    api = _api(server or bundle.get("server"), token, retries)
    state = ServerState(home_dir(home), api.server)
    keys_ = platform_keys(None if offline else api, state)
    receipt = check_bundle(bundle, keys_, envelope=envelope, report=_check())
    if offline:
        click.echo(_("receipt verified offline (pinned keys of %(server)s).", server=api.server))
        return
    outcome = check_online(api, state, bundle, receipt, keys_, _check())
    click.echo(_("receipt verified, with fresh proofs from %(server)s%(final)s.", server=api.server,
                 final=_(" and the final log") if outcome == "final" else ""))


@client_cli.command("withdraw")
@click.option("--tender", "tender_id", required=True, type=int)
@click.option("--lot", "lot_id", required=True, type=int)
@server_option
@token_option
@home_option
@org_option
@retries_option
@handled
def withdraw_command(tender_id: int, lot_id: int, server: str | None, token: str | None, home: Path | None,
                     organisation_id: int | None, retries: int) -> None:
    """Withdraw (撤回) your current bid for a lot before the deadline; the withdrawal is logged."""
    api = _api(server, token, retries)
    api.require_token()
    state = ServerState(home_dir(home), api.server)
    keys_ = platform_keys(api, state)
    params = api.get(f"/api/tenders/{tender_id}/sealing")
    lot = sealing.lot_of(params, lot_id)
    kept = [b for b in state.kept(tender_id) if b.get("lot_id") == lot_id and "bidder_commitment" in b]
    commitment = kept[-1]["bidder_commitment"]["commitment"] if kept else None
    result = api.post(f"/api/tenders/{tender_id}/lots/{lot_id}/withdraw", params={"organisation_id": organisation_id})
    check_withdrawal(result, keys_, tender_code=params["tender_code"], lot_code=lot["code"], commitment=commitment,
                     report=_check())
    remember_head(state, tender_id, result["tree_head"], keys_)
    check_history(api, state, tender_id, keys_, _check(), organisation_id)
    record = {"type": WITHDRAWAL_TYPE, "server": api.server, "tender_id": tender_id, "lot_id": lot_id, **result}
    path = state.keep(tender_id, f"lot-{lot_id}-v{result['bid']['version']}.withdrawal.json", record)
    click.echo(_("bid version %(v)s for lot %(lot)s withdrawn; record kept in %(path)s", v=result["bid"]["version"],
                 lot=lot["code"], path=str(path)))


@client_cli.command("status")
@click.option("--tender", "tender_id", type=int, default=None, help="Only this tender.")
@server_option
@token_option
@home_option
@org_option
@retries_option
@handled
def status_command(tender_id: int | None, server: str | None, token: str | None, home: Path | None,
                   organisation_id: int | None, retries: int) -> None:
    """Your organisation's bids per lot, unfinished uploads, and the platform keys pinned."""
    api = _api(server, token, retries)
    api.require_token()
    state = ServerState(home_dir(home), api.server)
    pinned = state.pinned_keys()
    if pinned:
        click.echo(_("platform keys pinned %(at)s: log %(log)s..., receipt %(receipt)s...", at=pinned["pinned_at"],
                     log=pinned["keys"]["log"]["key_id"][:16], receipt=pinned["keys"]["receipt"]["key_id"][:16]))
    lots = api.get("/api/my/bids", {"tender_id": tender_id, "organisation_id": organisation_id})
    if not lots:
        click.echo(_("no bids yet"))
    for item in lots:
        current = item["current"]
        line = _("tender %(tender)s (id %(tid)s) lot %(lot)s (id %(lid)s): ", tender=item["tender_code"],
                 tid=item["tender_id"], lot=item["lot_code"], lid=item["lot_id"])
        if current:
            line += _("version %(v)s current, received %(at)s, SHA-256 %(sha)s...", v=current["version"],
                      at=current["received_at"], sha=current["envelope_sha256"][:16])
        else:
            line += _("no current bid")
        click.echo(line)
        for bid in item["history"]:
            if bid["state"] != "current":
                click.echo(_("    version %(v)s %(state)s", v=bid["version"], state=bid["state"]))
        for upload in item["uploads"]:
            click.echo(_("    unfinished upload %(id)s: %(received)s / %(size)s bytes (%(status)s)", id=upload["id"],
                         received=upload["received"], size=upload["size"], status=upload["status"]))
        click.echo(_("    next version to seal: %(v)s", v=item["next_bid_version"]))


def main() -> None:
    """Entry point of ``python -m ebid.client`` (the same commands without the platform's app)."""
    client_cli(prog_name="ebid client")


# --- online opening: check-in, decrypt, release-share ------------------------------------------------

def _load_key(key_path: Path, passphrase_file: Path | None) -> Any:
    try:
        return keys.decrypt_private_key(key_path.read_bytes(), read_passphrase(passphrase_file))
    except (keys.KeyFileError, keys.WrongPassphrase) as exc:
        raise ClientError(str(exc), code="key_unusable") from None


@client_cli.command("check-in")
@click.option("--tender", "tender_id", required=True, type=int)
@server_option
@token_option
@org_option
@handled
def check_in_command(tender_id: int, server: str | None, token: str | None, organisation_id: int | None) -> None:
    """Check in (签到) to the tender's online opening for your organisation."""
    from ebid.client import opening as client_opening
    api = _api(server, token)
    api.require_token()
    row = client_opening.check_in(api, tender_id, organisation_id)
    click.echo(_("checked in for %(org)s at %(at)s", org=row["organisation"], at=row["at"]))


@client_cli.command("decrypt")
@click.option("--tender", "tender_id", required=True, type=int)
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your decryption key file (the key your bid was sealed for).")
@click.option("--lot", default=None, help="Only the bid for this lot code.")
@passphrase_option
@server_option
@token_option
@org_option
@handled
def decrypt_command(tender_id: int, key_path: Path, lot: str | None, passphrase_file: Path | None,
                    server: str | None, token: str | None, organisation_id: int | None) -> None:
    """Decrypt your bid at the opening: unwrap the content key here and send only that key (解密)."""
    from ebid.client import opening as client_opening
    api = _api(server, token)
    api.require_token()
    for row in client_opening.decrypt(api, tender_id, _load_key(key_path, passphrase_file), organisation_id, lot):
        click.echo(_("lot %(lot)s: %(status)s", lot=row["lot"], status=row["status"]))


@client_cli.command("release-share")
@click.option("--tender", "tender_id", required=True, type=int)
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The key of your custodian certificate.")
@passphrase_option
@server_option
@token_option
@handled
def release_share_command(tender_id: int, key_path: Path, passphrase_file: Path | None, server: str | None,
                          token: str | None) -> None:
    """Key custodian: decrypt your share of the opening key here and release it (释放密钥分片)."""
    from ebid.client import opening as client_opening
    api = _api(server, token)
    api.require_token()
    result = client_opening.release_share(api, tender_id, _load_key(key_path, passphrase_file))
    click.echo(_("share %(index)s released (%(released)s of %(threshold)s needed)", index=result["share_index"],
                 released=result["released"], threshold=result["threshold"]))


# --- the opening record (开标记录): host and supervisors sign it ------------------------------------------
from ebid.client.record import record_cli  # noqa: E402

client_cli.add_command(record_cli)

# --- the evaluation report (评标报告): every committee member signs it ---------------------------------------
from ebid.client.report import report_cli  # noqa: E402

client_cli.add_command(report_cli)
