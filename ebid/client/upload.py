"""Upload of a sealed envelope (投标文件上传): in one request, or resumable; the receipt kept locally.

An envelope that fits in one chunk (8 MiB by default, at most the server's ``max_chunk``) is sent in one
request (``POST .../lots/{lot}/bids``): the answer is the receipt. If that request gets no answer, running
the same command again finds out whether the platform took the envelope (then it says so) or sends it
again. A larger envelope goes through the resumable upload:
the session is remembered in ``bid.ebe.upload.json`` beside the envelope as soon as the server opens it,
so the same command resumes after an interruption, a lost connection or a server restart: it asks the
server how many bytes it holds (the server's spool is the truth) and sends the rest in chunks (4 MiB by
default). Resending a chunk the server already has is harmless (the server compares it). Finalizing
twice returns the same receipt. The receipt bundle (signed receipt, log entry, inclusion proof, bidder
commitment) is checked offline before it is written to ``bid.ebe.receipt.json``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from crypto import merkle
from crypto.errors import CryptoError
from ebid.client.errors import ClientError
from ebid.client.http import Api, ApiError, Unreachable
from ebid.client.sealing import envelope_target
from ebid.client.state import ServerState, read_json, write_json
from ebid.client.verify import (
    BUNDLE_TYPE,
    PlatformKeys,
    Report,
    VerificationFailed,
    check_bundle,
    file_digest,
    platform_keys,
    remember_head,
)

DEFAULT_CHUNK = 8 << 20
SESSION_TYPE = "ebid/client-upload/v1"

Progress = Callable[[int, int], None]


def session_path(envelope: Path) -> Path:
    return envelope.with_name(envelope.name + ".upload.json")


def receipt_path(envelope: Path) -> Path:
    return envelope.with_name(envelope.name + ".receipt.json")


@dataclass(frozen=True)
class Uploaded:
    bundle: dict[str, Any]
    receipt_path: Path
    resumed_from: int
    sent: int


def _uploads(upload_id: str) -> str:
    return f"/api/uploads/{upload_id}"


def _resume(api: Api, session: dict[str, Any], org: int | None) -> dict[str, Any] | None:
    """The server's view of a remembered session, or None when a new session must be started."""
    try:
        state = api.get(_uploads(session["upload_id"]), {"organisation_id": org})
    except ApiError as exc:
        if exc.code in ("upload_not_found", "not_found"):
            return None
        raise
    status = state["status"]
    if status in ("open", "finalizing", "finalized"):
        return state
    if status == "cancelled":
        return None
    reason = state.get("failure_message") or status
    if status == "withdrawn":
        raise ClientError(_("The bid deadline passed before this upload was finalized; it counts as withdrawn "
                            "(%(reason)s).", reason=reason), code="deadline_passed")
    raise ClientError(_("The platform refused this envelope: %(reason)s", reason=reason),
                      code=state.get("failure_code") or "upload_failed")


def _precheck(api: Api, target: dict[str, Any], sha256: str) -> dict[str, Any]:
    """Before sending anything: is the lot still open, and is this envelope's version the next one?

    Returns the tender's sealing parameters (``max_chunk``: the largest request body the server takes).
    """
    params = api.get(f"/api/tenders/{target['tender_id']}/sealing")
    lot = next((lot for lot in params["lots"] if lot["id"] == target["lot_id"]), None)
    if params["tender_code"] != target["tender_code"] or lot is None or lot["code"] != target["lot_code"]:
        raise ClientError(_("The envelope was sealed for tender %(tender)s lot %(lot)s, not for tender id %(tid)s lot id "
                            "%(lid)s; upload it with the ids of the tender and lot it was sealed for.",
                            tender=target["tender_code"], lot=target["lot_code"], tid=target["tender_id"],
                            lid=target["lot_id"]), code="wrong_lot")
    if not params["accepting_bids"]:
        raise ClientError(_("Tender %(tender)s does not accept bids now (bid deadline %(deadline)s).",
                            tender=params["tender_code"], deadline=params.get("bid_deadline_at") or "-"),
                          code="deadline_passed")
    mine = api.get("/api/my/bids", {"tender_id": target["tender_id"], "organisation_id": target["organisation_id"]})
    lot_bids = next((item for item in mine if item["lot_id"] == target["lot_id"]), None)
    if lot_bids is None or lot_bids["next_bid_version"] == target["bid_version"]:
        return params
    if any(b["envelope_sha256"] == sha256 for b in lot_bids["history"]):
        raise ClientError(_("The platform already accepted this envelope (version %(v)s); its receipt was written when "
                            "it was uploaded. To change your bid, seal a new version.", v=target["bid_version"]),
                          code="already_accepted")
    raise ClientError(_("This envelope was sealed as version %(v)s of your bid, but the next version for lot %(lot)s is "
                        "%(next)s: seal the bid again (ebid client seal) and upload the new envelope.",
                        v=target["bid_version"], lot=target["lot_code"], next=lot_bids["next_bid_version"]),
                      code="wrong_version")


def _cancel_stale(api: Api, session: dict[str, Any], org: int | None) -> None:
    """The file was sealed again since an unfinished upload: cancel that upload (best effort)."""
    with contextlib.suppress(ClientError):  # already finished, cancelled or gone: nothing to clean up
        api.request("DELETE", _uploads(session["upload_id"]), params={"organisation_id": org})


def _open_session(api: Api, envelope: Path, target: dict[str, Any], sha256: str, size: int) -> tuple[dict, dict]:
    """Resume the remembered session for these bytes on this server, or start one and remember it."""
    path = session_path(envelope)
    session = read_json(path)
    org = target["organisation_id"]
    if session and session.get("sha256") == sha256 and session.get("size") == size:
        if session.get("server") != api.server:
            raise ClientError(_("This envelope's upload was started on %(other)s; give --server %(other)s to resume "
                                "it, or delete %(path)s to start again on %(server)s.", other=session.get("server"),
                                path=str(path), server=api.server), code="other_server")
        state = _resume(api, session, org)
        if state is not None:
            return session, state
    elif session and session.get("server") == api.server:
        _cancel_stale(api, session, org)
    _precheck(api, target, sha256)
    state = api.post(f"/api/tenders/{target['tender_id']}/lots/{target['lot_id']}/uploads",
                     {"size": size, "sha256": sha256, **({"organisation_id": org} if org is not None else {})})
    session = {"type": SESSION_TYPE, "server": api.server, "upload_id": state["id"], "tender_id": target["tender_id"],
               "lot_id": target["lot_id"], "sha256": sha256, "size": size,
               "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_json(path, session)
    return session, state


def _resumable_session(envelope: Path, sha256: str, size: int) -> bool:
    session = read_json(session_path(envelope))
    return bool(session) and session.get("sha256") == sha256 and session.get("size") == size


def _send_whole(api: Api, envelope: Path, target: dict[str, Any], sha256: str, size: int,
                progress: Progress | None) -> dict[str, Any]:
    """The envelope in one request (upload and finalize at once); the answer is the receipt bundle."""
    org = target["organisation_id"]
    stale = read_json(session_path(envelope))
    if stale and stale.get("server") == api.server:
        _cancel_stale(api, stale, org)
    session_path(envelope).unlink(missing_ok=True)
    try:
        result = api.request("POST", f"/api/tenders/{target['tender_id']}/lots/{target['lot_id']}/bids",
                             params={"sha256": sha256, "organisation_id": org}, data=envelope.read_bytes())
    except Unreachable as exc:
        raise ClientError(_("%(reason)s Run the same command again: it checks whether the platform took the envelope "
                            "and sends it again if not.", reason=exc.message), code=exc.code) from None
    if progress:
        progress(size, size)
    return result


def _send(api: Api, envelope: Path, session: dict[str, Any], received: int, chunk_size: int, org: int | None,
          progress: Progress | None) -> int:
    """Send the bytes from ``received`` on; return how many bytes this call sent."""
    size, sent = session["size"], 0
    with envelope.open("rb") as fh:
        while received < size:
            fh.seek(received)
            chunk = fh.read(min(chunk_size, size - received))
            try:
                answer = api.put(_uploads(session["upload_id"]), chunk, {"offset": received, "organisation_id": org})
                received, sent = answer["received"], sent + len(chunk)
            except ApiError as exc:
                if exc.code != "offset_mismatch":
                    raise
                received = api.get(_uploads(session["upload_id"]), {"organisation_id": org})["received"]
            if progress:
                progress(received, size)
    return sent


def _check_consistency(state: ServerState, tender_id: int, consistency: dict[str, Any] | None,
                       new_head: Any, report: Report) -> None:
    """A replacement's bundle proves the log of the previous receipt grew into this one: check it if we hold it."""
    if not consistency:
        return
    old = next((h for h in state.heads(tender_id) if h["body"]["tree_size"] == consistency["from_size"]), None)
    if old is None:
        return
    try:
        merkle.verify_consistency(consistency["from_size"], consistency["to_size"],
                                  bytes.fromhex(old["body"]["root_hash"]), new_head.root_hash,
                                  [bytes.fromhex(p) for p in consistency["proof"]])
    except (CryptoError, ValueError) as exc:
        raise VerificationFailed(_("the log behind your earlier receipt is not a prefix of this one (%(reason)s).",
                                   reason=str(exc))) from None
    report(_("the log of your earlier tree head (%(old)s entries) is a prefix of this one (%(new)s entries)",
             old=consistency["from_size"], new=consistency["to_size"]))


def make_bundle(result: dict[str, Any], target: dict[str, Any], envelope: Path, sha256: str, size: int,
                server: str) -> dict[str, Any]:
    return {"type": BUNDLE_TYPE, "server": server, "tender_id": target["tender_id"], "lot_id": target["lot_id"],
            "organisation_id": target["organisation_id"], "tender_code": target["tender_code"],
            "lot_code": target["lot_code"], "bidder_uscc": target["bidder_uscc"],
            "bid_version": target["bid_version"], "envelope": {"path": str(envelope), "sha256": sha256, "size": size},
            "receipt": result["receipt"], "log_entry": result["log_entry"],
            "inclusion_proof": result["inclusion_proof"], "consistency": result.get("consistency"),
            "bidder_commitment": result["bidder_commitment"], "bid": result["bid"]}


def _resumable(api: Api, envelope: Path, target: dict[str, Any], sha256: str, size: int, chunk_size: int,
               progress: Progress | None) -> tuple[dict[str, Any], int, int]:
    """Upload (or resume) in chunks, then finalize; return the answer, where it resumed and the bytes sent."""
    session, server_state = _open_session(api, envelope, target, sha256, size)
    org = target["organisation_id"]
    resumed_from = server_state["received"]
    sent = 0
    if server_state["status"] == "open":
        limit = max(1, min(chunk_size, int(server_state.get("max_chunk") or chunk_size)))
        try:
            sent = _send(api, envelope, session, resumed_from, limit, org, progress)
        except Unreachable as exc:
            raise ClientError(_("%(reason)s The upload is remembered in %(path)s: run the same command again to resume "
                                "where it stopped.", reason=exc.message, path=str(session_path(envelope))),
                              code=exc.code) from None
    try:
        result = api.post(f"{_uploads(session['upload_id'])}/finalize", params={"organisation_id": org},
                          idempotent=True)
    except ApiError as exc:
        if exc.code not in ("upload_incomplete",) and exc.status not in (401, 403):
            session_path(envelope).unlink(missing_ok=True)  # refused for good: a new seal needs a new session
        raise
    return result, resumed_from, sent


def upload_envelope(api: Api, state: ServerState, envelope: Path, *, tender_id: int | None = None,
                    lot_id: int | None = None, chunk_size: int = DEFAULT_CHUNK, out: Path | None = None,
                    progress: Progress | None = None, report: Report = lambda _line: None) -> Uploaded:
    """Upload (in one request, or resumable), check the receipt offline and keep it; return where it was written."""
    api.require_token()
    envelope = Path(envelope)
    target = envelope_target(envelope, tender_id, lot_id)
    sha256, size = file_digest(envelope)
    keys: PlatformKeys = platform_keys(api, state)
    whole = size <= chunk_size and not _resumable_session(envelope, sha256, size)
    if whole:  # fits one request: the server's limit decides
        whole = size <= int(_precheck(api, target, sha256).get("max_chunk") or 0)
    if whole:
        result = _send_whole(api, envelope, target, sha256, size, progress)
        resumed_from, sent = 0, size
    else:
        result, resumed_from, sent = _resumable(api, envelope, target, sha256, size, chunk_size, progress)
    bundle = make_bundle(result, target, envelope, sha256, size, api.server)
    receipt = check_bundle(bundle, keys, envelope=None, report=report)
    head = remember_head(state, target["tender_id"], bundle["receipt"]["body"]["tree_head"], keys)
    _check_consistency(state, target["tender_id"], bundle["consistency"], head, report)
    destination = Path(out) if out else receipt_path(envelope)
    write_json(destination, bundle)
    state.keep(target["tender_id"], f"lot-{target['lot_id']}-v{receipt.bid_version}.receipt.json", bundle)
    session_path(envelope).unlink(missing_ok=True)
    return Uploaded(bundle, destination, resumed_from, sent)
