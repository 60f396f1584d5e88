"""Scoring rooms (评标室): R rooms x (9 experts + 2 supervisors), progress every 50 ms per room, against bare
Flask-SocketIO; then experts typing into their sheets through the real save handler.

The target of ``PERFORMANCE.md``: 50 rooms x 11 real socket clients across two web processes through Redis,
a score-progress event every 50 ms per room, p99 delivery latency within 1.5x of a bare Flask-SocketIO
server on the same topology.

Topology, the same for both: P single-worker gunicorns (``-k gthread --threads T``, threading mode: one
thread per websocket, so P x T must exceed the clients; default 2 x 300 for 550), one Redis (database 5
by default) as the message queue, ebid on PostgreSQL. ebid serves ``ebid.wsgi:app`` with its ``/room``
namespace (token auth, join checked against the committee and the supervisors, the whole room state on
join, presence); the baseline serves ``rooms_baseline_app:app`` (join only). Clients (``rooms_load.py``,
python-socketio AsyncClient, websocket only) connect round-robin over the P processes, 20 connects and
joins in flight per client process, whole rooms per client process.

Measurement 1 (``broadcast``): the emitter in this process sends, for every room, one ``room.progress``
every ``--interval`` s (rooms staggered over the interval) through ebid's own path (``publish`` + commit,
``rooms_setup.EbidEmitter``) or through a bare write-only emitter on the baseline's channel; latency =
receive time - the emitter's stamp. Runs alternate ebid and baseline in pairs; medians over the pairs
and the ratio ebid p99 / baseline p99 of each pair are printed, per number of rooms (a scale curve).

Measurement 2 (``saves``, ebid only): every expert's client sends ``action`` ``save_sheet`` (one more
criterion, the whole draft sent as room.js does) every ``--save-interval`` s (2 s: 4.5 saves/s per room,
225/s for 50 rooms) for ``--save-duration`` s, then at the ``--scan-intervals`` from there towards the rate
where p99 passes ``--limit-ms`` (down when the target is over it, up when under), on the same connections.
Latency = the other clients' receipt of the resulting ``room.progress`` - the sender's emit; server CPU
per answered save. ``--profile-saves N`` adds N saves in-process (the real handler through Flask-SocketIO's
test client) under cProfile, with CPU and SQL statements per save.
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

import rooms_setup  # noqa: E402
from hall_broadcast import percentile  # noqa: E402
from hall_setup import baseline_channel  # noqa: E402
from rooms_load import COUNTED  # noqa: E402
from seal_throughput import machine  # noqa: E402
from surge_servers import Servers, free_ports  # noqa: E402
from surge_setup import ROOT, PgServer, make_app, server_env  # noqa: E402

PRESENCE_KEYS = "ebid:room:presence:*"


class Rooms:
    """Both server sets, both emitters, and the client processes of each run."""

    def __init__(self, args, tmp: Path, database_url: str) -> None:
        self.args, self.tmp, self.database_url = args, tmp, database_url
        self.data_dir = tmp / "data"
        self.env = server_env(database_url, self.data_dir)
        ports = free_ports(2 * args.procs)
        app_env = {**self.env, "EBID_REDIS_URL": args.redis_url}
        base_env = {**self.env, "BENCH_REDIS_URL": args.redis_url, "BENCH_CHANNEL": baseline_channel(args.redis_url)}
        self.servers = {
            "ebid": Servers("ebid", ports[:args.procs], args.threads, app_env, tmp / "logs", args.ebid_app,
                            args.ebid_chdir, "/api/transparency/keys"),
            "baseline": Servers("baseline", ports[args.procs:], args.threads, base_env, tmp / "logs",
                                "rooms_baseline_app:app", HERE, "/health")}
        self.seeded: dict = {}
        self.emitters: dict = {}
        self.per_room = 0

    def prepare(self, kinds: list[str]) -> None:
        import redis
        client = redis.Redis.from_url(self.args.redis_url)
        for key in client.scan_iter(PRESENCE_KEYS):  # only the benchmark's own Redis database
            client.delete(key)
        sizes = (max(self.args.rooms), self.args.experts, self.args.supervisors, self.args.bids)
        if "ebid" in kinds:
            self.seeded = rooms_setup.seed_rooms(self.env, *sizes)
        else:  # the baseline alone checks nothing: no database needed
            self.seeded = rooms_setup.synthetic_rooms(*sizes)
        self.per_room = self.seeded["clients_per_room"]
        (self.tmp / "plan.json").write_text(json.dumps(self.seeded["plan"]))
        if "broadcast" in self.args.measure:
            if "ebid" in kinds:
                ebid = rooms_setup.EbidEmitter(self.database_url, self.data_dir, self.args.redis_url,
                                               self.seeded["rooms"], self.args.ebid_emitter)
                self.emitters["ebid"], payloads = ebid, ebid.payloads
            else:
                payloads = self.seeded["payloads"]
            self.emitters["baseline"] = rooms_setup.BaselineEmitter(self.args.redis_url, payloads)
        for kind in kinds:
            self.servers[kind].start()

    def stop(self) -> None:
        for servers in self.servers.values():
            servers.stop()

    def _clients(self, kind: str, n_rooms: int) -> list[subprocess.Popen]:
        """Client processes for the first ``n_rooms`` rooms, whole rooms per process."""
        procs, per = [], -(-n_rooms // self.args.client_procs)
        urls = ",".join(self.servers[kind].bases)
        for first in range(0, n_rooms, per):
            count = min(per, n_rooms - first) * self.per_room
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "rooms_load.py"), "--urls", urls, "--plan", str(self.tmp / "plan.json"),
                 "--first", str(first * self.per_room), "--count", str(count), "--timeout", str(self.args.join_timeout),
                 "--concurrency", str(max(1, self.args.join_concurrency // self.args.client_procs))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        return procs

    @staticmethod
    def _ready(procs: list[subprocess.Popen]) -> list[dict]:
        return [json.loads(p.stdout.readline() or '{"ready": {"joined": 0, "failed": -1}}')["ready"] for p in procs]

    @staticmethod
    def _command(procs: list[subprocess.Popen], line: str) -> list[dict]:
        for p in procs:
            with contextlib.suppress(BrokenPipeError):  # a client process that died is counted as missing
                p.stdin.write(line + "\n")
                p.stdin.flush()
        results = []
        for p in procs:
            out = p.stdout.readline()
            results.append(json.loads(out)["result"] if out else {"latencies": [], "missing": -1})
        return results

    @staticmethod
    def _finish(procs: list[subprocess.Popen]) -> None:
        for p in procs:
            with contextlib.suppress(BrokenPipeError):
                p.stdin.write("quit\n")
                p.stdin.flush()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def _joined(self, kind: str, n_rooms: int, before: dict) -> tuple[list[subprocess.Popen], dict]:
        start = time.perf_counter()
        procs = self._clients(kind, n_rooms)
        ready = self._ready(procs)
        joins = [x for r in ready for x in r.get("join_s", [])]
        info = {"kind": kind, "rooms": n_rooms, "clients": n_rooms * self.per_room,
                "joined": sum(r["joined"] for r in ready), "failed": sum(r["failed"] for r in ready),
                "errors": sorted({e for r in ready for e in r.get("errors", [])})[:5],
                "state_keys": next((r["state_keys"] for r in ready if r.get("state_keys")), []),
                "join_phase_s": time.perf_counter() - start, "join_p50": percentile(joins, 50),
                "join_p99": percentile(joins, 99)}
        time.sleep(self.args.settle)
        info["server_cpu_join_s"] = self.servers[kind].usage(since=before)["cpu_s"]
        return procs, info

    def broadcast(self, kind: str, n_rooms: int) -> dict:
        """Measurement 1: connect the rooms' clients, send the progress events, collect what they saw."""
        servers, emitter = self.servers[kind], self.emitters[kind]
        rooms = [r["evaluation_id"] for r in self.seeded["rooms"][:n_rooms]]
        before = servers.usage(reset=True)
        procs, info = self._joined(kind, n_rooms, before)
        load = os.getloadavg()[0]
        sending = servers.usage()
        step, late = self.args.interval / len(rooms), 0.0
        t0 = time.perf_counter()
        for seq in range(self.args.updates):
            for i, evaluation_id in enumerate(rooms):
                delay = t0 + seq * self.args.interval + i * step - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                else:
                    late = max(late, -delay)
                emitter.send(evaluation_id, seq)
        send_s = time.perf_counter() - t0
        results = self._command(procs, f"stop {self.args.updates}")
        usage = servers.usage(since=sending)
        self._finish(procs)
        lat = [x for r in results for x in r.get("latencies", [])]
        return {**info, "load": load, "sent_per_room": self.args.updates, "send_s": send_s, "emitter_max_lag_s": late,
                "events_per_s": self.args.updates * len(rooms) / send_s, "deliveries": len(lat),
                "expected": self.args.updates * info["joined"],
                "missing": sum(r.get("missing", 0) for r in results),
                "duplicates": sum(r.get("duplicates", 0) for r in results),
                "disconnected_early": sum(r.get("disconnected_early", 0) for r in results),
                "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
                "max": max(lat, default=None),
                "events": {k: sum(r.get("events", {}).get(k, 0) for r in results) for k in COUNTED},
                "server_cpu_s": usage["cpu_s"], "worker_peak_rss_mib": usage["worker_peak_rss_mib"]}

    def saves(self, n_rooms: int) -> list[dict]:
        """Measurement 2: the target rate, then rates up (or down) from it to where p99 passes the limit."""
        servers = self.servers["ebid"]
        before = servers.usage(reset=True)
        procs, info = self._joined("ebid", n_rooms, before)
        print_join(info)
        target = self.args.save_interval

        def over(row: dict) -> bool:
            return row["p99"] is None or row["p99"] * 1000 > self.args.limit_ms
        try:
            out = [self._save_rate(procs, info, n_rooms, target)]
            if over(out[0]):  # slower rates first, up to the first one over the limit
                scan = sorted((i for i in self.args.scan_intervals if i > target), reverse=True)
            else:
                scan = sorted((i for i in self.args.scan_intervals if i < target), reverse=True)
            for interval in scan:
                out.append(self._save_rate(procs, info, n_rooms, interval))
                if over(out[-1]):
                    break
        finally:
            self._finish(procs)
        return out

    def _save_rate(self, procs: list[subprocess.Popen], info: dict, n_rooms: int, interval: float) -> dict:
        servers = self.servers["ebid"]
        load = os.getloadavg()[0]
        mark = servers.usage()
        start = time.perf_counter()
        results = self._command(procs, f"save {interval} {self.args.save_duration}")
        wall = time.perf_counter() - start
        usage = servers.usage(since=mark)
        lat = [x for r in results for x in r.get("latencies", [])]
        acks = [x for r in results for x in r.get("ack_s", [])]
        saves = sum(r.get("saves", 0) for r in results)
        refused: dict[str, int] = {}
        for r in results:
            for code, n in r.get("refused", {}).items():
                refused[code] = refused.get(code, 0) + n
        row = {**info, "interval_s": interval, "load": load, "offered_per_s": n_rooms * self.args.experts / interval,
               "saves": saves, "saves_per_s": saves / self.args.save_duration, "refused": refused,
               "deliveries": len(lat), "missing": sum(r.get("missing", 0) for r in results),
               "extra": sum(r.get("extra", 0) for r in results),
               "mismatched": sum(r.get("mismatched", 0) for r in results),
               "disconnected_early": sum(r.get("disconnected_early", 0) for r in results),
               "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
               "max": max(lat, default=None), "ack_p50": percentile(acks, 50), "ack_p99": percentile(acks, 99),
               "server_cpu_s": usage["cpu_s"], "wall_s": wall,
               "cpu_ms_per_save": 1000 * usage["cpu_s"] / saves if saves else None,
               "events": {k: sum(r.get("events", {}).get(k, 0) for r in results) for k in COUNTED},
               "worker_peak_rss_mib": usage["worker_peak_rss_mib"]}
        print_saves(row)
        return row


def summarise(n_rooms: int, pairs: list[dict]) -> dict:
    med = statistics.median

    def median_of(kind: str, key: str):
        values = [p[kind][key] for p in pairs if p[kind][key] is not None]
        return med(values) if values else None
    ratios = [p["ebid"]["p99"] / p["baseline"]["p99"] for p in pairs if p["ebid"]["p99"] and p["baseline"]["p99"]]
    keys = ("p50", "p95", "p99", "max", "join_phase_s", "join_p50", "join_p99", "server_cpu_join_s", "server_cpu_s",
            "events_per_s")
    return {"rooms": n_rooms, "pairs": pairs, "p99_ratios": ratios, "p99_ratio": med(ratios) if ratios else None,
            "median": {kind: {k: median_of(kind, k) for k in keys} for kind in ("ebid", "baseline")},
            "missing": {kind: sum(p[kind]["missing"] for p in pairs) for kind in ("ebid", "baseline")},
            "duplicates": {kind: sum(p[kind]["duplicates"] for p in pairs) for kind in ("ebid", "baseline")},
            "failed": {kind: sum(p[kind]["failed"] for p in pairs) for kind in ("ebid", "baseline")}}


def _ms(value) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def print_join(r: dict) -> None:
    print(f"  {r['kind']:8s} {r['joined']}/{r['clients']} joined in {r['join_phase_s']:.1f} s "
          f"(join p50/p99 {_ms(r['join_p50'])}/{_ms(r['join_p99'])} ms, server CPU {r['server_cpu_join_s']:.1f} s)"
          + (f"; errors {r['errors']}" if r["errors"] else ""), flush=True)


def print_run(r: dict) -> None:
    print_join(r)
    print(f"  {r['kind']:8s} load {r['load']:.1f}; {r['events_per_s']:.0f} events/s sent (max lag "
          f"{_ms(r['emitter_max_lag_s'])} ms); delivery p50/p95/p99/max {_ms(r['p50'])}/{_ms(r['p95'])}/"
          f"{_ms(r['p99'])}/{_ms(r['max'])} ms; {r['deliveries']}/{r['expected']} delivered, missing {r['missing']}, "
          f"duplicates {r['duplicates']}, early disconnects {r['disconnected_early']}; "
          f"server CPU {r['server_cpu_s']:.1f} s", flush=True)


def print_saves(r: dict) -> None:
    print(f"  saves every {r['interval_s']} s: {r['saves_per_s']:.0f}/s answered of {r['offered_per_s']:.0f}/s "
          f"offered (refused {r['refused'] or 0}), load {r['load']:.1f}; progress to the others p50/p95/p99/max "
          f"{_ms(r['p50'])}/{_ms(r['p95'])}/{_ms(r['p99'])}/{_ms(r['max'])} ms ({r['deliveries']} deliveries, "
          f"missing {r['missing']}, extra {r['extra']}, mismatched {r['mismatched']}); save answer p50/p99 "
          f"{_ms(r['ack_p50'])}/{_ms(r['ack_p99'])} ms; server CPU {r['server_cpu_s']:.1f} s, "
          f"{r['cpu_ms_per_save'] or 0:.1f} ms per save", flush=True)


def measure(args) -> dict:
    pg = PgServer.from_url(args.pg_url)
    result: dict = {"machine": machine(), "procs": args.procs, "threads": args.threads, "updates": args.updates,
                    "interval_s": args.interval, "scales": [], "saves": []}
    kinds = list(args.only) if "broadcast" in args.measure else []
    kinds += ["ebid"] if ("saves" in args.measure or args.profile_saves) and "ebid" not in kinds else []
    with tempfile.TemporaryDirectory(prefix="ebid-rooms-bench-", dir=args.workdir) as tmp_name:
        tmp = Path(tmp_name)
        pg.recreate(args.db_name)
        rooms = Rooms(args, tmp, pg.url(args.db_name))
        try:
            rooms.prepare(kinds)
            result["setup"] = rooms.seeded["timings"]
            if rooms.emitters:
                payload = next(iter(rooms.emitters["baseline"].payloads.values()))
                result["payload"] = payload
                result["payload_bytes"] = len(json.dumps({**payload, "bench_seq": 0, "bench_sent": time.time()}))
            print(f"setup: {json.dumps(result['setup'])}; payload {result.get('payload_bytes')} bytes", flush=True)
            if "broadcast" in args.measure:
                for n in args.rooms:
                    pairs = []
                    for i in range(args.pairs):
                        order = ("ebid", "baseline") if i % 2 == 0 else ("baseline", "ebid")
                        order = tuple(k for k in order if k in args.only)
                        pair = {}
                        print(f"\n{n} rooms ({n * rooms.per_room} clients), pair {i + 1} ({order[0]} first)", flush=True)
                        for kind in order:
                            pair[kind] = rooms.broadcast(kind, n)
                            print_run(pair[kind])
                        pairs.append(pair)
                    if len(args.only) < 2:
                        result["scales"].append({"rooms": n, "pairs": pairs})
                        continue
                    result["scales"].append(summarise(n, pairs))
                    s = result["scales"][-1]
                    print(f"{n} rooms: median p50/p99 ebid {_ms(s['median']['ebid']['p50'])}/"
                          f"{_ms(s['median']['ebid']['p99'])} ms, baseline {_ms(s['median']['baseline']['p50'])}/"
                          f"{_ms(s['median']['baseline']['p99'])} ms, ratios {[round(x, 2) for x in s['p99_ratios']]},"
                          f" median {s['p99_ratio']}", flush=True)
            if args.profile_saves:
                prof = rooms_setup.profile_saves(rooms.env, rooms.seeded["plan"], args.profile_saves)
                result["profile_saves"] = prof
                print(f"\nsave handler in-process ({prof['saves']} saves, {prof['refused']} refused): CPU median "
                      f"{prof['cpu_ms_median']:.1f} ms, wall median {prof['wall_ms_median']:.1f} ms, "
                      f"{prof['statements_per_save']:.1f} SQL statements per save; the last one's:", flush=True)
                print("\n".join(f"  {q}" for q in prof["last_save_sql"]) + "\n" + prof["profile"], flush=True)
            if "saves" in args.measure:
                print(f"\nsaves: {max(args.rooms)} rooms, {args.save_duration} s per rate", flush=True)
                result["saves"] = rooms.saves(max(args.rooms))
        finally:
            rooms.stop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in (tmp / "logs").glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
            from core.db import db
            with make_app(rooms.env).app_context():
                db.engine.dispose()
            if rooms.emitters.get("ebid"):
                with rooms.emitters["ebid"].app.app_context():
                    db.engine.dispose()
            if not args.keep:
                pg.drop(args.db_name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", default="50", help="comma-separated numbers of rooms (a scale curve)")
    parser.add_argument("--experts", type=int, default=9, help="signed-in experts per room")
    parser.add_argument("--supervisors", type=int, default=2, help="supervisors per room")
    parser.add_argument("--bids", type=int, default=3, help="decrypted bids per tender")
    parser.add_argument("--measure", default="broadcast,saves", help="broadcast, saves or both")
    parser.add_argument("--procs", type=int, default=2, help="gunicorn processes per server set")
    parser.add_argument("--threads", type=int, default=300, help="threads per gunicorn (one per websocket)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes sharing the rooms")
    parser.add_argument("--updates", type=int, default=200, help="progress events per room per run")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between a room's progress events")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between the last join and the events")
    parser.add_argument("--join-timeout", type=float, default=180.0, help="per connect, join and save (s)")
    parser.add_argument("--join-concurrency", type=int, default=20, help="connects and joins in flight at once")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", default="ebid,baseline", help="broadcast: run only these (comma-separated)")
    parser.add_argument("--save-interval", type=float, default=2.0, help="the target: seconds between one "
                        "expert's saves (2 s: 4.5 saves/s per room)")
    parser.add_argument("--scan-intervals", default="12,8,6,4,3,1.5,1,0.5",
                        help="then these, from the target towards the rate where p99 passes --limit-ms")
    parser.add_argument("--save-duration", type=float, default=30.0, help="seconds of typing per rate")
    parser.add_argument("--ebid-emitter", choices=("publish", "external"), default="publish",
                        help="ebid's events: publish + commit (the services' path) or core.realtime.external_emitter")
    parser.add_argument("--ebid-app", default="ebid.wsgi:app", help="ebid's WSGI target (experiments: a wrapper)")
    parser.add_argument("--ebid-chdir", type=Path, default=ROOT, help="where gunicorn finds --ebid-app")
    parser.add_argument("--profile-saves", type=int, default=0,
                        help="also run this many saves in-process (test client) under cProfile")
    parser.add_argument("--limit-ms", type=float, default=250.0, help="stop raising the save rate past this p99")
    parser.add_argument("--quick", action="store_true", help="4 rooms, 40 events, 1 pair, saves at 2 s and 1 s")
    parser.add_argument("--pg-url", default=os.environ.get("EBID_TEST_DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres", help="PostgreSQL server URL")
    parser.add_argument("--db-name", default="bench_rooms", help="database created on --pg-url for the run")
    parser.add_argument("--redis-url", default=os.environ.get("EBID_TEST_REDIS_URL") or "redis://127.0.0.1:6379/5")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--logs", type=Path, default=None, help="copy the servers' logs here at the end")
    args = parser.parse_args(argv)
    if args.quick:
        args.rooms, args.threads, args.updates, args.pairs, args.settle = "4", 60, 40, 1, 1.0
        args.scan_intervals, args.save_duration = "1", 6.0
    args.rooms = [int(c) for c in str(args.rooms).split(",") if c.strip()]
    args.only = [k for k in args.only.split(",") if k in ("ebid", "baseline")]
    args.measure = [k for k in args.measure.split(",") if k in ("broadcast", "saves", "none")]
    args.scan_intervals = [float(x) for x in str(args.scan_intervals).split(",") if x.strip()]
    clients = max(args.rooms, default=0) * (args.experts + args.supervisors)
    if not args.rooms or min(args.rooms) < 1 or not args.measure or args.procs * args.threads <= clients:
        parser.error("give at least 1 room, a measurement, and processes x threads above the number of clients")
    started = time.time()
    result = measure(args)
    result["wall_s"] = time.time() - started
    print(f"\nmachine: {result['machine']}, {result['wall_s']:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
