"""Presence in the opening hall (在线名单): one record per connection, shared by every web process.

With Redis configured the records live in one Redis hash per tender, so that every web process sees the
same room (a connection is served by one process, the room spans them all). Each record carries the time
it was last seen; hall clients refresh it every few seconds, and a record not refreshed for
:data:`STALE_AFTER` seconds (its process died without a disconnect) is dropped on the next read. Without
Redis (the embedded single-process mode) the records stay in process memory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

STALE_AFTER = 90.0  # seconds; clients refresh every 25 s (hall.js), Socket.IO pings every 25 s
KEY_TTL = 24 * 3600  # a tender's hash disappears a day after its last change
KEY_PREFIX = "ebid:hall:presence:"


class Presence(Protocol):
    def add(self, tender_id: int, sid: str, entry: dict[str, Any]) -> None: ...
    def touch(self, tender_id: int, sid: str) -> None: ...
    def remove(self, tender_id: int, sid: str) -> bool: ...
    def entries(self, tender_id: int) -> list[dict[str, Any]]: ...
    def claim(self, tender_id: int, seconds: float) -> bool: ...


class MemoryPresence:
    """Presence in this process's memory (embedded mode: one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[int, dict[str, dict[str, Any]]] = {}
        self._clock = clock

    def add(self, tender_id: int, sid: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._rooms.setdefault(tender_id, {})[sid] = {**entry, "seen": self._clock()}

    def touch(self, tender_id: int, sid: str) -> None:
        with self._lock:
            entry = self._rooms.get(tender_id, {}).get(sid)
            if entry is not None:
                entry["seen"] = self._clock()

    def remove(self, tender_id: int, sid: str) -> bool:
        with self._lock:
            return self._rooms.get(tender_id, {}).pop(sid, None) is not None

    def entries(self, tender_id: int) -> list[dict[str, Any]]:
        limit = self._clock() - STALE_AFTER
        with self._lock:
            room = self._rooms.get(tender_id, {})
            for sid in [s for s, e in room.items() if e["seen"] < limit]:
                del room[sid]
            return [dict(e) for e in room.values()]

    def claim(self, tender_id: int, seconds: float) -> bool:
        """Always this process's turn: there is no other process (the broadcaster spaces its own sends)."""
        return True


class RedisPresence:
    """Presence in Redis: one hash per tender, field = connection id, value = JSON record."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock

    @classmethod
    def from_url(cls, url: str) -> RedisPresence:
        import redis

        return cls(redis.Redis.from_url(url))

    @staticmethod
    def key(tender_id: int) -> str:
        return f"{KEY_PREFIX}{tender_id}"

    def claim(self, tender_id: int, seconds: float) -> bool:
        """Take the room's broadcast turn for ``seconds``: True for one process, False for the others meanwhile."""
        turn = f"{KEY_PREFIX}turn:{tender_id}"
        return bool(self._redis.set(turn, b"1", nx=True, px=max(int(seconds * 1000), 1)))

    def add(self, tender_id: int, sid: str, entry: dict[str, Any]) -> None:
        key = self.key(tender_id)
        pipe = self._redis.pipeline()
        pipe.hset(key, sid, json.dumps({**entry, "seen": self._clock()}))
        pipe.expire(key, KEY_TTL)
        pipe.execute()

    def touch(self, tender_id: int, sid: str) -> None:
        raw = self._redis.hget(self.key(tender_id), sid)
        if raw is not None:
            self._redis.hset(self.key(tender_id), sid, json.dumps({**json.loads(raw), "seen": self._clock()}))

    def remove(self, tender_id: int, sid: str) -> bool:
        return bool(self._redis.hdel(self.key(tender_id), sid))

    def entries(self, tender_id: int) -> list[dict[str, Any]]:
        key, limit = self.key(tender_id), self._clock() - STALE_AFTER
        out, stale = [], []
        for sid, raw in self._redis.hgetall(key).items():
            entry = json.loads(raw)
            if entry.get("seen", 0) < limit:
                stale.append(sid)
            else:
                out.append(entry)
        if stale:
            self._redis.hdel(key, *stale)
        return out
