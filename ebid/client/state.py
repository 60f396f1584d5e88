"""The client's local state: pinned platform keys, tree heads seen, receipts and withdrawals kept.

Everything lives under one folder (``--home``, ``EBID_CLIENT_HOME``, default ``~/.ebid-client``), one
sub-folder per server::

    <home>/servers/<host_port>/keys.json                    the platform's public keys, pinned on first use
    <home>/servers/<host_port>/tenders/<id>/heads.json      every signed tree head this bidder was given
    <home>/servers/<host_port>/tenders/<id>/receipts/       a copy of each receipt bundle and withdrawal

Nothing secret is kept here (private keys stay where ``keygen`` wrote them, encrypted). Files are written
atomically (temporary file, fsync, rename), so an interrupted command never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_HOME = "~/.ebid-client"


def home_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The state folder: ``explicit``, else ``EBID_CLIENT_HOME``, else ``~/.ebid-client``."""
    return Path(explicit or os.environ.get("EBID_CLIENT_HOME") or DEFAULT_HOME).expanduser()


def write_json(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """Write ``data`` as JSON to ``path`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when there is no such file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def server_slug(server: str) -> str:
    """A folder name for a server address: ``https://ebid.example.cn:8443`` -> ``ebid.example.cn_8443``."""
    parts = urlsplit(server)
    host = parts.hostname or "server"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path.strip("/").replace("/", "_")
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{host}_{port}{'_' + path if path else ''}")


class ServerState:
    """The local state kept for one server."""

    def __init__(self, home: Path, server: str) -> None:
        self.server = server
        self.root = home / "servers" / server_slug(server)

    @property
    def keys_path(self) -> Path:
        return self.root / "keys.json"

    def tender_dir(self, tender_id: int) -> Path:
        return self.root / "tenders" / str(int(tender_id))

    def heads_path(self, tender_id: int) -> Path:
        return self.tender_dir(tender_id) / "heads.json"

    def receipts_dir(self, tender_id: int) -> Path:
        return self.tender_dir(tender_id) / "receipts"

    def pinned_keys(self) -> dict[str, Any] | None:
        return read_json(self.keys_path)

    def pin_keys(self, record: dict[str, Any]) -> None:
        write_json(self.keys_path, record)

    def heads(self, tender_id: int) -> list[dict[str, Any]]:
        """The signed tree heads seen for the tender (as signed documents), smallest first."""
        return list(read_json(self.heads_path(tender_id)) or [])

    def save_heads(self, tender_id: int, heads: list[dict[str, Any]]) -> None:
        write_json(self.heads_path(tender_id), sorted(heads, key=lambda h: h["body"]["tree_size"]))

    def keep(self, tender_id: int, name: str, data: Any) -> Path:
        """Keep a copy of a receipt bundle or withdrawal record; return where."""
        path = self.receipts_dir(tender_id) / name
        write_json(path, data)
        return path

    def kept(self, tender_id: int) -> list[dict[str, Any]]:
        folder = self.receipts_dir(tender_id)
        if not folder.is_dir():
            return []
        return [read_json(p) for p in sorted(folder.glob("*.json"))]
