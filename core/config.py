"""Configuration from the environment.

Everything local (database file, stored files, keys) lives under ``EBID_DATA_DIR`` (default
``./instance``). The Flask secret key is generated on first run and persisted there with mode 0600;
it is never committed and never logged.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _read_or_create_secret(path: Path, nbytes: int = 48) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return value


@dataclass
class Settings:
    """Typed settings read once at start-up; tests build their own."""

    data_dir: Path
    database_url: str
    redis_url: str | None = None
    secret_key: str = ""
    ocid_prefix: str = "ocds-ebid00"
    publisher_name: str = "ebid"  # OCDS package publisher, e.g. the trading centre (交易中心)
    region: str = "CN"
    default_locale: str = "zh_CN"
    offline_locale: str = "zh_CN"  # language of messages rendered outside a request (CLI, tasks)
    timezone: str = "Asia/Shanghai"
    public_base_url: str = "http://127.0.0.1:5000"
    testing: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        data_dir = Path(overrides.pop("data_dir", None) or _env("EBID_DATA_DIR", "instance")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = overrides.pop("database_url", None) or _env(
            "EBID_DATABASE_URL", f"sqlite:///{data_dir / 'ebid.sqlite3'}"
        )
        settings = cls(
            data_dir=data_dir,
            database_url=normalize_database_url(database_url),
            redis_url=overrides.pop("redis_url", None) or _env("EBID_REDIS_URL"),
            ocid_prefix=_env("EBID_OCID_PREFIX", "ocds-ebid00"),
            publisher_name=_env("EBID_PUBLISHER_NAME", "ebid"),
            region=_env("EBID_REGION", "CN"),
            offline_locale=_env("EBID_OFFLINE_LOCALE", "zh_CN"),
            public_base_url=_env("EBID_PUBLIC_URL", "http://127.0.0.1:5000"),
        )
        rules_file = _env("EBID_RULES_FILE")
        if rules_file:
            settings.extra["rule_overrides"] = load_rule_overrides(Path(rules_file))
        for key, value in overrides.items():
            setattr(settings, key, value)
        if not settings.secret_key:
            settings.secret_key = _env("EBID_SECRET_KEY") or _read_or_create_secret(data_dir / "secret_key")
        return settings


def load_rule_overrides(path: Path) -> dict:
    """Read regional rule overrides: ``{"370200": {"bid_period_min_days": 25}, ...}`` (JSON).

    Overrides may only make the statutory limits stricter; the rule book refuses looser ones at start-up.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"EBID_RULES_FILE {path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SystemExit(f"EBID_RULES_FILE {path}: expected an object of region code -> {{rule: value}}")
    return data


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
