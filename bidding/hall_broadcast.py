"""Coalesced presence broadcasts of the opening hall (在线名单推送): at most one per room per interval.

Sending the whole presence list to the whole room on every join costs O(N^2) messages for N joins (each
of size O(N)). Instead a join or a leave only marks the tender's room as changed; a timer (one background
task per web process, running while some room is marked) sends one ``hall.presence`` per marked room at
most once per interval. With several processes the processes also take turns through the presence store
(:meth:`bidding.hall_presence.RedisPresence.claim`), so that the room gets at most one broadcast per
interval in all. A room whose turn is taken stays marked and is sent on a later tick, so every client's
list converges to the store's content at most about one interval after the last change.

Each broadcast is a delta (:func:`bidding.hall_queries.presence_payload`): the rows whose connection count
changed since the room's last broadcast, with a sequence number; a room marked but unchanged sends nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0  # seconds between two presence broadcasts to one room
UNCHANGED = "unchanged"  # what ``send`` returns when the room's presence had not changed: nothing was sent
RETRY = "retry"  # ``send`` returns it when another process's send came in between: the room stays marked


class PresenceBroadcaster:
    """Per-process coalescing of ``hall.presence``: :meth:`mark` on a change, :meth:`flush` on each tick.

    ``send(tender_id)`` sends the room's presence changes (returns None, or :data:`UNCHANGED` when there were
    none, or :data:`RETRY` to keep the room marked); ``claim(tender_id, seconds)`` is True when this
    process may broadcast to the room now (the other processes then wait ``seconds``); ``start_task(target)``
    runs the timer in the background (None: no timer, :meth:`flush` is called by hand).
    """

    def __init__(self, send: Callable[[int], None], *, interval: float = DEFAULT_INTERVAL,
                 claim: Callable[[int, float], bool] | None = None,
                 start_task: Callable[[Callable[[], None]], object] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = interval
        self._send = send
        self._claim = claim or (lambda _tender_id, _seconds: True)
        self._start_task = start_task
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._dirty: set[int] = set()
        self._last: dict[int, float] = {}
        self._running = False
        self._stopped = False
        self.broadcasts = 0  # rooms sent so far (the benchmark and the tests read it)

    @property
    def tick(self) -> float:
        """How often the timer looks at the marked rooms: a quarter interval, so a lone change goes out fast."""
        return max(self.interval / 4, 0.01)

    def pending(self) -> set[int]:
        with self._lock:
            return set(self._dirty)

    def mark(self, tender_id: int) -> None:
        """Note that the room's presence changed; the timer sends it when the room's turn comes."""
        with self._lock:
            if self._stopped:
                return
            self._dirty.add(tender_id)
            start = not self._running and self._start_task is not None
            if start:
                self._running = True
        if start:
            self._start_task(self._run)

    def flush(self, *, force: bool = False) -> list[int]:
        """Send each marked room whose interval has passed (``force``: every marked room now); return them."""
        at = self._clock()
        with self._lock:
            due = sorted(t for t in self._dirty if force or at - self._last.get(t, float("-inf")) >= self.interval)
            # forget rooms that have been quiet for a while, so the table does not grow with every tender
            for tender_id in [t for t, last in self._last.items() if at - last > 2 * self.interval
                              and t not in self._dirty]:
                del self._last[tender_id]
        sent = []
        for tender_id in due:
            if not force and not self._claim(tender_id, self.interval):
                continue  # another process broadcast to this room within the interval: stay marked
            with self._lock:
                self._dirty.discard(tender_id)  # before sending: a change during the send marks it again
                self._last[tender_id] = at
            try:
                outcome = self._send(tender_id)
            except Exception:
                log.exception("presence of hall %s could not be sent; retrying on a later tick", tender_id)
                outcome = RETRY
            if outcome == RETRY:
                with self._lock:
                    self._dirty.add(tender_id)
                continue
            if outcome != UNCHANGED:
                sent.append(tender_id)
        self.broadcasts += len(sent)
        return sent

    def _run(self) -> None:
        """The timer: tick until no room is marked, then stop (the next mark starts it again)."""
        while True:
            self._sleep(self.tick)
            try:
                self.flush()
            except Exception:  # the store is unreachable: keep ticking, the rooms stay marked
                log.exception("presence broadcast tick failed")
            with self._lock:
                if self._stopped or not self._dirty:
                    self._running = False
                    return

    def stop(self) -> None:
        """Drop the marks and end the timer (the app shuts down; tests end)."""
        with self._lock:
            self._stopped = True
            self._dirty.clear()
