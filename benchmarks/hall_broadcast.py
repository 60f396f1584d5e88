"""Opening hall broadcast (开标大厅): N bidders in one hall, a board update every 500 ms, against bare Flask-SocketIO.

The target of ``PERFORMANCE.md``: 1,000 bidders connected to one tender's hall, a board update every
500 ms, p99 delivery latency within 1.5x of a bare Flask-SocketIO server (threading, Redis message
queue, the same processes) broadcasting the same payloads.

Topology, the same for both: P single-worker gunicorns (``-k gthread --threads T``; threading mode holds
one thread per websocket, so P x T must exceed the clients, default 4 x 300 for 1,000), one Redis
(database 4 by default) as the message queue, ebid on PostgreSQL. ebid serves ``ebid.wsgi:app`` with
its ``/hall`` namespace (token auth, join checked against the tender's bids, state on join, presence);
the baseline serves ``hall_baseline_app:app`` (join only). Clients (``hall_load.py``, python-socketio
AsyncClient over aiohttp, websocket only, a heartbeat every 25 s as hall.js) connect round-robin over
the P processes, 20 connects and joins in flight, and then record each update's latency (receive time
minus the emitter's timestamp in the payload).
The emitter sends each update through ebid's own path (``hall_events.emit`` + commit) or through a bare
write-only emitter on the baseline's channel (``hall_setup.py``). Runs alternate ebid and baseline in
pairs; medians over the pairs and the ratio ebid p99 / baseline p99 of each pair are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import hall_setup  # noqa: E402
from seal_throughput import machine  # noqa: E402
from surge_servers import Servers, free_ports  # noqa: E402
from surge_setup import ROOT, PgServer, make_app, server_env  # noqa: E402


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class Hall:
    """Both server sets, both emitters, and the client processes of each run."""

    def __init__(self, args, tmp: Path, database_url: str) -> None:
        self.args, self.tmp, self.database_url = args, tmp, database_url
        self.data_dir = tmp / "data"
        self.env = server_env(database_url, self.data_dir)
        ports = free_ports(2 * args.procs)
        app_env = {**self.env, "EBID_REDIS_URL": args.redis_url}
        base_env = {**self.env, "BENCH_REDIS_URL": args.redis_url, "BENCH_CHANNEL": hall_setup.baseline_channel(args.redis_url)}
        self.servers = {
            "ebid": Servers("ebid", ports[:args.procs], args.threads, app_env, tmp / "logs", "ebid.wsgi:app", ROOT,
                            "/api/transparency/keys"),
            "baseline": Servers("baseline", ports[args.procs:], args.threads, base_env, tmp / "logs",
                                "hall_baseline_app:app", HERE, "/health")}
        self.seeded: dict = {}
        self.emitters: dict = {}

    def prepare(self) -> None:
        import redis
        client = redis.Redis.from_url(self.args.redis_url)
        for key in client.scan_iter("ebid:hall:presence:*"):  # only the benchmark's own Redis database
            client.delete(key)
        self.seeded = hall_setup.seed_hall(self.env, max(self.args.clients), self.tmp)
        (self.tmp / "tokens.json").write_text(json.dumps(self.seeded["tokens"]))
        tender_id, row = self.seeded["tender_id"], self.seeded["row"]
        self.emitters = {"ebid": hall_setup.EbidEmitter(self.database_url, self.data_dir, self.args.redis_url,
                                                        tender_id, row),
                         "baseline": hall_setup.BaselineEmitter(self.args.redis_url, tender_id, row)}
        for servers in self.servers.values():
            servers.start()

    def stop(self) -> None:
        for servers in self.servers.values():
            servers.stop()

    def _clients(self, kind: str, n: int) -> list[subprocess.Popen]:
        procs, per = [], -(-n // self.args.client_procs)
        urls = ",".join(self.servers[kind].bases)
        for first in range(0, n, per):
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "hall_load.py"), "--urls", urls, "--tender", str(self.seeded["tender_id"]),
                 "--tokens", str(self.tmp / "tokens.json"), "--first", str(first), "--count", str(min(per, n - first)),
                 "--timeout", str(self.args.join_timeout),
                 "--concurrency", str(max(1, self.args.join_concurrency // self.args.client_procs))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        return procs

    def run(self, kind: str, n: int) -> dict:
        """Connect ``n`` clients to ``kind``'s servers, send the updates, collect what the clients saw."""
        servers, emitter = self.servers[kind], self.emitters[kind]
        before = servers.usage(reset=True)
        start = time.perf_counter()
        procs = self._clients(kind, n)
        ready = [json.loads(p.stdout.readline() or '{"ready": {"joined": 0, "failed": -1}}')["ready"] for p in procs]
        join_phase_s = time.perf_counter() - start
        time.sleep(self.args.settle)
        load = os.getloadavg()[0]
        join_usage = servers.usage(since=before)
        t0 = time.perf_counter()
        for seq in range(self.args.updates):
            delay = t0 + seq * self.args.interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            emitter.send(seq)
        results = []
        for p in procs:
            with contextlib.suppress(BrokenPipeError):  # a client process that died is counted as missing
                p.stdin.write(f"stop {self.args.updates}\n")
                p.stdin.flush()
        for p in procs:
            line = p.stdout.readline()
            results.append(json.loads(line)["result"] if line else {"latencies": [], "missing": -1})
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        usage = servers.usage(since=before)
        lat = [x for r in results for x in r.get("latencies", [])]
        joins = [x for r in results for x in r.get("join_s", [])]
        connects = [x for r in results for x in r.get("connect_s", [])]
        return {
            "kind": kind, "clients": n, "joined": sum(r["joined"] for r in ready), "failed": sum(r["failed"] for r in ready),
            "errors": sorted({e for r in ready for e in r.get("errors", [])})[:5],
            "join_phase_s": join_phase_s, "load": load, "deliveries": len(lat),
            "expected": self.args.updates * sum(r["joined"] for r in ready),
            "missing": sum(r.get("missing", 0) for r in results), "duplicates": sum(r.get("duplicates", 0) for r in results),
            "disconnected_early": sum(r.get("disconnected_early", 0) for r in results),
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99), "max": max(lat, default=None),
            "connect_p50": percentile(connects, 50), "connect_p99": percentile(connects, 99),
            "join_p50": percentile(joins, 50), "join_p99": percentile(joins, 99),
            "events": {k: sum(r.get("events", {}).get(k, 0) for r in results)
                       for k in ("hall.state", "hall.presence", "presence_rows")},
            "server_cpu_join_s": join_usage["cpu_s"], "server_cpu_s": usage["cpu_s"],
            "worker_peak_rss_mib": usage["worker_peak_rss_mib"]}


def summarise(n: int, pairs: list[dict]) -> dict:
    med = statistics.median

    def median_of(kind: str, key: str):
        values = [p[kind][key] for p in pairs if p[kind][key] is not None]
        return med(values) if values else None
    ratios = [p["ebid"]["p99"] / p["baseline"]["p99"] for p in pairs if p["ebid"]["p99"] and p["baseline"]["p99"]]
    keys = ("p50", "p95", "p99", "max", "join_phase_s", "join_p50", "join_p99", "connect_p50", "server_cpu_join_s",
            "server_cpu_s")
    return {"clients": n, "pairs": pairs, "p99_ratio": med(ratios) if ratios else None,
            "median": {kind: {k: median_of(kind, k) for k in keys} for kind in ("ebid", "baseline")},
            "missing": {kind: sum(p[kind]["missing"] for p in pairs) for kind in ("ebid", "baseline")},
            "failed": {kind: sum(p[kind]["failed"] for p in pairs) for kind in ("ebid", "baseline")}}


def _ms(value) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def print_run(r: dict) -> None:
    print(f"  {r['kind']:8s} {r['joined']}/{r['clients']} joined in {r['join_phase_s']:.1f} s "
          f"(join p50/p99 {_ms(r['join_p50'])}/{_ms(r['join_p99'])} ms, presence events {r['events']['hall.presence']} "
          f"/ rows {r['events']['presence_rows']}), "
          f"load {r['load']:.1f}; delivery p50/p95/p99/max {_ms(r['p50'])}/{_ms(r['p95'])}/{_ms(r['p99'])}/"
          f"{_ms(r['max'])} ms, missing {r['missing']}, early disconnects {r['disconnected_early']}, "
          f"server CPU {r['server_cpu_join_s']:.1f} s joining / {r['server_cpu_s']:.1f} s in all", flush=True)


def measure(args) -> dict:
    pg = PgServer.from_url(args.pg_url)
    result: dict = {"machine": machine(), "procs": args.procs, "threads": args.threads, "updates": args.updates,
                    "interval_s": args.interval, "scales": []}
    with tempfile.TemporaryDirectory(prefix="ebid-hall-bench-", dir=args.workdir) as tmp_name:
        tmp = Path(tmp_name)
        pg.recreate(args.db_name)
        url = pg.url(args.db_name)
        hall = Hall(args, tmp, url)
        try:
            hall.prepare()
            result["setup"] = hall.seeded["timings"]
            result["payload_bytes"] = len(json.dumps({"tender_id": 1, **hall.seeded["row"], "bench_seq": 0,
                                                      "bench_sent": time.time()}))
            print(f"setup: {json.dumps(result['setup'])}; payload {result['payload_bytes']} bytes", flush=True)
            for n in args.clients:
                pairs = []
                for i in range(args.pairs):
                    order = ("ebid", "baseline") if i % 2 == 0 else ("baseline", "ebid")
                    order = tuple(k for k in order if k in args.only)
                    pair = {}
                    print(f"\n{n} clients, pair {i + 1} ({order[0]} first)", flush=True)
                    for kind in order:
                        pair[kind] = hall.run(kind, n)
                        print_run(pair[kind])
                    pairs.append(pair)
                if len(args.only) < 2:
                    result["scales"].append({"clients": n, "pairs": pairs})
                    continue
                result["scales"].append(summarise(n, pairs))
                s = result["scales"][-1]
                print(f"{n} clients: median p99 ebid {_ms(s['median']['ebid']['p99'])} ms, baseline "
                      f"{_ms(s['median']['baseline']['p99'])} ms, ratio {s['p99_ratio']}", flush=True)
        finally:
            hall.stop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in (tmp / "logs").glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
            from core.db import db
            with make_app(hall.env).app_context():
                db.engine.dispose()
            if hall.emitters.get("ebid"):
                with hall.emitters["ebid"].app.app_context():
                    db.engine.dispose()
            if not args.keep:
                pg.drop(args.db_name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1000", help="comma-separated numbers of connected clients")
    parser.add_argument("--procs", type=int, default=4, help="gunicorn processes per server set")
    parser.add_argument("--threads", type=int, default=300, help="threads per gunicorn (one per websocket)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes sharing the clients")
    parser.add_argument("--updates", type=int, default=60, help="board updates per run")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between updates")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between the last join and the updates")
    parser.add_argument("--join-timeout", type=float, default=180.0, help="per connect and per join (s)")
    parser.add_argument("--join-concurrency", type=int, default=20, help="connects and joins in flight at once")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", default="ebid,baseline", help="run only these (comma-separated); no ratio then")
    parser.add_argument("--quick", action="store_true", help="20 clients, 2 + 2 processes, 8 updates, 1 pair")
    parser.add_argument("--pg-url", default=os.environ.get("EBID_TEST_DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres", help="PostgreSQL server URL")
    parser.add_argument("--db-name", default="bench_d_hall", help="database created on --pg-url for the run")
    parser.add_argument("--redis-url", default=os.environ.get("EBID_TEST_REDIS_URL") or "redis://127.0.0.1:6379/4")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--logs", type=Path, default=None, help="copy the servers' logs here at the end")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.procs, args.threads, args.updates, args.pairs, args.settle = "20", 2, 30, 8, 1, 1.0
    args.clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    args.only = [k for k in args.only.split(",") if k in ("ebid", "baseline")]
    if not args.clients or min(args.clients) < 3 or args.procs * args.threads <= max(args.clients):
        parser.error("give at least 3 clients, and processes x threads above the number of clients")
    started = time.time()
    result = measure(args)
    result["wall_s"] = time.time() - started
    print(f"\nmachine: {result['machine']}, {result['wall_s']:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
