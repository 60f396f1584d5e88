"""The platform's JSON API as the bidder's client sees it (standard library ``urllib``, no extra package).

Authentication is a personal API token (``Authorization: Bearer ebid_...``) from ``--token`` or
``EBID_TOKEN``. The server's refusals come as ``{code, message, fields}`` and become :class:`ApiError`
with the server's message (which says what to do); a server that cannot be reached becomes
:class:`Unreachable`. Idempotent calls (reads, chunk uploads, finalize) are retried with a growing pause
when the connection fails or the server answers 502/503/504, so a short outage or a restart does not
end an upload.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http.client import HTTPException
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask_babel import gettext as _

from ebid.client.errors import ClientError

RETRY_STATUSES = frozenset({502, 503, 504})
DEFAULT_TIMEOUT = 120.0
DEFAULT_RETRIES = 4
USER_AGENT = "ebid-client/1"


class ApiError(ClientError):
    """The server refused the request; ``message`` is the server's explanation."""


class Unreachable(ClientError):
    """The server could not be reached (or kept failing) after the retries."""


def normalise_server(server: str | None) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; refused when it is not an http(s) address."""
    value = (server or "").strip().rstrip("/")
    if not value:
        raise ClientError(_("Give the platform's address with --server (or EBID_SERVER), e.g. "
                            "https://ebid.example.cn."), code="server_missing")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ClientError(_("The server address %(server)s is not an http:// or https:// address such as "
                            "https://ebid.example.cn.", server=value), code="server_invalid")
    return value


def preferred_language() -> str:
    """The language the server should answer in: EBID_LANG, else the locale's (zh -> zh-CN), else English."""
    wanted = os.environ.get("EBID_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "zh-CN" if wanted.lower().startswith("zh") else "en"


def installation_id() -> str | None:
    """This client installation's random id, made once and kept in the client's folder.

    Sent as ``X-Ebid-Client`` so the platform can tell which installation uploaded a bid; the
    supervisors' collusion screens compare it across bidders (条例 §40: same device).
    """
    from ebid.client.state import home_dir

    path = home_dir() / "installation-id"
    try:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()[:64] or None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_hex(16)
        path.write_text(value, encoding="utf-8")
        return value
    except OSError:  # a read-only home: the platform still sees the User-Agent
        return None


class Api:
    """A connection to one platform, optionally authenticated by an API token."""

    def __init__(self, server: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, pause: float = 1.0, language: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.server = normalise_server(server)
        self.token = (token or "").strip() or None
        self.timeout = timeout
        self.retries = max(0, retries)
        self.pause = pause
        self.language = language or preferred_language()
        self._sleep = sleep

    def require_token(self) -> None:
        if not self.token:
            raise ClientError(_("This command acts for your organisation: give your API token with --token or the "
                                "EBID_TOKEN environment variable (make one on your account page)."),
                              code="token_missing")

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return self.server + path + (f"?{urlencode(query)}" if query else "")

    def _once(self, method: str, url: str, body: bytes | None, content_type: str | None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "Accept-Language": self.language, "User-Agent": USER_AGENT}
        client_id = installation_id()
        if client_id:
            headers["X-Ebid-Client"] = f"ebid-client/{client_id}"
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
                data: bytes | None = None, idempotent: bool = False) -> Any:
        """Send a request and return the decoded JSON answer; raise ApiError or Unreachable."""
        url = self.url(path, params)
        body, content_type = data, "application/octet-stream" if data is not None else None
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        attempts = 1 + self.retries  # a non-idempotent call is repeated only when it certainly never arrived
        last: str = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.pause * 2 ** (attempt - 1))
            try:
                status, payload = self._once(method, url, body, content_type)
            except (urllib.error.URLError, HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = str(reason) or type(reason).__name__
                if not idempotent and not _nothing_sent(reason):
                    break
                continue
            if idempotent and status in RETRY_STATUSES:
                last = f"HTTP {status}"  # a proxy or a server restarting: try again, then count as unreachable
                continue
            return self._decode(status, payload)
        raise Unreachable(_("Cannot reach the platform at %(server)s (%(reason)s). Check the address and your "
                            "network, then run the same command again.", server=self.server, reason=last),
                          code="server_unreachable")

    def _decode(self, status: int, payload: bytes) -> Any:
        try:
            value = json.loads(payload.decode("utf-8")) if payload else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = None
        if 200 <= status < 300:
            if value is None and payload:
                raise ApiError(_("The server at %(server)s did not answer with JSON; is this an ebid platform?",
                                 server=self.server), code="not_json", status=status)
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            message, code = value["message"], str(value.get("code") or "error")
            fields = value.get("fields") if isinstance(value.get("fields"), dict) else {}
        else:
            message, code, fields = _("The server answered HTTP %(status)s.", status=status), f"http_{status}", {}
        if status == 401:
            message += " " + _("Check the API token you gave with --token or EBID_TOKEN.")
        raise ApiError(message, code=code, fields=fields, status=status)

    # --- shorthands -------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params, idempotent=True)

    def post(self, path: str, json_body: Any = None, params: Mapping[str, Any] | None = None, *,
             idempotent: bool = False) -> Any:
        return self.request("POST", path, params=params, json_body=json_body if json_body is not None else {},
                            idempotent=idempotent)

    def put(self, path: str, data: bytes, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("PUT", path, params=params, data=data, idempotent=True)


def _nothing_sent(reason: Any) -> bool:
    """True when the request certainly did not reach the server (safe to retry even a non-idempotent call)."""
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)
