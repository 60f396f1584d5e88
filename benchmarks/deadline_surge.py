"""Deadline surge: bidders finalizing sealed uploads just before the bid deadline, against a bare baseline.

    .venv/bin/python benchmarks/deadline_surge.py                       # 300 bidders x 5 MiB, 3 pairs
    .venv/bin/python benchmarks/deadline_surge.py --quick --json q.json # 30 x 1 MiB, 15 s (the test)
    .venv/bin/python benchmarks/deadline_surge.py --bidders 100 --pairs 1 --scenarios burst

What it does (PERFORMANCE.md, "deadline surge"): creates the PostgreSQL database ``bench_surge`` (via
psql on loopback, trust auth) and a data dir, migrates (``ebid db upgrade``), seeds a tenderer, three
key custodians and N bidder organisations with certificates and API tokens (surge_setup.py), starts
several single-worker gunicorn processes of ebid (``-k gthread --threads 32``) and as many of the
baseline (baseline_upload_app.py: stream the body to disk and fsync, nothing else). Then, per pair
and scenario, a fresh published tender, one envelope per bidder sealed with its own key and context
(not timed), and the two runs in alternating order, driven by the same client (surge_load.py). ebid's
clients send each envelope in one request when it fits (``--path single``, what ``ebid client`` and
the browser do), or through the resumable upload (``--path resumable``: create, PUT, finalize):

* ``spread``: starts uniformly over the last ``--window`` seconds before a deadline ``--lead`` ahead;
  the last few start so close to the deadline that they are (rightly) refused;
* ``burst``: all bidders at once, ``--burst-before`` seconds before the deadline.

After each ebid run the tender is closed and surge_checks.py counts lost, late-accepted and
unreceipted bids. Reported per run: p50/p95/p99 latency (first request to receipt), the ratio of
ebid's p99 to the baseline's p99 (target <= 2), server CPU seconds, peak RSS per worker, peak
database connections; medians over the pairs. The database and data dir are dropped at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import surge_setup as setup  # noqa: E402
from surge_checks import check_run  # noqa: E402
from surge_load import Job, percentile, run_app, run_baseline, schedule  # noqa: E402
from surge_servers import Servers, free_ports  # noqa: E402

DEFAULT_PG = os.environ.get("EBID_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class ConnectionSampler:
    """Samples the benchmark database's connection count once a second while a run lasts."""

    def __init__(self, pg: setup.PgServer, database: str) -> None:
        self.pg, self.database, self.peak = pg, database, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psycopg
        with psycopg.connect(self.pg.url("postgres"), autocommit=True) as conn:
            while not self._stop.wait(1.0):
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,))
                self.peak = max(self.peak, n.fetchone()[0])

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def latency_stats(outcomes: list) -> dict:
    lat = [o.latency for o in outcomes if o.ok]
    fin = [o.finalize_s for o in outcomes if o.ok and o.finalize_s is not None]
    stats = {"n": len(outcomes), "ok": len(lat)}
    for p in (50, 95, 99):
        stats[f"p{p}_s"] = percentile(lat, p)
    stats["max_s"] = max(lat) if lat else None
    if fin:
        stats["finalize_p50_s"], stats["finalize_p99_s"] = percentile(fin, 50), percentile(fin, 99)
        by_index = [o.finalize_s for o in sorted((o for o in outcomes if o.ok),
                                                 key=lambda o: o.body["receipt"]["body"]["log_index"])]
        third = max(len(by_index) // 3, 1)
        stats["finalize_first_third_p50_s"] = statistics.median(by_index[:third])
        stats["finalize_last_third_p50_s"] = statistics.median(by_index[-third:])
    return stats


def compact(outcomes: list, deadline_ts: float | None) -> list[list]:
    """Per bidder: start offset, last step, status, code, latency, finalize time, answer minus deadline."""
    def r(v):
        return round(v, 3) if isinstance(v, float) else v
    return [[o.bidder, r(o.started), o.step, o.status, o.code, r(o.latency), r(o.finalize_s),
             r(o.answered_at - deadline_ts) if deadline_ts and o.answered_at else None] for o in outcomes]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.pg = setup.PgServer.from_url(args.pg_url)
        self.env = setup.server_env(self.pg.url(args.db_name), work / "data")
        self.upload_dir = work / "baseline-uploads"
        n = args.processes
        ports = free_ports(2 * n) if args.port == 0 else [args.port + i for i in (*range(n), *range(100, 100 + n))]
        self.app_servers = Servers("ebid", ports[:n], args.threads, self.env, work / "logs", "ebid.wsgi:app",
                                   setup.ROOT, "/api/transparency/keys")
        baseline_env = {**self.env, "BENCH_UPLOAD_DIR": str(self.upload_dir),
                        "BENCH_UPLOAD_DROP_CACHE": "1" if args.baseline_drop_cache else "0"}
        self.base_servers = Servers("baseline", ports[n:], args.threads, baseline_env, work / "logs",
                                    "baseline_upload_app:app", HERE, "/health")

    def prepare(self) -> None:
        t = time.time()
        self.pg.recreate(self.args.db_name)
        self.migration_lag = setup.migrate(self.env)
        if self.migration_lag:
            print(f"note: after `ebid db upgrade` the schema differs from the models in {self.migration_lag} "
                  f"places (migrations not generated yet); the schema was built from the models instead")
        self.parties = setup.seed_parties(self.env, self.args.bidders, self.work / "bidder-keys")
        self.plaintexts = setup.write_plaintexts(self.work / "plain", self.args.distinct, self.args.mib)
        print(f"database, {self.args.bidders} bidders, CA, certificates and tokens ready in {time.time() - t:.0f} s")
        self.app_servers.start()
        self.base_servers.start()
        print(f"servers: ebid on {self.app_servers.bases}, baseline on {self.base_servers.bases}")

    def app_run(self, scenario: str, run: setup.TenderRun, envelopes: dict, offsets: list[float]) -> dict:
        a = self.args
        span = a.window if scenario == "spread" else a.burst_before
        lead = a.lead if scenario == "spread" else a.burst_before + 2
        deadline_ts = math.ceil(time.time() + lead)
        deadline = datetime.fromtimestamp(deadline_ts, UTC)
        setup.move_deadline(self.env, run.tender_id, deadline)
        t0 = time.monotonic() + (deadline_ts - span - time.time())
        jobs = [Job(b.index, b.token, envelopes[b.index].path, envelopes[b.index].sha256, envelopes[b.index].size,
                    offsets[b.index]) for b in self.parties.bidders if b.index in envelopes]
        before = self.app_servers.usage(reset=True)
        with ConnectionSampler(self.pg, a.db_name) as sampler:
            outcomes = run_app(jobs, self.app_servers.bases, run.tender_id, run.lot_id, t0,
                               request_timeout=a.request_timeout, path=a.path)
        usage = self.app_servers.usage(since=before)
        time.sleep(max(deadline_ts - time.time(), 0) + 0.2)
        checks = check_run(self.env, self.app_servers.bases[0], run, deadline, outcomes, envelopes)
        self._drop_stored(envelopes)
        return {"stats": latency_stats(outcomes), "checks": checks, "servers": usage, "db_connections_peak":
                sampler.peak, "deadline": deadline.isoformat(), "load_average": os.getloadavg()[0],
                "outcomes": compact(outcomes, deadline_ts)}

    def baseline_run(self, run_id: str, envelopes: dict, offsets: list[float]) -> dict:
        jobs = [Job(b.index, "", envelopes[b.index].path, envelopes[b.index].sha256, envelopes[b.index].size,
                    offsets[b.index]) for b in self.parties.bidders if b.index in envelopes]
        t0 = time.monotonic() + 2.0
        before = self.base_servers.usage(reset=True)
        outcomes = run_baseline(jobs, self.base_servers.bases, run_id, t0, request_timeout=self.args.request_timeout)
        usage = self.base_servers.usage(since=before)
        failed = [f"bidder {o.bidder}: {o.status} {o.code} {o.message}" for o in outcomes if not o.ok]
        shutil.rmtree(self.upload_dir, ignore_errors=True)
        self.upload_dir.mkdir()
        return {"stats": latency_stats(outcomes), "failed": len(failed), "failed_examples": failed[:5],
                "servers": usage, "load_average": os.getloadavg()[0], "outcomes": compact(outcomes, None)}

    def _drop_stored(self, envelopes: dict) -> None:
        store = self.work / "data" / "files"
        for e in envelopes.values():
            (store / e.sha256[:2] / e.sha256).unlink(missing_ok=True)

    def pair(self, index: int, scenario: str, bidders: int | None = None) -> dict:
        """One ebid run and one baseline run of ``scenario`` (``bidders``: only the first so many)."""
        code = f"SURGE-{int(time.time())}-{scenario[0].upper()}{index}"
        run = setup.publish_tender(self.env, self.parties, code)
        t = time.time()
        sealed = setup.seal_envelopes(run, self.parties.bidders[:bidders], self.plaintexts,
                                      self.work / "envelopes" / code)
        envelopes = {e.bidder: e for e in sealed}
        print(f"  {code}: {len(sealed)} envelopes sealed in {time.time() - t:.1f} s (not timed)")
        offsets = schedule(len(self.parties.bidders), scenario, self.args.window, seed=index)
        app_first = index % 2 == 0
        result = {"pair": index, "scenario": scenario, "tender": code, "app_first": app_first}
        for which in (("app", "baseline") if app_first else ("baseline", "app")):
            if which == "app":
                result["app"] = self.app_run(scenario, run, envelopes, offsets)
            else:
                result["baseline"] = self.baseline_run(f"{scenario[0]}{index if index >= 0 else 'w'}", envelopes,
                                                       offsets)  # a file name: letters and digits only
            print_run(which, result[which])
        shutil.rmtree(self.work / "envelopes" / code, ignore_errors=True)
        a99, b99 = result["app"]["stats"]["p99_s"], result["baseline"]["stats"]["p99_s"]
        result["p99_ratio"] = a99 / b99 if a99 and b99 else None
        print(f"  -> p99 ratio ebid/baseline {result['p99_ratio']:.2f}" if result["p99_ratio"] else "  -> no ratio")
        return result

    def stop(self) -> None:
        self.app_servers.stop()
        self.base_servers.stop()


def _s(v) -> str:
    return f"{v:7.3f}" if isinstance(v, (int, float)) else f"{'-':>7s}"


def print_run(which: str, r: dict) -> None:
    s = r["stats"]
    line = (f"  {which:8s} ok {s['ok']:4d}/{s['n']:<4d} p50 {_s(s['p50_s'])} p95 {_s(s['p95_s'])} "
            f"p99 {_s(s['p99_s'])} max {_s(s['max_s'])} s  server CPU {r['servers']['cpu_s']:6.1f} s  "
            f"load {r['load_average']:.1f}")
    if which == "app":
        c = r["checks"]
        line += (f"\n           finalize p50 {_s(s.get('finalize_p50_s'))} p99 {_s(s.get('finalize_p99_s'))} s; "
                 f"lost {c['lost']} late {c['late_accepted']} unreceipted {c['unreceipted']} refused-late "
                 f"{c['refused_late']} unexpected {c['unexpected_failures']} closing-matches {c['closing_matches']}; "
                 f"db connections peak {r['db_connections_peak']}")
        for kind, examples in c["problems"].items():
            line += f"\n           {kind}: {examples}"
        if c["unexpected_examples"]:
            line += f"\n           unexpected: {c['unexpected_examples']}"
    elif r["failed"]:
        line += f"\n           failed: {r['failed_examples']}"
    print(line, flush=True)


def summarise(results: list[dict]) -> dict:
    out = {}
    for scenario in sorted({r["scenario"] for r in results}):
        rs = [r for r in results if r["scenario"] == scenario]

        def m(path: tuple, rows=rs) -> float | None:
            values = [_dig(r, path) for r in rows]
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else None
        out[scenario] = {
            "pairs": len(rs), "p99_ratio_median": m(("p99_ratio",)),
            **{f"app_{k}": m(("app", "stats", k)) for k in ("p50_s", "p95_s", "p99_s", "finalize_p99_s")},
            **{f"baseline_{k}": m(("baseline", "stats", k)) for k in ("p50_s", "p95_s", "p99_s")},
            "app_server_cpu_s": m(("app", "servers", "cpu_s")), "baseline_server_cpu_s": m(("baseline", "servers", "cpu_s")),
            "lost": sum(r["app"]["checks"]["lost"] for r in rs),
            "late_accepted": sum(r["app"]["checks"]["late_accepted"] for r in rs),
            "unreceipted": sum(r["app"]["checks"]["unreceipted"] for r in rs),
            "unexpected_failures": sum(r["app"]["checks"]["unexpected_failures"] for r in rs),
            "refused_late": sum(r["app"]["checks"]["refused_late"] for r in rs),
            "receipts": sum(r["app"]["checks"]["receipts"] for r in rs),
            "baseline_failed": sum(r["baseline"]["failed"] for r in rs),
        }
    return out


def _dig(d: dict, path: tuple):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bidders", type=int, default=300)
    p.add_argument("--mib", type=float, default=5.0, help="plaintext size per bid (the envelope is a little larger)")
    p.add_argument("--pairs", type=int, default=3, help="alternating ebid/baseline pairs per scenario")
    p.add_argument("--scenarios", default="spread,burst")
    p.add_argument("--lead", type=float, default=70.0, help="spread: the deadline is this far ahead")
    p.add_argument("--window", type=float, default=60.0, help="spread: starts over the last N seconds")
    p.add_argument("--burst-before", type=float, default=30.0, help="burst: all start N s before the deadline")
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--port", type=int, default=18100, help="first ebid port (the baseline's are +100); 0: any free")
    p.add_argument("--distinct", type=int, default=10, help="distinct plaintexts (each envelope is sealed anew)")
    p.add_argument("--request-timeout", type=float, default=120.0)
    p.add_argument("--warmup", type=int, default=90,
                   help="bidders of an unmeasured burst against both servers before the pairs (0: none)")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server (trust auth on loopback)")
    p.add_argument("--db-name", default="bench_surge")
    p.add_argument("--workdir", type=Path, default=None, help="parent of the run's data dir (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the database and the data dir")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--path", default="single", choices=["single", "resumable"],
                   help="ebid clients send an envelope that fits one request whole (single), or always resumable")
    p.add_argument("--baseline-drop-cache", action="store_true",
                   help="stricter baseline: it also evicts each file from the page cache after its fsync, as ebid does")
    p.add_argument("--quick", action="store_true", help="30 bidders, 1 MiB, deadline 15 s ahead, 1 pair, 2 processes")
    args = p.parse_args(argv)
    if args.quick:
        args.bidders, args.mib, args.pairs, args.lead, args.window = 30, 1.0, 1, 15.0, 12.0
        args.burst_before, args.processes, args.threads, args.distinct, args.warmup = 3.0, 2, 16, 3, 0
    if args.bidders < 1 or args.pairs < 1 or args.processes < 1 or not 0 < args.window < args.lead:
        p.error("need bidders, pairs and processes >= 1 and 0 < window < lead")
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if not set(args.scenarios) <= {"spread", "burst"}:
        p.error("scenarios are spread and burst")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("psql") is None:
        raise SystemExit("psql is not installed: the benchmark creates its database with it")
    work = Path(tempfile.mkdtemp(prefix="ebid-surge-", dir=args.workdir))
    need = 3 * args.bidders * args.mib * (1 << 20) + (1 << 30)
    if shutil.disk_usage(work).free < need:
        raise SystemExit(f"{work}: not enough free disk ({need / (1 << 30):.1f} GiB needed)")
    bench, started, results = Bench(args, work), time.time(), []
    try:
        bench.prepare()
        if args.warmup:  # fresh processes open their pooled connections and warm their caches here, unmeasured
            print(f"warm-up (not counted): {args.warmup} bidders at once", flush=True)
            bench.pair(-1, "burst", bidders=args.warmup)
        for index in range(args.pairs):
            for scenario in args.scenarios:
                print(f"pair {index + 1}/{args.pairs}, {scenario}:", flush=True)
                results.append(bench.pair(index, scenario))
    finally:
        bench.stop()
        if not args.keep:
            bench.pg.drop(args.db_name)
            shutil.rmtree(work, ignore_errors=True)
    summary = summarise(results)
    report = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": {"cpus": os.cpu_count(), "load_average_end": os.getloadavg()},
              "migration_lag": getattr(bench, "migration_lag", None), "wall_s": time.time() - started,
              "summary": summary, "runs": results}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    bad = any(v["lost"] or v["late_accepted"] for v in summary.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
