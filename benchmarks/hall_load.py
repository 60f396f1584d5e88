"""Opening hall, part 2: one client process holding many Socket.IO clients in one tender's hall.

Each client is a python-socketio ``AsyncClient`` (aiohttp, websocket transport only), connected to the
``/hall`` namespace of one of the servers in turn, authenticated with its own API token (ignored by the
baseline), then ``join`` with the tender id. The process prints ``{"ready": ...}`` once every client
has joined (or failed), then records each ``hall.board`` event's delivery latency: receive time minus
the ``bench_sent`` timestamp the emitter put in the payload (same machine, same clock). On the line
``stop <number of updates sent>`` from stdin it waits for the stragglers, prints ``{"result": ...}``
and disconnects. Every wait is bounded.

    python hall_load.py --urls http://127.0.0.1:18301,... --tender 7 --tokens tokens.json --first 0 --count 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path

import socketio

NAMESPACE = "/hall"


class Client:
    """One hall client and what it saw."""

    def __init__(self, index: int, url: str, token: str, tender_id: int) -> None:
        self.index, self.url, self.token, self.tender_id = index, url, token, tender_id
        self.sio = socketio.AsyncClient(reconnection=False)
        self.connect_s: float | None = None
        self.join_s: float | None = None
        self.error: str | None = None
        self.seen: dict[int, float] = {}  # update number -> latency (s)
        self.duplicates = 0
        self.events = {"hall.state": 0, "hall.presence": 0, "presence_rows": 0, "other": 0}
        self.disconnected_early = False
        self.sio.on("hall.board", self._board, namespace=NAMESPACE)
        self.sio.on("hall.state", self._count("hall.state"), namespace=NAMESPACE)
        self.sio.on("hall.presence", self._presence, namespace=NAMESPACE)
        self.sio.on("*", self._count("other"), namespace=NAMESPACE)
        self.sio.on("disconnect", self._gone, namespace=NAMESPACE)
        self.leaving = False

    def _count(self, name: str):
        def handler(*_args) -> None:
            self.events[name] += 1
        return handler

    def _presence(self, data=None, *_args) -> None:
        """Count the event and its rows (the delta's ``changes``; the whole ``presence`` list on older servers)."""
        self.events["hall.presence"] += 1
        rows = data.get("changes", data.get("presence")) if isinstance(data, dict) else None
        self.events["presence_rows"] += len(rows) if isinstance(rows, list) else 0

    def _board(self, data: dict) -> None:
        received = time.time()
        seq = data.get("bench_seq")
        if seq is None:
            self.events["other"] += 1
            return
        if seq in self.seen:
            self.duplicates += 1
        else:
            self.seen[seq] = received - data["bench_sent"]

    def _gone(self, *_args) -> None:
        if not self.leaving:
            self.disconnected_early = True

    async def enter(self, timeout: float) -> None:
        start = time.perf_counter()
        try:
            await self.sio.connect(self.url, namespaces=[NAMESPACE], transports=["websocket"],
                                   auth={"token": self.token}, wait_timeout=timeout)
            self.connect_s = time.perf_counter() - start
            answer = await self._call_or_drop("join", {"tender_id": self.tender_id}, timeout)
            if not (isinstance(answer, dict) and answer.get("ok")):
                self.error = f"join refused: {answer}"
            self.join_s = time.perf_counter() - start - self.connect_s
        except Exception as exc:  # noqa: BLE001 (every failure is counted, none stops the run)
            self.error = f"{type(exc).__name__}: {exc}"

    async def heartbeat(self, every: float) -> None:
        """Refresh presence as hall.js does (the baseline has no handler and ignores it)."""
        await asyncio.sleep(random.uniform(0, every))
        while self.sio.connected and not self.leaving:
            with contextlib.suppress(Exception):
                await self.sio.emit("heartbeat", {}, namespace=NAMESPACE)
            await asyncio.sleep(every)

    async def _call_or_drop(self, event: str, data: dict, timeout: float):
        """``call`` that fails as soon as the connection drops (python-socketio would wait for the timeout)."""
        call = asyncio.ensure_future(self.sio.call(event, data, namespace=NAMESPACE, timeout=timeout))
        while not call.done():
            await asyncio.wait([call], timeout=0.5)
            if not call.done() and (self.disconnected_early or not self.sio.connected):
                call.cancel()
                raise ConnectionError("disconnected while waiting for the join's answer")
        return call.result()

    async def leave(self) -> None:
        self.leaving = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 10)


async def run(args) -> None:
    tokens = json.loads(Path(args.tokens).read_text())
    urls = args.urls.split(",")
    clients = [Client(i, urls[i % len(urls)], tokens[i % len(tokens)], args.tender)
               for i in range(args.first, args.first + args.count)]
    gate = asyncio.Semaphore(args.concurrency)

    beats: list[asyncio.Task] = []

    async def enter(c: Client) -> None:
        async with gate:
            await c.enter(args.timeout)
        if c.error is None and args.heartbeat > 0:
            beats.append(asyncio.create_task(c.heartbeat(args.heartbeat)))

    start = time.perf_counter()
    await asyncio.gather(*(enter(c) for c in clients))
    joined = [c for c in clients if c.error is None]
    ready = {"joined": len(joined), "failed": len(clients) - len(joined), "all_joined_s": time.perf_counter() - start,
             "errors": sorted({c.error for c in clients if c.error})[:5]}
    print(json.dumps({"ready": ready}), flush=True)
    line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline),
                                  args.max_run)
    sent = int(line.split()[1]) if line.startswith("stop") else 0
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline and any(len(c.seen) < sent for c in joined if not c.disconnected_early):
        await asyncio.sleep(0.1)
    latencies = [round(lat, 5) for c in joined for lat in c.seen.values()]
    result = {**ready, "sent": sent, "latencies": latencies,
              "missing": sum(max(sent - len(c.seen), 0) for c in joined),
              "duplicates": sum(c.duplicates for c in joined),
              "disconnected_early": sum(c.disconnected_early for c in joined),
              "connect_s": [round(c.connect_s, 4) for c in joined],
              "join_s": [round(c.join_s, 4) for c in joined],
              "events": {k: sum(c.events[k] for c in clients)
                         for k in ("hall.state", "hall.presence", "presence_rows", "other")}}
    print(json.dumps({"result": result}), flush=True)
    for task in beats:
        task.cancel()
    await asyncio.gather(*(c.leave() for c in clients))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--urls", required=True, help="comma-separated server base URLs (clients go round-robin)")
    parser.add_argument("--tender", type=int, required=True)
    parser.add_argument("--tokens", required=True, help="JSON list of API tokens, one per client")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="per connect and per join (s)")
    parser.add_argument("--heartbeat", type=float, default=25.0, help="presence refresh every (s), as hall.js")
    parser.add_argument("--drain", type=float, default=5.0, help="wait for late deliveries after stop (s)")
    parser.add_argument("--max-run", type=float, default=1800.0, help="give up waiting for stop after (s)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
