"""The bidder's and the custodian's side of the online opening (不见面开标): check in, decrypt, release a share.

``decrypt``: the client fetches its own envelope's header, unwraps the content key (its half, in
double-envelope mode) with the bidder's private key on this machine, and sends only that key; the
private key never leaves. ``release-share``: a key custodian fetches the share the platform holds
encrypted to its certificate, decrypts it locally with its own key and releases it. The functions take
any object with ``get(path, params=None)`` and ``post(path, json_body, params=None)`` (the client's
:class:`ebid.client.http.Api`), so the same code runs against a live server and in the tests.
"""

from __future__ import annotations

import base64
from typing import Any

from flask_babel import gettext as _

from crypto import envelope as E
from crypto import shamir
from crypto.errors import CryptoError
from crypto.header import parse_header
from ebid.client.errors import ClientError


def check_in(api: Any, tender_id: int, organisation_id: int | None = None) -> dict[str, Any]:
    """Check in (签到) for the organisation."""
    return api.post(f"/api/opening/tenders/{tender_id}/checkin", {}, params={"organisation_id": organisation_id})


def decrypt(api: Any, tender_id: int, private_key: Any, organisation_id: int | None = None,
            lot: str | None = None) -> list[dict[str, Any]]:
    """Unwrap the content key of each of the organisation's bids locally and send it; return the board rows."""
    params = {"organisation_id": organisation_id}
    bids = [b for b in api.get(f"/api/opening/tenders/{tender_id}/my-bids", params=params)
            if lot is None or b["lot"] == lot]
    if not bids:
        raise ClientError(_("Your organisation has no bid to decrypt in tender %(tender)s.", tender=tender_id),
                          code="no_bid")
    results = []
    for bid in bids:
        if bid["status"] != "pending":
            results.append(bid)
            continue
        data = api.get(f"/api/opening/tenders/{tender_id}/bids/{bid['bid']}/header", params=params)
        raw = base64.b64decode(data["header"])
        try:
            header = parse_header(raw)
            key = bytearray(E.unwrap_key_part(header, private_key)[1])
        except CryptoError as exc:
            raise ClientError(_("This key cannot unwrap the bid for lot %(lot)s: %(reason)s. Use the key the bid "
                                "was sealed for.", lot=bid["lot"], reason=str(exc)), code="not_a_recipient") from None
        try:
            results.append(api.post(f"/api/opening/tenders/{tender_id}/bids/{bid['bid']}/key",
                                    {"content_key": base64.b64encode(bytes(key)).decode()}, params=params))
        finally:
            key[:] = bytes(len(key))  # the key was sent; do not keep it
    return results


def release_share(api: Any, tender_id: int, private_key: Any) -> dict[str, Any]:
    """Decrypt this custodian's share of the opening key locally and release it."""
    data = api.get(f"/api/tenders/{tender_id}/opening-key/share")
    try:
        share = shamir.decrypt_share(base64.b64decode(data["encrypted_share"]), private_key,
                                     context=data["context"].encode())
    except CryptoError as exc:
        raise ClientError(_("Your key does not decrypt your share: %(reason)s. Use the key of the certificate the "
                            "share was encrypted to (serial %(serial)s).", reason=str(exc),
                            serial=data.get("certificate_serial", "-")), code="share_undecryptable") from None
    return api.post(f"/api/opening/tenders/{tender_id}/share",
                    {"share": base64.b64encode(share.to_bytes()).decode()})
