"""The reference issuer's own small SQLite store (``<data dir>/issuer.sqlite3``).

Not the platform's database: the simulator stands for a bank's system and keeps its orders, letters,
claims, seen nonces and outgoing callbacks (an outbox, so a callback survives the platform being down
or the simulator restarting) in one file. One connection, guarded by a lock, shared by the web
threads and the background worker.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guarantees.protocol import NONCE_RETENTION_SECONDS

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_no TEXT PRIMARY KEY,
    data TEXT NOT NULL,                 -- the OrderApply data as received (JSON)
    state TEXT NOT NULL,                -- received | cancelled | rejected | issued
    reason TEXT NOT NULL DEFAULT '',
    guarantee_no TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS letters (
    guarantee_no TEXT PRIMARY KEY,
    order_no TEXT NOT NULL UNIQUE REFERENCES orders(order_no),
    revision INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    pdf BLOB NOT NULL,
    letter TEXT NOT NULL,               -- the LetterData as JSON (to build the revealed revision)
    status TEXT NOT NULL,               -- valid | released | claimed | paid | cancelled
    superseded TEXT NOT NULL DEFAULT '[]',
    released_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    claim_no TEXT PRIMARY KEY,
    guarantee_no TEXT NOT NULL REFERENCES letters(guarantee_no),
    order_no TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,               -- received | paid | denied
    amount_paid TEXT,
    reason TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE TABLE IF NOT EXISTS nonces (
    sender TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (sender, nonce)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- underwrite | decide_claim | reveal | callback
    order_no TEXT NOT NULL,
    payload TEXT NOT NULL,
    due_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | done | refused | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at);
CREATE TABLE IF NOT EXISTS day_counters (
    day TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
"""


def ts(value: datetime) -> str:
    """Stored form of a moment: ISO 8601 UTC with microseconds (sorts as text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Store:
    """Thread-safe access to the simulator's SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # ----------------------------------------------------------------- records

    def order(self, order_no: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM orders WHERE order_no = ?", order_no)

    def letter(self, guarantee_no: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM letters WHERE guarantee_no = ?", guarantee_no)

    def letter_for_order(self, order_no: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM letters WHERE order_no = ?", order_no)

    def claim(self, claim_no: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM claims WHERE claim_no = ?", claim_no)

    def next_sequence(self, conn: sqlite3.Connection, day: str) -> int:
        """The next guarantee number of ``day`` (inside the caller's transaction)."""
        conn.execute("INSERT INTO day_counters (day, last) VALUES (?, 1) "
                     "ON CONFLICT(day) DO UPDATE SET last = last + 1", (day,))
        return conn.execute("SELECT last FROM day_counters WHERE day = ?", (day,)).fetchone()["last"]

    # ----------------------------------------------------------------- jobs (the outbox)

    @staticmethod
    def add_job(conn: sqlite3.Connection, kind: str, order_no: str, payload: dict, due_at: datetime) -> None:
        conn.execute("INSERT INTO jobs (kind, order_no, payload, due_at) VALUES (?, ?, ?, ?)",
                     (kind, order_no, json.dumps(payload, ensure_ascii=False), ts(due_at)))

    def due_jobs(self, now: datetime, limit: int = 20) -> list[sqlite3.Row]:
        """Pending jobs that are due; a callback waits for every earlier callback of its order."""
        return self.all(
            "SELECT * FROM jobs AS j WHERE j.state = 'pending' AND j.due_at <= ? AND NOT (j.kind = 'callback' "
            "AND EXISTS (SELECT 1 FROM jobs AS e WHERE e.state = 'pending' AND e.kind = 'callback' "
            "AND e.order_no = j.order_no AND e.id < j.id)) ORDER BY j.due_at, j.id LIMIT ?", ts(now), limit)

    def finish_job(self, job_id: int, state: str, error: str = "") -> None:
        """End a job; a success keeps the error of the last failed attempt, for the record."""
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET state = ?, attempts = attempts + 1, "
                         "last_error = CASE WHEN ? = '' THEN last_error ELSE ? END WHERE id = ?",
                         (state, error, error[:500], job_id))

    def retry_job(self, job_id: int, due_at: datetime, error: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ?",
                         (ts(due_at), error[:500], job_id))

    def jobs(self, order_no: str | None = None) -> list[sqlite3.Row]:
        if order_no is None:
            return self.all("SELECT * FROM jobs ORDER BY id")
        return self.all("SELECT * FROM jobs WHERE order_no = ? ORDER BY id", order_no)


class SqliteNonceStore:
    """The protocol's NonceStore over the simulator's file: a nonce is accepted once per sender."""

    def __init__(self, store: Store, retention: int = NONCE_RETENTION_SECONDS):
        if retention < NONCE_RETENTION_SECONDS:
            raise ValueError(f"nonces must be kept at least {NONCE_RETENTION_SECONDS} s")
        self.store = store
        self.retention = timedelta(seconds=retention)

    def remember(self, sender: str, nonce: str, at: datetime) -> bool:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM nonces WHERE seen_at < ?", (ts(at - self.retention),))
            cursor = conn.execute("INSERT OR IGNORE INTO nonces (sender, nonce, seen_at) VALUES (?, ?, ?)",
                                  (sender, nonce, ts(at)))
            return cursor.rowcount == 1
