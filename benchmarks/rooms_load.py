"""Scoring rooms, part 2: one client process holding the Socket.IO clients of whole scoring rooms (评标室).

Each client is a python-socketio ``AsyncClient`` (aiohttp, websocket transport only, no reconnection),
connected to the ``/room`` namespace of one of the servers in turn with ``auth={"token": ...}`` (its own
API token; the baseline ignores it), then ``join`` with its evaluation id. The process prints
``{"ready": ...}`` once every client has joined (or failed) and then obeys commands on stdin, one a line,
answering each with one JSON line:

* ``stop N``: measurement 1. Every ``room.progress`` event carrying ``bench_seq`` / ``bench_sent`` (put
  there by the driver's emitter) was recorded with its latency = receive time - ``bench_sent``; after
  waiting for the stragglers (bounded), print the latencies and the missing / duplicated counts for
  ``N`` events sent to each room.
* ``save INTERVAL DURATION``: measurement 2. Every member client sends ``action`` ``save_sheet`` (one
  more criterion typed into a sheet; the whole draft sent, as room.js does) every INTERVAL seconds for DURATION seconds, each save after the
  previous one's answer (an autosave never overlaps itself). Every client records the ``room.progress``
  events of the other members. A member's k-th progress event received is matched with that member's
  k-th answered save (one socket, one member: the server commits its saves in order), and checked
  against it (same bid, same number of criteria filled). Latency = receive time - the sender's emit
  time (same process, same clock).
* ``quit`` (or end of input): disconnect and exit.

The clients of one room must live in one process (the driver hands out whole rooms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import socketio

NAMESPACE = "/room"
COUNTED = ("room.progress", "room.presence", "room.members", "room.sheet", "room.status", "other")


class Client:
    """One room client (an expert or a supervisor) and what it saw."""

    def __init__(self, plan: dict, url: str, rng: random.Random) -> None:
        self.plan, self.url, self.rng = plan, url, rng
        self.evaluation_id = plan["evaluation_id"]
        self.member_id = plan.get("member_id")
        self.sio = socketio.AsyncClient(reconnection=False)
        self.connect_s: float | None = None
        self.join_s: float | None = None
        self.error: str | None = None
        self.state_keys: list[str] = []
        self.disconnected_early = False
        self.leaving = False
        self.reset()
        self.sio.on("room.progress", self._progress, namespace=NAMESPACE)
        for name in COUNTED[1:-1]:
            self.sio.on(name, self._count(name), namespace=NAMESPACE)
        self.sio.on("*", self._other, namespace=NAMESPACE)
        self.sio.on("disconnect", self._gone, namespace=NAMESPACE)
        # what this member has typed so far: bid -> {criterion: value}; the cursor walks bids x criteria
        self.typed: dict[int, dict[str, str]] = defaultdict(dict)
        self.cursor = 0
        self.revision: dict[int, int | None] = {}

    def reset(self) -> None:
        self.seen: dict[int, float] = {}  # measurement 1: bench_seq -> latency (s)
        self.duplicates = 0
        self.received: dict[int, list[tuple[float, int | None, int | None]]] = defaultdict(list)  # sender -> events
        self.emits: list[dict] = []  # this member's saves: {"t", "bid", "filled", "ok", "ack_s", "code"}
        self.events = dict.fromkeys(COUNTED, 0)

    def _count(self, name: str):
        def handler(*_args) -> None:
            self.events[name] += 1
        return handler

    def _other(self, event, *_args) -> None:
        self.events["other"] += 1

    def _progress(self, data=None, *_args) -> None:
        received = time.time()
        self.events["room.progress"] += 1
        if not isinstance(data, dict):
            return
        seq = data.get("bench_seq")
        if seq is not None:
            if seq in self.seen:
                self.duplicates += 1
            else:
                self.seen[seq] = received - data["bench_sent"]
            return
        sender = data.get("member_id")
        if sender is not None and sender != self.member_id:
            self.received[sender].append((received, data.get("bid_opening_id"), data.get("filled")))

    def _gone(self, *_args) -> None:
        if not self.leaving:
            self.disconnected_early = True

    async def enter(self, timeout: float) -> None:
        start = time.perf_counter()
        try:
            await self.sio.connect(self.url, namespaces=[NAMESPACE], transports=["websocket"],
                                   auth={"token": self.plan["token"]}, wait_timeout=timeout)
            self.connect_s = time.perf_counter() - start
            answer = await self.call("join", {"evaluation_id": self.evaluation_id}, timeout)
            if not (isinstance(answer, dict) and answer.get("ok")):
                self.error = f"join refused: {answer}"
            elif isinstance(answer.get("state"), dict):
                self.state_keys = sorted(answer["state"])
            self.join_s = time.perf_counter() - start - self.connect_s
        except Exception as exc:  # noqa: BLE001 (every failure is counted, none stops the run)
            self.error = f"{type(exc).__name__}: {exc}"

    async def call(self, event: str, data: dict, timeout: float):
        """``call`` that fails as soon as the connection drops (python-socketio would wait for the timeout)."""
        call = asyncio.ensure_future(self.sio.call(event, data, namespace=NAMESPACE, timeout=timeout))
        while not call.done():
            await asyncio.wait([call], timeout=0.5)
            if not call.done() and (self.disconnected_early or not self.sio.connected):
                call.cancel()
                raise ConnectionError(f"disconnected while waiting for the answer to {event}")
        return call.result()

    def next_value(self) -> tuple[int, str, str, int]:
        """The next keystroke: (bid, criterion, value, criteria filled on that bid afterwards)."""
        criteria, bids = self.plan["criteria"], self.plan["bids"]
        bid = bids[(self.cursor // len(criteria)) % len(bids)]
        criterion = criteria[self.cursor % len(criteria)]
        self.cursor += 1
        if criterion["kind"] == "pass_fail":
            value = "pass"
        else:
            low, high = float(criterion["min"]), float(criterion["max"])
            value = f"{self.rng.uniform(low, high):.1f}"
            if not low <= float(value) <= high:
                value = f"{high:g}"
        self.typed[bid][criterion["code"]] = value
        return bid, criterion["code"], value, len(self.typed[bid])

    async def type_sheets(self, interval: float, duration: float, timeout: float) -> None:
        """Autosave one more criterion every ``interval`` s for ``duration`` s (measurement 2)."""
        start = time.time()
        due = start + self.rng.uniform(0, interval)
        while due < start + duration and not self.disconnected_early:
            await asyncio.sleep(max(0.0, due - time.time()))
            bid, _code, _value, filled = self.next_value()
            # as room.js does: the sheet's whole valid draft, its comments and the revision it last saw
            args = {"evaluation_id": self.evaluation_id, "name": "save_sheet", "bid_opening_id": bid,
                    "values": dict(self.typed[bid]), "comments": {}, "revision": self.revision.get(bid)}
            emit = {"t": time.time(), "bid": bid, "filled": filled, "ok": False, "ack_s": None, "code": None}
            self.emits.append(emit)
            try:
                answer = await self.call("action", args, timeout)
            except Exception as exc:  # noqa: BLE001
                answer = {"ok": False, "code": type(exc).__name__}
            emit["ack_s"] = time.time() - emit["t"]
            emit["ok"] = isinstance(answer, dict) and bool(answer.get("ok"))
            if emit["ok"]:
                sheet = answer.get("sheet") if isinstance(answer.get("sheet"), dict) else answer
                if isinstance(sheet.get("revision"), int):
                    self.revision[bid] = sheet["revision"]
            else:
                emit["code"] = answer.get("code") if isinstance(answer, dict) else repr(answer)[:80]
            due = max(due + interval, time.time())

    async def leave(self) -> None:
        self.leaving = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 10)


def listen_result(clients: list[Client], sent: int) -> dict:
    joined = [c for c in clients if c.error is None]
    return {"sent": sent, "latencies": [round(x, 5) for c in joined for x in c.seen.values()],
            "missing": sum(max(sent - len(c.seen), 0) for c in joined),
            "duplicates": sum(c.duplicates for c in joined),
            "disconnected_early": sum(c.disconnected_early for c in joined),
            "events": {k: sum(c.events[k] for c in joined) for k in COUNTED}}


def save_result(clients: list[Client]) -> dict:
    """Match every member's answered saves with what the other clients of its room received."""
    joined = [c for c in clients if c.error is None]
    by_room: dict[int, list[Client]] = defaultdict(list)
    for c in joined:
        by_room[c.evaluation_id].append(c)
    latencies, acks, refused = [], [], defaultdict(int)
    missing = extra = mismatched = saves = 0
    for room in by_room.values():
        for sender in (c for c in room if c.member_id is not None):
            done = [e for e in sender.emits if e["ok"]]
            saves += len(done)
            acks += [round(e["ack_s"], 5) for e in sender.emits if e["ack_s"] is not None]
            for e in sender.emits:
                if not e["ok"]:
                    refused[str(e["code"])] += 1
            for receiver in room:
                if receiver is sender:
                    continue
                got = receiver.received.get(sender.member_id, [])
                missing += max(len(done) - len(got), 0)
                extra += max(len(got) - len(done), 0)
                for (at, bid, filled), e in zip(got, done, strict=False):
                    if bid != e["bid"] or (filled is not None and filled != e["filled"]):
                        mismatched += 1
                    latencies.append(round(at - e["t"], 5))
    return {"saves": saves, "refused": dict(refused), "latencies": latencies, "ack_s": acks, "missing": missing,
            "extra": extra, "mismatched": mismatched,
            "disconnected_early": sum(c.disconnected_early for c in joined),
            "events": {k: sum(c.events[k] for c in joined) for k in COUNTED}}


async def _drain(clients: list[Client], done, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not done():
        await asyncio.sleep(0.1)


async def listen_phase(joined: list[Client], clients: list[Client], sent: int, drain: float) -> dict:
    """Measurement 1: wait (bounded) for the stragglers of the ``sent`` events, then report."""
    await _drain(joined, lambda: all(len(c.seen) >= sent for c in joined if not c.disconnected_early), drain)
    return listen_result(clients, sent)


async def save_phase(joined: list[Client], clients: list[Client], interval: float, duration: float, args) -> dict:
    """Measurement 2: the members type for ``duration`` s, then wait (bounded) for the progress events."""
    for c in joined:
        c.reset()
    await asyncio.gather(*(c.type_sheets(interval, duration, args.timeout) for c in joined if c.member_id is not None))
    rooms: dict[int, list[Client]] = defaultdict(list)
    for c in joined:
        rooms[c.evaluation_id].append(c)

    def complete() -> bool:
        for room in rooms.values():
            for sender in (c for c in room if c.member_id is not None):
                n = sum(e["ok"] for e in sender.emits)
                if any(len(r.received.get(sender.member_id, ())) < n for r in room if r is not sender):
                    return False
        return True
    await _drain(joined, complete, args.drain)
    return save_result(clients)


async def run(args) -> None:
    plans = json.loads(Path(args.plan).read_text())[args.first:args.first + args.count]
    urls = args.urls.split(",")
    rng = random.Random(args.first)
    clients = [Client(p, urls[(args.first + i) % len(urls)], random.Random(rng.random()))
               for i, p in enumerate(plans)]
    gate = asyncio.Semaphore(args.concurrency)

    async def enter(c: Client) -> None:
        async with gate:
            await c.enter(args.timeout)

    start = time.perf_counter()
    await asyncio.gather(*(enter(c) for c in clients))
    joined = [c for c in clients if c.error is None]
    ready = {"joined": len(joined), "failed": len(clients) - len(joined), "all_joined_s": time.perf_counter() - start,
             "errors": sorted({c.error for c in clients if c.error})[:5],
             "state_keys": joined[0].state_keys if joined else [],
             "connect_s": [round(c.connect_s, 4) for c in joined], "join_s": [round(c.join_s, 4) for c in joined]}
    print(json.dumps({"ready": ready}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.max_run)
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "stop":
            result = await listen_phase(joined, clients, int(words[1]), args.drain)
        elif words[0] == "save":
            result = await save_phase(joined, clients, float(words[1]), float(words[2]), args)
        else:
            result = {"error": f"unknown command {words[0]!r}"}
        print(json.dumps({"result": result}), flush=True)
        for c in joined:
            c.reset()
    await asyncio.gather(*(c.leave() for c in clients))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--urls", required=True, help="comma-separated server base URLs (clients go round-robin)")
    parser.add_argument("--plan", required=True, help="JSON list of clients: token, evaluation_id, member_id, ...")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=20, help="connects and joins in flight at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="per connect, join and save (s)")
    parser.add_argument("--drain", type=float, default=5.0, help="wait for late deliveries (s)")
    parser.add_argument("--max-run", type=float, default=1800.0, help="give up waiting for a command after (s)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
