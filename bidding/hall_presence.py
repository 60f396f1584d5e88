"""Presence in the opening hall (在线名单): one record per connection, shared by every web process.

With Redis configured the records live in one Redis hash per tender, so that every web process sees the
same room (a connection is served by one process, the room spans them all). Each record carries the time
it was last seen; hall clients refresh it every few seconds, and a record not refreshed for
:data:`STALE_AFTER` seconds (its process died without a disconnect) is dropped on the next read. Without
Redis (the embedded single-process mode) the records stay in process memory.

The store also keeps, per room, the presence view last broadcast and its sequence number (:meth:`sent`,
:meth:`record_sent`): ``hall.presence`` carries only the changes since that view
(:mod:`bidding.hall_broadcast`, docs/opening-hall.md).
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
    def sent(self, tender_id: int) -> tuple[int, list[dict[str, Any]]]: ...
    def record_sent(self, tender_id: int, seq: int, view: list[dict[str, Any]]) -> bool: ...


class MemoryPresence:
    """Presence in this process's memory (embedded mode: one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[int, dict[str, dict[str, Any]]] = {}
        self._sent: dict[int, tuple[int, list[dict[str, Any]]]] = {}
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

    def sent(self, tender_id: int) -> tuple[int, list[dict[str, Any]]]:
        """The sequence number and the view of the room's last presence broadcast ((0, []) before any)."""
        with self._lock:
            seq, view = self._sent.get(tender_id, (0, []))
            return seq, [dict(row) for row in view]

    def record_sent(self, tender_id: int, seq: int, view: list[dict[str, Any]]) -> bool:
        """Record broadcast ``seq`` of ``view``, unless another send recorded ``seq`` (or later) meanwhile."""
        with self._lock:
            if self._sent.get(tender_id, (0, []))[0] != seq - 1:
                return False
            self._sent[tender_id] = (seq, [dict(row) for row in view])
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

    @staticmethod
    def sent_key(tender_id: int) -> str:
        return f"{KEY_PREFIX}sent:{tender_id}"

    def sent(self, tender_id: int) -> tuple[int, list[dict[str, Any]]]:
        """The sequence number and the view of the room's last presence broadcast ((0, []) before any)."""
        raw = self._redis.get(self.sent_key(tender_id))
        if raw is None:
            return 0, []
        value = json.loads(raw)
        return int(value["seq"]), list(value["view"])

    def record_sent(self, tender_id: int, seq: int, view: list[dict[str, Any]]) -> bool:
        """Record broadcast ``seq`` of ``view`` (one JSON value, so seq and view are read together), unless
        another process recorded ``seq`` (or later) meanwhile: compare-and-set under WATCH."""
        import redis

        key = self.sent_key(tender_id)
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if (int(json.loads(raw)["seq"]) if raw is not None else 0) != seq - 1:
                    return False
                pipe.multi()
                pipe.set(key, json.dumps({"seq": seq, "view": view}), ex=KEY_TTL)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

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
